package simulation

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/eventstore"
	"github.com/subs-engine/subs/eventstore/pgtest"
	"github.com/subs-engine/subs/projections"
)

// happened is the tests' event.
type happened struct{}

func (happened) EventType() string { return "test.happened" }

// counting counts the events it is handed, and fails on the failOn-th.
type counting struct {
	seen   atomic.Int64
	failOn int64
}

var errCounting = errors.New("counting: refused")

func (*counting) Name() string     { return "counting" }
func (*counting) Tables() []string { return nil }
func (c *counting) Apply(context.Context, pgx.Tx, eventstore.RecordedEvent, domain.Event) error {
	if c.seen.Add(1) == c.failOn {
		return errCounting
	}
	return nil
}

// appendEvents appends n events of a stream of their own.
func appendEvents(t *testing.T, store *eventstore.Store, stream string, n int) {
	t.Helper()
	data := make([]eventstore.EventData, n)
	for i := range data {
		data[i] = eventstore.EventData{Type: happened{}.EventType(), Data: []byte(`{}`)}
	}
	if _, err := store.Append(context.Background(), eventstore.StreamID(stream), eventstore.NoStream, data,
		eventstore.AppendOptions{RecordedAt: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
			Metadata: eventstore.Metadata{ActorKind: eventstore.ActorSystem, ActorID: "test"}}); err != nil {
		t.Fatal(err)
	}
}

// waitFor waits up to 10 s for done to hold.
func waitFor(t *testing.T, done func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !done(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}

// newTrailingCatchUp starts a trailing runner of p on a database of its own,
// closed when the test ends.
func newTrailingCatchUp(t *testing.T, p projections.Projection) (*eventstore.Store, *sideJob) {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	store := eventstore.New(pool, eventstore.Config{})
	types := eventstore.NewEventTypes()
	types.Register(1, happened{})
	runner, err := projections.NewRunner(projections.RunnerConfig{Store: store, Types: types, Projections: []projections.Projection{p}})
	if err != nil {
		t.Fatal(err)
	}
	trail := newSideJob(catchUpToHead(store, runner))
	trail.start(context.Background())
	t.Cleanup(trail.close)
	return store, trail
}

// The read models that trail behind have every event once finish returns,
// however many catch-ups were asked for meanwhile.
func TestSideJob_CatchUpFinishHasEveryEvent(t *testing.T) {
	t.Parallel()
	p := &counting{}
	store, trail := newTrailingCatchUp(t, p)
	for i := range 20 {
		appendEvents(t, store, "test-"+string(rune('a'+i)), 3)
		trail.poke()
	}
	waitFor(t, func() bool { return p.seen.Load() == 60 })
	appendEvents(t, store, "test-last", 5) // after the last catch-up asked for
	if err := trail.finish(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := p.seen.Load(); got != 65 {
		t.Errorf("the trailing read model was handed %d events, want 65", got)
	}
}

// A catch-up that fails on the side is reported: by failed during the
// year, and by finish.
func TestSideJob_AFailedCatchUpIsReported(t *testing.T) {
	t.Parallel()
	p := &counting{failOn: 2}
	store, trail := newTrailingCatchUp(t, p)
	appendEvents(t, store, "test-a", 3)
	trail.poke()
	waitFor(t, func() bool { return trail.failed() != nil })
	if err := trail.failed(); !errors.Is(err, errCounting) {
		t.Fatalf("failed() = %v, want the projection's error", err)
	}
	if err := trail.finish(context.Background()); !errors.Is(err, errCounting) {
		t.Errorf("finish() = %v, want the projection's error", err)
	}
}

// A poke after finish (the year's last catch-up, once the outbox has sent
// its last e-mails) is not heard, and does not fail.
func TestSideJob_APokeAfterFinishIsIgnored(t *testing.T) {
	t.Parallel()
	runs := 0
	job := newSideJob(func(context.Context) error { runs++; return nil })
	job.start(context.Background())
	if err := job.finish(context.Background()); err != nil {
		t.Fatal(err)
	}
	job.poke()
	job.close()
	if runs != 1 {
		t.Errorf("the job ran %d times, want once (finish's run)", runs)
	}
}
