// Package gatewaytest is the payment.Gateway contract as one behavioural
// suite (Watermill's pubsub/tests style): Run it against every
// implementation — the in-process sandbox, the HTTP client talking to the
// sandbox's handler — so that they keep the same promises the engine relies
// on (DESIGN §6, ARS-8, ACC-8).
package gatewaytest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/subs-engine/subs/domain/clock"
	"github.com/subs-engine/subs/domain/money"
	"github.com/subs-engine/subs/domain/payment"
	"github.com/subs-engine/subs/workers/gateway"
)

// Start is the instant at which every suite test's clock (Clock) starts:
// mid-January, so that a card expiring in January is valid until the suite
// moves the clock to February.
var Start = time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)

// CVV is the security code of every card the suite tokenizes, exported so
// that a test can assert it was stored nowhere (SEC-3). It is chosen to be
// unlike any amount or expiry the suite uses.
const CVV = "917"

// HolderName is the holder of every card and account the suite tokenizes.
const HolderName = "Ada Lovelace"

var clocks sync.Map // *testing.T → *clock.Simulated

// Clock returns the simulated clock of the suite test t, showing Start
// until the suite moves it. A newGateway given to Run must build its gateway
// on Clock(t) for the t it is given: that is how the suite moves a card
// past its expiry between tokenizing and charging it.
func Clock(t *testing.T) *clock.Simulated {
	c, loaded := clocks.LoadOrStore(t, clock.NewSimulated(Start))
	if !loaded {
		t.Cleanup(func() { clocks.Delete(t) })
	}
	return c.(*clock.Simulated)
}

// Run runs the gateway contract against the gateways newGateway returns.
// Each subtest calls newGateway with its own *testing.T, and may run in
// parallel with the others: every call must return a gateway with empty
// state (its own database), no injected failures, built on Clock(t).
func Run(t *testing.T, newGateway func(t *testing.T) payment.Gateway) {
	t.Helper()
	tests := []struct {
		name string
		test func(t *testing.T, g payment.Gateway)
	}{
		{"TokenizeTestCards", testTokenizeTestCards},
		{"TokenizeDirectDebit", testTokenizeDirectDebit},
		{"BadLuhnNamesTheNumber", testBadLuhn},
		{"ChargeOutcomes", testChargeOutcomes},
		{"ExpiredAtChargeTime", testExpiredAtChargeTime},
		{"IdempotentRepeat", testIdempotentRepeat},
		{"ConcurrentRepeat", testConcurrentRepeat},
		{"KeyReusedWithOtherRequest", testKeyReused},
		{"UnknownToken", testUnknownToken},
		{"InvalidRequest", testInvalidRequest},
		{"RefundIdempotency", testRefundIdempotency},
		{"Ledger", testLedger},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.test(t, newGateway(t))
		})
	}
}

// MustCard builds a card valid at Start, expiring 12/2030 unless given.
func MustCard(tb testing.TB, number string, exp ...int) payment.Card {
	tb.Helper()
	month, year := 12, 2030
	if len(exp) == 2 {
		month, year = exp[0], exp[1]
	}
	c, err := payment.NewCard(number, CVV, HolderName, month, year, Start)
	if err != nil {
		tb.Fatalf("NewCard(test card ending %s): %v", number[len(number)-4:], err)
	}
	return c
}

// MustTokenize tokenizes a test card and fails the test if it is refused.
func MustTokenize(tb testing.TB, g payment.Gateway, number string, exp ...int) payment.PaymentMethod {
	tb.Helper()
	m, err := g.TokenizeCard(context.Background(), MustCard(tb, number, exp...))
	if err != nil {
		tb.Fatalf("TokenizeCard(card ending %s): %v", number[len(number)-4:], err)
	}
	return m
}

