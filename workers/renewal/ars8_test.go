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
	"github.com/subs-engine/subs/domain/policy"
	"github.com/subs-engine/subs/domain/subscription"
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
