package projections_test

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/eventstore"
	"github.com/subs-engine/subs/projections"
)

var errInjected = errors.New("injected failure")

// chaos wraps a projection: at its killAt-th event it kills the whole
// runner (cancels its context) in the middle of the batch, and at its
// failAt-th event it fails once, which rolls back the batch half applied.
type chaos struct {
	projections.Projection
	applied        atomic.Int64
	killAt, failAt int64
	kill           context.CancelFunc
	killed, failed *atomic.Int64
	failedOnce     atomic.Bool
}

func (c *chaos) Apply(ctx context.Context, tx pgx.Tx, rec eventstore.RecordedEvent, e domain.Event) error {
	n := c.applied.Add(1)
	if n == c.failAt && c.failedOnce.CompareAndSwap(false, true) {
		c.failed.Add(1)
		return errInjected
	}
	if n == c.killAt {
		c.killed.Add(1)
		c.kill()
	}
	return c.Projection.Apply(ctx, tx, rec, e)
}

// issue 5: killing the projection runner mid-batch and restarting it
// leaves every read model equal to a full rebuild, row by row. The chaos
// wrapper is no BatchApplier, so the live models are applied one event at
// a time while the rebuild applies whole batches: their equality also
// shows that the two ways agree.
func TestRunner_KilledMidBatchAndRestartedEqualsRebuild(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	const seeded, arriving = 250, 150 // customers, eventsPerCustomer events each
	w.customers(t, ctx, 0, seeded, 8)
	more := make(chan error, 1)
	go func() { more <- w.play(ctx, seeded, arriving, 2) }()

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 5))
	t.Logf("seeded %d events; %d more arrive while the runner is killed and restarted", seeded*eventsPerCustomer, arriving*eventsPerCustomer)
	var killed, failed atomic.Int64
	for cycle := 0; cycle < 8; cycle++ {
		statuses, err := projections.Statuses(ctx, w.store, projections.All())
		if err != nil {
			t.Fatal(err)
		}
		runCtx, kill := context.WithCancel(ctx)
		var ps []projections.Projection
		var lagging bool
		for i, p := range projections.All() {
			c := &chaos{Projection: p, kill: kill, killed: &killed, failed: &failed}
			if lag := statuses[i].Lag; lag > 0 {
				lagging = true
				// Within what the projection still has to apply, so the
				// kill comes; the runner's batches are of 500 events.
				c.killAt = 1 + rng.Int64N(lag)
				if cycle%2 == 0 && c.killAt > 1 {
					c.failAt = 1 + rng.Int64N(c.killAt-1)
				}
			}
			ps = append(ps, c)
		}
		if !lagging {
			kill()
			break
		}
		r, err := projections.NewRunner(projections.RunnerConfig{Store: w.store, Types: w.types, Projections: ps,
			PollInterval: 10 * time.Millisecond, RetryDelay: time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		r.Run(runCtx) // returns once a projection killed it
		kill()
	}
	if err := <-more; err != nil {
		t.Fatal(err)
	}
	if killed.Load() < 3 || failed.Load() < 1 {
		t.Fatalf("%d kills and %d injected failures: the test did not exercise them", killed.Load(), failed.Load())
	}
	t.Logf("%d kills, %d injected failures", killed.Load(), failed.Load())

	w.catchUp(t)
	if got, want := count(t, w, "accounts"), seeded+arriving; got != want {
		t.Fatalf("%d accounts, want %d", got, want)
	}
	if got, want := count(t, w, "products_view"), seeded+arriving; got != want {
		t.Fatalf("%d products, want %d", got, want)
	}
	w.mustEqualRebuild(t)
}
