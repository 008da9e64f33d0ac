package ledger_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/domain/money"
	"github.com/subs-engine/subs/domain/payment"
	"github.com/subs-engine/subs/domain/subscription"
	"github.com/subs-engine/subs/eventstore"
	"github.com/subs-engine/subs/eventstore/pgtest"
	"github.com/subs-engine/subs/projections"
	"github.com/subs-engine/subs/workers/gateway"
	"github.com/subs-engine/subs/workers/ledger"
)

// books is a database of the test's own holding the engine's charge ledger,
// written by the charges projection, and the sandbox gateway's.
type books struct {
	pool    *pgxpool.Pool
	gateway *gateway.Sandbox
	ok      string // a token every charge of succeeds
	decline string // a token every charge of is declined
	at      time.Time
}

func newBooks(t *testing.T) *books {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	sandbox, err := gateway.NewSandbox(ctx, pool, gateway.SandboxConfig{})
	if err != nil {
		t.Fatal(err)
	}
	b := &books{pool: pool, gateway: sandbox, at: time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC)}
	b.ok, b.decline = b.token(t, gateway.CardSucceeds), b.token(t, gateway.CardChargeDeclined)
	return b
}

func (b *books) token(t *testing.T, number string) string {
	t.Helper()
	c, err := payment.NewCard(number, "123", "Ann Example", 12, 2035, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	m, err := b.gateway.TokenizeCard(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return m.Token()
}

// record applies subscription id's events to the engine's charge ledger
// through the charges projection, as the running engine does.
func (b *books) record(t *testing.T, id uuid.UUID, events ...domain.Event) {
	t.Helper()
	rec := eventstore.RecordedEvent{StreamID: eventstore.StreamID(subscription.StreamName(id))}
	err := pgx.BeginFunc(context.Background(), b.pool, func(tx pgx.Tx) error {
		for _, e := range events {
			if err := (projections.Charges{}).Apply(context.Background(), tx, rec, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// charge makes attempt attempt of period period of subscription id at the
// gateway with token, for USD amount minor units, and returns the outcome.
func (b *books) charge(t *testing.T, id uuid.UUID, period, attempt int, token string, amount int64) payment.ChargeOutcome {
	t.Helper()
	out, err := b.gateway.Charge(context.Background(), payment.ChargeRequest{IdempotencyKey: subscription.IdempotencyKey(id, period, attempt),
		Token: token, Amount: money.New(amount, money.USD), Description: "renewal"})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// renew charges the attempt at the gateway and records its request and
// outcome in the engine's ledger, as the renewal worker does.
func (b *books) renew(t *testing.T, id uuid.UUID, period, attempt int, token string, amount int64) payment.ChargeOutcome {
	t.Helper()
	b.requested(t, id, period, attempt, token, amount)
	out := b.charge(t, id, period, attempt, token, amount)
	if out.Status == payment.Succeeded {
		b.record(t, id, subscription.ChargeSucceeded{Period: period, Attempt: attempt, ChargeID: out.ChargeID, Amount: out.Amount, At: b.at})
	} else {
		b.record(t, id, subscription.ChargeDeclined{Period: period, Attempt: attempt, ChargeID: out.ChargeID, DeclineCode: out.DeclineCode, At: b.at})
	}
	return out
}

// requested records the request of an attempt, which the gateway has not
// answered yet.
func (b *books) requested(t *testing.T, id uuid.UUID, period, attempt int, token string, amount int64) {
	t.Helper()
	b.record(t, id, subscription.ChargeRequested{Period: period, Attempt: attempt, IdempotencyKey: subscription.IdempotencyKey(id, period, attempt),
		Token: token, Amount: money.New(amount, money.USD), At: b.at})
}

// refund refunds a charge at the gateway and, unless gatewayOnly, records
// it in the engine's ledger.
func (b *books) refund(t *testing.T, id uuid.UUID, period int, charge payment.ChargeOutcome, gatewayOnly bool) {
	t.Helper()
	out, err := b.gateway.Refund(context.Background(), payment.RefundRequest{IdempotencyKey: subscription.RefundKey(id, period),
		ChargeID: charge.ChargeID, Amount: charge.Amount})
	if err != nil {
		t.Fatal(err)
	}
	if !gatewayOnly {
		b.record(t, id, subscription.Refunded{Period: period, RefundID: out.RefundID, ChargeID: out.ChargeID, Amount: out.Amount, At: b.at})
	}
}

func (b *books) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if _, err := b.pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatal(err)
	}
}

func (b *books) reconcile(t *testing.T) ledger.Report {
	t.Helper()
	r, err := ledger.Reconcile(context.Background(), b.pool, b.gateway)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := r.Write(&out); err != nil {
		t.Fatal(err)
	}
	t.Logf("report:\n%s", out.String())
	return r
}

// wantFindings fails unless r holds exactly the findings want, each a kind
// and the subscription and period it names, in the report's order.
func wantFindings(t *testing.T, r ledger.Report, want ...ledger.Finding) {
	t.Helper()
	if r.Clean() {
		t.Fatalf("report is clean, want %d findings", len(want))
	}
	if len(r.Findings) != len(want) {
		t.Fatalf("findings = %+v, want %d: %+v", r.Findings, len(want), want)
	}
	for i, f := range r.Findings {
		if f.Kind != want[i].Kind || f.Subscription != want[i].Subscription || f.Period != want[i].Period || f.Detail == "" {
			t.Errorf("finding %d = %+v, want %s of %s period %d with a detail", i, f, want[i].Kind, want[i].Subscription, want[i].Period)
		}
	}
}

// ordered returns n subscription ids in the order the report sorts them.
func ordered(n int) []uuid.UUID {
	ids := make([]uuid.UUID, n)
	for i := range ids {
		ids[i] = uuid.MustParse("01900000-0000-7000-8000-00000000000" + string(rune('1'+i)))
	}
	return ids
}

// rule ARS-8: ledgers that agree — retries after declines, a refunded
// period (which closes the one after it), a charge under way, a charge
// that is not a renewal — reconcile clean.
func TestRule_ARS8_ReconcileCleanLedger(t *testing.T) {
	t.Parallel()
	b := newBooks(t)
	ids := ordered(2)
	b.renew(t, ids[0], 1, 1, b.ok, 999)
	b.renew(t, ids[0], 2, 1, b.decline, 999) // declined, retried with a new card
	b.renew(t, ids[0], 2, 2, b.ok, 999)
	b.requested(t, ids[0], 3, 1, b.ok, 999) // the gateway has not seen it yet
	refunded := b.renew(t, ids[1], 1, 1, b.ok, 4999)
	b.refund(t, ids[1], 1, refunded, false)
	b.renew(t, ids[1], 3, 1, b.ok, 4999) // period 2 was closed by the refund
	if _, err := b.gateway.Charge(context.Background(), payment.ChargeRequest{IdempotencyKey: "order-42", Token: b.ok,
		Amount: money.New(4999, money.USD)}); err != nil {
		t.Fatal(err)
	}

	r := b.reconcile(t)
	if !r.Clean() {
		t.Fatalf("findings = %+v, want none", r.Findings)
	}
	if r.EngineCharges != 6 || r.EngineSucceeded != 4 || r.GatewayCharges != 5 || r.GatewaySucceeded != 4 || r.GatewayOther != 1 ||
		r.Subscriptions != 2 || r.Periods != 5 {
		t.Errorf("report = %+v; want engine 6 attempts (4 succeeded), gateway 5 renewal charges (4 succeeded) and 1 other, 2 subscriptions, 5 periods", r)
	}
	var out bytes.Buffer
	if err := r.Write(&out); err != nil || !strings.Contains(out.String(), "clean:") {
		t.Errorf("Write = %v:\n%s\nwant it to say clean", err, out.String())
	}
}

// rule ARS-8: a second successful charge of one period is a duplicate, on
// the gateway's side (a charge the engine does not know of) as on the
// engine's (its unique index dropped).
func TestRule_ARS8_ReconcileFindsDuplicate(t *testing.T) {
	t.Parallel()
	b := newBooks(t)
	ids := ordered(2)
	b.renew(t, ids[0], 1, 1, b.ok, 999)
	b.charge(t, ids[0], 1, 2, b.ok, 999) // charged again under another attempt's key

	b.exec(t, `DROP INDEX charges_one_success_per_period`)
	b.renew(t, ids[1], 1, 1, b.ok, 999)
	b.renew(t, ids[1], 1, 2, b.ok, 999)

	r := b.reconcile(t)
	wantFindings(t, r,
		ledger.Finding{Kind: ledger.Duplicate, Subscription: ids[0], Period: 1},
		ledger.Finding{Kind: ledger.Gap, Subscription: ids[0], Period: 1}, // the engine has no record of attempt 2
		ledger.Finding{Kind: ledger.Duplicate, Subscription: ids[1], Period: 1},
		ledger.Finding{Kind: ledger.Duplicate, Subscription: ids[1], Period: 1},
	)
	if r.Count(ledger.Duplicate) != 3 {
		t.Errorf("Count(Duplicate) = %d, want 3", r.Count(ledger.Duplicate))
	}
	var out bytes.Buffer
	if err := r.Write(&out); err != nil || !strings.Contains(out.String(), "4 differences: 3 duplicates, 1 gaps") {
		t.Errorf("Write = %v:\n%s", err, out.String())
	}
}

// rule ARS-8: a charge the gateway made and the engine never recorded, one
// the engine records and the gateway never made, and a period skipped
// between two charged ones (or before the first charged one) are gaps.
func TestRule_ARS8_ReconcileFindsGap(t *testing.T) {
	t.Parallel()
	b := newBooks(t)
	ids := ordered(4)
	b.requested(t, ids[0], 1, 1, b.ok, 999)
	b.charge(t, ids[0], 1, 1, b.ok, 999) // the outcome was never recorded

	gone := b.renew(t, ids[1], 1, 1, b.ok, 999)
	b.exec(t, `DELETE FROM gateway_sandbox.charges WHERE charge_id = $1`, gone.ChargeID)

	b.renew(t, ids[2], 1, 1, b.ok, 999)
	b.renew(t, ids[2], 2, 1, b.decline, 999)
	b.renew(t, ids[2], 3, 1, b.ok, 999) // period 2 was never paid

	b.renew(t, ids[3], 2, 1, b.ok, 999) // period 1 has no trace on either side

	wantFindings(t, b.reconcile(t),
		ledger.Finding{Kind: ledger.Gap, Subscription: ids[0], Period: 1},
		ledger.Finding{Kind: ledger.Gap, Subscription: ids[1], Period: 1},
		ledger.Finding{Kind: ledger.Gap, Subscription: ids[2], Period: 2},
		ledger.Finding{Kind: ledger.Gap, Subscription: ids[3], Period: 1},
	)
}

// rule ARS-8: a charge both ledgers hold, with another amount, currency or
// charge id, is a mismatch; another refunded amount is a refund difference.
func TestRule_ARS8_ReconcileFindsMismatch(t *testing.T) {
	t.Parallel()
	b := newBooks(t)
	ids := ordered(4)
	b.renew(t, ids[0], 1, 1, b.ok, 999)
	b.exec(t, `UPDATE charges SET amount_minor = 899 WHERE subscription_id = $1`, ids[0])
	b.renew(t, ids[1], 1, 1, b.ok, 999)
	b.exec(t, `UPDATE charges SET currency = 'EUR' WHERE subscription_id = $1`, ids[1])
	b.renew(t, ids[2], 1, 1, b.ok, 999)
	b.exec(t, `UPDATE charges SET charge_id = 'ch_other' WHERE subscription_id = $1`, ids[2])
	refunded := b.renew(t, ids[3], 1, 1, b.ok, 999)
	b.refund(t, ids[3], 1, refunded, true) // the engine never recorded the refund

	r := b.reconcile(t)
	wantFindings(t, r,
		ledger.Finding{Kind: ledger.Mismatch, Subscription: ids[0], Period: 1},
		ledger.Finding{Kind: ledger.Mismatch, Subscription: ids[1], Period: 1},
		ledger.Finding{Kind: ledger.Mismatch, Subscription: ids[2], Period: 1},
		ledger.Finding{Kind: ledger.Refund, Subscription: ids[3], Period: 1},
	)
	for i, want := range []string{"899 USD", "999 EUR", "ch_other", "0 USD (minor units) refunded, the gateway USD 9.99"} {
		if !strings.Contains(r.Findings[i].Detail, want) {
			t.Errorf("finding %d = %q, want it to name %q", i, r.Findings[i].Detail, want)
		}
	}
}

// pages is a gateway ledger of n charges, served a page at a time as
// ChargeFilter asks.
type pages struct {
	entries []payment.LedgerEntry
	calls   int
}

func (p *pages) Charges(_ context.Context, f payment.ChargeFilter) ([]payment.LedgerEntry, error) {
	p.calls++
	from := 0
	if f.After != "" {
		from = slices.IndexFunc(p.entries, func(e payment.LedgerEntry) bool { return e.ChargeID == f.After }) + 1
	}
	return p.entries[from:min(from+f.Limit, len(p.entries))], nil
}

func TestReadGateway_ReadsEveryPage(t *testing.T) {
	t.Parallel()
	n := 2*payment.MaxChargeFilterLimit + 1
	p := &pages{}
	for i := range n {
		p.entries = append(p.entries, payment.LedgerEntry{ChargeID: fmt.Sprintf("ch_%d", i)})
	}
	got, err := ledger.ReadGateway(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n || got[n-1].ChargeID != p.entries[n-1].ChargeID || p.calls != 3 {
		t.Errorf("ReadGateway read %d entries in %d calls, want %d in 3", len(got), p.calls, n)
	}
}
