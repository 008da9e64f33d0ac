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

// newProbe creates the probe's table in w and returns a probe failing at
// the failAt-th event it applies (none for 0).
func newProbe(t *testing.T, w *world, failAt int) *probe {
	t.Helper()
	if _, err := w.store.Pool().Exec(context.Background(), `CREATE TABLE probe (position bigint PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	return &probe{failAt: failAt}
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
	p := newProbe(t, w, 5)
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
	mustShowProductsAsRebuilt(t, w, 60)
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
	a, b := keepingRunner(t, w), keepingRunner(t, w)
	streams := subscriptionStreams(t, w, 12)
	for _, step := range []struct {
		days   int
		runner *projections.Runner
	}{{0, a}, {3, b}, {5, a}, {-2, a}} { // a keeps the states; b moves the rows on; a again
		if step.days != 0 {
			adjustDays(t, w, streams, step.days)
		}
		if step.runner == b {
			// An event whose effect the next ones keep: a's states, had it
			// folded its events on them, would still renew (an adjustment
			// carries the expiry it sets, whatever came before).
			if turnedOff := autoRenewalOff(t, w, streams); turnedOff == 0 {
				t.Fatal("no subscription renews automatically: the test needs one that does")
			}
		}
		if err := step.runner.CatchUp(ctx, w.head(t)); err != nil {
			t.Fatal(err)
		}
	}
	w.mustEqualRebuild(t)
}

// autoRenewalOff turns automatic renewal off, as their owners, on the
// streams' subscriptions that have it on, and returns how many.
func autoRenewalOff(t *testing.T, w *world, streams []eventstore.StreamID) int {
	t.Helper()
	n := 0
	for _, stream := range streams {
		st, _, err := w.subs.Load(context.Background(), stream)
		if err != nil {
			t.Fatal(err)
		}
		if !st.AutoRenew() {
			continue
		}
		owner := eventstore.CommandMeta{Metadata: eventstore.Metadata{ActorKind: eventstore.ActorCustomer, ActorID: st.Owner().String()}}
		if _, err := w.subs.Handle(context.Background(), stream, subscription.SetAutoRenewal{AccountID: st.Owner()}, owner); err != nil {
			t.Fatal(err)
		}
		n++
	}
	return n
}

// A batch that fails after creating rows has already kept their states in
// memory (states are kept as the batch folds them): the next batch finds
// no row for them and starts them afresh, not from the states kept, and
// every read model still equals its rebuild. The probe fails at the log's
// last event, so the failed batch holds every row's creation when the log
// comes in one batch, as it does unless another test's transaction in
// flight holds the later events back.
func TestSubscriptionStates_KeptForRowsOfAFailedBatchAreNotUsed(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	w.customers(t, ctx, 0, 6, 2)
	r := failedAtTheLastEvent(t, w)
	if err := r.CatchUp(ctx, w.head(t)); err != nil {
		t.Fatal(err)
	}
	mustShowProductsAsRebuilt(t, w, 6)
}

// A batch that kept its states and then failed (the probe after it in its
// transaction) may be committed by another process meanwhile; the states
// kept are then the rows' as that process wrote them, and the next batch,
// which follows it, uses them without reading the rows: every read model
// still equals its rebuild after the subscriptions move on.
func TestSubscriptionStates_KeptByAFailedBatchThatAnotherProcessCommitted(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	w.customers(t, ctx, 0, 6, 2)
	failed := failedAtTheLastEvent(t, w)
	if err := keepingRunner(t, w).CatchUp(ctx, w.head(t)); err != nil { // the other process
		t.Fatal(err)
	}
	adjustDays(t, w, subscriptionStreams(t, w, 6), 4)
	if err := failed.CatchUp(ctx, w.head(t)); err != nil {
		t.Fatal(err)
	}
	w.mustEqualRebuild(t)
}

// A batch that fails in the read model itself, before it keeps the states
// its events lead to (here due work's query of the rows it does not keep,
// a new customer's, finds no table), leaves its rows' states as they were
// before the batch; when another process then commits that very batch,
// the next batch, which follows it, must not use them (it did without
// SubscriptionStates.end's mark, and due work's snapshots still had
// renewal on).
func TestSubscriptionStates_NotUsedAfterTheirReadModelFailed(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	w.customers(t, ctx, 0, 6, 2)
	failing := keepingRunner(t, w)
	if err := failing.CatchUp(ctx, w.head(t)); err != nil {
		t.Fatal(err)
	}
	streams := subscriptionStreams(t, w, 6)
	if autoRenewalOff(t, w, streams) == 0 {
		t.Fatal("no subscription renews automatically: the test needs one that does")
	}
	w.customers(t, ctx, 6, 1, 1)
	renameDueWork := func(from, to string) {
		t.Helper()
		if _, err := w.store.Pool().Exec(ctx, `ALTER TABLE `+from+` RENAME TO `+to); err != nil {
			t.Fatal(err)
		}
	}
	renameDueWork("due_work", "due_work_away")
	if err := failing.CatchUp(ctx, w.head(t)); err == nil {
		t.Fatal("the catch-up succeeded without the due_work table")
	}
	renameDueWork("due_work_away", "due_work")
	if err := keepingRunner(t, w).CatchUp(ctx, w.head(t)); err != nil { // the other process
		t.Fatal(err)
	}
	// Enough events that each row takes a snapshot of its state (every 16
	// versions), which shows whether renewal is on.
	for range 8 {
		adjustDays(t, w, streams, 1)
	}
	if err := failing.CatchUp(ctx, w.head(t)); err != nil {
		t.Fatal(err)
	}
	w.mustEqualRebuild(t)
}

// failedAtTheLastEvent returns a runner of every read model, keeping
// states, whose catch-up of w's log has failed at its last event (after
// every row is created) in a probe applied after the read models; its next
// catch-up does not fail.
func failedAtTheLastEvent(t *testing.T, w *world) *projections.Runner {
	t.Helper()
	ctx := context.Background()
	var events int
	if err := w.store.Pool().QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&events); err != nil {
		t.Fatal(err)
	}
	p := newProbe(t, w, events)
	r, err := projections.NewRunner(projections.RunnerConfig{Store: w.store, Types: w.types,
		Projections: append(projections.AllKeeping(100), p)})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.CatchUp(ctx, w.head(t)); err == nil {
		t.Fatal("the catch-up succeeded; want the probe's duplicate key at the last event")
	}
	p.failAt = 0 // no more failures
	return r
}

// A row's state is written only at the versions where its stream crosses a
// multiple of 16 (and at the row's first): a process that does not keep
// the state reads the snapshot and folds the events after it from the log.
// Batched one way or another, the rows are those of a rebuild.
func TestSubscriptionStates_SnapshotEvery16VersionsAndTheRestFromTheLog(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	w.customers(t, ctx, 0, 3, 1)
	streams := subscriptionStreams(t, w, 3)
	a := keepingRunner(t, w)
	for i := range 42 { // a catches up after 1, 2, 3, … adjustments
		adjustDays(t, w, streams, 1+i%3)
		if i%(1+i/8) == 0 {
			if err := a.CatchUp(ctx, w.head(t)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := a.CatchUp(ctx, w.head(t)); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"products_view", "due_work"} {
		rows, err := w.store.Pool().Query(ctx, `SELECT version, state_version FROM `+table)
		if err != nil {
			t.Fatal(err)
		}
		got := mustCollect(t, rows)
		if len(got) != 3 {
			t.Fatalf("%s: %d rows, want 3", table, len(got))
		}
		for _, r := range got {
			version, at := r[0], r[1]
			if version < 32 || at != version/16*16 {
				t.Errorf("%s: row at version %d has its state at %d, want %d", table, version, at, version/16*16)
			}
		}
	}
	// A process that keeps nothing yet reads each row's snapshot (at 48)
	// and folds the events after it from the log, each of which moves the
	// expiry.
	adjustDays(t, w, streams, 7)
	if err := keepingRunner(t, w).CatchUp(ctx, w.head(t)); err != nil {
		t.Fatal(err)
	}
	w.mustEqualRebuild(t)
}

// mustShowProductsAsRebuilt fails the test unless the products view holds
// products rows after the catch-up and every read model equals its rebuild.
func mustShowProductsAsRebuilt(t *testing.T, w *world, products int) {
	t.Helper()
	if got := count(t, w, "products_view"); got != products {
		t.Fatalf("%d products after the catch-up, want %d", got, products)
	}
	w.mustEqualRebuild(t)
}

func keepingRunner(t *testing.T, w *world) *projections.Runner {
	t.Helper()
	r, err := projections.NewRunner(projections.RunnerConfig{Store: w.store, Types: w.types, Projections: projections.AllKeeping(100)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// subscriptionStreams returns the world's subscription streams, of which
// there must be n.
func subscriptionStreams(t *testing.T, w *world, n int) []eventstore.StreamID {
	t.Helper()
	rows, err := w.store.Pool().Query(context.Background(), `SELECT DISTINCT stream_id FROM events WHERE stream_id LIKE 'subscription-%'`)
	if err != nil {
		t.Fatal(err)
	}
	streams, err := pgx.CollectRows(rows, pgx.RowTo[eventstore.StreamID])
	if err != nil || len(streams) != n {
		t.Fatalf("%d subscriptions (%v), want %d", len(streams), err, n)
	}
	return streams
}

// adjustDays has an agent move each stream's expiry by days: one event each.
func adjustDays(t *testing.T, w *world, streams []eventstore.StreamID, days int) {
	t.Helper()
	agent := eventstore.CommandMeta{Metadata: eventstore.Metadata{ActorKind: eventstore.ActorAgent, ActorID: "ava", Reason: "test",
		LogCode: agentlog.AdjustDays}}
	for _, stream := range streams {
		if _, err := w.subs.Handle(context.Background(), stream, subscription.AdjustDays{Days: days}, agent); err != nil {
			t.Fatal(err)
		}
	}
}

func mustCollect(t *testing.T, rows pgx.Rows) [][2]int64 {
	t.Helper()
	var out [][2]int64
	var a, b int64
	if _, err := pgx.ForEachRow(rows, []any{&a, &b}, func() error {
		out = append(out, [2]int64{a, b})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// A runner fed the batches another runner's catch-up read and decoded
// (Feed, Apply) builds its read models as a rebuild of the log does, even
// when some batches never reach it: it reads those from the log.
func TestRunner_FedByAnotherCatchUp_EqualsRebuild_EvenWithBatchesLost(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	var workers, others []projections.Projection
	for _, p := range projections.AllKeeping(100) {
		switch p.(type) {
		case projections.DueWork, projections.Accounts:
			workers = append(workers, p)
		default:
			others = append(others, p)
		}
	}
	var fed []projections.Batch
	first, err := projections.NewRunner(projections.RunnerConfig{Store: w.store, Types: w.types, Projections: workers,
		Feed: func(b projections.Batch) { fed = append(fed, b) }})
	if err != nil {
		t.Fatal(err)
	}
	second, err := projections.NewRunner(projections.RunnerConfig{Store: w.store, Types: w.types, Projections: others})
	if err != nil {
		t.Fatal(err)
	}
	for round := range 5 {
		w.customers(t, ctx, round*12, 12, 4)
		if err := first.CatchUp(ctx, w.head(t)); err != nil {
			t.Fatal(err)
		}
	}
	if len(fed) < 5 {
		t.Fatalf("%d batches fed after 5 catch-ups, want one at least each", len(fed))
	}
	for i, b := range fed {
		if i%2 == 1 || i == len(fed)-1 { // the others lost on the way
			if err := second.Apply(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := count(t, w, "products_view"); got != 60 {
		t.Fatalf("%d products after the batches fed, want 60", got)
	}
	w.mustEqualRebuild(t)
}
