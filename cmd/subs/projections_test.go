package main_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/subs-engine/subs/domain/account"
	"github.com/subs-engine/subs/domain/clock"
	"github.com/subs-engine/subs/domain/events"
	"github.com/subs-engine/subs/domain/policy"
	"github.com/subs-engine/subs/eventstore"
	"github.com/subs-engine/subs/eventstore/pgtest"
)

// signedUp returns the URL of a database whose log holds n account
// sign-ups, which no projection has applied yet, and a pool on it.
func signedUp(t *testing.T, n int) (string, *pgxpool.Pool) {
	t.Helper()
	url := pgtest.NewDatabase(t)
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	types := eventstore.NewEventTypes()
	types.Register(1, events.All()...)
	h, err := eventstore.NewCommandHandler(account.Decider, eventstore.HandlerConfig{Store: eventstore.New(pool, eventstore.Config{SecretKey: testSecretKey}),
		Types: types, Clock: clock.NewSimulated(time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC)), Policy: policy.Default()})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		id := uuid.New()
		email, _ := account.ParseEmail(fmt.Sprintf("c%d@example.com", i))
		name, _ := account.ParseName(fmt.Sprintf("Customer %d", i))
		country, _ := account.ParseCountry("FR")
		_, err := h.Handle(context.Background(), eventstore.StreamID("account-"+id.String()),
			account.Register{AccountID: id, Email: email, Name: name, Country: country, PasswordHash: "h"},
			eventstore.CommandMeta{Metadata: eventstore.Metadata{ActorKind: eventstore.ActorCustomer, ActorID: id.String()}})
		if err != nil {
			t.Fatal(err)
		}
	}
	return url, pool
}

func runSubs(t *testing.T, dbURL string, args ...string) (string, error) {
	t.Helper()
	m, out := MustParse(t, dbEnv(dbURL), args...)
	err := m.Run(context.Background())
	return out.stdout.String(), err
}

func TestProjections_StatusRebuildAndAuditCompare(t *testing.T) {
	t.Parallel()
	url, pool := signedUp(t, 3)

	out, err := runSubs(t, url, "projections", "status")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("status before:\n%s", out)
	if !strings.HasPrefix(out, "PROJECTION ") || !regexp.MustCompile(`(?m)^accounts +0 +0 +\d+ +3 +never$`).MatchString(out) {
		t.Errorf("status before any projection ran:\n%s\nwant accounts at 0 with lag 3, never updated", out)
	}

	out, err = runSubs(t, url, "projections", "rebuild", "all")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rebuild all:\n%s", out)
	if !regexp.MustCompile(`(?m)^accounts rebuilt from 3 events in \S+: now at position \d+$`).MatchString(out) ||
		!strings.Contains(out, "email_outbox rebuilt from 3 events") {
		t.Errorf("rebuild all printed:\n%s", out)
	}
	out, err = runSubs(t, url, "projections", "status", "--log-level", "error")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^accounts +\d+ +\d+ +\d+ +0 +\d{4}-`).MatchString(out) {
		t.Errorf("status after the rebuild:\n%s\nwant accounts with lag 0 and an update time", out)
	}

	// rule AUD-4
	out, err = runSubs(t, url, "audit", "rebuild", "--compare")
	if err != nil {
		t.Fatalf("audit rebuild --compare on equal models: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`(?m)^\d+ projections equal$`).MatchString(out) || !strings.Contains(out, "accounts: equal to its rebuild from 3 events") {
		t.Errorf("audit rebuild --compare printed:\n%s", out)
	}
	if _, err := pool.Exec(context.Background(), `UPDATE accounts SET name = 'x' WHERE email = 'c1@example.com'`); err != nil {
		t.Fatal(err)
	}
	out, err = runSubs(t, url, "audit", "rebuild", "--compare")
	t.Logf("audit rebuild --compare after an UPDATE:\n%s", out)
	if err == nil || !strings.Contains(err.Error(), "1 of") {
		t.Errorf("audit rebuild --compare after altering a row: error %v, want one projection differing", err)
	}
	if !strings.Contains(out, "accounts: DIFFERS") || !strings.Contains(out, "1 rows only live, 1 rows only rebuilt") ||
		!regexp.MustCompile(`(?m)^    live: .*"name": "x"`).MatchString(out) || !regexp.MustCompile(`(?m)^    rebuilt: .*"name": "Customer 1"`).MatchString(out) {
		t.Errorf("audit rebuild --compare printed:\n%s", out)
	}
	if _, err := runSubs(t, url, "projections", "rebuild", "accounts"); err != nil {
		t.Fatal(err)
	}
	if out, err := runSubs(t, url, "audit", "rebuild", "--compare"); err != nil {
		t.Errorf("audit rebuild --compare after rebuilding accounts: %v\n%s", err, out)
	}
}

func TestProjections_BadCommandLines(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"projections"},
		{"projections", "rebuild"},
		{"projections", "rebuild", "nosuch"},
		{"projections", "status", "extra"},
		{"projections", "frobnicate"},
	} {
		m, _ := NewMain(t, nil)
		if err := m.ParseFlags(context.Background(), args); err == nil {
			t.Errorf("ParseFlags(%q) succeeded, want a usage error", args)
		}
	}
	for _, args := range [][]string{
		{"audit", "rebuild"},
		{"audit", "verify", "--compare"},
	} {
		m, _ := MustParse(t, map[string]string{"DATABASE_URL": "postgres://nobody@127.0.0.1:1/none"}, args...)
		if err := m.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "--compare") {
			t.Errorf("%q: %v, want a usage error naming --compare", args, err)
		}
	}
}
