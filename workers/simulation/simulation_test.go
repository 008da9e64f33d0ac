package simulation_test

import (
	"bytes"
	"context"
	"testing"

	catalogdata "github.com/subs-engine/subs/catalog"
	"github.com/subs-engine/subs/eventstore/pgtest"
	"github.com/subs-engine/subs/workers/mail"
	"github.com/subs-engine/subs/workers/simulation"
)

func simulate(t *testing.T, customers int, seed uint64) simulation.Report {
	t.Helper()
	sender, err := mail.NewSender("", t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	r, err := simulation.Run(context.Background(), simulation.Config{Pool: pgtest.NewPool(t), Catalog: catalogdata.MustLoad(),
		Mail: sender, Customers: customers, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// rule TIM-2: a population moves through a year on the simulated clock with
// the real workers, and every invariant holds; the same seed gives the same
// report.
func TestRule_TIM2_AYearOfAPopulationKeepsEveryInvariantAndRepeatsWithItsSeed(t *testing.T) {
	t.Parallel()
	first := simulate(t, 150, 7)
	var out bytes.Buffer
	if err := first.Write(&out); err != nil {
		t.Fatal(err)
	}
	t.Logf("report in %s, %d events:\n%s", first.Elapsed, first.Events, out.String())
	if !first.Passed() {
		t.Fatalf("an invariant failed:\n%s", out.String())
	}
	if first.Counts["renewals (charges succeeded)"] == 0 || first.Counts["declines"] == 0 || first.Counts["refunds"] == 0 {
		t.Errorf("the year lacks renewals, declines or refunds: %v", first.Counts)
	}
	second := simulate(t, 150, 7)
	var again bytes.Buffer
	if err := second.Write(&again); err != nil {
		t.Fatal(err)
	}
	if again.String() != out.String() {
		t.Errorf("the same seed gave another report:\n%s\nthen:\n%s", out.String(), again.String())
	}
}
