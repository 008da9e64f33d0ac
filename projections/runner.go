// Package projections builds the read models customers and agents see from
// the event log (DESIGN §5). Each projection owns its tables and a
// checkpoint, and applies each batch of events in the transaction that moves
// its checkpoint: exactly-once effect, restartable.
package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/eventstore"
)

// All returns every read model the engine keeps.
func All() []Projection {
	return AllKeeping(DefaultStatesKept)
}

// DefaultStatesKept is how many subscription states All's projections that
// fold them keep in memory each (Products.States, DueWork.States).
const DefaultStatesKept = 10_000

// AllKeeping is All with projections that keep up to states subscription
// states each in memory (none when zero): a process that moves many
// subscriptions on at once keeps as many as it moves.
func AllKeeping(states int) []Projection {
	products, due := Products{}, DueWork{}
	if states > 0 {
		products.States, due.States = NewSubscriptionStates(states), NewSubscriptionStates(states)
	}
	return []Projection{Accounts{}, EmailOutbox{}, Orders{}, products, due, Charges{}}
}

// Projection is one read model.
//
// The contract that makes a read model rebuildable (Rebuild, Compare,
// AUD-4): Apply writes only the tables Tables lists, names them without a
// schema (a rebuild points search_path at shadow copies of them), and
// derives every row from the events alone, so applying the whole log to
// empty tables yields exactly the rows the live runner built. Read models
// hold no sequence or identity column, whose values a replay would not
// reproduce. Columns something besides Apply writes are declared with
// Operational.
type Projection interface {
	// Name identifies the projection and its checkpoint; it never changes.
	Name() string
	// Tables lists the tables the projection owns, unqualified, in the
	// public schema: those Apply writes, and only those.
	Tables() []string
	// Apply applies one event inside tx. It must be deterministic and touch
	// only the projection's own tables; an error rolls the batch back and
	// the runner retries it.
	Apply(ctx context.Context, tx pgx.Tx, rec eventstore.RecordedEvent, e domain.Event) error
}

// RunnerConfig configures a Runner.
type RunnerConfig struct {
	// Store is the event log. Required.
	Store *eventstore.Store
	// Types decodes events for the projections. Required.
	Types *eventstore.EventTypes
	// Projections are the read models to build. Required.
	Projections []Projection
	// PollInterval is the subscriptions' polling floor. Default 500ms.
	PollInterval time.Duration
	// RetryDelay is how long a failed projection waits before it resumes
	// from its checkpoint. Default 1s.
	RetryDelay time.Duration
	// Logger receives failures. Default slog.Default().
	Logger *slog.Logger
	// Feed, when set, is handed each batch CatchUp applied, decoded, once
	// its transaction committed, so that another Runner applies it too
	// (Apply) without reading and decoding the log again. It is called on
	// CatchUp's goroutine, must not block, and must not change the batch.
	Feed func(Batch)
}

func (c *RunnerConfig) setDefaults() {
	if c.PollInterval == 0 {
		c.PollInterval = 500 * time.Millisecond
	}
	if c.RetryDelay == 0 {
		c.RetryDelay = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports a config the runner cannot run with.
func (c RunnerConfig) Validate() error {
	switch {
	case c.Store == nil:
		return errors.New("runner config: Store is required")
	case c.Types == nil:
		return errors.New("runner config: Types is required")
	case len(c.Projections) == 0:
		return errors.New("runner config: Projections is empty")
	}
	seen := map[string]bool{}
	for _, p := range c.Projections {
		if seen[p.Name()] {
			return fmt.Errorf("runner config: projection %s listed twice", p.Name())
		}
		seen[p.Name()] = true
	}
	return nil
}

// Runner keeps every projection up to date with the log.
type Runner struct {
	cfg RunnerConfig
}

// NewRunner returns a runner of cfg's projections.
func NewRunner(cfg RunnerConfig) (*Runner, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("projections: invalid config: %w", err)
	}
	return &Runner{cfg: cfg}, nil
}

// Run follows the log with every projection until ctx is done. A projection
// that fails is logged and resumed from its checkpoint after RetryDelay; the
// others go on meanwhile.
func (r *Runner) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, p := range r.cfg.Projections {
		wg.Go(func() { r.follow(ctx, p) })
	}
	wg.Wait()
}

func (r *Runner) follow(ctx context.Context, p Projection) {
	cfg := eventstore.SubscriptionConfig{Name: p.Name(), PollInterval: r.cfg.PollInterval, Logger: r.cfg.Logger}
	for ctx.Err() == nil {
		err := r.cfg.Store.Subscribe(ctx, cfg, r.handler(p))
		if ctx.Err() != nil {
			return
		}
		r.cfg.Logger.Error("projection failed; resuming from its checkpoint", "projection", p.Name(), "err", err, "retry_in", r.cfg.RetryDelay)
		select {
		case <-ctx.Done():
		case <-time.After(r.cfg.RetryDelay):
		}
	}
}

// log is the log the runner's projections read from.
func (r *Runner) log() eventLog { return eventLog{store: r.cfg.Store, types: r.cfg.Types} }

