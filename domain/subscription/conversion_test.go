package subscription_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/domain/catalog"
	"github.com/subs-engine/subs/domain/decidertest"
	"github.com/subs-engine/subs/domain/payment"
	"github.com/subs-engine/subs/domain/policy"
	"github.com/subs-engine/subs/domain/subscription"
)

var newKey = "CDEFG-HJKMN-PQRTU-VWXY3-4679A"

func plan(t testing.TB, s subscription.Subscription, target string, ack ...string) subscription.Plan {
	t.Helper()
	p, err := subscription.PlanConversion(cat, s, target, ack, now, policy.Default())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// rule CNV-3: the subscription becomes the mapped product with the same
// expiration date; a new key replaces the old one, which no longer counts.
func TestRule_CNV3_ConvertKeepsTheExpiryAndIssuesANewKey(t *testing.T) {
	c := nis(t)
	given := decidertest.Given(t, subscription.Decider, c, subscription.Registered{AccountID: ann, At: now},
		subscription.Activated{Device: mustDevice(t, "pc-1"), At: now})
	p := plan(t, given.State(), "NS-DLX")
	out := given.When(subscription.Convert{AccountID: ann, Plan: p, Key: mustKey(t, newKey)})
	want := subscription.Converted{From: "NIS", Product: "NS-DLX", ProductName: "Norton Security Deluxe", Seats: 5, Registrable: true,
		Key: mustKey(t, newKey), PreviousKey: c.Key, Lost: []string{}, At: now}
	out.Then(want)
	s := out.State()
	if s.Facts().Key != mustKey(t, newKey) || !s.KeyRetired(c.Key) || !s.ExpiresAt().Equal(c.ExpiresAt) || len(s.Devices()) != 0 || s.Facts().Legacy {
		t.Errorf("after the conversion: %+v, expires %v, devices %v", s.Facts(), s.ExpiresAt(), s.Devices())
	}
	claims, _ := domain.ClaimsOf(out.Events())
	if len(claims) != 1 || claims[0] != (domain.Claim{Scope: subscription.KeyScope, Key: newKey}) {
		t.Errorf("claims %v, want the new key", claims)
	}
	// converted once: it is no legacy product any more
	decidertest.Given(t, subscription.Decider, c, subscription.Registered{AccountID: ann, At: now}, want).
		When(subscription.Convert{AccountID: ann, Plan: p, Key: mustKey(t, newKey)}).ThenError(subscription.ErrNotLegacy)
	// another account's subscription is not found (SEC-1)
	given.When(subscription.Convert{AccountID: bob, Plan: p, Key: mustKey(t, newKey)}).ThenError(subscription.ErrNotFound)
}

// rule CNV-2: NAV or NIS become Standard or Deluxe as chosen, by seats
// when not; N360 and N1 become Premium; anything else is refused naming the
// field target.
func TestRule_CNV2_MappingDefaultsBySeats(t *testing.T) {
	for _, c := range []struct{ from, chosen, want string }{
		{"NAV", "", "NS-STD"}, {"NIS", "", "NS-DLX"}, {"NIS", "NS-STD", "NS-STD"}, {"N360", "", "NS-PRM"},
	} {
		s := decidertest.Given(t, subscription.Decider, created(t, c.from, catalog.Annual, catalog.Windows, subscription.Origin{})).State()
		if got := plan(t, s, c.chosen).To.Code(); got != c.want {
			t.Errorf("%s chosen %q: %s, want %s", c.from, c.chosen, got, c.want)
		}
	}
	s := decidertest.Given(t, subscription.Decider, nis(t)).State()
	_, err := subscription.PlanConversion(cat, s, "NS-PRM", nil, now, policy.Default())
	var ve *domain.ValidationError
	if !errors.As(err, &ve) || ve.Fields[0].Field != "target" {
		t.Errorf("NIS to Premium: %v, want an error naming target", err)
	}
}

// rule CNV-5: Norton One loses Premium Support and Anti-Theft; without the
// acknowledgement the conversion is refused naming both.
func TestRule_CNV5_NortonOneNeedsTheAcknowledgement(t *testing.T) {
	n1 := created(t, "N1", catalog.Annual, catalog.Windows, subscription.Origin{})
	given := decidertest.Given(t, subscription.Decider, n1, subscription.Registered{AccountID: ann, At: now})
	_, err := subscription.PlanConversion(cat, given.State(), "", []string{"premium-support"}, now, policy.Default())
	var lost *subscription.LossNotAcknowledgedError
	if !errors.As(err, &lost) || !strings.Contains(err.Error(), "Premium Support and Norton Anti-Theft") ||
		lost.FieldErrors()[0][0] != subscription.AcknowledgementField {
		t.Fatalf("error %v, want one naming Premium Support and Norton Anti-Theft", err)
	}
	p := plan(t, given.State(), "", "premium-support", "anti-theft")
	given.When(subscription.Convert{AccountID: ann, Plan: p, Key: mustKey(t, newKey)}).ThenError(&lost)
	out := given.When(subscription.Convert{AccountID: ann, Plan: p, Acknowledged: []string{"anti-theft", "premium-support"}, Key: mustKey(t, newKey)})
	if e := out.Events()[0].(subscription.Converted); e.Product != "NS-PRM" || len(e.Lost) != 2 {
		t.Errorf("converted %+v", e)
	}
}

// rule CNV-6: only a current subscription converts; an expired or disabled
// one is refused.
func TestRule_CNV6_OnlyACurrentSubscriptionConverts(t *testing.T) {
	c := nis(t)
	given := decidertest.Given(t, subscription.Decider, c, subscription.Registered{AccountID: ann, At: now})
	p := plan(t, given.State(), "")
	var notNow *subscription.NotConvertibleNowError
	given.At(c.ExpiresAt).When(subscription.Convert{AccountID: ann, Plan: p, Key: mustKey(t, newKey)}).ThenError(&notNow)
	if _, err := subscription.PlanConversion(cat, decidertest.Given(t, subscription.Decider, c, subscription.Disabled{At: now}).State(), "", nil, now, policy.Default()); !errors.As(err, &notNow) {
		t.Errorf("a disabled subscription: %v", err)
	}
}

// rule CNV-1: a legacy key does not activate a Norton Security product.
func TestRule_CNV1_LegacyKeyRefusedOnNortonSecurity(t *testing.T) {
	s := decidertest.Given(t, subscription.Decider, nis(t)).State()
	ns, _ := cat.Product("NS-STD")
	legacy, _ := cat.Product("NIS")
	var refused *subscription.LegacyKeyError
	if err := subscription.CheckClient(s, ns); !errors.As(err, &refused) {
		t.Errorf("NIS key on Norton Security: %v", err)
	}
	if err := subscription.CheckClient(s, legacy); err != nil {
		t.Errorf("NIS key on NIS: %v", err)
	}
}

// rule AGT-2: whole days move the expiration date; removing more days than
// remain is refused.
func TestRule_AGT2_AdjustDays(t *testing.T) {
	c := nis(t)
	given := decidertest.Given(t, subscription.Decider, c)
	given.When(subscription.AdjustDays{Days: 10}).Then(subscription.DaysAdjusted{Days: 10, ExpiresAt: c.ExpiresAt.AddDate(0, 0, 10), At: now})
	remaining := int(c.ExpiresAt.Sub(now) / (24 * time.Hour))
	given.When(subscription.AdjustDays{Days: -remaining}).Then(subscription.DaysAdjusted{Days: -remaining, ExpiresAt: c.ExpiresAt.AddDate(0, 0, -remaining), At: now})
	var tooMany *subscription.TooManyDaysRemovedError
	given.When(subscription.AdjustDays{Days: -remaining - 1}).ThenError(&tooMany)
	var ve *domain.ValidationError
	given.When(subscription.AdjustDays{}).ThenError(&ve)
	after := given.When(subscription.AdjustDays{Days: -3}).State()
	if !after.ExpiresAt().Equal(c.ExpiresAt.AddDate(0, 0, -3)) || after.Status(c.ExpiresAt.AddDate(0, 0, -3), policy.Default()) != subscription.StatusExpired {
		t.Errorf("after removing 3 days: expires %v", after.ExpiresAt())
	}
	if got := subscription.DaysBetween(time.Date(2028, 3, 1, 23, 0, 0, 0, time.UTC), time.Date(2027, 3, 1, 1, 0, 0, 0, time.UTC)); got != -366 {
		t.Errorf("DaysBetween = %d, want -366", got)
	}
}

// rule AGT-2 with ARS-1: the expiry an agent adjusted becomes the renewal
// anchor, so the next renewal adds its term to the adjusted date: no day
// lost or gained.
func TestRule_AGT2_RenewalCountsFromTheAdjustedExpiry(t *testing.T) {
	c := nis(t)
	adjusted := c.ExpiresAt.AddDate(0, 0, 10)
	out := decidertest.Given(t, subscription.Decider, c, subscription.Registered{AccountID: ann, At: now},
		subscription.DaysAdjusted{Days: 10, ExpiresAt: adjusted, At: now},
		subscription.ChargeRequested{Period: 1, Attempt: 1, IdempotencyKey: "k", Token: "tok", At: now}).
		When(subscription.RecordChargeOutcome{Period: 1, Attempt: 1, Outcome: payment.ChargeOutcome{ChargeID: "ch", Status: payment.Succeeded}})
	if e, ok := out.Events()[0].(subscription.ChargeSucceeded); !ok || !e.ExpiresAt.Equal(adjusted.AddDate(1, 0, 0)) {
		t.Errorf("renewed: %+v, want to %v", out.Events(), adjusted.AddDate(1, 0, 0))
	}
}

// rule ARS-2 with CNV-3: a conversion after the notice and before the
// charge changes the fee, so the notice is given again with the new fee,
// and the charge of the new fee follows it (7 days before expiry here).
func TestRule_ARS2_ConversionAfterTheNoticeAnnouncesTheNewFee(t *testing.T) {
	us, _ := cat.Storefront("US")
	old, _ := cat.Price("N360", catalog.Annual, us.Currency())
	fee, _ := cat.Price("NS-PRM", catalog.Annual, us.Currency())
	if old.Equal(fee) {
		t.Fatalf("N360 and NS-PRM both cost %v: the test needs two fees", fee)
	}
	l := newSim(t, created(t, "N360", catalog.Annual, catalog.Windows, subscription.Origin{Storefront: us, AutoRenew: true, Price: old}))
	l.method = mustCard(t, "tok_card", 12, 2035)
	exp := l.s.ExpiresAt()
	l.advance(exp.Add(-30 * day))
	converted := exp.Add(-29 * day)
	l.do(converted, subscription.Convert{AccountID: ann, Plan: plan(t, l.s, "NS-PRM"), Key: mustKey(t, newKey)})
	l.advance(exp.Add(pol.Grace))
	notices := logged[subscription.RenewalNoticeIssued](l)
	if len(notices) != 2 || !notices[0].Amount.Equal(old) || !notices[1].Amount.Equal(fee) || !notices[1].At.Equal(converted) {
		t.Fatalf("notices %+v, want the first of %v and another of %v at the conversion", notices, old, fee)
	}
	charged := logged[subscription.ChargeSucceeded](l)
	if len(charged) != 1 || !charged[0].Amount.Equal(fee) || !charged[0].At.Equal(exp.Add(-pol.AnnualChargeLead)) {
		t.Fatalf("charges %+v, want one of %v 7 days before expiry, as the new notice said", charged, fee)
	}
}

// rule ARS-2, CNV-3: a conversion while the period's charge is being
// retried does not raise that charge above the fee its notice stated: the
// retry charges the noticed fee, and the next period the new one, noticed.
func TestRule_ARS2_ConversionDuringTheRetriesChargesNoMoreThanTheNotice(t *testing.T) {
	us, _ := cat.Storefront("US")
	old, _ := cat.Price("NAV", catalog.Annual, us.Currency())
	fee, _ := cat.Price("NS-DLX", catalog.Annual, us.Currency())
	if old.Amount() >= fee.Amount() {
		t.Fatalf("NAV costs %v, NS-DLX %v: the test needs a dearer target", old, fee)
	}
	l := newSim(t, created(t, "NAV", catalog.Annual, catalog.Windows, subscription.Origin{Storefront: us, AutoRenew: true, Price: old}))
	l.method = mustCard(t, "tok_card", 12, 2035)
	l.gateway = declineAttempts(1)
	exp := l.s.ExpiresAt()
	declinedAt := exp.Add(-pol.AnnualChargeLead)
	l.advance(declinedAt)
	l.do(declinedAt.Add(time.Hour), subscription.Convert{AccountID: ann, Plan: plan(t, l.s, "NS-DLX"), Key: mustKey(t, newKey)})
	l.advance(exp.AddDate(1, 0, 0))
	charged := logged[subscription.ChargeSucceeded](l)
	if len(charged) != 2 || !charged[0].Amount.Equal(old) || !charged[1].Amount.Equal(fee) {
		t.Fatalf("charges %+v, want the retry at the noticed %v, then the next year at %v", charged, old, fee)
	}
	notices := logged[subscription.RenewalNoticeIssued](l)
	if len(notices) != 2 || !notices[1].Amount.Equal(fee) || !notices[1].At.Before(charged[1].At) {
		t.Fatalf("notices %+v, want the next year's at %v before its charge", notices, fee)
	}
}

// rule TRI-4, CNV-3: a legacy trial converted before its end is billed at
// the new product's standard annual price when the trial ends.
func TestRule_TRI4_ConvertedTrialBilledAtTheNewProductsPrice(t *testing.T) {
	us, _ := cat.Storefront("US")
	old, _ := cat.Price("NIS", catalog.Annual, us.Currency())
	want, _ := cat.Price("NS-STD", catalog.Annual, us.Currency())
	if old.Equal(want) {
		t.Fatalf("NIS and NS-STD both cost %v: the test needs two prices", want)
	}
	l := newSim(t, created(t, "NIS", catalog.Trial, catalog.Windows, subscription.Origin{Storefront: us, AutoRenew: true, Price: old}))
	l.method = mustCard(t, "tok_card", 12, 2035)
	end := l.s.ExpiresAt()
	l.do(end.Add(-25*day), subscription.Convert{AccountID: ann, Plan: plan(t, l.s, "NS-STD"), Key: mustKey(t, newKey)})
	l.advance(end.Add(day))
	notices, charged := logged[subscription.TrialEndingNoticeIssued](l), logged[subscription.ChargeSucceeded](l)
	if len(notices) != 1 || !notices[0].Amount.Equal(want) || len(charged) != 1 || !charged[0].Amount.Equal(want) {
		t.Fatalf("trial-ending notices %+v, charges %+v; want one of each at %v", notices, charged, want)
	}
}

// rule CNV-3: a converted subscription that renews at a price renews at the
// new product's price, in the same currency.
func TestRule_CNV3_ConvertedSubscriptionRenewsAtTheNewPrice(t *testing.T) {
	us, _ := cat.Storefront("US")
	old, _ := cat.Price("NIS", catalog.Annual, us.Currency())
	c := created(t, "NIS", catalog.Annual, catalog.Windows, subscription.Origin{Storefront: us, AutoRenew: true, Price: old})
	given := decidertest.Given(t, subscription.Decider, c, subscription.Registered{AccountID: ann, At: now})
	p := plan(t, given.State(), "NS-STD")
	want, _ := cat.Price("NS-STD", catalog.Annual, us.Currency())
	if !p.Price.Equal(want) {
		t.Fatalf("plan price %v, want %v", p.Price, want)
	}
	out := given.When(subscription.Convert{AccountID: ann, Plan: p, Key: mustKey(t, newKey)})
	if e := out.Events()[0].(subscription.Converted); !e.Price.Equal(want) {
		t.Errorf("converted %+v", e)
	}
}
