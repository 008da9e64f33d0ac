package simulation_test

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	catalogdata "github.com/subs-engine/subs/catalog"
	"github.com/subs-engine/subs/eventstore"
	"github.com/subs-engine/subs/eventstore/pgtest"
	"github.com/subs-engine/subs/workers/mail"
	"github.com/subs-engine/subs/workers/simulation"
	"golang.org/x/sys/unix"
)

// simulate runs a year of customers drawn from seed; timeZone, when set, is
// the database sessions' time zone. It returns the report and where the
// e-mails went (mailDir).
func simulate(tb testing.TB, customers int, seed uint64, timeZone string) (simulation.Report, string) {
	tb.Helper()
	dir, on := mailDir(tb, customers)
	// A maildir thrown away with the run need not wait for the disk, as
	// `subs simulate` has it.
	maildir, err := mail.NewMaildir(dir, "")
	if err != nil {
		tb.Fatal(err)
	}
	r, err := simulation.Run(context.Background(), simulation.Config{Pool: newPool(tb, timeZone), Catalog: catalogdata.MustLoad(),
		Mail: maildir.Unsynced(), Customers: customers, Seed: seed})
	if err != nil {
		tb.Fatal(err)
	}
	return r, on
}

// memoryFS is where Linux mounts a memory file system for every process.
const memoryFS = "/dev/shm"

// mailBytesPerCustomer bounds what a customer's year of e-mails takes on a
// file system: some 8 messages of 3 KB, a 4 KB block each, twice over.
const mailBytesPerCustomer = 64 << 10

// mailDir returns a directory for the run's maildir, removed after the
// test, and what holds it: "memory" when the machine's memory file system
// has room for customers' e-mails, "disk" (the test's temporary directory)
// otherwise. A file costs the kernel some 25 µs on the memory file system
// and 100 to 500 µs on this machine's disk (ext4, 100,000 files in one
// directory): at 100,000 customers the disk adds 90 to 230 s to the year,
// more than the engine's own work varies, for a maildir nobody reads.
func mailDir(tb testing.TB, customers int) (dir, on string) {
	tb.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(memoryFS, &st); err == nil && uint64(st.Bavail)*uint64(st.Bsize) >= uint64(customers)*mailBytesPerCustomer {
		if dir, err := os.MkdirTemp(memoryFS, "subs-simulation-mail-"); err == nil {
			tb.Cleanup(func() {
				if err := os.RemoveAll(dir); err != nil {
					tb.Errorf("remove the maildir: %v", err)
				}
			})
			return dir, "memory"
		}
	}
	return tb.TempDir(), "disk"
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
	eventstore.ConfigurePool(cfg)
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
	first, _ := simulate(t, 200, 7, "")
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
	second, _ := simulate(t, 200, 7, "Pacific/Kiritimati")
	var again bytes.Buffer
	if err := second.Write(&again); err != nil {
		t.Fatal(err)
	}
	if again.String() != out.String() {
		t.Errorf("the same seed gave another report:\n%s\nthen:\n%s", out.String(), again.String())
	}
}
