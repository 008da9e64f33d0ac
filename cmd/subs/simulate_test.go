package main_test

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	main "github.com/subs-engine/subs/cmd/subs"
	"github.com/subs-engine/subs/eventstore/pgtest"
)

// rule TIM-2: `subs simulate` moves a small population through the year on
// a database of its own, prints a report whose invariants all PASS, exits 0,
// and drops the database unless --keep (which names it).
func TestRule_TIM2_SimulatePrintsAPassingReportOnADatabaseOfItsOwn(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	env := map[string]string{"DATABASE_URL": url, "SUBS_LOG_LEVEL": "warn"}
	m, out := MustParse(t, env, "simulate", "--customers", "40", "--days", "60", "--seed", "3", "--keep", "--data-dir", t.TempDir())
	err := m.Run(context.Background())
	if code := main.ExitCode(err); err != nil || code != 0 {
		t.Fatalf("Run = %v (exit %d), want nil (exit 0)\nstdout:\n%s\nstderr:\n%s", err, code, out.stdout, out.stderr)
	}
	report := out.stdout.String()
	for _, want := range []string{"Simulation: 40 customers, 60 days, seed 3", "Invariants", "customer-years/s", "events/s"} {
		if !strings.Contains(report, want) {
			t.Errorf("the output lacks %q:\n%s", want, report)
		}
	}
	if n := strings.Count(report, "PASS"); n < 5 || strings.Contains(report, "FAIL") {
		t.Errorf("want every invariant PASS (%d PASS lines):\n%s", n, report)
	}
	if !strings.Contains(out.stderr.String(), "simulate: day 60/60") {
		t.Errorf("no progress line on stderr:\n%s", out.stderr)
	}
	name := regexp.MustCompile(`kept the database (subs_sim_[0-9a-f]+)`).FindStringSubmatch(report)
	if name == nil {
		t.Fatalf("--keep did not name the database:\n%s", report)
	}
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	// The connection closes after the drop: a deferred Close would run
	// before the cleanup, and the kept database would outlive the test.
	t.Cleanup(func() {
		if _, err := conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{name[1]}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("drop the kept database %s: %v", name[1], err)
		}
		_ = conn.Close(context.Background())
	})
	var kept bool
	if err := conn.QueryRow(context.Background(), `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name[1]).Scan(&kept); err != nil || !kept {
		t.Errorf("database %s kept = %v (%v), want true", name[1], kept, err)
	}

	// Without --keep the database is dropped.
	m, out = MustParse(t, map[string]string{"DATABASE_URL": url}, "simulate", "--customers", "5", "--days", "3", "--data-dir", t.TempDir())
	if err := m.Run(context.Background()); err != nil {
		t.Fatalf("Run = %v\nstderr:\n%s", err, out.stderr)
	}
	dropped := regexp.MustCompile(`database=(subs_sim_[0-9a-f]+)`).FindStringSubmatch(out.stderr.String())
	if dropped == nil {
		t.Fatalf("the log does not name the database:\n%s", out.stderr)
	}
	if err := conn.QueryRow(context.Background(), `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, dropped[1]).Scan(&kept); err != nil || kept {
		t.Errorf("database %s exists = %v (%v) after a run without --keep, want false", dropped[1], kept, err)
	}
	if strings.Contains(out.stdout.String(), "kept the database") {
		t.Errorf("without --keep the output says the database was kept:\n%s", out.stdout)
	}
}

// An error that is not an invariant (here: no database server) exits 2.
func TestSimulate_ExitsTwoOnAnError(t *testing.T) {
	t.Parallel()
	env := map[string]string{"DATABASE_URL": "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"}
	m, _ := MustParse(t, env, "simulate", "--customers", "5", "--days", "3", "--data-dir", t.TempDir())
	err := m.Run(context.Background())
	if code := main.ExitCode(err); err == nil || code != 2 {
		t.Fatalf("Run = %v (exit %d), want an error with exit status 2", err, code)
	}
}
