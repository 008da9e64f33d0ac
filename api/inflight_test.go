package api_test

import (
	"cmp"
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/subs-engine/subs/domain/agentlog"
	"github.com/subs-engine/subs/domain/payment"
	"github.com/subs-engine/subs/eventstore"
)

// The tests of this file meet the renewal worker in the middle of a
// gateway call: a holdGateway stops the next charge or refund until the
// test lets it go on.

// holdGateway passes every call to the sandbox; the next charge or refund
// after hold waits inside the gateway until release. failRefunds refunds
// answer ErrUnavailable before the sandbox sees them.
type holdGateway struct {
	payment.Gateway
	holdCharge  atomic.Bool
	holdRefund  atomic.Bool
	failRefunds atomic.Int32
	entered     chan string
	release     chan struct{}
}

func newHoldGateway(g payment.Gateway) *holdGateway {
	return &holdGateway{Gateway: g, entered: make(chan string, 16), release: make(chan struct{})}
}

func (h *holdGateway) Charge(ctx context.Context, req payment.ChargeRequest) (payment.ChargeOutcome, error) {
	if h.holdCharge.CompareAndSwap(true, false) {
		h.entered <- "charge " + req.IdempotencyKey
		<-h.release
	}
	return h.Gateway.Charge(ctx, req)
}

func (h *holdGateway) Refund(ctx context.Context, req payment.RefundRequest) (payment.RefundOutcome, error) {
	if h.failRefunds.Load() > 0 {
		h.failRefunds.Add(-1)
		return payment.RefundOutcome{}, payment.ErrUnavailable
	}
	if h.holdRefund.CompareAndSwap(true, false) {
		h.entered <- "refund " + req.IdempotencyKey
		<-h.release
	}
	return h.Gateway.Refund(ctx, req)
}

// newHeldEngine is an engine whose gateway a test can hold.
func newHeldEngine(t *testing.T) (*engineEnv, *holdGateway) {
	var gw *holdGateway
	e := newEngineEnvWithGateway(t, func(g payment.Gateway) payment.Gateway { gw = newHoldGateway(g); return gw })
	return e, gw
}

// chargeInFlight starts a renewal run at the clock's instant, which the
// gateway holds in its charge; wait lets the charge go on and returns when
// the run is over.
func (e *engineEnv) chargeInFlight(gw *holdGateway) (wait func()) {
	e.t.Helper()
	gw.holdCharge.Store(true)
	done := make(chan error, 1)
	go func() {
		res, err := e.renewals.Run(context.Background(), e.clock.Now())
		if err == nil && res.Failed > 0 {
			err = context.DeadlineExceeded
		}
		done <- err
	}()
	<-gw.entered // the charge is requested and recorded, its gateway call under way
	return func() {
		e.t.Helper()
		close(gw.release)
		if err := <-done; err != nil {
			e.t.Fatalf("the renewal run: %v", err)
		}
		e.caughtUp()
	}
}

// gatewayLedger counts the sandbox's successful charges and its refunds.
func (e *engineEnv) gatewayLedger() (charges, refunds int) {
	e.t.Helper()
	ctx := context.Background()
	if err := e.store.Pool().QueryRow(ctx, `SELECT count(*) FROM gateway_sandbox.charges WHERE status = 'succeeded'`).Scan(&charges); err != nil {
		e.t.Fatal(err)
	}
	if err := e.store.Pool().QueryRow(ctx, `SELECT count(*) FROM gateway_sandbox.refunds`).Scan(&refunds); err != nil {
		e.t.Fatal(err)
	}
	return charges, refunds
}

// rule MON-1, ARS-3: a monthly plan cancelled (past MON-2's 30 days), or an
// annual subscription's renewal turned off, while the renewal's charge is
// in flight: the charge goes through at the gateway (ARS-8), and is
// refunded without being asked, the plan ending at the date the customer
// was shown.
func TestRule_MON1_CancelledWhileTheRenewalChargeIsInFlightIsRefunded(t *testing.T) {
	t.Parallel()
	cases := []struct {
		term, method, path, body string
		charge                   func(e *engineEnv, expires time.Time)
	}{
		{"monthly", "POST", "/cancel", "", func(e *engineEnv, expires time.Time) {
			e.advance(expires.AddDate(0, 0, -3).Sub(e.clock.Now()))
			e.runRenewals() // the notice
			e.advance(3 * 24 * time.Hour)
		}},
		{"annual", "PUT", "/auto-renewal", `{"on":false}`, func(e *engineEnv, expires time.Time) {
			e.advance(expires.AddDate(0, 0, -30).Sub(e.clock.Now()))
			e.runRenewals() // the notice
			e.advance(23 * 24 * time.Hour)
		}},
	}
	for _, c := range cases {
		t.Run(c.term, func(t *testing.T) {
			t.Parallel()
			e, gw := newHeldEngine(t)
			ann := e.sessions("ann@example.com")
			id := e.buyOne(ann(), "NS-STD", c.term)
			expires := mustTime(t, e.row(ann(), id)["expires_at"])
			c.charge(e, expires)
			e.caughtUp()
			wait := e.chargeInFlight(gw)
			off := e.want(e.call(c.method, "/v1/subscriptions/"+id+c.path, ann(), c.body), http.StatusOK).json(t)
			wait()
			e.advance(time.Minute)
			e.runRenewals() // the refund, due since the charge
			after := e.row(ann(), id)
			if !mustTime(t, after["expires_at"]).Equal(mustTime(t, off["expires_at"])) || after["auto_renewal"] != false {
				t.Errorf("after the charge: %v; want the expiry the customer was shown, %v, renewal off", after, off["expires_at"])
			}
			if charges, refunds := e.gatewayLedger(); refunds != charges-1 {
				t.Errorf("gateway: %d charges (the order's and the renewal), %d refunds; want the renewal refunded", charges, refunds)
			}
		})
	}
}

