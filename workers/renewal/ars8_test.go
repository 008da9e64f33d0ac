package renewal_test

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/subs-engine/subs/domain/catalog"
	"github.com/subs-engine/subs/domain/payment"
	"github.com/subs-engine/subs/domain/policy"
	"github.com/subs-engine/subs/domain/subscription"
	"github.com/subs-engine/subs/eventstore"
	"github.com/subs-engine/subs/workers/gateway"
	"github.com/subs-engine/subs/workers/ledger"
	"github.com/subs-engine/subs/workers/renewal"
)

// rule ARS-8: three workers, each on its own connections, race over the
// same due subscriptions for half a year while the gateway fails, loses
// its answers after charging, and workers are cancelled mid-run. Then
// every (subscription, period) that came due has exactly one successful
// charge, in order, none skipped, and the engine's ledger equals the
// gateway's.
func TestRule_ARS8_ThreeWorkersUnderFaultsChargeEachPeriodExactlyOnce(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	token := w.card(t, "4242424242424242")
	var ids []uuid.UUID
	for i := range 24 {
		term := catalog.Monthly
		if i%4 == 0 {
			term = catalog.Trial // billed for a year at its end (TRI-4)
		}
		ids = append(ids, w.subscribe(t, "NS-STD", term, token))
		w.clock.Advance(29 * time.Hour) // staggered starts, from January 31 on
	}
	w.settle(t)

	var workers []*renewal.Worker
	for i := range 3 {
		faulty, err := gateway.NewSandbox(ctx, w.pool(t), gateway.SandboxConfig{Clock: w.clock, FailureRate: 0.2,
			LostResponseRate: 0.25, Seed: int64(i + 1)})
		if err != nil {
			t.Fatal(err)
		}
		workers = append(workers, w.worker(t, faulty))
	}
	rnd := rand.New(rand.NewPCG(8, 8))
	end := start.AddDate(0, 6, 0)
	for now := w.clock.Now(); now.Before(end); now = now.Add(6 * time.Hour) {
		if err := w.clock.Set(now); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for _, wk := range workers {
			runCtx, cancel := context.WithCancel(ctx)
			if rnd.IntN(4) == 0 { // cancelled mid-run, maybe between a charge and its record
				time.AfterFunc(time.Duration(rnd.IntN(3000))*time.Microsecond, cancel)
			}
			wg.Go(func() {
				defer cancel()
				if _, err := wk.Run(runCtx, now); err != nil && runCtx.Err() == nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		w.settle(t)
	}
	// The faults stop: one clean run finishes what the last ones left
	// pending, as the next tick would.
	if _, err := w.worker(t, w.gateway).Run(ctx, w.clock.Now()); err != nil {
		t.Fatal(err)
	}
	w.settle(t)

	// Every (subscription, period) has exactly one successful charge, none
	// skipped, and the engine's ledger equals the gateway's.
	report, err := ledger.Reconcile(ctx, w.store.Pool(), w.gateway)
	if err != nil {
		t.Fatal(err)
	}
	if !report.Clean() {
		var out strings.Builder
		_ = report.Write(&out)
		t.Errorf("the engine's ledger does not reconcile with the gateway's:\n%s", out.String())
	}
	p := policy.Default()
	for _, id := range ids {
		s := w.load(t, id)
		if !s.ExpiresAt().After(w.clock.Now()) {
			t.Errorf("subscription %s expires %s, before the end of the run %s: a due period was skipped (events %v)",
				id, s.ExpiresAt(), w.clock.Now(), w.eventTypes(t, id))
		}
		if st := s.Status(w.clock.Now(), p); st != subscription.StatusActive {
			t.Errorf("subscription %s is %s at the end, want active", id, st)
		}
		if _, pending := s.PendingCharge(); pending {
			t.Errorf("subscription %s still has a charge pending", id)
		}
	}
	charged := report.EngineSucceeded
	if report.Subscriptions != len(ids) || report.GatewaySucceeded != charged || charged < len(ids) {
		t.Errorf("ledgers of %d subscriptions with %d (engine) and %d (gateway) successful charges, want all %d subscriptions charged at least once, as many on both sides",
			report.Subscriptions, charged, report.GatewaySucceeded, len(ids))
	}
	t.Logf("%d subscriptions, %d periods charged once each under faults", len(ids), charged)
}

// rule ARS-8: a worker that decided a step on a subscription another
// worker moved on meanwhile takes the step once: worker B makes and records
// the charge while worker A is at the gateway with the same pending charge;
// A's record then conflicts, is decided again on the stream as B left it,
// and finds the outcome recorded. The steps' command ids are in their
// events' metadata (AUD-1), and the commands table keeps no row per step.
func TestRule_ARS8_AStepTakenMeanwhileIsTakenOnce(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	id := w.subscribe(t, "NS-STD", catalog.Annual, w.card(t, "4242424242424242"))
	w.settle(t)
	if err := w.clock.Advance(340 * 24 * time.Hour); err != nil { // the notice
		t.Fatal(err)
	}
	if res, err := w.worker(t, w.gateway).Run(ctx, w.clock.Now()); err != nil || res.Failed != 0 {
		t.Fatalf("notice run: %+v, %v", res, err)
	}
	w.settle(t)
	if err := w.clock.Advance(20 * 24 * time.Hour); err != nil { // past the charge's day
		t.Fatal(err)
	}
	other := w.worker(t, w.gateway)
	racing := &settledMeanwhile{Gateway: w.gateway, settle: func(ctx context.Context) error {
		_, err := other.Settle(ctx, id)
		return err
	}}
	if res, err := w.worker(t, racing).Run(ctx, w.clock.Now()); err != nil || res.Visited != 1 || res.Failed != 0 {
		t.Fatalf("run: %+v, %v; want the subscription visited, none failed", res, err)
	}
	if racing.charges == 0 {
		t.Fatal("worker A made no charge: the race did not happen")
	}

	var succeeded []eventstore.RecordedEvent
	for _, r := range w.records(t, id) {
		if r.Type == "subscription.charge_succeeded" {
			succeeded = append(succeeded, r)
		}
	}
	if len(succeeded) != 1 {
		t.Fatalf("%d charge_succeeded events, want 1: %v", len(succeeded), w.eventTypes(t, id))
	}
	if got, prefix := succeeded[0].Metadata.CommandID, "renewal/"+id.String()+"/"; !strings.HasPrefix(got, prefix) || !strings.HasSuffix(got, "/charge-outcome") {
		t.Errorf("the charge's record has command id %q, want %s<version>/charge-outcome", got, prefix)
	}
	var rows int
	if err := w.store.Pool().QueryRow(ctx, `SELECT count(*) FROM commands WHERE command_id LIKE 'renewal/%'`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 0 {
		t.Errorf("the commands table keeps %d rows of the renewal worker's steps, want none", rows)
	}
}

// settledMeanwhile is a gateway at whose first charge another worker
// settles the subscription (settle) before the charge is made.
type settledMeanwhile struct {
	payment.Gateway
	settle  func(context.Context) error
	charges int
}

func (g *settledMeanwhile) Charge(ctx context.Context, req payment.ChargeRequest) (payment.ChargeOutcome, error) {
	if g.charges++; g.charges == 1 {
		if err := g.settle(ctx); err != nil {
			return payment.ChargeOutcome{}, err
		}
	}
	return g.Gateway.Charge(ctx, req)
}