// MustCharge charges and fails the test on an error.
func MustCharge(tb testing.TB, g payment.Gateway, req payment.ChargeRequest) payment.ChargeOutcome {
	tb.Helper()
	out, err := g.Charge(context.Background(), req)
	if err != nil {
		tb.Fatalf("Charge(%s): %v", req.IdempotencyKey, err)
	}
	return out
}

// MustLedger lists the ledger and fails the test on an error.
func MustLedger(tb testing.TB, g payment.Gateway, f payment.ChargeFilter) []payment.LedgerEntry {
	tb.Helper()
	entries, err := g.Charges(context.Background(), f)
	if err != nil {
		tb.Fatalf("Charges(%+v): %v", f, err)
	}
	return entries
}

// NewKey returns a fresh idempotency key.
func NewKey(prefix string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// EUR returns minor units of euros.
func EUR(minor int64) money.Money { return money.New(minor, money.EUR) }

func testTokenizeTestCards(t *testing.T, g payment.Gateway) {
	tests := []struct {
		name, number string
		wantCode     string // "" when it tokenizes
		wantField    string
		wantBrand    payment.Brand
	}{
		{"succeeds", gateway.CardSucceeds, "", "", payment.Visa},
		{"refused", gateway.CardRefused, payment.CodeCardDeclined, payment.FieldCardNumber, payment.Visa},
		{"refused expired", gateway.CardRefusedExpired, payment.CodeExpiredCard, payment.FieldCardExpiry, payment.Visa},
		{"charges declined", gateway.CardChargeDeclined, "", "", payment.Visa},
		{"insufficient funds", gateway.CardInsufficientFunds, "", "", payment.Visa},
		{"other valid mastercard", "5555555555554444", "", "", payment.Mastercard},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := g.TokenizeCard(context.Background(), MustCard(t, tt.number))
			if tt.wantCode != "" {
				var ce *payment.CardError
				if !errors.As(err, &ce) {
					t.Fatalf("TokenizeCard = %v, %v; want a *payment.CardError %s", m, err, tt.wantCode)
				}
				if ce.Code != tt.wantCode || ce.Field != tt.wantField {
					t.Errorf("CardError = {%s %s}, want {%s %s}", ce.Code, ce.Field, tt.wantCode, tt.wantField)
				}
				return
			}
			if err != nil {
				t.Fatalf("TokenizeCard: %v", err)
			}
			if m.Kind() != payment.KindCard || m.Token() == "" || m.Brand() != tt.wantBrand ||
				m.LastFour() != tt.number[len(tt.number)-4:] || m.ExpMonth() != 12 || m.ExpYear() != 2030 || m.HolderName() != HolderName {
				t.Errorf("method = %s %q %s %s %d/%d %q; want card, a token, %s, %s, 12/2030, %q",
					m.Kind(), m.Token(), m.Brand(), m.LastFour(), m.ExpMonth(), m.ExpYear(), m.HolderName(),
					tt.wantBrand, tt.number[len(tt.number)-4:], HolderName)
			}
		})
	}
	a := MustTokenize(t, g, gateway.CardSucceeds)
	b := MustTokenize(t, g, gateway.CardSucceeds)
	if a.Token() == b.Token() {
		t.Errorf("two tokenizations gave the same token %q", a.Token())
	}
}

func testTokenizeDirectDebit(t *testing.T, g payment.Gateway) {
	for _, iban := range []string{gateway.IBANSucceedsDE, gateway.IBANSucceedsAT, gateway.IBANSucceedsNL, gateway.IBANDebitDeclined} {
		acct, err := payment.NewBankAccount(iban, HolderName)
		if err != nil {
			t.Fatalf("NewBankAccount(%s…): %v", iban[:2], err)
		}
		m, err := g.TokenizeDirectDebit(context.Background(), acct)
		if err != nil {
			t.Fatalf("TokenizeDirectDebit(%s): %v", acct, err)
		}
		if m.Kind() != payment.KindDirectDebit || m.Token() == "" || m.Country() != iban[:2] || m.LastFour() != iban[len(iban)-4:] || m.HolderName() != HolderName {
			t.Errorf("method = %s %q %s %s %q; want direct_debit, a token, %s, %s, %q",
				m.Kind(), m.Token(), m.Country(), m.LastFour(), m.HolderName(), iban[:2], iban[len(iban)-4:], HolderName)
		}
	}
}