// handler applies a batch of events to p.
func (r *Runner) handler(p Projection) eventstore.Handler {
	return func(ctx context.Context, tx pgx.Tx, recs []eventstore.RecordedEvent) error {
		return applyAll(ctx, tx, p, r.log(), recs)
	}
}

// CatchUp brings every projection up to cp and returns: each batch is
// read and decoded once and applied to every projection in one transaction
// (eventstore Store.CatchUp). It is the alternative to Run for
// a process that decides itself when the read models must be up to date
// (workers/simulation, between its workers' runs), and so lets the events
// of a whole run accumulate into one batch. Each batch applied goes on to
// Feed.
func (r *Runner) CatchUp(ctx context.Context, cp eventstore.Checkpoint) error {
	decoding := &sharedDecoding{types: r.cfg.Types}
	subs := r.subscribers(decoding.decode)
	if feed := r.cfg.Feed; feed != nil {
		var fed eventstore.Checkpoint
		for i := range subs {
			subs[i].Applied = func(from eventstore.Checkpoint, recs []eventstore.RecordedEvent) {
				// The projections at one checkpoint are handed one batch:
				// it goes on once.
				if fed.Reached(eventstore.Of(recs[len(recs)-1])) {
					return
				}
				events, err := decoding.decode(recs) // decoded already: the batch's own
				if err != nil {
					return
				}
				fed = eventstore.Of(recs[len(recs)-1])
				feed(Batch{From: from, Recs: recs, Events: events})
			}
		}
	}
	return r.cfg.Store.CatchUp(ctx, cp, subs...)
}

// Batch is a stretch of the log as a Runner's CatchUp read and decoded it
// (RunnerConfig.Feed): the events after From, Events[i] being Recs[i]'s.
type Batch struct {
	From   eventstore.Checkpoint
	Recs   []eventstore.RecordedEvent
	Events []domain.Event
}

// eventsOf returns the events of recs when recs is a stretch of b.Recs
// (the same array's elements).
func (b Batch) eventsOf(recs []eventstore.RecordedEvent) ([]domain.Event, bool) {
	if len(recs) == 0 {
		return nil, false
	}
	i, found := slices.BinarySearchFunc(b.Recs, eventstore.Of(recs[0]), func(e eventstore.RecordedEvent, at eventstore.Checkpoint) int {
		switch of := eventstore.Of(e); {
		case of == at:
			return 0
		case at.Reached(of):
			return -1
		}
		return 1
	})
	if !found || i+len(recs) > len(b.Recs) || &b.Recs[i] != &recs[0] {
		return nil, false
	}
	return b.Events[i : i+len(recs)], true
}

// Apply brings every projection to the end of b, which another Runner
// read and decoded (RunnerConfig.Feed): a projection behind b reads the
// log up to it first; each then takes b's events after its checkpoint,
// those at one checkpoint together in one transaction; one at or past b's
// end is left as it is (eventstore Store.ApplyFrom).
func (r *Runner) Apply(ctx context.Context, b Batch) error {
	decoding := &sharedDecoding{types: r.cfg.Types}
	subs := r.subscribers(func(recs []eventstore.RecordedEvent) ([]domain.Event, error) {
		if events, ok := b.eventsOf(recs); ok {
			return events, nil
		}
		return decoding.decode(recs) // read from the log to reach b
	})
	return r.cfg.Store.ApplyFrom(ctx, b.From, b.Recs, subs...)
}

// subscribers are the runner's projections as subscriptions that apply
// the batches decode decodes.
func (r *Runner) subscribers(decode func([]eventstore.RecordedEvent) ([]domain.Event, error)) []eventstore.Subscriber {
	subs := make([]eventstore.Subscriber, len(r.cfg.Projections))
	for i, p := range r.cfg.Projections {
		subs[i] = eventstore.Subscriber{Config: eventstore.SubscriptionConfig{Name: p.Name(), Logger: r.cfg.Logger},
			Handler: func(ctx context.Context, tx pgx.Tx, recs []eventstore.RecordedEvent) error {
				events, err := decode(recs)
				if err != nil {
					return err
				}
				return applyDecoded(ctx, tx, p, r.log(), recs, events)
			}}
	}
	return subs
}

// WaitFor waits until every projection has applied the events up to cp, so
// that a read after a command shows the command's effect (read-your-writes),
// or until ctx is done (returning ctx's error).
func (r *Runner) WaitFor(ctx context.Context, cp eventstore.Checkpoint) error {
	for _, p := range r.cfg.Projections {
		if err := r.waitOne(ctx, p.Name(), cp); err != nil {
			return err
		}
	}
	return nil
}

func (r *Runner) waitOne(ctx context.Context, name string, cp eventstore.Checkpoint) error {
	delay := time.Millisecond
	for {
		at, err := r.cfg.Store.Checkpoint(ctx, name)
		if err != nil {
			return err
		}
		if at.Reached(cp) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("projections: %s has not reached position %d: %w", name, cp.Position, ctx.Err())
		case <-time.After(delay):
			delay = min(2*delay, 50*time.Millisecond)
		}
	}
}
