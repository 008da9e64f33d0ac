// Package concurrent runs the items of a batch on a bounded number of
// goroutines.
package concurrent

import (
	"sync"
	"sync/atomic"
)

// Each calls f(i) for every i from 0 to n-1, at most limit calls at once
// (at least one), and returns when every call has returned. It starts at
// most limit goroutines, each taking the next index until none is left,
// rather than one goroutine per item: a worker's stack, grown by the calls
// of its first item (a database round trip, a template), serves its next
// items as it is, where a new goroutine per item grows a small stack again
// (copying it each time), which cost the renewal and e-mail workers 5% of
// their CPU in the simulated year.
func Each(n, limit int, f func(i int)) {
	if n <= 0 {
		return
	}
	limit = max(1, min(limit, n))
	var next atomic.Int64
	work := func() {
		for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
			f(i)
		}
	}
	if limit == 1 {
		work()
		return
	}
	var wg sync.WaitGroup
	for range limit {
		wg.Go(work)
	}
	wg.Wait()
}
