package simulation

import (
	"context"
	"sync"

	"github.com/subs-engine/subs/eventstore"
	"github.com/subs-engine/subs/projections"
)

// readByWorkers reports whether the renewal worker reads the projection
// during the year (the schedule; it reads the billing methods from the
// accounts' states): it must be up to date before each run. The others
// follow on the side (relay): the outbox's queue, which the outbox drains
// on the side too, and those only the report reads (the accounts, the
// products view, the charge ledger, the orders).
func readByWorkers(p projections.Projection) bool {
	_, due := p.(projections.DueWork)
	return due
}

// relay hands the batches of the log the read models the workers read
// were brought up to date with (their runner's Feed) on to the runner of
// the others, which so neither reads nor decodes the log again. It holds
// at most maxRelayed batches: beyond, a batch is dropped, and the other
// runner reads its events from the log (Runner.Apply of the next batch,
// or its last catch-up).
type relay struct {
	mu      sync.Mutex
	batches []projections.Batch
}

// maxRelayed bounds the memory of batches not yet applied (up to 500
// events each).
const maxRelayed = 64

func (r *relay) put(b projections.Batch) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.batches) < maxRelayed {
		r.batches = append(r.batches, b)
	}
}

// take returns the batches put since the last take, in order.
func (r *relay) take() []projections.Batch {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.batches
	r.batches = nil
	return b
}

// applyRelayed applies to runner the batches relayed so far.
func applyRelayed(r *relay, runner *projections.Runner) func(context.Context) error {
	return func(ctx context.Context) error {
		for _, b := range r.take() {
			if err := runner.Apply(ctx, b); err != nil {
				return err
			}
		}
		return nil
	}
}

// sideJob runs a job on the side of the year: a goroutine of its own runs
// it whenever poked, while the renewal runs go on, so that the year waits
// only for what its next run reads. It keeps the read models only the
// report reads up to date (catchUpToHead), and sends the e-mails (the
// outbox, as it runs beside the renewal worker in a deployment).
type sideJob struct {
	run    func(context.Context) error
	wake   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	err   error // the first failed run's
	ended bool  // wake is closed: pokes are not heard
}

func newSideJob(run func(context.Context) error) *sideJob {
	return &sideJob{run: run, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// catchUpToHead is the job that brings runner's read models up to date
// with the log as it is when the job starts. The same events in other
// batches build the same rows (a read model equals its rebuild).
func catchUpToHead(store *eventstore.Store, runner *projections.Runner) func(context.Context) error {
	return func(ctx context.Context) error {
		head, err := store.Head(ctx)
		if err != nil {
			return err
		}
		return runner.CatchUp(ctx, head)
	}
}

// start runs the job whenever poked until finish or close, which must
// follow.
func (t *sideJob) start(ctx context.Context) {
	ctx, t.cancel = context.WithCancel(ctx)
	go t.follow(ctx)
}

func (t *sideJob) follow(ctx context.Context) {
	defer close(t.done)
	for range t.wake {
		if err := t.run(ctx); err != nil {
			t.mu.Lock()
			t.err = err
			t.mu.Unlock()
			return
		}
	}
}

// poke asks for a run: one already asked for and not yet begun covers it.
// After finish or close, it does nothing.
func (t *sideJob) poke() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ended {
		return
	}
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// failed returns the error of a run that failed, if one did.
func (t *sideJob) failed() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// finish waits for the run under way, stops and runs the job once more.
func (t *sideJob) finish(ctx context.Context) error {
	t.end()
	if err := t.failed(); err != nil {
		return err
	}
	return t.run(ctx)
}

// close stops at once: a run under way is cancelled.
func (t *sideJob) close() {
	t.cancel()
	t.end()
}

// end lets the goroutine return once the run under way is over, and waits
// for it.
func (t *sideJob) end() {
	t.mu.Lock()
	if !t.ended {
		t.ended = true
		close(t.wake)
	}
	t.mu.Unlock()
	<-t.done
}
