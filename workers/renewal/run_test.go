package renewal_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/subs-engine/subs/domain/catalog"
	"github.com/subs-engine/subs/domain/policy"
	"github.com/subs-engine/subs/domain/subscription"
	"github.com/subs-engine/subs/eventstore"
	"github.com/subs-engine/subs/workers/renewal"
)

// A run claims batch after batch until every subscription due is visited
// once, then stops after a claim short of a full batch, whether the last
// batch is full or not (rule ARS-2: each gets its pre-billing notice).
func TestRun_VisitsEveryDueSubscriptionBatchAfterBatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		due  int
	}{{"two full batches of two", 4}, {"two full batches and one short", 5}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			token := w.card(t, "4242424242424242")
			var ids []uuid.UUID
			for range tc.due {
				ids = append(ids, w.subscribe(t, "NS-STD", catalog.Annual, token))
			}
			w.settle(t)
			if err := w.clock.Advance(340 * 24 * time.Hour); err != nil { // into the 30 days before the renewal
				t.Fatal(err)
			}
			res, err := w.workerBatching(t, w.gateway, 2).Run(context.Background(), w.clock.Now())
			if err != nil || res.Visited != tc.due || res.Failed != 0 {
				t.Fatalf("run: %+v, %v; want %d visited, none failed", res, err, tc.due)
			}
			for _, id := range ids {
				if types := w.eventTypes(t, id); !slices.Contains(types, "subscription.renewal_notice_issued") {
					t.Errorf("subscription %s was not given its notice: %v", id, types)
				}
			}
		})
	}
}

// rule TIM-2: work a command makes due at the very instant a run visited
// (renewal turned off after the notice, which calls for the reminder at
// once, ARS-3) is due at that instant still: the test clock's advance from
// it runs it first (DueNow), instead of waiting for a later run.
func TestRule_TIM2_WorkMadeDueAtAVisitedInstantIsDueNow(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	id := w.subscribe(t, "NS-STD", catalog.Annual, w.card(t, "4242424242424242"))
	w.settle(t)
	if err := w.clock.Advance(340 * 24 * time.Hour); err != nil { // 25 days before the renewal: the notice is due
		t.Fatal(err)
	}
	now := w.clock.Now()
	if res, err := w.worker(t, w.gateway).Run(context.Background(), now); err != nil || res.Visited != 1 {
		t.Fatalf("run: %+v, %v", res, err)
	}
	w.settle(t)
	if due, err := renewal.DueNow(context.Background(), w.store.Pool(), now); err != nil || due {
		t.Fatalf("due now after the run: %v, %v; want nothing left", due, err)
	}
	if _, err := w.subs.Handle(context.Background(), eventstore.StreamID(subscription.StreamName(id)), subscription.SetAutoRenewal{On: false},
		eventstore.CommandMeta{Metadata: eventstore.Metadata{ActorKind: eventstore.ActorSystem, ActorID: "test"}}); err != nil {
		t.Fatal(err)
	}
	w.settle(t)
	if due, err := renewal.DueNow(context.Background(), w.store.Pool(), now); err != nil || !due {
		t.Fatalf("due now after renewal was turned off at the run's instant: %v, %v; want the 30-day reminder due", due, err)
	}
	if res, err := w.worker(t, w.gateway).Run(context.Background(), now); err != nil || res.Visited != 1 {
		t.Fatalf("a second run at the same instant: %+v, %v; want the reminder's visit", res, err)
	}
	if types := w.eventTypes(t, id); !slices.Contains(types, "subscription.renewal_reminder_issued") {
		t.Errorf("no reminder: %v", types)
	}
}

// rule ARS-8: a subscription that cannot be read (its account's stored
// payment method does not decode) fails its visit alone: the others claimed
// with it are given their notices, run after run.
func TestRule_ARS8_AnUnreadableSubscriptionDoesNotHoldItsBatchBack(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	token := w.card(t, "4242424242424242")
	var ids []uuid.UUID
	for range 3 {
		ids = append(ids, w.subscribe(t, "NS-STD", catalog.Annual, token))
	}
	bad, account := ids[1], uuid.New()
	if _, err := w.subs.Handle(context.Background(), eventstore.StreamID(subscription.StreamName(bad)), subscription.Register{AccountID: account},
		eventstore.CommandMeta{Metadata: eventstore.Metadata{ActorKind: eventstore.ActorSystem, ActorID: "test"}}); err != nil {
		t.Fatal(err)
	}
	w.settle(t)
	if _, err := w.store.Pool().Exec(context.Background(), `INSERT INTO accounts (account_id, email, name, country, language, billing_method,
    registered_at, updated_at) VALUES ($1, 'ann@example.com', 'Ann', 'US', 'en', '{"kind":"card","from_a_later_version":true}', now(), now())`,
		account); err != nil {
		t.Fatal(err)
	}
	if err := w.clock.Advance(340 * 24 * time.Hour); err != nil {
		t.Fatal(err)
	}
	res, err := w.worker(t, w.gateway).Run(context.Background(), w.clock.Now())
	if err != nil || res.Visited != 3 || res.Failed != 1 {
		t.Fatalf("run: %+v, %v; want 3 visited, the unreadable one failed", res, err)
	}
	for _, id := range []uuid.UUID{ids[0], ids[2]} {
		if types := w.eventTypes(t, id); !slices.Contains(types, "subscription.renewal_notice_issued") {
			t.Errorf("subscription %s was not given its notice: %v", id, types)
		}
	}
}

// rule TIM-2: a run says where it left the subscriptions it moved on due
// next (the notice given, the charge at the renewal), which the due-work
// schedule learns only once it has the run's events: a caller that
// brings the schedule up to date later still stops there.
func TestRule_TIM2_ARunSaysWhenWhatItMovedOnIsDueNext(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	id := w.subscribe(t, "NS-STD", catalog.Annual, w.card(t, "4242424242424242"))
	untouched := w.subscribe(t, "NS-STD", catalog.Annual, w.card(t, "4242424242424242"))
	w.settle(t)
	if err := w.clock.Advance(340 * 24 * time.Hour); err != nil { // the notices are due
		t.Fatal(err)
	}
	// Only the first is visited: it is the one the run moves on.
	ctx := context.Background()
	if _, err := w.store.Pool().Exec(ctx, `UPDATE due_work SET due_at = due_at + interval '20 days' WHERE subscription_id = $1`, untouched); err != nil {
		t.Fatal(err)
	}
	res, err := w.worker(t, w.gateway).Run(ctx, w.clock.Now())
	if err != nil || res.Visited != 1 || res.Last == (eventstore.Checkpoint{}) {
		t.Fatalf("run: %+v, %v; want one visit that appended", res, err)
	}
	want, ok := w.load(t, id).NextDue(policy.Default())
	if !ok || !want.After(w.clock.Now()) {
		t.Fatalf("after the notice the subscription is due at %v (%v), want an instant after the run's", want, ok)
	}
	if !res.NextDue.Equal(want) {
		t.Errorf("the run says the next due instant is %v, want %v: the charge its state calls for", res.NextDue, want)
	}
	nothing, err := w.worker(t, w.gateway).Run(ctx, w.clock.Now())
	if err != nil || !nothing.NextDue.IsZero() {
		t.Errorf("a run that moved nothing on: %+v, %v; want no next due instant", nothing, err)
	}
}
