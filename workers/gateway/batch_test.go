package gateway_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/subs-engine/subs/domain/payment"
	"github.com/subs-engine/subs/workers/gateway"
	"github.com/subs-engine/subs/workers/gateway/gatewaytest"
)

// chargedInBatches is a gateway whose every Charge goes through
// ChargeBatch, alone or beside the concurrent calls of the suite.
type chargedInBatches struct{ payment.BatchCharger }

func (g chargedInBatches) Charge(ctx context.Context, req payment.ChargeRequest) (payment.ChargeOutcome, error) {
	r := g.ChargeBatch(ctx, []payment.ChargeRequest{req})[0]
	return r.Outcome, r.Err
}

// The whole contract holds for charges made through ChargeBatch, with
// tokens the process made and with tokens another process made.
func TestSandbox_ContractChargedInBatches(t *testing.T) {
	t.Parallel()
	t.Run("tokens made here", func(t *testing.T) {
		t.Parallel()
		gatewaytest.Run(t, func(t *testing.T) payment.Gateway {
			s, _ := MustSandbox(t, gateway.SandboxConfig{Clock: gatewaytest.Clock(t)})
			return chargedInBatches{s}
		})
	})
	t.Run("tokens made elsewhere", func(t *testing.T) {
		t.Parallel()
		gatewaytest.Run(t, func(t *testing.T) payment.Gateway { return chargedInBatches{newTokenizedElsewhere(t)} })
	})
}

// One batch of every kind of request gets, request by request, what Charge
// would have answered, and the ledger one charge per key, in the batch's
// order.
func TestSandbox_ChargeBatchAnswersEachRequestAsChargeWould(t *testing.T) {
	t.Parallel()
	clk := gatewaytest.Clock(t)
	s, _ := MustSandbox(t, gateway.SandboxConfig{Clock: clk})
	ok := gatewaytest.MustTokenize(t, s, gateway.CardSucceeds).Token()
	declining := gatewaytest.MustTokenize(t, s, gateway.CardChargeDeclined).Token()
	poor := gatewaytest.MustTokenize(t, s, gateway.CardInsufficientFunds).Token()
	expiring := gatewaytest.MustTokenize(t, s, gateway.CardSucceeds, 1, 2026).Token()
	earlierKey := gatewaytest.NewKey("earlier")
	earlier := gatewaytest.MustCharge(t, s, payment.ChargeRequest{IdempotencyKey: earlierKey, Token: ok, Amount: gatewaytest.EUR(100)})
	if err := clk.Set(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)); err != nil { // the expiring card has expired
		t.Fatal(err)
	}

	keys := []string{gatewaytest.NewKey("ok"), gatewaytest.NewKey("declined"), gatewaytest.NewKey("poor"), gatewaytest.NewKey("expired")}
	const none = -1
	tests := []struct {
		name      string
		req       payment.ChargeRequest
		status    payment.ChargeStatus
		code      string
		sameAs    int   // the request whose charge this one gets; none: its own
		err       error // matched with errors.Is
		fieldErr  bool
		wantEntry bool // the first charge with its key
	}{
		{"succeeds", payment.ChargeRequest{IdempotencyKey: keys[0], Token: ok, Amount: gatewaytest.EUR(100)}, payment.Succeeded, "", none, nil, false, true},
		{"declined", payment.ChargeRequest{IdempotencyKey: keys[1], Token: declining, Amount: gatewaytest.EUR(100)}, payment.Declined, payment.CodeCardDeclined, none, nil, false, true},
		{"insufficient funds", payment.ChargeRequest{IdempotencyKey: keys[2], Token: poor, Amount: gatewaytest.EUR(100)}, payment.Declined, payment.CodeInsufficientFunds, none, nil, false, true},
		{"expired at the charge", payment.ChargeRequest{IdempotencyKey: keys[3], Token: expiring, Amount: gatewaytest.EUR(100)}, payment.Declined, payment.CodeExpiredCard, none, nil, false, true},
		{"a key twice in the batch", payment.ChargeRequest{IdempotencyKey: keys[0], Token: ok, Amount: gatewaytest.EUR(100)}, payment.Succeeded, "", 0, nil, false, false},
		{"a key charged before", payment.ChargeRequest{IdempotencyKey: earlierKey, Token: ok, Amount: gatewaytest.EUR(100)}, payment.Succeeded, "", none, nil, false, false},
		{"a key reused for another amount", payment.ChargeRequest{IdempotencyKey: earlierKey, Token: ok, Amount: gatewaytest.EUR(200)}, payment.ChargeStatus{}, "", none, payment.ErrIdempotencyMismatch, false, false},
		{"an unknown token", payment.ChargeRequest{IdempotencyKey: gatewaytest.NewKey("unknown"), Token: "tok_unknown", Amount: gatewaytest.EUR(100)}, payment.ChargeStatus{}, "", none, payment.ErrUnknownToken, false, false},
		{"no key", payment.ChargeRequest{Token: ok, Amount: gatewaytest.EUR(100)}, payment.ChargeStatus{}, "", none, nil, true, false},
	}
	reqs := make([]payment.ChargeRequest, len(tests))
	for i, tt := range tests {
		reqs[i] = tt.req
	}
	results := s.ChargeBatch(context.Background(), reqs)
	if len(results) != len(reqs) {
		t.Fatalf("ChargeBatch returned %d results for %d requests", len(results), len(reqs))
	}
	for i, tt := range tests {
		got := results[i]
		var fe *payment.FieldError
		switch {
		case tt.err != nil:
			if !errors.Is(got.Err, tt.err) {
				t.Errorf("%s: %+v, %v; want %v", tt.name, got.Outcome, got.Err, tt.err)
			}
		case tt.fieldErr:
			if !errors.As(got.Err, &fe) {
				t.Errorf("%s: %+v, %v; want a *payment.FieldError", tt.name, got.Outcome, got.Err)
			}
		case got.Err != nil:
			t.Errorf("%s: %v", tt.name, got.Err)
		case got.Outcome.Status != tt.status || got.Outcome.DeclineCode != tt.code || got.Outcome.IdempotencyKey != tt.req.IdempotencyKey ||
			!got.Outcome.Amount.Equal(tt.req.Amount) || got.Outcome.ChargeID == "":
			t.Errorf("%s: %+v, want %s %q of %s with its key", tt.name, got.Outcome, tt.status, tt.code, tt.req.Amount)
		case tt.sameAs != none && got.Outcome != results[tt.sameAs].Outcome:
			t.Errorf("%s: %+v, want the charge of the first request with its key, %+v", tt.name, got.Outcome, results[tt.sameAs].Outcome)
		case tt.req.IdempotencyKey == earlierKey && got.Outcome != earlier:
			t.Errorf("%s: %+v, want the earlier charge %+v", tt.name, got.Outcome, earlier)
		}
	}

	entries := gatewaytest.MustLedger(t, s, payment.ChargeFilter{})
	wantKeys := []string{earlierKey}
	for i, tt := range tests {
		if tt.wantEntry {
			wantKeys = append(wantKeys, tt.req.IdempotencyKey)
			if results[i].Err == nil && entries[len(wantKeys)-1].ChargeID != results[i].Outcome.ChargeID {
				t.Errorf("ledger entry %d is charge %s, want %s's, %s", len(wantKeys)-1, entries[len(wantKeys)-1].ChargeID, tt.name, results[i].Outcome.ChargeID)
			}
		}
	}
	if len(entries) != len(wantKeys) {
		t.Fatalf("ledger has %d entries, want %d (one per key)", len(entries), len(wantKeys))
	}
	for i, e := range entries {
		if e.IdempotencyKey != wantKeys[i] {
			t.Errorf("ledger entry %d has key %s, want %s", i, e.IdempotencyKey, wantKeys[i])
		}
	}
}