// testBadLuhn: a number with a wrong check digit cannot even become a Card,
// so no gateway sees it; the refusal names the field for the API.
func testBadLuhn(t *testing.T, _ payment.Gateway) {
	_, err := payment.NewCard("4242 4242 4242 4241", CVV, HolderName, 12, 2030, Start)
	var fe *payment.FieldError
	if !errors.As(err, &fe) || fe.Field != payment.FieldCardNumber {
		t.Fatalf("NewCard(bad Luhn) = %v, want a *FieldError on %s", err, payment.FieldCardNumber)
	}
}

func testChargeOutcomes(t *testing.T, g payment.Gateway) {
	dd := func(iban string) payment.PaymentMethod {
		acct, err := payment.NewBankAccount(iban, HolderName)
		if err != nil {
			t.Fatal(err)
		}
		m, err := g.TokenizeDirectDebit(context.Background(), acct)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	tests := []struct {
		name       string
		method     payment.PaymentMethod
		wantStatus payment.ChargeStatus
		wantCode   string
	}{
		{"card succeeds", MustTokenize(t, g, gateway.CardSucceeds), payment.Succeeded, ""},
		{"card declined", MustTokenize(t, g, gateway.CardChargeDeclined), payment.Declined, payment.CodeCardDeclined},
		{"insufficient funds", MustTokenize(t, g, gateway.CardInsufficientFunds), payment.Declined, payment.CodeInsufficientFunds},
		{"direct debit succeeds", dd(gateway.IBANSucceedsNL), payment.Succeeded, ""},
		{"direct debit declined", dd(gateway.IBANDebitDeclined), payment.Declined, payment.CodeInsufficientFunds},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := payment.ChargeRequest{IdempotencyKey: NewKey("charge"), Token: tt.method.Token(), Amount: EUR(4999), Description: "Norton 360 Deluxe, 1 year"}
			out := MustCharge(t, g, req)
			if out.Status != tt.wantStatus || out.DeclineCode != tt.wantCode {
				t.Errorf("outcome = %s %q, want %s %q", out.Status, out.DeclineCode, tt.wantStatus, tt.wantCode)
			}
			if out.ChargeID == "" || !out.Amount.Equal(req.Amount) || out.IdempotencyKey != req.IdempotencyKey {
				t.Errorf("outcome = %+v, want a charge id, amount %s and key %s", out, req.Amount, req.IdempotencyKey)
			}
		})
	}
}

