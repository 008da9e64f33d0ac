package subscription_test

import (
	"errors"
	"testing"
	"time"

	"github.com/subs-engine/subs/domain/catalog"
	"github.com/subs-engine/subs/domain/money"
	"github.com/subs-engine/subs/domain/payment"
	"github.com/subs-engine/subs/domain/subscription"
)

// The tests of this file drive a customer's or an agent's command into the
// renewal cycle at the moments where the two meet: a charge in flight, a
// notice given, the grace, the retries ended.

// rule ARS-7, AGT-2: a refund takes back the term the charge paid for, not
// the days an agent added or removed after it.
func TestRule_ARS7_RefundTakesBackTheTermNotTheDaysAdjustedSince(t *testing.T) {
	for _, days := range []int{10, -10} {
		t.Run(time.Duration(days*int(day)).String(), func(t *testing.T) {
			l := newSim(t, bought(t, catalog.Annual, at(2027, 1, 1)))
			exp := l.s.ExpiresAt()
			l.advance(exp.Add(day))
			if got := l.s.ExpiresAt(); !got.Equal(exp.AddDate(1, 0, 0)) {
				t.Fatalf("renewed to %v, want %v", got, exp.AddDate(1, 0, 0))
			}
			l.do(exp.Add(2*day), subscription.AdjustDays{Days: days})
			l.do(exp.Add(3*day), subscription.RequestRefund{AccountID: ann})
			l.advance(exp.Add(3 * day))
			want := subscription.AddDays(exp, days)
			if got := logged[subscription.Refunded](l); len(got) != 1 || !got[0].ExpiresAt.Equal(want) {
				t.Fatalf("refunded %+v, want the expiry back to %v (the old one, %+d days)", got, want, days)
			}
			if days < 0 {
				return
			}
			// Renewed again, the next term counts from there (ARS-1).
			l.do(exp.Add(4*day), subscription.SetAutoRenewal{AccountID: ann, On: true})
			l.advance(want.Add(day))
			if got := l.s.ExpiresAt(); !got.Equal(want.AddDate(1, 0, 0)) {
				t.Fatalf("renewed again to %v, want %v", got, want.AddDate(1, 0, 0))
			}
		})
	}
}

// rule ARS-2, CNV-6: converting a subscription in grace, its charge pushed
// past the expiry by a late notice, keeps that notice and its charge date
// (a new notice could not charge before the grace ends): it renews, charged
// no more than the notice said.
func TestRule_ARS2_ConversionInGraceKeepsTheNoticedCharge(t *testing.T) {
	us, _ := cat.Storefront("US")
	old, _ := cat.Price("N360", catalog.Annual, us.Currency())
	fee, _ := cat.Price("NS-PRM", catalog.Annual, us.Currency())
	l := newSim(t, created(t, "N360", catalog.Annual, catalog.Windows, subscription.Origin{Storefront: us, AutoRenew: false, Price: old}))
	l.method = mustCard(t, "tok_card", 12, 2035)
	exp := l.s.ExpiresAt()
	l.advance(exp.Add(-2 * day))
	l.do(l.now, subscription.SetAutoRenewal{AccountID: ann, On: true})
	l.advance(exp.Add(day))
	wantStatus(t, l.s, l.now, subscription.StatusGrace)
	l.do(l.now, subscription.Convert{AccountID: ann, Plan: plan(t, l.s, "NS-PRM"), Key: mustKey(t, newKey)})
	l.advance(exp.Add(pol.Grace + day))
	if lapsed := logged[subscription.RenewalLapsed](l); len(lapsed) > 0 {
		t.Fatalf("lapsed %+v: the conversion ended the renewal", lapsed)
	}
	charged := logged[subscription.ChargeSucceeded](l)
	want := old
	if fee.Amount() < old.Amount() {
		want = fee
	}
	if len(charged) != 1 || !charged[0].At.Equal(exp.Add(5*day)) || !charged[0].Amount.Equal(want) {
		t.Fatalf("charges %+v, want one of %v at %v, the noticed date", charged, want, exp.Add(5*day))
	}
	wantStatus(t, l.s, l.now, subscription.StatusActive)
}

