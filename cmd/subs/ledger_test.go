package main_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	main "github.com/subs-engine/subs/cmd/subs"
	"github.com/subs-engine/subs/domain/money"
	"github.com/subs-engine/subs/domain/payment"
	"github.com/subs-engine/subs/domain/subscription"
	"github.com/subs-engine/subs/eventstore/pgtest"
	"github.com/subs-engine/subs/workers/gateway"
)

// reconcile runs `subs ledger reconcile` with args on the engine's database
// at url, and returns its output, exit code and error.
func reconcile(t *testing.T, url string, args ...string) (output, int, error) {
	t.Helper()
	m, out := MustParse(t, dbEnv(url), append([]string{"ledger", "reconcile"}, args...)...)
	err := m.Run(context.Background())
	return out, main.ExitCode(err), err
}

// rule ARS-8: `subs ledger reconcile` reads the gateway's ledger over HTTP
// from `subs gateway` and exits 0 while it agrees with the engine's, 1 once
// the gateway holds a renewal charge the engine never recorded, 2 when the
// gateway cannot be read.
func TestLedger_ReconcileOverHTTPExitCodes(t *testing.T) {
	t.Parallel()
	engineDB := pgtest.NewDatabase(t)
	m, out := MustParse(t, map[string]string{"DATABASE_URL": pgtest.NewDatabase(t)},
		"gateway", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir())
	srv := MustStartGateway(t, m, out, time.Minute)
	client, err := gateway.NewHTTPClient(srv.base, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	card, err := payment.NewCard(gateway.CardSucceeds, "123", "Ada Lovelace", 12, 2035, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	method, err := client.TokenizeCard(ctx, card)
	if err != nil {
		t.Fatal(err)
	}
	charge := func(key string) {
		t.Helper()
		if _, err := client.Charge(ctx, payment.ChargeRequest{IdempotencyKey: key, Token: method.Token(), Amount: money.New(4999, money.USD)}); err != nil {
			t.Fatal(err)
		}
	}

	charge("order-42") // an initial order's charge: not a renewal, not compared
	res, code, err := reconcile(t, engineDB, "--gateway-url", srv.base)
	if code != 0 || !strings.Contains(res.stdout.String(), "1 other charges") || !strings.Contains(res.stdout.String(), "clean:") {
		t.Fatalf("reconcile of agreeing ledgers: exit %d (%v), want 0\nstdout:\n%s\nstderr:\n%s", code, err, res.stdout, res.stderr)
	}

	sub := uuid.New()
	charge(subscription.IdempotencyKey(sub, 1, 1)) // charged, never recorded by the engine
	res, code, err = reconcile(t, engineDB, "--gateway-url", srv.base)
	if code != 1 || !strings.Contains(res.stdout.String(), "gap       subscription "+sub.String()+" period 1: ") ||
		!strings.Contains(res.stdout.String(), "1 differences: 0 duplicates, 1 gaps") {
		t.Errorf("reconcile of a gap: exit %d (%v), want 1\nstdout:\n%s\nstderr:\n%s", code, err, res.stdout, res.stderr)
	}

	srv.MustStop(t, 20*time.Second)
	res, code, err = reconcile(t, engineDB, "--gateway-url", srv.base)
	if code != 2 || !errors.Is(err, payment.ErrUnavailable) {
		t.Errorf("reconcile with the gateway down: %v, exit %d; want exit 2, the gateway unavailable", err, code)
	}
}

// rule ARS-8: without a gateway URL, reconcile reads the sandbox serve runs
// in-process on the engine's database; a database without the engine's
// tables is an error (2) that says so.
func TestLedger_ReconcileInProcessSandbox(t *testing.T) {
	t.Parallel()
	res, code, err := reconcile(t, pgtest.NewDatabase(t))
	if code != 0 || !strings.Contains(res.stdout.String(), "0 renewal charges") {
		t.Errorf("reconcile of an empty engine: exit %d (%v), want 0\nstdout:\n%s\nstderr:\n%s", code, err, res.stdout, res.stderr)
	}

	url := pgtest.NewDatabase(t)
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(context.Background(), `DROP TABLE charges`); err != nil {
		t.Fatal(err)
	}
	_, code, err = reconcile(t, url)
	if code != 2 || err == nil || !strings.Contains(err.Error(), "holds no charge ledger") {
		t.Errorf("reconcile of a database without the charges table = %v (exit %d), want exit 2 saying so", err, code)
	}
}

func TestLedger_Flags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"ledger"}, {"ledger", "balance"}, {"ledger", "reconcile", "extra"}, {"ledger", "reconcile", "--gateway-url", "ftp://x"},
		{"ledger", "reconcile", "--smtp-url", "smtp://x:25"}} {
		m, _ := NewMain(t, nil)
		if err := m.ParseFlags(context.Background(), args); err == nil {
			t.Errorf("ParseFlags(%q) succeeded", args)
		}
	}
	m, out := MustParse(t, nil, "help", "ledger")
	MustRun(t, m)
	for _, want := range []string{"reconcile", "-gateway-url", "SUBS_GATEWAY_URL", "-database-url"} {
		if !strings.Contains(out.stdout.String(), want) {
			t.Errorf("help ledger lacks %s:\n%s", want, out.stdout)
		}
	}
	if strings.Contains(out.stdout.String(), "-smtp-url") {
		t.Errorf("help ledger shows serve's --smtp-url:\n%s", out.stdout)
	}
	m, out = MustParse(t, nil, "help", "serve")
	MustRun(t, m)
	for _, want := range []string{"-gateway-url", "-smtp-url", "-public-url"} {
		if !strings.Contains(out.stdout.String(), want) {
			t.Errorf("help serve lacks %s:\n%s", want, out.stdout)
		}
	}
}