// rule ARS-8, ARS-7: a refund asked for while the renewal's charge is in
// flight is told to come back (409 with Retry-After, naming the rule); the
// answer is not kept for its Idempotency-Key, so the same request, sent
// again once the charge settled, refunds it.
func TestRule_ARS8_RefundAskedDuringTheChargeIsToldToComeBack(t *testing.T) {
	t.Parallel()
	e, gw := newHeldEngine(t)
	ann := e.sessions("ann@example.com")
	id := e.buyOne(ann(), "NS-STD", "annual")
	expires := mustTime(t, e.row(ann(), id)["expires_at"])
	e.advance(expires.AddDate(0, 0, -30).Sub(e.clock.Now()))
	e.runRenewals()
	e.advance(23 * 24 * time.Hour)
	e.caughtUp()
	wait := e.chargeInFlight(gw)
	tok := ann()
	during := e.postWithKey("/v1/subscriptions/"+id+"/refund", tok, "refund-1", "")
	if during.status != http.StatusConflict || during.header.Get("Retry-After") == "" || !strings.Contains(string(during.body), "ARS-8") {
		t.Errorf("during the charge: %d Retry-After %q %s; want 409 with Retry-After naming ARS-8", during.status,
			during.header.Get("Retry-After"), during.body)
	}
	wait()
	after := e.postWithKey("/v1/subscriptions/"+id+"/refund", tok, "refund-1", "")
	if after.status != http.StatusOK || after.header.Get("Idempotent-Replayed") != "" {
		t.Errorf("the same key once settled: %d replayed %q %s; want the refund made", after.status, after.header.Get("Idempotent-Replayed"), after.body)
	}
	if _, refunds := e.gatewayLedger(); refunds != 1 {
		t.Errorf("gateway refunds %d, want 1", refunds)
	}
}

// rule AGT-1: an agent's refund whose gateway call is made later (the
// gateway could not answer the request) is recorded as the agent's, with
// the reason and log code, caused by the request: whether the renewal
// worker makes the call, or the customer's next command on the
// subscription does.
func TestRule_AGT1_RefundMadeLaterIsTheAgents(t *testing.T) {
	t.Parallel()
	for _, by := range []string{"worker", "customer"} {
		t.Run(by, func(t *testing.T) {
			t.Parallel()
			e, gw := newHeldEngine(t)
			agent := e.agent("ava")
			ann := e.sessions("ann@example.com")
			id := e.buyOne(ann(), "NS-DLX", "annual")
			e.renewOnce(id, mustTime(t, e.row(ann(), id)["expires_at"]))
			e.advance(24 * time.Hour)
			gw.failRefunds.Store(1)
			pending := e.want(e.call("POST", "/v1/agent/subscriptions/"+id+"/refund", agent, `{"reason":"customer forgot to turn renewal off"}`),
				http.StatusOK).json(t)
			if pending["refunded"] != false {
				t.Fatalf("the gateway could not answer, yet: %v", pending)
			}
			e.advance(time.Minute)
			if by == "worker" {
				e.runRenewals()
			} else {
				e.want(e.call("PUT", "/v1/subscriptions/"+id+"/auto-renewal", ann(), `{"on":false}`), http.StatusOK)
			}
			var request eventstore.RecordedEvent
			refunded := 0
			for _, rec := range e.events("subscription-" + id) {
				switch rec.Type {
				case "subscription.refund_requested":
					request = rec
				case "subscription.refunded":
					refunded++
					m := rec.Metadata
					if m.ActorKind != eventstore.ActorAgent || m.ActorID != "ava" || m.Reason != "customer forgot to turn renewal off" ||
						m.LogCode != agentlog.Refund || m.CausationID != cmp.Or(request.Metadata.CommandID, request.ID.String()) {
						t.Errorf("refunded with %+v; want the agent's, caused by the request %+v", m, request)
					}
				}
			}
			if refunded != 1 {
				t.Errorf("%d refunds recorded, want 1", refunded)
			}
		})
	}
}

// rule KEY-3: activations of one subscription sent at once are each
// answered: activated, or told to come back (409 with Retry-After) when
// the others changed it at every attempt; never a server error, and the
// seats used are the activations answered 201.
func TestRule_KEY3_ActivationsAtOnceAreActivatedOrToldToComeBack(t *testing.T) {
	t.Parallel()
	e := newEngineEnv(t)
	ann := e.sessions("ann@example.com")
	id := e.buyOne(ann(), "NS-PRM", "annual")
	tok := ann()
	seats := int(e.row(tok, id)["seats"].(float64))
	var reqs [][4]string
	for i := range seats {
		reqs = append(reqs, [4]string{"POST", "/v1/subscriptions/" + id + "/activations", tok, `{"device_id":"pc-` + string(rune('a'+i)) + `"}`})
	}
	activated := 0
	for _, r := range e.concurrently(reqs...) {
		switch {
		case r.status == http.StatusCreated:
			activated++
		case r.status == http.StatusConflict && r.header.Get("Retry-After") != "":
		default:
			t.Errorf("an activation answered %d %s", r.status, r.body)
		}
	}
	e.caughtUp()
	if used := int(e.row(tok, id)["seats_used"].(float64)); used != activated {
		t.Errorf("seats used %d, want the %d activations answered 201", used, activated)
	}
}
