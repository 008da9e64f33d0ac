package gateway_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/subs-engine/subs/domain/clock"
	"github.com/subs-engine/subs/domain/payment"
	"github.com/subs-engine/subs/eventstore/pgtest"
	"github.com/subs-engine/subs/workers/gateway"
	"github.com/subs-engine/subs/workers/gateway/gatewaytest"
)

// secrets are what the suite types in that must be stored and logged
// nowhere (SEC-3): every test card number and IBAN.
var secrets = []string{
	gateway.CardSucceeds, gateway.CardRefused, gateway.CardRefusedExpired, gateway.CardChargeDeclined,
	gateway.CardInsufficientFunds, "5555555555554444",
	gateway.IBANSucceedsDE, gateway.IBANSucceedsAT, gateway.IBANSucceedsNL, gateway.IBANDebitDeclined,
}

// MustSandbox returns a sandbox on a fresh database, with cfg's Clock
// defaulting to a simulated one at gatewaytest.Start.
func MustSandbox(tb testing.TB, cfg gateway.SandboxConfig) (*gateway.Sandbox, *pgxpool.Pool) {
	tb.Helper()
	pool := pgtest.NewPool(tb)
	if cfg.Clock == nil {
		cfg.Clock = clock.NewSimulated(gatewaytest.Start)
	}
	s, err := gateway.NewSandbox(context.Background(), pool, cfg)
	if err != nil {
		tb.Fatalf("NewSandbox: %v", err)
	}
	return s, pool
}