func testExpiredAtChargeTime(t *testing.T, g payment.Gateway) {
	m := MustTokenize(t, g, gateway.CardSucceeds, 1, 2026) // valid through 31 January
	first := MustCharge(t, g, payment.ChargeRequest{IdempotencyKey: NewKey("jan"), Token: m.Token(), Amount: EUR(999)})
	if first.Status != payment.Succeeded {
		t.Fatalf("charge in January = %s %s, want succeeded", first.Status, first.DeclineCode)
	}
	if err := Clock(t).Set(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	later := MustCharge(t, g, payment.ChargeRequest{IdempotencyKey: NewKey("feb"), Token: m.Token(), Amount: EUR(999)})
	if later.Status != payment.Declined || later.DeclineCode != payment.CodeExpiredCard {
		t.Errorf("charge on 1 February of a card expiring 01/2026 = %s %q, want declined %s", later.Status, later.DeclineCode, payment.CodeExpiredCard)
	}
}

func testIdempotentRepeat(t *testing.T, g payment.Gateway) {
	m := MustTokenize(t, g, gateway.CardSucceeds)
	req := payment.ChargeRequest{IdempotencyKey: NewKey("repeat"), Token: m.Token(), Amount: EUR(4999), Description: "renewal"}
	first := MustCharge(t, g, req)
	again := MustCharge(t, g, req)
	if again != first {
		t.Errorf("repeated charge = %+v, want the first outcome %+v", again, first)
	}
	if n := len(MustLedger(t, g, payment.ChargeFilter{})); n != 1 {
		t.Errorf("ledger has %d entries after a repeated charge, want 1", n)
	}

	// A first decline is an outcome too, and is what a repeat returns.
	declining := MustTokenize(t, g, gateway.CardChargeDeclined)
	req = payment.ChargeRequest{IdempotencyKey: NewKey("repeat-declined"), Token: declining.Token(), Amount: EUR(4999)}
	first = MustCharge(t, g, req)
	if again := MustCharge(t, g, req); again != first || first.Status != payment.Declined {
		t.Errorf("repeated declined charge = %+v, first %+v; want the same decline", again, first)
	}
	if n := len(MustLedger(t, g, payment.ChargeFilter{})); n != 2 {
		t.Errorf("ledger has %d entries, want 2", n)
	}
}

func testConcurrentRepeat(t *testing.T, g payment.Gateway) {
	m := MustTokenize(t, g, gateway.CardSucceeds)
	req := payment.ChargeRequest{IdempotencyKey: NewKey("concurrent"), Token: m.Token(), Amount: EUR(4999)}
	const n = 20
	outs := make([]payment.ChargeOutcome, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			outs[i], errs[i] = g.Charge(context.Background(), req)
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("charge %d: %v", i, errs[i])
		}
		if outs[i] != outs[0] {
			t.Errorf("charge %d = %+v, charge 0 = %+v; want one outcome", i, outs[i], outs[0])
		}
	}
	entries := MustLedger(t, g, payment.ChargeFilter{})
	if len(entries) != 1 || entries[0].ChargeID != outs[0].ChargeID {
		t.Errorf("ledger = %+v, want one entry, charge %s", entries, outs[0].ChargeID)
	}
}

func testKeyReused(t *testing.T, g payment.Gateway) {
	m := MustTokenize(t, g, gateway.CardSucceeds)
	other := MustTokenize(t, g, gateway.CardSucceeds)
	req := payment.ChargeRequest{IdempotencyKey: NewKey("reused"), Token: m.Token(), Amount: EUR(4999), Description: "renewal"}
	first := MustCharge(t, g, req)
	for name, changed := range map[string]payment.ChargeRequest{
		"other amount":      {IdempotencyKey: req.IdempotencyKey, Token: m.Token(), Amount: EUR(5999), Description: "renewal"},
		"other currency":    {IdempotencyKey: req.IdempotencyKey, Token: m.Token(), Amount: money.New(4999, money.USD), Description: "renewal"},
		"other token":       {IdempotencyKey: req.IdempotencyKey, Token: other.Token(), Amount: EUR(4999), Description: "renewal"},
		"other description": {IdempotencyKey: req.IdempotencyKey, Token: m.Token(), Amount: EUR(4999), Description: "something else"},
	} {
		if out, err := g.Charge(context.Background(), changed); !errors.Is(err, payment.ErrIdempotencyMismatch) {
			t.Errorf("%s: Charge = %+v, %v; want ErrIdempotencyMismatch", name, out, err)
		}
	}
	entries := MustLedger(t, g, payment.ChargeFilter{})
	if len(entries) != 1 || entries[0].ChargeID != first.ChargeID || !entries[0].Amount.Equal(EUR(4999)) {
		t.Errorf("ledger = %+v, want only the first charge of EUR 49.99", entries)
	}
}

