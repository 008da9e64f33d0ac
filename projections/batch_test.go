package projections_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/domain/agentlog"
	"github.com/subs-engine/subs/domain/subscription"
	"github.com/subs-engine/subs/eventstore"
	"github.com/subs-engine/subs/projections"
)

// probe writes one row per event, keyed by its position, except that its
// failAt-th event repeats the key of the event before it.
type probe struct {
	applied int
	failAt  int
	failed  eventstore.RecordedEvent
	last    int64
}

func (*probe) Name() string     { return "probe" }
func (*probe) Tables() []string { return []string{"probe"} }
func (p *probe) Apply(ctx context.Context, tx pgx.Tx, rec eventstore.RecordedEvent, _ domain.Event) error {
	p.applied++
	key := rec.Position
	if p.applied == p.failAt {
		key, p.failed = p.last, rec
	}
	p.last = rec.Position
	_, err := tx.Exec(ctx, `INSERT INTO probe (position) VALUES ($1)`, key)
	return err
}

// A projection's statements are sent together at the end of the batch;
// one that fails names the event whose Apply wrote it, and the batch is
// applied not at all: the rows kept are exactly those of the events up to
// the checkpoint, which stops short of the failed event. (The log may come
// in more than one batch: a transaction in flight anywhere in the cluster,
// another package's test, holds the later events back.)
func TestApply_AFailingStatementNamesItsEvent_AndTheBatchIsNotApplied(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	w.customers(t, ctx, 0, 2, 1)
	if _, err := w.store.Pool().Exec(ctx, `CREATE TABLE probe (position bigint PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	p := &probe{failAt: 5}
	r, err := projections.NewRunner(projections.RunnerConfig{Store: w.store, Types: w.types, Projections: []projections.Projection{p}})
	if err != nil {
		t.Fatal(err)
	}
	err = r.CatchUp(ctx, w.head(t))
	if err == nil || !strings.Contains(err.Error(), p.failed.ID.String()) || !strings.Contains(err.Error(), "duplicate key") {
		t.Fatalf("catch-up: %v; want the duplicate key of event %s (the 5th)", err, p.failed.ID)
	}
	cp, err := w.store.Checkpoint(ctx, p.Name())
	if err != nil {
		t.Fatal(err)
	}
	if cp.Reached(eventstore.Of(p.failed)) {
		t.Errorf("checkpoint %+v after the failed batch, which holds event %d", cp, p.failed.Position)
	}
	var kept, upTo []int64
	if err := w.store.Pool().QueryRow(ctx, `SELECT
    coalesce((SELECT array_agg(position ORDER BY position) FROM probe), '{}'),
    coalesce((SELECT array_agg(global_position ORDER BY global_position) FROM events
        WHERE (transaction_id, global_position) <= ($1::xid8, $2)), '{}')`, cp.TransactionID, cp.Position).Scan(&kept, &upTo); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(kept, upTo) {
		t.Errorf("rows kept for events %v, want those up to the checkpoint %+v: %v", kept, cp, upTo)
	}
}

// A catch-up hands each batch, decoded once, to every projection in one
// transaction, and leaves every read model as a rebuild of the log does.
func TestRunner_CatchUpEqualsRebuild(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	w.customers(t, ctx, 0, 60, 4)
	r, err := projections.NewRunner(projections.RunnerConfig{Store: w.store, Types: w.types, Projections: projections.All()})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.CatchUp(ctx, w.head(t)); err != nil {
		t.Fatal(err)
	}
	if got := count(t, w, "products_view"); got != 60 {
		t.Fatalf("%d products after the catch-up, want 60", got)
	}
	w.mustEqualRebuild(t)
}

// The subscription states Products and DueWork keep in memory stand in for
// a row's only while the row is at the version kept: when another process
// moved the rows on meanwhile, the next batch reads them from the table,
// and every read model still equals its rebuild.
func TestSubscriptionStates_KeptOnlyWhileTheRowIsAtTheirVersion(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	w.customers(t, ctx, 0, 12, 4)
	process := func() *projections.Runner {
		r, err := projections.NewRunner(projections.RunnerConfig{Store: w.store, Types: w.types, Projections: projections.AllKeeping(100)})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a, b := process(), process()
	rows, err := w.store.Pool().Query(ctx, `SELECT DISTINCT stream_id FROM events WHERE stream_id LIKE 'subscription-%'`)
	if err != nil {
		t.Fatal(err)
	}
	streams, err := pgx.CollectRows(rows, pgx.RowTo[eventstore.StreamID])
	if err != nil || len(streams) != 12 {
		t.Fatalf("%d subscriptions (%v), want 12", len(streams), err)
	}
	adjust := func(days int) {
		t.Helper()
		agent := eventstore.CommandMeta{Metadata: eventstore.Metadata{ActorKind: eventstore.ActorAgent, ActorID: "ava", Reason: "test",
			LogCode: agentlog.AdjustDays}}
		for _, stream := range streams {
			if _, err := w.subs.Handle(ctx, stream, subscription.AdjustDays{Days: days}, agent); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, step := range []struct {
		days   int
		runner *projections.Runner
	}{{0, a}, {3, b}, {5, a}, {-2, a}} { // a keeps the states; b moves the rows on; a again
		if step.days != 0 {
			adjust(step.days)
		}
		if err := step.runner.CatchUp(ctx, w.head(t)); err != nil {
			t.Fatal(err)
		}
	}
	w.mustEqualRebuild(t)
}