// rule ARS-8: charges made in batches through random failures and lost
// answers, each retried with its key until answered, are each made once,
// and every answer is the charge the ledger holds for its key.
func TestRule_ARS8_ChargeBatchRetriedThroughFaultsChargesEachKeyOnce(t *testing.T) {
	t.Parallel()
	reliable, pool := MustSandbox(t, gateway.SandboxConfig{})
	faulty, err := gateway.NewSandbox(context.Background(), pool, gateway.SandboxConfig{FailureRate: 0.3, LostResponseRate: 0.3, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	token := gatewaytest.MustTokenize(t, reliable, gateway.CardSucceeds).Token() // known to faulty from the database
	const n = 40
	pending := make([]payment.ChargeRequest, n)
	for i := range pending {
		pending[i] = payment.ChargeRequest{IdempotencyKey: gatewaytest.NewKey("batch"), Token: token, Amount: gatewaytest.EUR(int64(100 + i))}
	}
	answered := map[string]payment.ChargeOutcome{}
	for round := 0; len(pending) > 0; round++ {
		if round == 100 {
			t.Fatalf("%d charges still unanswered after %d rounds", len(pending), round)
		}
		var again []payment.ChargeRequest
		for i, r := range faulty.ChargeBatch(context.Background(), pending) {
			switch {
			case errors.Is(r.Err, payment.ErrUnavailable):
				again = append(again, pending[i])
			case r.Err != nil:
				t.Fatalf("charge %s: %v", pending[i].IdempotencyKey, r.Err)
			default:
				answered[pending[i].IdempotencyKey] = r.Outcome
			}
		}
		if round == 0 {
			// Made but unanswered: lost; neither made nor answered: failed.
			made := len(gatewaytest.MustLedger(t, reliable, payment.ChargeFilter{}))
			if lost, failed := made-len(answered), n-made; lost == 0 || failed == 0 {
				t.Errorf("first round: %d answers lost and %d requests failed; want some of each", lost, failed)
			}
		}
		pending = again
	}
	entries := gatewaytest.MustLedger(t, reliable, payment.ChargeFilter{})
	if len(entries) != n {
		t.Fatalf("ledger has %d charges, want %d: one per key", len(entries), n)
	}
	for _, e := range entries {
		if out, ok := answered[e.IdempotencyKey]; !ok || out.ChargeID != e.ChargeID || out.Status != payment.Succeeded {
			t.Errorf("key %s: answered %+v, ledger has charge %s", e.IdempotencyKey, out, e.ChargeID)
		}
	}
}
