package subscription_test

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/domain/catalog"
	"github.com/subs-engine/subs/domain/money"
	"github.com/subs-engine/subs/domain/payment"
	"github.com/subs-engine/subs/domain/policy"
	"github.com/subs-engine/subs/domain/subscription"
)

// The renewal tests drive one subscription with a simulated clock: a sim
// holds the state and the instant it last decided at, and moves forward by
// calling RunDue at each NextDue (TIM-1, TIM-2), answering each requested
// charge with a scripted gateway.

const day = policy.Day

var (
	pol        = policy.Default()
	usd        = mustCurrency("USD")
	annualFee  = money.New(8999, usd)
	monthlyFee = money.New(999, usd)
	initialFee = money.New(999, usd)
	subID      = uuid.MustParse("0190a000-0000-7000-8000-0000000000cc")
)

func mustCurrency(code string) money.Currency {
	c, err := money.ParseCurrency(code)
	if err != nil {
		panic(err)
	}
	return c
}

func mustCard(t testing.TB, token string, month, year int) payment.PaymentMethod {
	t.Helper()
	m, err := payment.NewCardMethod(token, payment.Visa, "4242", month, year, "Ann Example")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// at is a UTC instant at 09:30, the time of day the tests start at.
func at(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 9, 30, 0, 0, time.UTC) }

// bought is the Created event of an NS-DLX subscription for term bought
// at the US store at start with automatic renewal on, paid with the order's
// token: the annual price for annual terms and trials (TRI-4), the monthly
// price for monthly plans, whose initial charge MON-2 refunds.
func bought(t testing.TB, term catalog.Term, start time.Time) subscription.Created {
	t.Helper()
	return boughtAt(t, term, start, "US")
}

