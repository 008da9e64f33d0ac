package subscription_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/domain/catalog"
	"github.com/subs-engine/subs/domain/money"
	"github.com/subs-engine/subs/domain/payment"
	"github.com/subs-engine/subs/domain/subscription"
)

// rule ARS-8, ARS-2, ARS-1, ARS-6, TIM-1, property-based: random sequences
// of RunDue at random instants, random gateway answers (succeeded, declined,
// not yet), billing updates, renewal turned off and on, refunds,
// cancellations and add-ons keep the lifecycle's invariants after every
// step.
func TestRule_ARS8_LifecycleInvariants_Property(t *testing.T) {
	for seed := range uint64(150) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { randomLifecycle(t, seed) })
	}
}

func randomLifecycle(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	terms := []catalog.Term{catalog.Annual, catalog.Monthly, catalog.Trial}
	term := terms[rng.IntN(len(terms))]
	start := randomStart(rng)
	l := newSim(t, bought(t, term, start))
	y := start.Year()
	methods := []payment.PaymentMethod{{}, mustCard(t, "tok_a", 12, y+10), mustCard(t, "tok_b", 6, y+10),
		mustCard(t, "tok_expiring", int(start.Month()), y+1)}
	addOns := []subscription.AddAddOn{
		{AccountID: ann, AddOn: "storage", Name: "Additional storage", Price: money.New(199, usd)},
		{AccountID: ann, AddOn: "users", Name: "Additional users", Price: money.New(299, usd)},
	}
	for i := range 400 {
		before := l.s
		prevDue, prevHas := before.NextDue(pol)
		now := l.now
		var cmd subscription.Command
		switch r := rng.IntN(100); {
		case r < 45:
			switch {
			case prevHas && rng.IntN(3) > 0:
				now = later(prevDue, now)
			case rng.IntN(2) == 0:
				now = now.Add(time.Duration(rng.Int64N(int64(3 * time.Hour))))
			default:
				now = now.Add(time.Duration(rng.Int64N(int64(20 * day))))
			}
			cmd = subscription.RunDue{Method: l.method}
		case r < 65:
			c, ok := before.PendingCharge()
			if !ok {
				continue
			}
			now = now.Add(time.Duration(rng.Int64N(int64(time.Hour))))
			outcome := approve(c)
			if rng.IntN(2) == 0 {
				outcome = decline(c)
			}
			cmd = subscription.RecordChargeOutcome{Period: c.Period, Attempt: c.Attempt, Outcome: outcome}
		case r < 70:
			rf, ok := before.PendingRefund()
			if !ok {
				continue
			}
			cmd = subscription.RecordRefund{Outcome: payment.RefundOutcome{RefundID: "re_" + rf.ChargeID, ChargeID: rf.ChargeID, Amount: rf.Amount}}
		case r < 78:
			l.method = methods[rng.IntN(len(methods))]
			continue
		case r < 84:
			cmd = subscription.SetAutoRenewal{AccountID: ann, On: rng.IntN(2) == 0}
		case r < 89:
			cmd = subscription.RequestRefund{AccountID: ann}
		case r < 91:
			cmd = subscription.Cancel{AccountID: ann}
		case r < 95:
			cmd = addOns[rng.IntN(len(addOns))]
		case r < 99:
			cmd = subscription.CancelAddOn{AccountID: ann, AddOn: addOns[rng.IntN(len(addOns))].AddOn}
		default:
			if rng.IntN(4) == 0 {
				cmd = subscription.Disable{}
			} else {
				continue
			}
		}
		events, err := l.try(now, cmd)
		what := fmt.Sprintf("seed %d step %d: %T at %s", seed, i, cmd, now.Format(time.RFC3339Nano))
		if err != nil {
			checkRefusal(t, what, before, cmd, err)
			continue
		}
		checkStep(t, what, l, before, cmd, now, events, prevDue, prevHas)
	}
	checkHistory(t, fmt.Sprintf("seed %d", seed), l, term, start)
}

// checkRefusal: a refusal is one the rules name.
func checkRefusal(t *testing.T, what string, before subscription.Subscription, cmd subscription.Command, err error) {
	t.Helper()
	if _, ok := cmd.(subscription.RunDue); ok {
		t.Fatalf("%s: RunDue refused: %v", what, err)
	}
	if _, pending := before.PendingCharge(); pending {
		if _, ok := cmd.(subscription.RequestRefund); ok && !errors.Is(err, subscription.ErrChargePending) && !errors.Is(err, subscription.ErrRefundPending) {
			t.Fatalf("%s: a refund during a pending charge refused with %v, want ErrChargePending", what, err)
		}
	}
}