// rule ARS-2, AGT-2: days added in grace, too few to leave it, keep the
// notice and its charge date, or the retries: the renewal goes on within the
// new, later grace instead of lapsing.
func TestRule_ARS2_DaysAddedInGraceKeepTheRenewalGoing(t *testing.T) {
	cases := []struct {
		name    string
		gateway func(subscription.ChargeRequested) payment.ChargeOutcome
		adjust  time.Duration // after expiry
		charged time.Duration // the successful charge, after expiry
	}{
		{"noticed, not charged yet", nil, 3 * day, 5 * day},
		{"declined, awaiting a retry", declineAttempts(1), 5*day + time.Hour, 6 * day},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := newSim(t, created(t, "NS-DLX", catalog.Annual, catalog.Windows, subscription.Origin{Storefront: mustStore(t, "US"),
				AutoRenew: false, Price: annualFee}))
			l.method = mustCard(t, "tok_card", 12, 2035)
			l.gateway = c.gateway
			exp := l.s.ExpiresAt()
			l.advance(exp.Add(-2 * day))
			l.do(l.now, subscription.SetAutoRenewal{AccountID: ann, On: true}) // charged at exp + 5 days
			l.advance(exp.Add(c.adjust))
			l.do(l.now, subscription.AdjustDays{Days: 2})
			l.advance(exp.Add(pol.Grace + 3*day))
			if lapsed := logged[subscription.RenewalLapsed](l); len(lapsed) > 0 {
				t.Fatalf("lapsed %+v: the days ended the renewal", lapsed)
			}
			charged := logged[subscription.ChargeSucceeded](l)
			want := subscription.AddDays(exp, 2).AddDate(1, 0, 0)
			if len(charged) != 1 || !charged[0].At.Equal(exp.Add(c.charged)) || !l.s.ExpiresAt().Equal(want) {
				t.Fatalf("charges %+v, expiry %v; want one at %v, expiring %v", charged, l.s.ExpiresAt(), exp.Add(c.charged), want)
			}
		})
	}
}

// rule ARS-6, ARS-3: automatic renewal turned on again after the retries
// ended tries the charge again, before the expiry; an ended subscription
// refuses it, naming why, whether renewal was on or not.
func TestRule_ARS6_RenewalOnAfterTheRetriesEndedTriesAgain(t *testing.T) {
	l := newSim(t, bought(t, catalog.Annual, at(2027, 1, 1)))
	l.method = mustCard(t, "tok_card", 12, 2035)
	l.gateway = declineAttempts(4)
	exp := l.s.ExpiresAt()
	l.advance(exp.Add(-day))
	if lapsed := logged[subscription.RenewalLapsed](l); len(lapsed) != 1 || l.s.Renewing() {
		t.Fatalf("lapsed %+v, renewing %v: want the retries ended", lapsed, l.s.Renewing())
	}
	l.gateway = nil
	wantEvents(t, "on again", l.do(l.now, subscription.SetAutoRenewal{AccountID: ann, On: true}),
		subscription.AutoRenewalChanged{On: true, At: l.now})
	l.advance(exp.Add(day))
	if got := l.s.ExpiresAt(); !got.Equal(exp.AddDate(1, 0, 0)) {
		t.Fatalf("expires %v, want renewed to %v", got, exp.AddDate(1, 0, 0))
	}

	ended := newSim(t, bought(t, catalog.Annual, at(2027, 1, 1)))
	ended.method = l.method
	ended.gateway = declineAttempts(4)
	ended.advance(exp.Add(day))
	wantStatus(t, ended.s, ended.now, subscription.StatusExpired)
	if _, err := ended.try(ended.now, subscription.SetAutoRenewal{AccountID: ann, On: true}); !errors.Is(err, subscription.ErrEnded) {
		t.Fatalf("on, expired with renewal on: %v, want %v", err, subscription.ErrEnded)
	}
}

// rule MON-1, TRI-2, ARS-3: automatic renewal turned off while the
// period's charge is in flight: the charge, made all the same (ARS-8), is
// refunded without being asked and its term taken back, so that the plan
// ends at its date as the customer asked.
func TestRule_MON1_RenewalOffWhileTheChargeIsInFlightIsRefunded(t *testing.T) {
	cases := []struct {
		term catalog.Term
		off  subscription.Command
	}{
		{catalog.Monthly, subscription.Cancel{AccountID: ann}},
		{catalog.Monthly, subscription.SetAutoRenewal{AccountID: ann, On: false}},
		{catalog.Annual, subscription.SetAutoRenewal{AccountID: ann, On: false}},
		{catalog.Trial, subscription.SetAutoRenewal{AccountID: ann, On: false}},
	}
	for _, c := range cases {
		t.Run(c.term.String()+"/"+commandName(c.off), func(t *testing.T) {
			l := newSim(t, bought(t, c.term, at(2027, 1, 1)))
			l.method = mustCard(t, "tok_card", 12, 2035)
			exp := l.s.ExpiresAt()
			for {
				d := l.due()
				l.runDue(later(d, l.now))
				if _, ok := l.s.PendingCharge(); ok {
					break
				}
			}
			pending, _ := l.s.PendingCharge()
			l.do(l.now.Add(time.Minute), c.off)
			l.do(l.now, subscription.RecordChargeOutcome{Period: pending.Period, Attempt: pending.Attempt, Outcome: approve(pending)})
			l.advance(l.now.Add(time.Hour))
			refunded := logged[subscription.Refunded](l)
			if len(refunded) != 1 || refunded[0].ChargeID != chargeID(pending) || !refunded[0].Amount.Equal(pending.Amount) {
				t.Fatalf("refunded %+v, want the charge %s of %v", refunded, chargeID(pending), pending.Amount)
			}
			if got := l.s.ExpiresAt(); !got.Equal(exp) {
				t.Fatalf("expires %v, want %v: the term taken back", got, exp)
			}
			l.advance(exp.Add(pol.Grace + 40*day))
			if n := len(logged[subscription.ChargeSucceeded](l)); n != 1 {
				t.Fatalf("%d charges, want only the one in flight", n)
			}
		})
	}
}

