package concurrent

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestEach_CallsEveryIndexOnce_AtMostLimitAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name     string
		n, limit int
	}{
		{"none", 0, 4},
		{"one item", 1, 8},
		{"fewer items than the limit", 3, 8},
		{"more items than the limit", 100, 8},
		{"one at a time", 10, 1},
		{"a limit below one runs one at a time", 10, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := make([]atomic.Int32, tc.n)
			var running, most atomic.Int32
			var mu sync.Mutex
			Each(tc.n, tc.limit, func(i int) {
				now := running.Add(1)
				mu.Lock()
				most.Store(max(most.Load(), now))
				mu.Unlock()
				time.Sleep(100 * time.Microsecond) // overlap with the other workers' calls
				calls[i].Add(1)
				running.Add(-1)
			})
			for i := range calls {
				if c := calls[i].Load(); c != 1 {
					t.Errorf("index %d called %d times, want once", i, c)
				}
			}
			if limit := max(1, tc.limit); int(most.Load()) > limit {
				t.Errorf("%d calls ran at once, the limit is %d", most.Load(), limit)
			}
		})
	}
}

func TestEach_RunsCallsAtOnceUpToTheLimit(t *testing.T) {
	const limit = 4
	all := make(chan struct{})
	var started atomic.Int32
	Each(limit, limit, func(int) {
		if started.Add(1) == limit {
			close(all)
		}
		select {
		case <-all: // every call is running: none waits for another to end
		case <-time.After(10 * time.Second):
			t.Error("the calls ran one after another, not at once")
		}
	})
}