func checkStep(t *testing.T, what string, l *sim, before subscription.Subscription, cmd subscription.Command, now time.Time,
	events []domain.Event, prevDue time.Time, prevHas bool) {
	t.Helper()
	// TIM-1: every event carries the command's instant.
	for _, e := range events {
		if at, ok := eventAt(e); ok && !at.Equal(now) {
			t.Fatalf("%s: %T carries %s", what, e, at)
		}
	}
	due, has := l.s.NextDue(pol)
	// ARS-8: a requested charge or refund stays due until settled.
	_, pc := l.s.PendingCharge()
	_, pr := l.s.PendingRefund()
	if (pc || pr) && !has {
		t.Fatalf("%s: a pending charge or refund is not due", what)
	}
	// A projection keeps the state as JSON: it decodes to the same schedule
	// and status.
	b, err := json.Marshal(l.s)
	if err != nil {
		t.Fatal(err)
	}
	var back subscription.Subscription
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if d, h := back.NextDue(pol); h != has || !d.Equal(due) || back.Status(now, pol) != l.s.Status(now, pol) {
		t.Fatalf("%s: the decoded state is due %s %v, want %s %v", what, d, h, due, has)
	}
	if _, ok := cmd.(subscription.RunDue); !ok {
		return
	}
	_, pendingBefore := before.PendingCharge()
	_, refundBefore := before.PendingRefund()
	switch {
	case pendingBefore || refundBefore:
		wantEvents(t, what+": RunDue while the gateway is awaited", events)
	case prevHas && !now.Before(prevDue) && len(events) == 0:
		// The due-work schedule would visit it forever.
		t.Fatalf("%s: RunDue at or after NextDue %s recorded nothing", what, prevDue)
	case (!prevHas || now.Before(prevDue)) && len(events) > 0:
		// Only a billing update brings a retry forward (ARS-6).
		c := only[subscription.ChargeRequested](events)
		if len(events) != 1 || len(c) != 1 || c[0].Attempt < 2 || !before.AwaitingRetry() {
			t.Fatalf("%s: RunDue before NextDue %s (%v) recorded %s", what, prevDue, prevHas, show(events))
		}
	}
	// NextDue never goes back before the step that was due.
	if len(events) > 0 && prevHas && has && due.Before(prevDue) && due.Before(now) {
		t.Fatalf("%s: NextDue went back from %s to %s", what, prevDue, due)
	}
	// A charge is requested only while renewing.
	if len(only[subscription.ChargeRequested](events)) > 0 && !before.Renewing() {
		t.Fatalf("%s: charged while not renewing", what)
	}
}

// checkHistory checks what spans the whole log.
func checkHistory(t *testing.T, what string, l *sim, term catalog.Term, start time.Time) {
	t.Helper()
	gap, anchor, months, first := pol.AnnualMinNoticeToCharge, start, 12, 1
	switch term {
	case catalog.Monthly:
		gap, months = pol.MonthlyMinNoticeToCharge, 1
	case catalog.Trial:
		gap, anchor, first = 0, start.Add(pol.TrialLength), 0
	}
	type notice struct {
		at, expires time.Time
		amount      money.Money
	}
	notices := map[int]notice{}
	succeeded := map[int]bool{}
	renewed := 0
	expires := l.log[0].e.(subscription.Created).ExpiresAt
	for _, s := range l.log {
		switch e := s.e.(type) {
		case subscription.RenewalNoticeIssued:
			notices[e.Period] = notice{e.At, e.ExpiresAt, e.Amount}
			if !e.ExpiresAt.Equal(expires) {
				t.Fatalf("%s: period %d's notice renews %s; the subscription expires %s (a period skipped)", what, e.Period, e.ExpiresAt, expires)
			}
		case subscription.TrialEndingNoticeIssued:
			notices[e.Period] = notice{e.At, e.ExpiresAt, e.Amount}
		case subscription.ChargeRequested:
			n, ok := notices[e.Period]
			switch {
			case !ok:
				t.Fatalf("%s: period %d charged without a notice", what, e.Period)
			case e.At.Before(n.at.Add(gap)):
				t.Fatalf("%s: period %d charged %s, sooner than %s after its notice %s", what, e.Period, e.At, gap, n.at)
			case term == catalog.Trial && e.Period == 1 && e.At.Before(n.expires):
				t.Fatalf("%s: the trial charged at %s, before it ends %s", what, e.At, n.expires)
			case !e.At.Before(n.expires.Add(pol.Grace)):
				t.Fatalf("%s: period %d charged at %s, past expiry %s plus grace", what, e.Period, e.At, n.expires)
			case e.Amount.Amount() > n.amount.Amount():
				t.Fatalf("%s: period %d charged %v, more than the notice's %v", what, e.Period, e.Amount, n.amount)
			}
		case subscription.ChargeSucceeded:
			if succeeded[e.Period] {
				t.Fatalf("%s: period %d charged twice", what, e.Period)
			}
			succeeded[e.Period] = true
			renewed++
			if want := anchored(anchor, months*(first+renewed)); !e.ExpiresAt.Equal(want) {
				t.Fatalf("%s: renewal %d ends %s, want %s", what, renewed, e.ExpiresAt, want)
			}
			expires = e.ExpiresAt
		case subscription.Refunded:
			if e.Period > 0 {
				renewed--
			}
			expires = e.ExpiresAt
		}
	}
}