// rule MON-2: a monthly plan that ended early, then given days by an agent
// and renewed, keeps its later renewals: only the charges made before it
// ended are refunded without being asked.
func TestRule_MON2_PlanGivenDaysAfterItEndedKeepsItsLaterRenewals(t *testing.T) {
	start := at(2027, 1, 1)
	l := newSim(t, bought(t, catalog.Monthly, start))
	l.method = mustCard(t, "tok_card", 12, 2035)
	l.advance(start.Add(5 * day))
	l.do(l.now, subscription.Cancel{AccountID: ann})
	l.advance(l.now)
	wantStatus(t, l.s, l.now, subscription.StatusRefunded)
	l.do(l.now, subscription.AdjustDays{Days: 20})
	l.do(l.now, subscription.SetAutoRenewal{AccountID: ann, On: true})
	l.advance(l.s.ExpiresAt().AddDate(0, 1, 0).Add(time.Hour))
	if charged := logged[subscription.ChargeSucceeded](l); len(charged) != 2 {
		t.Fatalf("charges %+v, want the two renewals after the days", charged)
	}
	if refunded := logged[subscription.Refunded](l); len(refunded) != 1 || refunded[0].ChargeID != "ch_initial" {
		t.Fatalf("refunded %+v, want only the initial charge", refunded)
	}
	wantStatus(t, l.s, l.now, subscription.StatusActive)
}

// rule MON-3, ARS-2: an add-on cancelled after the notice that stated the
// fee with it has the notice given again with the lower fee, for the same
// charge date; the charge takes the lower fee.
func TestRule_MON3_AddOnCancelledAfterTheNoticeIsNoticedAgain(t *testing.T) {
	start := at(2027, 1, 10)
	l := newSim(t, bought(t, catalog.Monthly, start))
	l.method = mustCard(t, "tok_card", 12, 2035)
	l.do(start.Add(day), subscription.AddAddOn{AccountID: ann, AddOn: "storage", Name: "Additional storage", Price: money.New(199, usd)})
	exp := l.s.ExpiresAt()
	l.advance(exp.Add(-2 * day))
	l.do(l.now, subscription.CancelAddOn{AccountID: ann, AddOn: "storage"})
	l.advance(exp.Add(day))
	notices := logged[subscription.RenewalNoticeIssued](l)
	if len(notices) != 2 || !notices[0].Amount.Equal(money.New(1198, usd)) || !notices[1].Amount.Equal(monthlyFee) ||
		!notices[1].ChargeAt.Equal(notices[0].ChargeAt) || !notices[1].At.Equal(exp.Add(-2*day)) {
		t.Fatalf("notices %+v, want 11.98, then %v at the cancellation for the same charge date", notices, monthlyFee)
	}
	charged := logged[subscription.ChargeSucceeded](l)
	if len(charged) != 1 || !charged[0].Amount.Equal(monthlyFee) || !charged[0].At.Equal(notices[0].ChargeAt) {
		t.Fatalf("charges %+v, want one of %v at %v", charged, monthlyFee, notices[0].ChargeAt)
	}
}

func commandName(c subscription.Command) string {
	switch c := c.(type) {
	case subscription.Cancel:
		return "cancel"
	case subscription.SetAutoRenewal:
		if c.On {
			return "on"
		}
		return "off"
	}
	return "command"
}