func testUnknownToken(t *testing.T, g payment.Gateway) {
	_, err := g.Charge(context.Background(), payment.ChargeRequest{IdempotencyKey: NewKey("unknown"), Token: "tok_never_issued", Amount: EUR(100)})
	if !errors.Is(err, payment.ErrUnknownToken) {
		t.Errorf("Charge(unknown token) = %v, want ErrUnknownToken", err)
	}
}

func testInvalidRequest(t *testing.T, g payment.Gateway) {
	m := MustTokenize(t, g, gateway.CardSucceeds)
	tests := []struct {
		name      string
		req       payment.ChargeRequest
		wantField string
	}{
		{"no key", payment.ChargeRequest{Token: m.Token(), Amount: EUR(100)}, payment.FieldIdempotencyKey},
		{"no token", payment.ChargeRequest{IdempotencyKey: NewKey("k"), Amount: EUR(100)}, payment.FieldToken},
		{"zero amount", payment.ChargeRequest{IdempotencyKey: NewKey("k"), Token: m.Token(), Amount: EUR(0)}, payment.FieldAmount},
		{"negative amount", payment.ChargeRequest{IdempotencyKey: NewKey("k"), Token: m.Token(), Amount: EUR(-1)}, payment.FieldAmount},
		{"no currency", payment.ChargeRequest{IdempotencyKey: NewKey("k"), Token: m.Token()}, payment.FieldAmount},
	}
	for _, tt := range tests {
		_, err := g.Charge(context.Background(), tt.req)
		var fe *payment.FieldError
		if !errors.As(err, &fe) || fe.Field != tt.wantField {
			t.Errorf("%s: Charge = %v, want a *FieldError on %s", tt.name, err, tt.wantField)
		}
	}
	if n := len(MustLedger(t, g, payment.ChargeFilter{})); n != 0 {
		t.Errorf("ledger has %d entries after invalid requests, want 0", n)
	}
}

func testRefundIdempotency(t *testing.T, g payment.Gateway) {
	ctx := context.Background()
	m := MustTokenize(t, g, gateway.CardSucceeds)
	charge := MustCharge(t, g, payment.ChargeRequest{IdempotencyKey: NewKey("charge"), Token: m.Token(), Amount: EUR(4999)})

	req := payment.RefundRequest{IdempotencyKey: NewKey("refund"), ChargeID: charge.ChargeID, Amount: EUR(2000)}
	first, err := g.Refund(ctx, req)
	if err != nil {
		t.Fatalf("Refund: %v", err)
	}
	if first.RefundID == "" || first.ChargeID != charge.ChargeID || !first.Amount.Equal(EUR(2000)) {
		t.Errorf("refund = %+v, want an id, charge %s, EUR 20.00", first, charge.ChargeID)
	}
	if again, err := g.Refund(ctx, req); err != nil || again != first {
		t.Errorf("repeated refund = %+v, %v; want the first %+v", again, err, first)
	}
	if _, err := g.Refund(ctx, payment.RefundRequest{IdempotencyKey: req.IdempotencyKey, ChargeID: charge.ChargeID, Amount: EUR(2500)}); !errors.Is(err, payment.ErrIdempotencyMismatch) {
		t.Errorf("refund key reused with another amount: %v, want ErrIdempotencyMismatch", err)
	}
	if _, err := g.Refund(ctx, payment.RefundRequest{IdempotencyKey: NewKey("refund"), ChargeID: charge.ChargeID, Amount: EUR(3000)}); !errors.Is(err, payment.ErrRefundExceedsCharge) {
		t.Errorf("refund beyond the charge: %v, want ErrRefundExceedsCharge", err)
	}
	if _, err := g.Refund(ctx, payment.RefundRequest{IdempotencyKey: NewKey("refund"), ChargeID: charge.ChargeID, Amount: EUR(2999)}); err != nil {
		t.Errorf("refund of the rest: %v", err)
	}
	entries := MustLedger(t, g, payment.ChargeFilter{IdempotencyKey: charge.IdempotencyKey})
	if len(entries) != 1 || !entries[0].Refunded.Equal(EUR(4999)) {
		t.Errorf("ledger = %+v, want the charge fully refunded", entries)
	}

	declining := MustTokenize(t, g, gateway.CardChargeDeclined)
	declined := MustCharge(t, g, payment.ChargeRequest{IdempotencyKey: NewKey("charge"), Token: declining.Token(), Amount: EUR(4999)})
	for name, id := range map[string]string{"declined charge": declined.ChargeID, "unknown charge": "ch_never_made"} {
		if _, err := g.Refund(ctx, payment.RefundRequest{IdempotencyKey: NewKey("refund"), ChargeID: id, Amount: EUR(100)}); !errors.Is(err, payment.ErrUnknownCharge) {
			t.Errorf("refund of a %s: %v, want ErrUnknownCharge", name, err)
		}
	}
}

