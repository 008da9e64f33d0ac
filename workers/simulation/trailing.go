package simulation

import (
	"context"
	"sync"

	"github.com/subs-engine/subs/eventstore"
	"github.com/subs-engine/subs/projections"
)

// readByWorkers reports whether the workers read the projection during the
// year (the renewal worker the schedule and the billing methods, the outbox
// its queue): it must be up to date before each of their runs. The others
// (the products view, the charge ledger, the orders) only the report reads.
func readByWorkers(p projections.Projection) bool {
	switch p.(type) {
	case projections.DueWork, projections.Accounts, projections.EmailOutbox:
		return true
	}
	return false
}

// trailing brings the read models only the report reads up to date on the
// side: a goroutine of its own catches them up with the log whenever asked,
// while the workers go on, so that the year waits only for the read models
// its workers read. The same events in other batches build the same rows
// (a read model equals its rebuild).
type trailing struct {
	store  *eventstore.Store
	runner *projections.Runner
	wake   chan struct{}
	ended  sync.Once
	cancel context.CancelFunc
	done   chan struct{}

	mu  sync.Mutex
	err error // the first failed catch-up's
}

func newTrailing(store *eventstore.Store, runner *projections.Runner) *trailing {
	return &trailing{store: store, runner: runner, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// start follows the log until finish or close, which must follow.
func (t *trailing) start(ctx context.Context) {
	ctx, t.cancel = context.WithCancel(ctx)
	go t.follow(ctx)
}

func (t *trailing) follow(ctx context.Context) {
	defer close(t.done)
	for range t.wake {
		if err := t.catchUp(ctx); err != nil {
			t.mu.Lock()
			t.err = err
			t.mu.Unlock()
			return
		}
	}
}

func (t *trailing) catchUp(ctx context.Context) error {
	head, err := t.store.Head(ctx)
	if err != nil {
		return err
	}
	return t.runner.CatchUp(ctx, head)
}

// poke asks for a catch-up with the log as it is now: one already asked
// for and not yet begun covers it.
func (t *trailing) poke() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// failed returns the error of a catch-up that failed, if one did.
func (t *trailing) failed() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// finish waits for the catch-up under way, stops following and brings the
// read models up to date with the whole log.
func (t *trailing) finish(ctx context.Context) error {
	t.end()
	if err := t.failed(); err != nil {
		return err
	}
	return t.catchUp(ctx)
}

// close stops following at once: a catch-up under way is cancelled.
func (t *trailing) close() {
	t.cancel()
	t.end()
}

// end lets the goroutine return once the catch-up under way is over, and
// waits for it.
func (t *trailing) end() {
	t.ended.Do(func() { close(t.wake) })
	<-t.done
}