func mustStore(t testing.TB, code string) catalog.Storefront {
	t.Helper()
	s, err := cat.Storefront(code)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rule ARS-8, ARS-7: the refund of a charge that landed after renewal was
// turned off is decided with its record, in the same command: a charge
// recorded without one (before that rule) stays, and turning renewal on
// again while the refund is pending is refused (it would be undone).
func TestRule_ARS8_ChargeAfterRenewalOffIsRefundedInItsRecord(t *testing.T) {
	l := newSim(t, bought(t, catalog.Annual, at(2027, 1, 1)))
	l.method = mustCard(t, "tok_card", 12, 2035)
	exp := l.s.ExpiresAt()
	for {
		l.runDue(later(l.due(), l.now))
		if _, ok := l.s.PendingCharge(); ok {
			break
		}
	}
	pending, _ := l.s.PendingCharge()
	before := l.s
	l.do(l.now, subscription.SetAutoRenewal{AccountID: ann, On: false})
	events := l.do(l.now, subscription.RecordChargeOutcome{Period: pending.Period, Attempt: pending.Attempt, Outcome: approve(pending)})
	if got := only[subscription.RefundRequested](events); len(got) != 1 || got[0].ChargeID != chargeID(pending) {
		t.Fatalf("recorded %s; want the charge and its refund's request", show(events))
	}
	if _, err := l.peek(l.now, subscription.SetAutoRenewal{AccountID: ann, On: true}); !errors.Is(err, subscription.ErrRefundPending) {
		t.Fatalf("on while the refund is pending: %v, want %v", err, subscription.ErrRefundPending)
	}

	// A history from before the rule: the charge kept, renewal on again.
	old := newSim(t, bought(t, catalog.Annual, at(2027, 1, 1)))
	old.s, old.now = before, l.now
	old.apply(l.now, subscription.AutoRenewalChanged{On: false, At: l.now},
		subscription.ChargeSucceeded{Period: pending.Period, Attempt: pending.Attempt, ChargeID: chargeID(pending), Amount: pending.Amount,
			Term: "annual", ExpiresAt: exp.AddDate(1, 0, 0), At: l.now},
		subscription.AutoRenewalChanged{On: true, At: l.now.Add(day)})
	old.advance(exp.Add(day))
	if refunds := logged[subscription.RefundRequested](old); len(refunds) != 0 || !old.s.ExpiresAt().Equal(exp.AddDate(1, 0, 0)) {
		t.Fatalf("an old history's kept charge: refunds %+v, expiry %v; want kept, %v", refunds, old.s.ExpiresAt(), exp.AddDate(1, 0, 0))
	}
}

// rule MON-2: the initial charge is refunded once: a plan that ended
// early, given days by an agent and cancelled again within the 30 days,
// asks for no second refund of it.
func TestRule_MON2_InitialChargeIsRefundedOnce(t *testing.T) {
	start := at(2027, 1, 1)
	l := newSim(t, bought(t, catalog.Monthly, start))
	l.advance(start.Add(5 * day))
	l.do(l.now, subscription.Cancel{AccountID: ann})
	l.advance(l.now)
	l.do(l.now, subscription.AdjustDays{Days: 20})
	wantEvents(t, "cancelled again", l.do(l.now.Add(day), subscription.Cancel{AccountID: ann}))
	l.advance(l.now.Add(day))
	if got := logged[subscription.RefundRequested](l); len(got) != 1 {
		t.Fatalf("refunds asked %+v, want the initial charge's once", got)
	}
}

// rule ARS-2, KEY-2, ARS-8: a key of an order in no account, registered
// into an account after its renewal was noticed to the order's address, or
// while its declined charge awaited a retry, is noticed again to its new
// owner, whose billing information pays: the charge comes no sooner than
// the notice's least time after that notice, its attempts numbered on.
func TestRule_ARS2_KeyRegisteredAfterTheNoticeIsNoticedToItsNewOwner(t *testing.T) {
	for _, declined := range []bool{false, true} {
		t.Run(map[bool]string{false: "noticed", true: "declined"}[declined], func(t *testing.T) {
			c := bought(t, catalog.Annual, at(2027, 1, 1))
			l := &sim{t: t, p: pol, now: c.StartsAt}
			l.apply(c.StartsAt, c) // an order in no account (ORD-2)
			if declined {
				l.gateway = declineAttempts(1)
			}
			exp := l.s.ExpiresAt()
			registered := exp.Add(-10 * day)
			if declined {
				registered = exp.Add(-7*day + time.Hour) // the first attempt declined, its retry a day later
			}
			l.advance(registered)
			l.apply(registered, subscription.Registered{AccountID: ann, At: registered})
			l.gateway = nil
			l.advance(exp.Add(pol.Grace))
			notices := logged[subscription.RenewalNoticeIssued](l)
			charged := logged[subscription.ChargeSucceeded](l)
			if len(notices) != 2 || !notices[1].At.Equal(registered) || len(charged) != 1 ||
				charged[0].At.Before(registered.Add(pol.AnnualMinNoticeToCharge)) {
				t.Fatalf("notices %+v, charges %+v; want a notice at the registration %v and the charge 7 days after it", notices, charged, registered)
			}
			if declined && charged[0].Attempt != 2 {
				t.Fatalf("charged at attempt %d, want 2: the attempts numbered on", charged[0].Attempt)
			}
		})
	}
}

// rule ARS-6, ARS-2, ORD-3: a key registered after its retries ended stays
// lapsed (no new notice, no charge on its new owner's card); an order
// saved by the account of its own address, which its notice went to,
// keeps that notice and its charge date.
func TestRule_ARS2_OwnerChangesThatKeepTheNotice(t *testing.T) {
	t.Run("lapsed, then registered", func(t *testing.T) {
		c := bought(t, catalog.Annual, at(2027, 1, 1))
		l := &sim{t: t, p: pol, now: c.StartsAt}
		l.apply(c.StartsAt, c)
		l.gateway = declineAttempts(4)
		exp := l.s.ExpiresAt()
		l.advance(exp.Add(-day))
		l.apply(l.now, subscription.Registered{AccountID: ann, At: l.now})
		l.advance(exp.Add(pol.Grace + day))
		if n, charged := len(logged[subscription.RenewalNoticeIssued](l)), logged[subscription.ChargeSucceeded](l); n != 1 || len(charged) != 0 {
			t.Fatalf("%d notices, charges %+v; want the one notice and no charge", n, charged)
		}
	})
	t.Run("order saved by its address's account", func(t *testing.T) {
		c := bought(t, catalog.Annual, at(2027, 1, 1))
		l := &sim{t: t, p: pol, now: c.StartsAt}
		l.apply(c.StartsAt, c)
		exp := l.s.ExpiresAt()
		l.advance(exp.Add(-10 * day))
		l.apply(l.now, subscription.SavedWithOrder{AccountID: ann, OrderID: order, At: l.now})
		l.advance(exp.Add(day))
		notices, charged := logged[subscription.RenewalNoticeIssued](l), logged[subscription.ChargeSucceeded](l)
		if len(notices) != 1 || len(charged) != 1 || !charged[0].At.Equal(notices[0].ChargeAt) {
			t.Fatalf("notices %+v, charges %+v; want one of each, at the noticed date", notices, charged)
		}
	})
}

// rule ACC-8, ARS-1: a renewal is charged to the account's direct debit only
// for a subscription of a store whose country offers it; elsewhere (yen at
// the Japanese store) it goes to the card the subscription was ordered with.
func TestRule_ACC8_RenewalTakesADirectDebitOnlyWhereOffered(t *testing.T) {
	dd, err := payment.NewDirectDebitMethod("tok_dd", "DE", "3000", "Ann Lee")
	if err != nil {
		t.Fatal(err)
	}
	for store, want := range map[string]string{"DE": "tok_dd", "JP": "tok_order"} {
		t.Run(store, func(t *testing.T) {
			l := newSim(t, boughtAt(t, catalog.Annual, at(2027, 1, 1), store))
			l.method = dd
			l.advance(l.s.ExpiresAt().Add(day))
			requested := logged[subscription.ChargeRequested](l)
			if len(requested) != 1 || requested[0].Token != want {
				t.Fatalf("charges requested %+v, want one on %s", requested, want)
			}
		})
	}
}

// rule ARS-5, MON-3: the add-ons of a plan bought at an Asian store are what
// renews, managed on that store: buying or cancelling one here is refused
// naming the store.
func TestRule_ARS5_AddOnsOfAnAsianStorePlanAreManagedThere(t *testing.T) {
	l := newSim(t, boughtAt(t, catalog.Monthly, at(2027, 1, 1), "JP"))
	var asian *subscription.AsianStoreError
	if _, err := l.peek(l.now, subscription.AddAddOn{AccountID: ann, AddOn: "storage", Name: "Additional storage", Price: money.New(300, mustCurrency("JPY"))}); !errors.As(err, &asian) {
		t.Errorf("add-on bought: %v, want the store named", err)
	}
	if _, err := l.peek(l.now, subscription.CancelAddOn{AccountID: ann, AddOn: "storage"}); !errors.As(err, &asian) {
		t.Errorf("add-on cancelled: %v, want the store named", err)
	}
}