func testLedger(t *testing.T, g payment.Gateway) {
	clk := Clock(t)
	ok := MustTokenize(t, g, gateway.CardSucceeds)
	declining := MustTokenize(t, g, gateway.CardInsufficientFunds)
	var made []payment.ChargeOutcome
	var times []time.Time
	for i, m := range []payment.PaymentMethod{ok, declining, ok, ok, declining} {
		times = append(times, clk.Now())
		made = append(made, MustCharge(t, g, payment.ChargeRequest{IdempotencyKey: NewKey("ledger"), Token: m.Token(), Amount: EUR(int64(1000 + i))}))
		if err := clk.Advance(time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	all := MustLedger(t, g, payment.ChargeFilter{})
	if len(all) != len(made) {
		t.Fatalf("ledger has %d entries, want %d", len(all), len(made))
	}
	for i, e := range all {
		want := made[i]
		if e.ChargeID != want.ChargeID || e.IdempotencyKey != want.IdempotencyKey || e.Status != want.Status ||
			e.DeclineCode != want.DeclineCode || !e.Amount.Equal(want.Amount) || !e.CreatedAt.Equal(times[i]) ||
			!e.Refunded.Equal(EUR(0)) || e.Token == "" {
			t.Errorf("entry %d = %+v, want charge %+v made at %s, nothing refunded", i, e, want, times[i])
		}
	}

	page1 := MustLedger(t, g, payment.ChargeFilter{Limit: 2})
	page2 := MustLedger(t, g, payment.ChargeFilter{Limit: 2, After: page1[len(page1)-1].ChargeID})
	page3 := MustLedger(t, g, payment.ChargeFilter{Limit: 2, After: page2[len(page2)-1].ChargeID})
	var paged []string
	for _, p := range [][]payment.LedgerEntry{page1, page2, page3} {
		for _, e := range p {
			paged = append(paged, e.ChargeID)
		}
	}
	if len(paged) != len(made) || len(page3) != 1 {
		t.Fatalf("pages of 2 hold %v, want the %d charges in order", paged, len(made))
	}
	for i := range made {
		if paged[i] != made[i].ChargeID {
			t.Errorf("paged entry %d = %s, want %s", i, paged[i], made[i].ChargeID)
		}
	}

	window := MustLedger(t, g, payment.ChargeFilter{From: times[1], Until: times[3]})
	if len(window) != 2 || window[0].ChargeID != made[1].ChargeID || window[1].ChargeID != made[2].ChargeID {
		t.Errorf("window [%s, %s) = %+v, want charges 1 and 2", times[1], times[3], window)
	}
	byKey := MustLedger(t, g, payment.ChargeFilter{IdempotencyKey: made[3].IdempotencyKey})
	if len(byKey) != 1 || byKey[0].ChargeID != made[3].ChargeID {
		t.Errorf("by key = %+v, want charge 3", byKey)
	}
	if _, err := g.Charges(context.Background(), payment.ChargeFilter{Limit: -1}); err == nil {
		t.Error("Charges(Limit -1) succeeded")
	}
}