func boughtAt(t testing.TB, term catalog.Term, start time.Time, store string) subscription.Created {
	t.Helper()
	p, err := cat.Product("NS-DLX")
	if err != nil {
		t.Fatal(err)
	}
	sf, err := cat.Storefront(store)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := subscription.ParseSerialNumber("1234-5678-9012-3456")
	if err != nil {
		t.Fatal(err)
	}
	origin := subscription.Origin{OrderID: order, Storefront: sf, AutoRenew: true, Price: annualFee, PaymentToken: "tok_order"}
	if term == catalog.Monthly {
		origin.Price, origin.InitialChargeID, origin.InitialCharge = monthlyFee, "ch_initial", initialFee
	}
	c, err := subscription.NewCreated(subID, p, term, catalog.Windows, mustKey(t, "ACDEF-GHJKM-NPQRT-UVWXY-34679"), serial, start, pol, origin)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// stamped is an event with the instant of the command that decided it.
type stamped struct {
	now time.Time
	e   domain.Event
}

type sim struct {
	t   testing.TB
	p   policy.Policy
	s   subscription.Subscription
	now time.Time
	log []stamped
	// method is the account's billing method RunDue is sent with.
	method payment.PaymentMethod
	// gateway answers a requested charge; nil approves every charge.
	gateway func(subscription.ChargeRequested) payment.ChargeOutcome
}

// newSim starts a simulation of c, registered in ann's account when it
// starts.
func newSim(t testing.TB, c subscription.Created) *sim {
	t.Helper()
	l := &sim{t: t, p: pol, now: c.StartsAt}
	l.apply(c.StartsAt, c, subscription.Registered{AccountID: ann, At: c.StartsAt})
	return l
}

func (l *sim) apply(now time.Time, events ...domain.Event) {
	for _, e := range events {
		l.s = subscription.Decider.Evolve(l.s, e)
		l.log = append(l.log, stamped{now, e})
	}
}

// peek decides cmd at now without recording anything.
func (l *sim) peek(now time.Time, cmd subscription.Command) ([]domain.Event, error) {
	return subscription.Decider.Decide(l.s, cmd, now, l.p)
}

// try decides cmd at now and records what it decided; the clock moves to
// now.
func (l *sim) try(now time.Time, cmd subscription.Command) ([]domain.Event, error) {
	l.t.Helper()
	if now.Before(l.now) {
		l.t.Fatalf("the clock went back from %s to %s", l.now, now)
	}
	events, err := l.peek(now, cmd)
	if err == nil {
		l.now = now
		l.apply(now, events...)
	}
	return events, err
}

// do is try, failing the test on an error.
func (l *sim) do(now time.Time, cmd subscription.Command) []domain.Event {
	l.t.Helper()
	events, err := l.try(now, cmd)
	if err != nil {
		l.t.Fatalf("%T at %s: %v", cmd, now.Format(time.RFC3339), err)
	}
	return events
}

// runDue is RunDue at now with the sim's billing method.
func (l *sim) runDue(now time.Time) []domain.Event {
	l.t.Helper()
	return l.do(now, subscription.RunDue{Method: l.method})
}

// due returns NextDue, failing the test when nothing is due.
func (l *sim) due() time.Time {
	l.t.Helper()
	d, ok := l.s.NextDue(l.p)
	if !ok {
		l.t.Fatalf("nothing due; want a next step")
	}
	return d
}

func (l *sim) noneDue() {
	l.t.Helper()
	if d, ok := l.s.NextDue(l.p); ok {
		l.t.Fatalf("NextDue %s, want nothing due", d.Format(time.RFC3339))
	}
}

// step does the next due step, at NextDue (or now, if that is later): the
// gateway's answer to a pending charge, the refund of a pending refund, or
// RunDue. It returns the events and the instant, and false when nothing is
// due up to until.
func (l *sim) step(until time.Time) ([]domain.Event, time.Time, bool) {
	l.t.Helper()
	d, ok := l.s.NextDue(l.p)
	if !ok || d.After(until) {
		return nil, time.Time{}, false
	}
	now := later(d, l.now)
	if c, ok := l.s.PendingCharge(); ok {
		return l.do(now, subscription.RecordChargeOutcome{Period: c.Period, Attempt: c.Attempt, Outcome: l.answer(c)}), now, true
	}
	if r, ok := l.s.PendingRefund(); ok {
		return l.do(now, subscription.RecordRefund{Outcome: payment.RefundOutcome{RefundID: "re_" + r.ChargeID, ChargeID: r.ChargeID, Amount: r.Amount}}), now, true
	}
	events := l.runDue(now)
	if len(events) == 0 {
		l.t.Fatalf("RunDue at NextDue %s did nothing: the due-work schedule would visit it forever", now.Format(time.RFC3339))
	}
	return events, now, true
}

// advance runs every step due up to until, in time order, and moves the
// clock to until. It returns the events decided.
func (l *sim) advance(until time.Time) []domain.Event {
	l.t.Helper()
	var out []domain.Event
	for range 1000 {
		events, _, ok := l.step(until)
		if !ok {
			l.now = later(l.now, until)
			return out
		}
		out = append(out, events...)
	}
	l.t.Fatalf("no rest in 1000 steps before %s", until)
	return nil
}

func (l *sim) answer(c subscription.ChargeRequested) payment.ChargeOutcome {
	if l.gateway == nil {
		return approve(c)
	}
	return l.gateway(c)
}

func approve(c subscription.ChargeRequested) payment.ChargeOutcome {
	return payment.ChargeOutcome{ChargeID: chargeID(c), Status: payment.Succeeded, Amount: c.Amount, IdempotencyKey: c.IdempotencyKey}
}

func decline(c subscription.ChargeRequested) payment.ChargeOutcome {
	return payment.ChargeOutcome{ChargeID: chargeID(c), Status: payment.Declined, DeclineCode: payment.CodeCardDeclined,
		Amount: c.Amount, IdempotencyKey: c.IdempotencyKey}
}

// declineAttempts declines the attempts up to n of every period, then
// approves.
func declineAttempts(n int) func(subscription.ChargeRequested) payment.ChargeOutcome {
	return func(c subscription.ChargeRequested) payment.ChargeOutcome {
		if c.Attempt <= n {
			return decline(c)
		}
		return approve(c)
	}
}

func chargeID(c subscription.ChargeRequested) string {
	return fmt.Sprintf("ch_p%d_a%d", c.Period, c.Attempt)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// only returns the events of type E.
func only[E domain.Event](events []domain.Event) []E {
	var out []E
	for _, e := range events {
		if x, ok := e.(E); ok {
			out = append(out, x)
		}
	}
	return out
}

// logged returns the logged events of type E.
func logged[E domain.Event](l *sim) []E {
	var out []E
	for _, s := range l.log {
		if x, ok := s.e.(E); ok {
			out = append(out, x)
		}
	}
	return out
}

// eventAt returns the At field every lifecycle event has.
func eventAt(e domain.Event) (time.Time, bool) {
	v := reflect.ValueOf(e)
	if v.Kind() != reflect.Struct {
		return time.Time{}, false
	}
	f := v.FieldByName("At")
	if !f.IsValid() {
		return time.Time{}, false
	}
	t, ok := f.Interface().(time.Time)
	return t, ok
}

// wantEvents fails unless got is exactly want.
func wantEvents(t testing.TB, what string, got []domain.Event, want ...domain.Event) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\ngot  %s\nwant %s", what, show(got), show(want))
	}
}

func show(events []domain.Event) string {
	if len(events) == 0 {
		return "(none)"
	}
	out := ""
	for _, e := range events {
		out += fmt.Sprintf("\n  %T%+v", e, e)
	}
	return out
}

func wantStatus(t testing.TB, s subscription.Subscription, now time.Time, want subscription.Status) {
	t.Helper()
	if got := s.Status(now, pol); got != want {
		t.Fatalf("status at %s: %s, want %s", now.Format(time.RFC3339Nano), got, want)
	}
}
