package simulation_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	catalogdata "github.com/subs-engine/subs/catalog"
	"github.com/subs-engine/subs/eventstore/pgtest"
	"github.com/subs-engine/subs/workers/mail"
	"github.com/subs-engine/subs/workers/simulation"
)

// simulate runs a year of customers drawn from seed; timeZone, when set, is
// the database sessions' time zone.
func simulate(tb testing.TB, customers int, seed uint64, timeZone string) simulation.Report {
	tb.Helper()
	// A maildir thrown away with the run need not wait for the disk, as
	// `subs simulate` has it.
	maildir, err := mail.NewMaildir(tb.TempDir(), "")
	if err != nil {
		tb.Fatal(err)
	}
	r, err := simulation.Run(context.Background(), simulation.Config{Pool: newPool(tb, timeZone), Catalog: catalogdata.MustLoad(),
		Mail: maildir.Unsynced(), Customers: customers, Seed: seed})
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// newPool opens a pool on a fresh database whose commits do not wait for
// the disk (synchronous_commit off, as `subs simulate` has it): a crash
// would lose the simulation, never its meaning, and the year goes faster.
// timeZone, when set, is the sessions' time zone.
func newPool(tb testing.TB, timeZone string) *pgxpool.Pool {
	tb.Helper()
	cfg, err := pgxpool.ParseConfig(pgtest.NewDatabase(tb))
	if err != nil {
		tb.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	if timeZone != "" {
		cfg.ConnConfig.RuntimeParams["timezone"] = timeZone
	}
	cfg.MaxConns = 16
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

// rule TIM-2: a population moves through a year on the simulated clock with
// the real workers, and every invariant holds; the same seed gives the same
// report, whatever the database's time zone (all instants are UTC: the
// second run's sessions are 14 hours ahead).
func TestRule_TIM2_AYearOfAPopulationKeepsEveryInvariantAndRepeatsWithItsSeed(t *testing.T) {
	t.Parallel()
	first := simulate(t, 200, 7, "")
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
	second := simulate(t, 200, 7, "Pacific/Kiritimati")
	var again bytes.Buffer
	if err := second.Write(&again); err != nil {
		t.Fatal(err)
	}
	if again.String() != out.String() {
		t.Errorf("the same seed gave another report:\n%s\nthen:\n%s", out.String(), again.String())
	}
}