// MustServe serves s's handler on a real loopback listener and returns an
// HTTPClient of it and the buffer the handler logs into.
func MustServe(tb testing.TB, s *gateway.Sandbox) (*gateway.HTTPClient, *httptest.Server, *syncBuffer) {
	tb.Helper()
	logs := &syncBuffer{}
	srv := httptest.NewServer(gateway.NewHandler(s, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	tb.Cleanup(srv.Close)
	c, err := gateway.NewHTTPClient(srv.URL, srv.Client())
	if err != nil {
		tb.Fatalf("NewHTTPClient: %v", err)
	}
	return c, srv, logs
}

// assertNoSecrets reads every row of every table of schema gateway_sandbox
// as text and fails if a card number, the suite's CVV (as a whole column
// value) or an IBAN appears in it. rule SEC-3
func assertNoSecrets(tb testing.TB, pool *pgxpool.Pool) {
	tb.Helper()
	ctx := context.Background()
	rows, err := pool.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'gateway_sandbox' ORDER BY 1`)
	if err != nil {
		tb.Fatalf("list sandbox tables: %v", err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			tb.Fatal(err)
		}
		tables = append(tables, name)
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	if len(tables) < 3 {
		tb.Fatalf("sandbox tables = %v, want at least tokens, charges, refunds", tables)
	}
	for _, table := range tables {
		// One row as text, and each of its columns as text, to compare
		// whole values with the CVV (three digits may occur inside an id).
		rows, err := pool.Query(ctx, `SELECT t::text, ARRAY(SELECT value FROM jsonb_each_text(to_jsonb(t))) FROM gateway_sandbox.`+table+` t`)
		if err != nil {
			tb.Fatalf("read %s: %v", table, err)
		}
		for rows.Next() {
			var (
				text   string
				values []*string
			)
			if err := rows.Scan(&text, &values); err != nil {
				tb.Fatal(err)
			}
			for _, s := range secrets {
				if strings.Contains(text, s) {
					tb.Errorf("gateway_sandbox.%s holds the secret ending %s: %s", table, s[len(s)-4:], text)
				}
			}
			for _, v := range values {
				if v != nil && *v == gatewaytest.CVV {
					tb.Errorf("gateway_sandbox.%s holds the CVV: %s", table, text)
				}
			}
		}
		if err := rows.Err(); err != nil {
			tb.Fatal(err)
		}
	}
}

func assertNoSecretsLogged(tb testing.TB, logs string) {
	tb.Helper()
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			tb.Errorf("the handler logged the secret ending %s:\n%s", s[len(s)-4:], logs)
		}
	}
	if strings.Contains(logs, `"`+gatewaytest.CVV+`"`) {
		tb.Errorf("the handler logged a CVV:\n%s", logs)
	}
}

func TestSandbox_Contract(t *testing.T) {
	t.Parallel()
	gatewaytest.Run(t, func(t *testing.T) payment.Gateway {
		s, pool := MustSandbox(t, gateway.SandboxConfig{Clock: gatewaytest.Clock(t)})
		t.Cleanup(func() { assertNoSecrets(t, pool) }) // runs before the pool closes
		return s
	})
}

// tokenizedElsewhere is one gateway of two sandboxes on one database, as
// when one process tokenizes a card (the API) and another charges it (a
// worker): the charger learns each token from the database on its first
// charge, and from memory after.
type tokenizedElsewhere struct {
	*gateway.Sandbox // charges, refunds, the ledger
	tokenizer        *gateway.Sandbox
}

func (g tokenizedElsewhere) TokenizeCard(ctx context.Context, card payment.Card) (payment.PaymentMethod, error) {
	return g.tokenizer.TokenizeCard(ctx, card)
}

func (g tokenizedElsewhere) TokenizeDirectDebit(ctx context.Context, account payment.BankAccount) (payment.PaymentMethod, error) {
	return g.tokenizer.TokenizeDirectDebit(ctx, account)
}

// newTokenizedElsewhere returns two sandboxes on a fresh database, on the
// suite's clock of t, as one tokenizedElsewhere.
func newTokenizedElsewhere(t *testing.T) tokenizedElsewhere {
	clk := gatewaytest.Clock(t)
	charger, pool := MustSandbox(t, gateway.SandboxConfig{Clock: clk})
	tokenizer, err := gateway.NewSandbox(context.Background(), pool, gateway.SandboxConfig{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	return tokenizedElsewhere{Sandbox: charger, tokenizer: tokenizer}
}

// The contract holds when the tokens were made by another process.
func TestSandbox_ContractWithTokensMadeElsewhere(t *testing.T) {
	t.Parallel()
	gatewaytest.Run(t, func(t *testing.T) payment.Gateway { return newTokenizedElsewhere(t) })
}

// The real-wire run: HTTPClient → a TCP connection → NewHandler → Sandbox.
func TestHTTP_Contract(t *testing.T) {
	t.Parallel()
	gatewaytest.Run(t, func(t *testing.T) payment.Gateway {
		s, pool := MustSandbox(t, gateway.SandboxConfig{Clock: gatewaytest.Clock(t)})
		c, _, logs := MustServe(t, s)
		t.Cleanup(func() {
			assertNoSecrets(t, pool)
			assertNoSecretsLogged(t, logs.String())
		})
		return c
	})
}

// rule ARS-8: a charge that was made but whose answer was lost is found
// again, not made again, by the retry with the same key.
func TestRule_ARS8_LostResponseIsRecoveredByTheRetry(t *testing.T) {
	t.Parallel()
	for _, overHTTP := range []bool{false, true} {
		name := map[bool]string{false: "in-process", true: "over HTTP"}[overHTTP]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s, pool := MustSandbox(t, gateway.SandboxConfig{LostResponseRate: 1})
			var g payment.Gateway = s
			if overHTTP {
				g, _, _ = MustServe(t, s)
			}
			ledger, err := gateway.NewSandbox(context.Background(), pool, gateway.SandboxConfig{}) // a reliable view of the same state
			if err != nil {
				t.Fatal(err)
			}
			m := gatewaytest.MustTokenize(t, g, gateway.CardSucceeds)
			req := payment.ChargeRequest{IdempotencyKey: gatewaytest.NewKey("ars8"), Token: m.Token(), Amount: gatewaytest.EUR(4999)}

			if out, err := g.Charge(context.Background(), req); !errors.Is(err, payment.ErrUnavailable) {
				t.Fatalf("Charge with LostResponseRate 1 = %+v, %v; want ErrUnavailable", out, err)
			}
			entries := gatewaytest.MustLedger(t, ledger, payment.ChargeFilter{})
			if len(entries) != 1 || entries[0].Status != payment.Succeeded {
				t.Fatalf("ledger after the lost response = %+v, want the charge made", entries)
			}
			retry := gatewaytest.MustCharge(t, g, req)
			if retry.Status != payment.Succeeded || retry.ChargeID != entries[0].ChargeID {
				t.Errorf("retry = %+v, want succeeded with the recorded charge %s", retry, entries[0].ChargeID)
			}
			if n := len(gatewaytest.MustLedger(t, ledger, payment.ChargeFilter{})); n != 1 {
				t.Errorf("ledger has %d entries after the retry, want 1", n)
			}

			refund := payment.RefundRequest{IdempotencyKey: gatewaytest.NewKey("ars8-refund"), ChargeID: retry.ChargeID, Amount: gatewaytest.EUR(4999)}
			if _, err := g.Refund(context.Background(), refund); !errors.Is(err, payment.ErrUnavailable) {
				t.Fatalf("Refund with LostResponseRate 1: %v, want ErrUnavailable", err)
			}
			if out, err := g.Refund(context.Background(), refund); err != nil || out.RefundID == "" {
				t.Errorf("refund retry = %+v, %v; want the recorded refund", out, err)
			}
			if e := gatewaytest.MustLedger(t, ledger, payment.ChargeFilter{}); !e[0].Refunded.Equal(gatewaytest.EUR(4999)) {
				t.Errorf("refunded = %s, want EUR 49.99 once", e[0].Refunded)
			}
		})
	}
}

func TestSandbox_FailureRateOneRecordsNothing(t *testing.T) {
	t.Parallel()
	reliable, pool := MustSandbox(t, gateway.SandboxConfig{})
	m := gatewaytest.MustTokenize(t, reliable, gateway.CardSucceeds)
	failing, err := gateway.NewSandbox(context.Background(), pool, gateway.SandboxConfig{FailureRate: 1})
	if err != nil {
		t.Fatal(err)
	}
	client, _, _ := MustServe(t, failing)
	for name, g := range map[string]payment.Gateway{"in-process": failing, "over HTTP": client} {
		ctx := context.Background()
		if _, err := g.TokenizeCard(ctx, gatewaytest.MustCard(t, gateway.CardSucceeds)); !errors.Is(err, payment.ErrUnavailable) {
			t.Errorf("%s: TokenizeCard = %v, want ErrUnavailable", name, err)
		}
		if _, err := g.Charge(ctx, payment.ChargeRequest{IdempotencyKey: gatewaytest.NewKey("fail"), Token: m.Token(), Amount: gatewaytest.EUR(100)}); !errors.Is(err, payment.ErrUnavailable) {
			t.Errorf("%s: Charge = %v, want ErrUnavailable", name, err)
		}
		if _, err := g.Charges(ctx, payment.ChargeFilter{}); !errors.Is(err, payment.ErrUnavailable) {
			t.Errorf("%s: Charges = %v, want ErrUnavailable", name, err)
		}
	}
	if n := len(gatewaytest.MustLedger(t, reliable, payment.ChargeFilter{})); n != 0 {
		t.Errorf("ledger has %d entries, want none", n)
	}
	var tokens int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM gateway_sandbox.tokens`).Scan(&tokens); err != nil || tokens != 1 {
		t.Errorf("tokens = %d (%v), want only the reliable sandbox's 1", tokens, err)
	}
}

func TestSandbox_SeedMakesFailuresReproducible(t *testing.T) {
	t.Parallel()
	_, pool := MustSandbox(t, gateway.SandboxConfig{})
	pattern := func(seed int64) string {
		s, err := gateway.NewSandbox(context.Background(), pool, gateway.SandboxConfig{FailureRate: 0.5, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for range 40 {
			if _, err := s.Charges(context.Background(), payment.ChargeFilter{}); errors.Is(err, payment.ErrUnavailable) {
				b.WriteByte('x')
			} else if err != nil {
				t.Fatal(err)
			} else {
				b.WriteByte('.')
			}
		}
		return b.String()
	}
	a, b, c := pattern(7), pattern(7), pattern(8)
	if a != b {
		t.Errorf("seed 7 gave %s then %s, want the same draws", a, b)
	}
	if a == c || !strings.Contains(a, "x") || !strings.Contains(a, ".") {
		t.Errorf("seeds 7 and 8 gave %s and %s, want different mixes of failures and successes", a, c)
	}
}

func TestSandbox_LatencyIsAddedAndBoundedByTheContext(t *testing.T) {
	t.Parallel()
	s, _ := MustSandbox(t, gateway.SandboxConfig{Latency: 200 * time.Millisecond})
	start := time.Now()
	if _, err := s.Charges(context.Background(), payment.ChargeFilter{}); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 200*time.Millisecond {
		t.Errorf("call took %s, want at least the 200ms latency", took)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := s.Charges(ctx, payment.ChargeFilter{}); !errors.Is(err, payment.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("call past its deadline = %v, want ErrUnavailable wrapping the deadline", err)
	}
}

func TestSandbox_ConcurrentRefundsNeverExceedTheCharge(t *testing.T) {
	t.Parallel()
	s, _ := MustSandbox(t, gateway.SandboxConfig{})
	m := gatewaytest.MustTokenize(t, s, gateway.CardSucceeds)
	charge := gatewaytest.MustCharge(t, s, payment.ChargeRequest{IdempotencyKey: gatewaytest.NewKey("c"), Token: m.Token(), Amount: gatewaytest.EUR(1000)})
	var (
		wg sync.WaitGroup
		mu sync.Mutex
		ok int
	)
	for range 10 {
		wg.Go(func() {
			_, err := s.Refund(context.Background(), payment.RefundRequest{IdempotencyKey: gatewaytest.NewKey("r"), ChargeID: charge.ChargeID, Amount: gatewaytest.EUR(300)})
			switch {
			case err == nil:
				mu.Lock()
				ok++
				mu.Unlock()
			case !errors.Is(err, payment.ErrRefundExceedsCharge):
				t.Errorf("Refund: %v", err)
			}
		})
	}
	wg.Wait()
	if ok != 3 {
		t.Errorf("%d refunds of EUR 3.00 from EUR 10.00 succeeded, want 3", ok)
	}
}

func TestSandboxConfig_Validate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		cfg       gateway.SandboxConfig
		wantField string
	}{
		{"negative latency", gateway.SandboxConfig{Latency: -time.Second}, "Latency"},
		{"failure rate above 1", gateway.SandboxConfig{FailureRate: 1.5}, "FailureRate"},
		{"negative failure rate", gateway.SandboxConfig{FailureRate: -0.1}, "FailureRate"},
		{"lost response rate above 1", gateway.SandboxConfig{LostResponseRate: 2}, "LostResponseRate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.wantField) {
				t.Errorf("Validate = %v, want an error naming %s", err, tt.wantField)
			}
			_, err = gateway.NewSandbox(context.Background(), nil, tt.cfg)
			if err == nil || !strings.Contains(err.Error(), "invalid config") {
				t.Errorf("NewSandbox = %v, want an invalid config error", err)
			}
		})
	}
	if err := (gateway.SandboxConfig{FailureRate: 1, LostResponseRate: 1}).Validate(); err != nil {
		t.Errorf("Validate(rates of 1) = %v, want nil", err)
	}
}

// syncBuffer is a bytes.Buffer safe for the handler's concurrent log writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
