package subscription_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/domain/calendar"
	"github.com/subs-engine/subs/domain/catalog"
	"github.com/subs-engine/subs/domain/money"
	"github.com/subs-engine/subs/domain/payment"
	"github.com/subs-engine/subs/domain/subscription"
)

// One instant: the tests probe each date a rule states one instant before,
// at, and after it.
const ns = time.Nanosecond

func chargeRequested(c subscription.Created, period, attempt int, token string, amount money.Money, expires, now time.Time) subscription.ChargeRequested {
	term := c.Term
	if term == catalog.Trial.String() {
		term = catalog.Annual.String()
	}
	return subscription.ChargeRequested{Period: period, Attempt: attempt, IdempotencyKey: subscription.IdempotencyKey(c.SubscriptionID, period, attempt),
		Token: token, Amount: amount, At: now,
		Description: fmt.Sprintf("%s, %s renewal from %s", c.ProductName, term, expires.Format("2006-01-02"))}
}

// rule ARS-1: each renewal adds one term counted from the old expiration
// date, whenever within the period the charge succeeds.
func TestRule_ARS1_RenewalAddsOneTermFromTheOldExpiration(t *testing.T) {
	cases := []struct {
		name    string
		term    catalog.Term
		start   time.Time
		gateway func(subscription.ChargeRequested) payment.ChargeOutcome
		want    []time.Time // the expiration dates after renewals 1, 2, …
	}{
		{"monthly from January 31, common year", catalog.Monthly, at(2027, 1, 1).AddDate(0, 0, 30), nil,
			[]time.Time{at(2027, 3, 31), at(2027, 4, 30), at(2027, 5, 31), at(2027, 6, 30)}},
		{"monthly from December 31 across a leap February", catalog.Monthly, at(2027, 12, 31), nil,
			[]time.Time{at(2028, 2, 29), at(2028, 3, 31), at(2028, 4, 30)}},
		{"monthly from the 30th, charged on the last retry", catalog.Monthly, at(2027, 11, 30), declineAttempts(3),
			[]time.Time{at(2028, 1, 30), at(2028, 2, 29), at(2028, 3, 30)}},
		{"annual from February 29", catalog.Annual, at(2028, 2, 29), nil,
			[]time.Time{at(2030, 2, 28), at(2031, 2, 28), at(2032, 2, 29), at(2033, 2, 28)}},
		{"annual, charged after two declines", catalog.Annual, at(2027, 5, 31), declineAttempts(2),
			[]time.Time{at(2029, 5, 31), at(2030, 5, 31)}},
		{"trial, whose first year starts at its end", catalog.Trial, at(2028, 1, 30), nil,
			[]time.Time{at(2029, 2, 28), at(2030, 2, 28), at(2031, 2, 28), at(2032, 2, 29)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := newSim(t, bought(t, c.term, c.start))
			l.gateway = c.gateway
			for i, want := range c.want {
				before := l.s.ExpiresAt()
				l.advance(before.Add(pol.Grace))
				if got := l.s.ExpiresAt(); !got.Equal(want) {
					t.Fatalf("renewal %d of the term that expired %s: expires %s, want %s", i+1, before.Format(time.DateTime), got.Format(time.DateTime), want.Format(time.DateTime))
				}
			}
			if n := len(logged[subscription.ChargeSucceeded](l)); n != len(c.want) {
				t.Fatalf("%d charges succeeded, want %d", n, len(c.want))
			}
		})
	}
}

// rule ARS-1 with AGT-2: after an agent added or removed days, each renewal
// adds its term to the adjusted expiration date, also when that date was a
// month's end cut short (moving the anchor by the days instead lost or
// gained days).
func TestRule_ARS1_AdjustedExpiryRenewsFromTheNewDate(t *testing.T) {
	for _, c := range []struct {
		name  string
		term  catalog.Term
		start time.Time
		days  int
		want  []time.Time // the adjusted expiry, then after renewals 1, 2
	}{
		{"monthly from January 30, two days added", catalog.Monthly, at(2027, 1, 30), 2, []time.Time{at(2027, 3, 2), at(2027, 4, 2), at(2027, 5, 2)}},
		{"monthly from January 31, two days removed", catalog.Monthly, at(2027, 1, 31), -2, []time.Time{at(2027, 2, 26), at(2027, 3, 26), at(2027, 4, 26)}},
		{"annual from February 29, ten days added", catalog.Annual, at(2028, 2, 29), 10, []time.Time{at(2029, 3, 10), at(2030, 3, 10), at(2031, 3, 10)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := newSim(t, bought(t, c.term, c.start))
			l.do(c.start.Add(day), subscription.AdjustDays{Days: c.days})
			for i, want := range c.want {
				if i > 0 {
					l.advance(l.s.ExpiresAt().Add(pol.Grace))
				}
				if got := l.s.ExpiresAt(); !got.Equal(want) {
					t.Fatalf("after %d renewals: expires %s, want %s", i, got.Format(time.DateOnly), want.Format(time.DateOnly))
				}
			}
		})
	}
}

// rule ARS-1, ARS-2 with AGT-2: days an agent adds to a period whose charge
// was declined start it over from the new date: after the retries ended
// (lapsed, expired) the subscription renews again; during the retries the
// next charge waits for a notice of the new date. Its attempts are numbered
// on (a new idempotency key each, ARS-8).
func TestRule_ARS1_DaysAddedToADeclinedPeriodRenewFromTheNewDate(t *testing.T) {
	for _, c := range []struct {
		name  string
		after time.Duration // after the first decline, 7 days before expiry
	}{
		{"during the retries", 2 * day},
		{"after the retries ended, expired", 8 * day},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := newSim(t, bought(t, catalog.Annual, at(2027, 1, 10)))
			l.method = mustCard(t, "tok_card", 12, 2035)
			declining := true
			l.gateway = func(r subscription.ChargeRequested) payment.ChargeOutcome {
				if declining {
					return decline(r)
				}
				return approve(r)
			}
			exp := l.s.ExpiresAt()
			adjusted := exp.Add(-pol.AnnualChargeLead).Add(c.after)
			l.advance(adjusted)
			attempts := len(logged[subscription.ChargeRequested](l))
			declining = false
			l.do(adjusted, subscription.AdjustDays{Days: 60})
			newExpiry := exp.AddDate(0, 0, 60)
			l.advance(newExpiry.Add(pol.Grace))
			notices, charged := logged[subscription.RenewalNoticeIssued](l), logged[subscription.ChargeSucceeded](l)
			last := notices[len(notices)-1]
			if len(charged) != 1 || !last.ExpiresAt.Equal(newExpiry) || !charged[0].At.After(last.At) || charged[0].Attempt != attempts+1 {
				t.Fatalf("notices %+v, charges %+v; want a notice of %s, then its charge as attempt %d", notices, charged,
					newExpiry.Format(time.DateOnly), attempts+1)
			}
			if !l.s.ExpiresAt().Equal(newExpiry.AddDate(1, 0, 0)) {
				t.Fatalf("renewed until %s, want a year from %s", l.s.ExpiresAt().Format(time.DateOnly), newExpiry.Format(time.DateOnly))
			}
		})
	}
}

// rule ARS-2: the pre-billing notice 30 (annual) or 3 (monthly) days before
// expiry, with the date and the fee; the charge 7 days before expiry
// (annual) or on the expiry day (monthly).
func TestRule_ARS2_NoticeThenChargeOnTheTermsDates(t *testing.T) {
	cases := []struct {
		term       catalog.Term
		noticeLead time.Duration
		chargeLead time.Duration
		fee        money.Money
	}{
		{catalog.Annual, 30 * day, 7 * day, annualFee},
		{catalog.Monthly, 3 * day, 0, monthlyFee},
	}
	for _, c := range cases {
		t.Run(c.term.String(), func(t *testing.T) {
			created := bought(t, c.term, at(2027, 1, 10))
			l := newSim(t, created)
			exp := l.s.ExpiresAt()
			notice, charge := exp.Add(-c.noticeLead), exp.Add(-c.chargeLead)
			if d := l.due(); !d.Equal(notice) {
				t.Fatalf("first due %s, want the notice date %s", d, notice)
			}
			wantEvents(t, "one instant before the notice", l.runDue(notice.Add(-ns)))
			wantEvents(t, "at the notice date", l.runDue(notice),
				subscription.RenewalNoticeIssued{Period: 1, Term: c.term.String(), ExpiresAt: exp, ChargeAt: charge, Amount: c.fee, At: notice})
			wantEvents(t, "again at the notice date", l.runDue(notice))
			if d := l.due(); !d.Equal(charge) {
				t.Fatalf("due %s after the notice, want the charge date %s", d, charge)
			}
			wantEvents(t, "one instant before the charge", l.runDue(charge.Add(-ns)))
			wantEvents(t, "at the charge date", l.runDue(charge), chargeRequested(created, 1, 1, "tok_order", c.fee, exp, charge))
			wantEvents(t, "while the charge is pending", l.runDue(charge.Add(ns)))
			if d := l.due(); !d.Equal(charge) {
				t.Fatalf("a pending charge is due %s, want at once (%s)", d, charge)
			}
		})
	}
}

// rule ARS-2, TRI-3: a late notice pushes the charge to 7 (annual) or 3
// (monthly; a trial's ending) days after it, into grace if need be; the
// subscription stays current in grace until the charge succeeds, for at
// most 7 days after expiry. A late trial-ending e-mail (the workers were
// down) so still gives the customer its 3 days to opt out.
func TestRule_ARS2_LateNoticePushesTheChargeIntoGrace(t *testing.T) {
	cases := []struct {
		name       string
		term       catalog.Term
		noticeAt   time.Duration // relative to expiry
		wantCharge time.Duration // relative to expiry
	}{
		{"annual, the latest notice that keeps the charge date", catalog.Annual, -14 * day, -7 * day},
		{"annual, one instant later", catalog.Annual, -14*day + ns, -7*day + ns},
		{"annual, charge pushed past expiry", catalog.Annual, -3 * day, 4 * day},
		{"annual, charge one instant before the grace ends", catalog.Annual, -ns, 7*day - ns},
		{"monthly, on time", catalog.Monthly, -3 * day, 0},
		{"monthly, one instant late", catalog.Monthly, -3*day + ns, ns},
		{"monthly, notice on the expiry day", catalog.Monthly, 0, 3 * day},
		{"monthly, charge one instant before the grace ends", catalog.Monthly, 4*day - ns, 7*day - ns},
		{"trial, on time", catalog.Trial, -3 * day, 0},
		{"trial, one instant late", catalog.Trial, -3*day + ns, ns},
		{"trial, a day before the end", catalog.Trial, -day, 2 * day},
		{"trial, notice at the end", catalog.Trial, 0, 3 * day},
		{"trial, charge one instant before the grace ends", catalog.Trial, 4*day - ns, 7*day - ns},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			created := bought(t, c.term, at(2027, 1, 10))
			l := newSim(t, created)
			exp := l.s.ExpiresAt()
			noticeAt, chargeAt := exp.Add(c.noticeAt), exp.Add(c.wantCharge)
			events := l.runDue(noticeAt)
			var stated [][2]time.Time // each notice's charge date and instant
			for _, n := range only[subscription.RenewalNoticeIssued](events) {
				stated = append(stated, [2]time.Time{n.ChargeAt, n.At})
			}
			for _, n := range only[subscription.TrialEndingNoticeIssued](events) {
				stated = append(stated, [2]time.Time{n.ChargeAt, n.At})
			}
			if len(stated) != 1 || !stated[0][0].Equal(chargeAt) || !stated[0][1].Equal(noticeAt) {
				t.Fatalf("late notice at %s: %s, want one stating the charge at %s", noticeAt, show(events), chargeAt)
			}
			current := subscription.StatusActive
			if c.term == catalog.Trial {
				current = subscription.StatusTrial
			}
			wantEvents(t, "one instant before the pushed charge", l.runDue(chargeAt.Add(-ns)))
			if chargeAt.After(exp) {
				wantStatus(t, l.s, exp.Add(-ns), current)
				wantStatus(t, l.s, exp, subscription.StatusGrace)
				wantStatus(t, l.s, chargeAt, subscription.StatusGrace)
				wantStatus(t, l.s, exp.Add(pol.Grace-ns), subscription.StatusGrace)
				wantStatus(t, l.s, exp.Add(pol.Grace), subscription.StatusExpired)
			}
			fee := annualFee
			if c.term == catalog.Monthly {
				fee = monthlyFee
			}
			wantEvents(t, "at the pushed charge date", l.runDue(chargeAt), chargeRequested(created, 1, 1, "tok_order", fee, exp, chargeAt))
			l.advance(chargeAt)
			wantStatus(t, l.s, exp.Add(pol.Grace), subscription.StatusActive)
		})
	}
}

// rule ARS-2: a notice so late that its charge could not come before the
// grace ends (or that comes after it) is not sent: the period lapses, and
// nothing is charged.
func TestRule_ARS2_NoticeTooLateForTheGraceLapses(t *testing.T) {
	for _, term := range []catalog.Term{catalog.Annual, catalog.Monthly, catalog.Trial} {
		for _, after := range []time.Duration{pol.Grace, pol.Grace + ns, pol.Grace + 40*day} {
			t.Run(fmt.Sprintf("%s, expiry+%s", term, after), func(t *testing.T) {
				l := newSim(t, bought(t, term, at(2027, 1, 10)))
				exp := l.s.ExpiresAt()
				wantEvents(t, "RunDue after the grace", l.runDue(exp.Add(after)),
					subscription.RenewalLapsed{Period: 1, ExpiresAt: exp, At: exp.Add(after)})
				l.noneDue()
				if got := l.advance(exp.AddDate(3, 0, 0)); len(got) > 0 {
					t.Fatalf("after the lapse: %s", show(got))
				}
				wantStatus(t, l.s, exp.Add(after), subscription.StatusExpired)
			})
		}
	}
	// A notice whose pushed charge would fall at or after the grace's end
	// promises a charge that cannot come.
	for _, term := range []catalog.Term{catalog.Annual, catalog.Monthly, catalog.Trial} {
		t.Run(term.String()+", charge pushed to the grace's end", func(t *testing.T) {
			l := newSim(t, bought(t, term, at(2027, 1, 10)))
			exp := l.s.ExpiresAt()
			gap := map[catalog.Term]time.Duration{catalog.Annual: pol.AnnualMinNoticeToCharge, catalog.Monthly: pol.MonthlyMinNoticeToCharge,
				catalog.Trial: pol.TrialEndingNotice}[term]
			late := exp.Add(pol.Grace - gap)
			wantEvents(t, "RunDue", l.runDue(late), subscription.RenewalLapsed{Period: 1, ExpiresAt: exp, At: late})
			l.noneDue()
		})
	}
}

// rule ARS-2 (with AGT-2): days an agent adds or removes after the notice
// and before the charge bring a new notice announcing the new date, and the
// charge follows it; removing days no longer lapses the period with
// automatic renewal on (its old charge date fell past the new grace).
func TestRule_ARS2_DaysAdjustedAfterTheNoticeAnnounceTheNewDate(t *testing.T) {
	for _, c := range []struct {
		name               string
		days               int
		noticeAt, chargeAt func(exp, adjusted time.Time) time.Time
	}{
		// 20 days off, a day after the notice: the new notice is late
		// (ARS-2), its charge 7 days after it, before the new expiry.
		{"20 days removed", -20,
			func(_, adjusted time.Time) time.Time { return adjusted },
			func(_, adjusted time.Time) time.Time { return adjusted.Add(pol.AnnualMinNoticeToCharge) }},
		// 40 days more: the new notice 30 days before the new expiry, the
		// charge 7 days before it.
		{"40 days added", 40,
			func(exp, _ time.Time) time.Time { return exp.Add(-30 * day) },
			func(exp, _ time.Time) time.Time { return exp.Add(-7 * day) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			created := bought(t, catalog.Annual, at(2027, 1, 10))
			l := newSim(t, created)
			old := l.s.ExpiresAt()
			l.advance(old.Add(-30 * day))
			if got := logged[subscription.RenewalNoticeIssued](l); len(got) != 1 {
				t.Fatalf("notices %+v, want the first", got)
			}
			adjusted := old.Add(-29 * day)
			l.do(adjusted, subscription.AdjustDays{Days: c.days})
			exp := old.AddDate(0, 0, c.days)
			noticeAt, chargeAt := c.noticeAt(exp, adjusted), c.chargeAt(exp, adjusted)
			if d := later(l.due(), adjusted); !d.Equal(noticeAt) { // a past due instant is due at once
				t.Fatalf("due %s after the adjustment, want the new notice at %s", d, noticeAt)
			}
			l.advance(exp.Add(pol.Grace + day))
			notices := logged[subscription.RenewalNoticeIssued](l)
			if len(notices) != 2 || !notices[1].ExpiresAt.Equal(exp) || !notices[1].At.Equal(noticeAt) || !notices[1].ChargeAt.Equal(chargeAt) {
				t.Fatalf("notices %+v, want a second one at %s announcing %s, charge on %s", notices, noticeAt, exp, chargeAt)
			}
			charged := logged[subscription.ChargeSucceeded](l)
			if len(charged) != 1 || !charged[0].At.Equal(chargeAt) || !charged[0].ExpiresAt.Equal(exp.AddDate(1, 0, 0)) {
				t.Fatalf("charges %+v, want one on %s renewing to %s", charged, chargeAt, exp.AddDate(1, 0, 0))
			}
			if lapsed := logged[subscription.RenewalLapsed](l); len(lapsed) != 0 {
				t.Fatalf("lapsed %+v", lapsed)
			}
		})
	}
}

// rule ARS-3: with automatic renewal off, reminders 30 and 7 days before
// expiry, then the subscription expires at its expiration date; it can be
// turned on again.
func TestRule_ARS3_ManualRenewalRemindersThenExpiry(t *testing.T) {
	off := subscription.SetAutoRenewal{AccountID: ann, On: false}
	start := at(2027, 1, 10)
	l := newSim(t, bought(t, catalog.Annual, start))
	wantEvents(t, "turning renewal off", l.do(start.Add(time.Hour), off), subscription.AutoRenewalChanged{On: false, At: start.Add(time.Hour)})
	exp := l.s.ExpiresAt()
	for _, lead := range []time.Duration{30 * day, 7 * day} {
		r := exp.Add(-lead)
		if d := l.due(); !d.Equal(r) {
			t.Fatalf("due %s, want the %s reminder at %s", d, lead, r)
		}
		wantEvents(t, "one instant before the reminder", l.runDue(r.Add(-ns)))
		wantEvents(t, "at the reminder", l.runDue(r), subscription.RenewalReminderIssued{ExpiresAt: exp, DaysBefore: int(lead / day), At: r})
		wantEvents(t, "after the reminder", l.runDue(r.Add(ns)))
	}
	l.noneDue()
	wantStatus(t, l.s, exp.Add(-ns), subscription.StatusActive)
	wantStatus(t, l.s, exp, subscription.StatusExpired)
	wantStatus(t, l.s, exp.Add(ns), subscription.StatusExpired)
	if got := l.advance(exp.AddDate(2, 0, 0)); len(got) > 0 {
		t.Fatalf("renewal off: %s", show(got))
	}
	if only := logged[subscription.ChargeRequested](l); len(only) > 0 {
		t.Fatalf("charged with renewal off: %v", only)
	}

	t.Run("a late worker sends only the most urgent reminder", func(t *testing.T) {
		l := newSim(t, bought(t, catalog.Annual, start))
		l.do(start, off)
		exp := l.s.ExpiresAt()
		wantEvents(t, "at 7 days", l.runDue(exp.Add(-7*day)), subscription.RenewalReminderIssued{ExpiresAt: exp, DaysBefore: 7, At: exp.Add(-7 * day)})
		l.noneDue()
	})
	t.Run("a reminder due after the expiry is not sent: the period lapses", func(t *testing.T) {
		for _, reminded := range []int{0, 1} {
			l := newSim(t, bought(t, catalog.Annual, start))
			l.do(start, off)
			exp := l.s.ExpiresAt()
			if reminded == 1 {
				l.runDue(exp.Add(-30 * day))
			}
			for _, late := range []time.Time{exp, exp.Add(ns), exp.AddDate(0, 2, 0)} {
				t.Run(late.Sub(exp).String(), func(t *testing.T) {
					events, err := l.peek(late, subscription.RunDue{})
					if err != nil {
						t.Fatal(err)
					}
					wantEvents(t, "RunDue after expiry", events, subscription.RenewalLapsed{Period: 1, ExpiresAt: exp, At: late})
				})
			}
			l.runDue(exp)
			l.noneDue()
			wantStatus(t, l.s, exp, subscription.StatusExpired)
		}
	})
	t.Run("turned on again, it renews", func(t *testing.T) {
		l := newSim(t, bought(t, catalog.Annual, start))
		l.do(start, off)
		exp := l.s.ExpiresAt()
		l.advance(exp.Add(-20 * day))
		l.do(exp.Add(-20*day), subscription.SetAutoRenewal{AccountID: ann, On: true})
		events := l.advance(exp)
		if len(only[subscription.RenewalNoticeIssued](events)) != 1 || len(only[subscription.ChargeSucceeded](events)) != 1 {
			t.Fatalf("turned on again: %s", show(events))
		}
		if got, want := l.s.ExpiresAt(), at(2029, 1, 10); !got.Equal(want) {
			t.Fatalf("expires %s, want %s", got, want)
		}
	})
}

// rule ARS-4: a subscription bought at any storefront outside the Asian
// online stores is enrolled in automatic renewal, and the customer manages
// it here.
func TestRule_ARS4_EveryOtherStorefrontRenewsAndIsManagedHere(t *testing.T) {
	n := 0
	for _, sf := range cat.Storefronts() {
		if sf.AsianStore() {
			continue
		}
		n++
		t.Run(sf.Code(), func(t *testing.T) {
			start := at(2027, 1, 10)
			l := newSim(t, boughtAt(t, catalog.Annual, start, sf.Code()))
			if !l.s.Renewing() {
				t.Fatal("not renewing")
			}
			if got := only[subscription.RenewalNoticeIssued](l.advance(l.s.ExpiresAt().Add(-30 * day))); len(got) != 1 {
				t.Fatalf("no notice: %v", got)
			}
			wantEvents(t, "turning renewal off", l.do(l.now, subscription.SetAutoRenewal{AccountID: ann, On: false}),
				subscription.AutoRenewalChanged{On: false, At: l.now})
		})
	}
	if n == 0 {
		t.Fatal("the catalog has no storefront outside Asia")
	}
}

// rule ARS-5: at the Asian online stores (JP, KR, CN, HK, TW), the
// settings are managed on the store: changing them here is refused with an
// error naming it.
func TestRule_ARS5_AsianStoresRefuseNamingTheStore(t *testing.T) {
	asian := []string{"JP", "KR", "CN", "HK", "TW"}
	for _, sf := range cat.Storefronts() {
		if got, want := sf.AsianStore(), slices.Contains(asian, sf.Code()); got != want {
			t.Errorf("%s: AsianStore %v, want %v", sf.Code(), got, want)
		}
	}
	for _, code := range asian {
		for _, term := range []catalog.Term{catalog.Annual, catalog.Monthly} {
			t.Run(code+" "+term.String(), func(t *testing.T) {
				l := newSim(t, boughtAt(t, term, at(2027, 1, 10), code))
				cmds := []subscription.Command{subscription.SetAutoRenewal{AccountID: ann, On: false}}
				if term == catalog.Monthly {
					cmds = append(cmds, subscription.Cancel{AccountID: ann})
				}
				for _, cmd := range cmds {
					_, err := l.try(at(2027, 1, 11), cmd)
					var store *subscription.AsianStoreError
					if !errors.As(err, &store) || store.Storefront != code || !strings.Contains(err.Error(), code) {
						t.Fatalf("%T: %v, want a refusal naming %s", cmd, err, code)
					}
				}
				if !l.s.AutoRenew() {
					t.Fatal("a refusal changed the setting")
				}
			})
		}
	}
}

// rule ARS-6: a declined charge asks for new billing information and is
// retried 1, 3 and 5 days after the first failure, never past expiry plus
// grace; then the period lapses and the subscription expires.
func TestRule_ARS6_DeclinedChargeRetriedThenLapses(t *testing.T) {
	cases := []struct {
		name     string
		term     catalog.Term
		noticeAt time.Duration   // relative to expiry
		attempts []time.Duration // relative to expiry
	}{
		{"annual", catalog.Annual, -30 * day, []time.Duration{-7 * day, -6 * day, -4 * day, -2 * day}},
		{"monthly", catalog.Monthly, -3 * day, []time.Duration{0, 1 * day, 3 * day, 5 * day}},
		{"monthly, the last retry would fall at the grace's end", catalog.Monthly, -1 * day, []time.Duration{2 * day, 3 * day, 5 * day}},
		{"annual, the second retry would fall past the grace", catalog.Annual, -3 * day, []time.Duration{4 * day, 5 * day}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			created := bought(t, c.term, at(2027, 1, 10))
			l := newSim(t, created)
			l.gateway = decline
			exp := l.s.ExpiresAt()
			fee := annualFee
			if c.term == catalog.Monthly {
				fee = monthlyFee
			}
			l.runDue(exp.Add(c.noticeAt))
			for i, off := range c.attempts {
				attempt, when := i+1, exp.Add(off)
				if d := l.due(); !d.Equal(when) {
					t.Fatalf("attempt %d due %s, want %s", attempt, d, when)
				}
				wantEvents(t, "one instant before the attempt", l.runDue(when.Add(-ns)))
				wantEvents(t, fmt.Sprintf("attempt %d", attempt), l.runDue(when), chargeRequested(created, 1, attempt, "tok_order", fee, exp, when))
				events, _, _ := l.step(when)
				var next time.Time
				if i+1 < len(c.attempts) {
					next = exp.Add(c.attempts[i+1])
				}
				want := []domain.Event{subscription.ChargeDeclined{Period: 1, Attempt: attempt, ChargeID: fmt.Sprintf("ch_p1_a%d", attempt),
					DeclineCode: payment.CodeCardDeclined, NextRetryAt: next, At: when}}
				if next.IsZero() {
					want = append(want, subscription.RenewalLapsed{Period: 1, ExpiresAt: exp, At: when})
				} else if !l.s.AwaitingRetry() {
					t.Fatal("not awaiting a retry")
				}
				wantEvents(t, fmt.Sprintf("attempt %d declined", attempt), events, want...)
				if next.After(exp.Add(pol.Grace)) {
					t.Fatalf("retry at %s, past the grace", next)
				}
			}
			l.noneDue()
			last := exp.Add(c.attempts[len(c.attempts)-1])
			wantStatus(t, l.s, later(last, exp), subscription.StatusExpired)
			if last.Before(exp) {
				wantStatus(t, l.s, exp.Add(-ns), subscription.StatusActive)
			}
		})
	}
}

// rule ARS-6: a card that will have expired before the charge date gets the
// update-your-billing e-mail with the notice.
func TestRule_ARS6_CardExpiringBeforeTheChargeWarnedAtNotice(t *testing.T) {
	start := time.Date(2027, 3, 8, 0, 0, 0, 0, time.UTC) // charged 2028-03-01 00:00, the instant a 02/2028 card expires
	dd, err := payment.NewDirectDebitMethod("tok_dd", "DE", "3000", "Ann Example")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		method payment.PaymentMethod
		warn   string
	}{
		{"expired at notice time", mustCard(t, "tok_card", 1, 2028), "01/2028"},
		{"expires the instant of the charge", mustCard(t, "tok_card", 2, 2028), "02/2028"},
		{"valid through the charge's month", mustCard(t, "tok_card", 3, 2028), ""},
		{"direct debit", dd, ""},
		{"no billing information", payment.PaymentMethod{}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := newSim(t, bought(t, catalog.Annual, start))
			l.method = c.method
			exp := l.s.ExpiresAt()
			noticeAt, chargeAt := exp.Add(-30*day), exp.Add(-7*day)
			events := l.runDue(noticeAt)
			want := []domain.Event{subscription.RenewalNoticeIssued{Period: 1, Term: "annual", ExpiresAt: exp, ChargeAt: chargeAt, Amount: annualFee, At: noticeAt}}
			if c.warn != "" {
				want = append(want, subscription.PaymentMethodWarned{Period: 1, ChargeAt: chargeAt, CardExpiry: c.warn, LastFour: "4242", At: noticeAt})
			}
			wantEvents(t, "notice", events, want...)
		})
	}
}

// rule ARS-6: an update of the billing information while the renewal
// awaits a retry triggers the retry at once with the new method; the later
// retries are then not needed.
func TestRule_ARS6_BillingUpdateRetriesAtOnce(t *testing.T) {
	created := bought(t, catalog.Annual, at(2027, 1, 10))
	l := newSim(t, created)
	old := mustCard(t, "tok_old", 12, 2030)
	l.method = old
	l.gateway = func(c subscription.ChargeRequested) payment.ChargeOutcome {
		if c.Token == "tok_old" {
			return decline(c)
		}
		return approve(c)
	}
	exp := l.s.ExpiresAt()
	first := exp.Add(-7 * day)
	l.advance(first)
	if !l.s.AwaitingRetry() || !l.due().Equal(first.Add(day)) {
		t.Fatalf("after the decline: awaiting %v, due %s", l.s.AwaitingRetry(), l.due())
	}
	update := first.Add(2 * time.Hour)
	wantEvents(t, "the same method before the retry", l.runDue(update))
	wantEvents(t, "no billing information before the retry", l.do(update, subscription.RunDue{}))
	l.method = mustCard(t, "tok_new", 12, 2031)
	wantEvents(t, "the new method", l.runDue(update), chargeRequested(created, 1, 2, "tok_new", annualFee, exp, update))
	l.advance(update)
	if got := logged[subscription.ChargeSucceeded](l); len(got) != 1 || got[0].Attempt != 2 || !got[0].At.Equal(update) {
		t.Fatalf("succeeded: %+v", got)
	}
	if l.s.AwaitingRetry() || !l.due().Equal(l.s.ExpiresAt().Add(-30*day)) {
		t.Fatalf("after the success: awaiting %v, due %s, want the next notice", l.s.AwaitingRetry(), l.due())
	}
	if n := len(logged[subscription.ChargeRequested](l)); n != 2 {
		t.Fatalf("%d charges requested, want 2", n)
	}
}

// rule ARS-6: retries brought forward by billing updates that are declined
// too are more tries, not the scheduled ones: the retries 1, 3 and 5 days
// after the first decline still come, and the period lapses only after the
// last of them.
func TestRule_ARS6_DeclinedBillingUpdatesKeepTheScheduledRetries(t *testing.T) {
	l := newSim(t, bought(t, catalog.Annual, at(2027, 1, 10)))
	l.method = mustCard(t, "tok_0", 12, 2030)
	l.gateway = decline
	first := l.s.ExpiresAt().Add(-7 * day)
	l.advance(first)
	want := []time.Time{first}
	for i := 1; i <= 3; i++ { // three updates within the first day, each declined
		update := first.Add(time.Duration(i) * time.Hour)
		l.method = mustCard(t, fmt.Sprintf("tok_%d", i), 12, 2030)
		l.runDue(update) // the update brings the retry forward
		l.advance(update)
		want = append(want, update)
		if !l.s.AwaitingRetry() || !l.due().Equal(first.Add(day)) {
			t.Fatalf("after update %d: awaiting %v, due %s, want the retry of day 1", i, l.s.AwaitingRetry(), l.due())
		}
	}
	l.advance(first.Add(10 * day))
	want = append(want, first.Add(day), first.Add(3*day), first.Add(5*day))
	var got []time.Time
	for _, c := range logged[subscription.ChargeRequested](l) {
		got = append(got, c.At)
	}
	if !slices.EqualFunc(got, want, time.Time.Equal) {
		t.Fatalf("charges requested at %v, want %v", got, want)
	}
	if lapsed := logged[subscription.RenewalLapsed](l); len(lapsed) != 1 || !lapsed[0].At.Equal(first.Add(5*day)) {
		t.Fatalf("lapsed %+v, want once, at the last retry", lapsed)
	}
}

// rule ARS-7 with AGT-1: a renewal charge of a subscription in no account
// (a guest's order) is refunded on an agent's request, made for no account
// (uuid.Nil), as there is no customer to ask; a customer's account cannot.
func TestRule_ARS7_AgentRefundsAChargeOfASubscriptionInNoAccount(t *testing.T) {
	c := bought(t, catalog.Annual, at(2027, 1, 10))
	l := &sim{t: t, p: pol, now: c.StartsAt}
	l.apply(c.StartsAt, c)
	l.advance(l.s.ExpiresAt().Add(-7 * day))
	if paid := logged[subscription.ChargeSucceeded](l); len(paid) != 1 {
		t.Fatalf("charges: %v", paid)
	}
	if events, err := l.peek(l.now.Add(day), subscription.RequestRefund{AccountID: uuid.Nil}); err != nil || len(only[subscription.RefundRequested](events)) != 1 {
		t.Fatalf("the agent's refund: %v, %v", events, err)
	}
	if _, err := l.peek(l.now.Add(day), subscription.RequestRefund{AccountID: ann}); !errors.Is(err, subscription.ErrNotFound) {
		t.Fatalf("a customer's refund of a subscription not theirs: %v, want ErrNotFound", err)
	}
}

// rule ARS-7, CNV-4: a renewed key a support-assisted conversion disabled
// is not refunded the charge whose term goes on in the new subscription
// (up to the key's expiry when disabled), which taking it back here would
// leave unpaid; a key an agent disabled alone is refunded like any other.
func TestRule_ARS7_DisabledKeyRefundedUnlessConverted(t *testing.T) {
	converted := uuid.New()
	for _, tc := range []struct {
		name    string
		disable func(l *sim)
		wantErr error
	}{
		{"disabled by an agent alone", func(l *sim) { l.do(l.now, subscription.Disable{}) }, nil},
		{"converted", func(l *sim) { l.do(l.now, subscription.Disable{ReplacedBy: converted}) }, subscription.ErrConvertedNotRefunded},
		{"converted, as recorded before the replacement named its term", func(l *sim) {
			l.do(l.now, subscription.Disable{})
			l.apply(l.now, subscription.Replaced{By: converted, At: l.now})
		}, subscription.ErrConvertedNotRefunded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newSim(t, bought(t, catalog.Annual, at(2027, 1, 10)))
			l.advance(l.s.ExpiresAt().Add(-7 * day))
			if paid := logged[subscription.ChargeSucceeded](l); len(paid) != 1 {
				t.Fatalf("charges: %v", paid)
			}
			l.now = l.now.Add(day)
			tc.disable(l)
			events, err := l.peek(l.now.Add(day), subscription.RequestRefund{AccountID: ann})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("refund of the disabled key: %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr == nil && len(only[subscription.RefundRequested](events)) != 1 {
				t.Errorf("refund of the disabled key: %v, want it requested", events)
			}
		})
	}
}

// rule ARS-7: a renewal charge is refunded within 60 days of it (day 60
// included); after, the refusal says when the window closed. The refund
// takes the renewed term back off.
func TestRule_ARS7_RefundWithinSixtyDaysTakesTheTermBack(t *testing.T) {
	start := at(2027, 1, 10)
	renewed := func(t *testing.T) (*sim, time.Time, time.Time) {
		l := newSim(t, bought(t, catalog.Annual, start))
		exp := l.s.ExpiresAt()
		l.advance(exp.Add(-7 * day))
		paid := logged[subscription.ChargeSucceeded](l)
		if len(paid) != 1 {
			t.Fatalf("charges: %v", paid)
		}
		return l, exp, paid[0].At
	}
	for _, after := range []time.Duration{0, 59 * day, 60 * day} {
		t.Run(fmt.Sprintf("accepted %s after the charge", after), func(t *testing.T) {
			l, exp, charged := renewed(t)
			now := charged.Add(after)
			wantEvents(t, "RequestRefund", l.do(now, subscription.RequestRefund{AccountID: ann}),
				subscription.RefundRequested{Period: 1, ChargeID: "ch_p1_a1", Amount: annualFee, IdempotencyKey: subscription.RefundKey(subID, 1), At: now})
			if _, err := l.peek(now, subscription.RequestRefund{AccountID: ann}); !errors.Is(err, subscription.ErrRefundPending) {
				t.Fatalf("again: %v", err)
			}
			if d := l.due(); !d.Equal(now) {
				t.Fatalf("a pending refund is due %s, want at once", d)
			}
			events, _, _ := l.step(now)
			wantEvents(t, "RecordRefund", events, subscription.Refunded{Period: 1, RefundID: "re_ch_p1_a1", ChargeID: "ch_p1_a1", Amount: annualFee, ExpiresAt: exp, At: now})
			if !l.s.ExpiresAt().Equal(exp) || l.s.AutoRenew() {
				t.Fatalf("after the refund: expires %s, auto-renew %v", l.s.ExpiresAt(), l.s.AutoRenew())
			}
			if now.Before(exp) {
				wantStatus(t, l.s, exp.Add(-ns), subscription.StatusActive)
			}
			wantStatus(t, l.s, later(now, exp), subscription.StatusRefunded)
			if _, err := l.peek(now, subscription.RequestRefund{AccountID: ann}); !errors.Is(err, subscription.ErrNothingToRefund) {
				t.Fatalf("after the refund: %v", err)
			}
			if got := l.advance(exp.AddDate(2, 0, 0)); len(got) > 0 {
				t.Fatalf("after the refund: %s", show(got))
			}
		})
	}
	for _, after := range []time.Duration{60*day + ns, 61 * day, 300 * day} {
		t.Run(fmt.Sprintf("refused %s after the charge", after), func(t *testing.T) {
			l, _, charged := renewed(t)
			_, err := l.try(charged.Add(after), subscription.RequestRefund{AccountID: ann})
			var closed *subscription.RefundWindowClosedError
			closes := charged.Add(60 * day)
			if !errors.As(err, &closed) || !closed.ClosedAt.Equal(closes) || !strings.Contains(err.Error(), closes.Format("2006-01-02")) {
				t.Fatalf("error %v, want the window closed at %s", err, closes)
			}
		})
	}
	t.Run("nothing to refund, another account, a monthly plan", func(t *testing.T) {
		l := newSim(t, bought(t, catalog.Annual, start))
		if _, err := l.peek(start, subscription.RequestRefund{AccountID: ann}); !errors.Is(err, subscription.ErrNothingToRefund) {
			t.Fatalf("before any renewal: %v", err)
		}
		if _, err := l.peek(start, subscription.RequestRefund{AccountID: bob}); !errors.Is(err, subscription.ErrNotFound) {
			t.Fatalf("another account: %v", err)
		}
		m := newSim(t, bought(t, catalog.Monthly, start))
		m.advance(m.s.ExpiresAt())
		if _, err := m.peek(m.now, subscription.RequestRefund{AccountID: ann}); !errors.Is(err, subscription.ErrMonthlyNotRefunded) {
			t.Fatalf("monthly: %v", err)
		}
	})
	t.Run("refused while a renewal charge is pending", func(t *testing.T) {
		l, _, _ := renewed(t)
		exp2 := l.s.ExpiresAt()
		l.advance(exp2.Add(-30 * day))
		l.runDue(exp2.Add(-7 * day))
		if _, ok := l.s.PendingCharge(); !ok {
			t.Fatal("no pending charge")
		}
		_, err := l.try(exp2.Add(-7*day), subscription.RequestRefund{AccountID: ann})
		if !errors.Is(err, subscription.ErrChargePending) {
			t.Fatalf("error %v, want ErrChargePending", err)
		}
	})
}

// rule MON-1: a cancelled monthly plan stays current until its expiration
// date, then expires; cancelling is turning renewal off.
func TestRule_MON1_CancelledPlanStaysCurrentUntilExpiry(t *testing.T) {
	start := at(2027, 1, 10)
	for _, months := range []int{0, 2} {
		t.Run(fmt.Sprintf("after %d renewals", months), func(t *testing.T) {
			l := newSim(t, bought(t, catalog.Monthly, start))
			cancelAt := start.AddDate(0, months, 0).Add(pol.MonthlyInitialRefundWindow + time.Hour)
			l.advance(cancelAt)
			wantEvents(t, "Cancel", l.do(cancelAt, subscription.Cancel{AccountID: ann}), subscription.AutoRenewalChanged{On: false, At: cancelAt})
			wantEvents(t, "Cancel again", l.do(cancelAt, subscription.Cancel{AccountID: ann}))
			exp := l.s.ExpiresAt()
			if want := start.AddDate(0, months+1, 0); !exp.Equal(want) {
				t.Fatalf("expires %s, want %s", exp, want)
			}
			l.noneDue()
			wantStatus(t, l.s, exp.Add(-ns), subscription.StatusActive)
			wantStatus(t, l.s, exp, subscription.StatusExpired)
			if got := l.advance(exp.AddDate(0, 3, 0)); len(got) > 0 {
				t.Fatalf("after cancelling: %s", show(got))
			}
		})
	}
	l := newSim(t, bought(t, catalog.Annual, start))
	if _, err := l.peek(start, subscription.Cancel{AccountID: ann}); !errors.Is(err, subscription.ErrNotMonthly) {
		t.Fatalf("annual: %v", err)
	}
	m := newSim(t, bought(t, catalog.Monthly, start))
	if _, err := m.peek(start, subscription.Cancel{AccountID: bob}); !errors.Is(err, subscription.ErrNotFound) {
		t.Fatalf("another account: %v", err)
	}
}

// rule MON-2: a cancellation within 30 days of the initial purchase (day
// 30 included) refunds the initial charge in full and ends the plan at
// once; later, no refund.
func TestRule_MON2_EarlyCancellationRefundsTheInitialCharge(t *testing.T) {
	start := at(2027, 1, 1) // the first month ends February 1, after day 30
	cases := []struct {
		after  time.Duration
		refund bool
	}{
		{time.Hour, true},
		{29 * day, true},
		{30*day - ns, true},
		{30 * day, true},
		{30*day + ns, false},
		{31 * day, false},
	}
	for _, c := range cases {
		t.Run(c.after.String(), func(t *testing.T) {
			l := newSim(t, bought(t, catalog.Monthly, start))
			now := start.Add(c.after)
			l.advance(now)
			want := []domain.Event{subscription.AutoRenewalChanged{On: false, At: now}}
			if c.refund {
				want = append(want, subscription.RefundRequested{Period: 0, ChargeID: "ch_initial", Amount: initialFee,
					IdempotencyKey: subscription.RefundKey(subID, 0), Initial: true, At: now})
			}
			wantEvents(t, "Cancel", l.do(now, subscription.Cancel{AccountID: ann}), want...)
			l.advance(now)
			if !c.refund {
				wantStatus(t, l.s, now, subscription.StatusActive)
				return
			}
			if got := logged[subscription.Refunded](l); len(got) != 1 || !got[0].ExpiresAt.Equal(now) || got[0].Amount != initialFee {
				t.Fatalf("refunded: %+v", got)
			}
			wantStatus(t, l.s, now, subscription.StatusRefunded)
			l.noneDue()
		})
	}
}

// rule MON-2: a cancellation within the 30 days refunds the initial charge
// also while the plan is in grace, its renewal declined and awaiting a retry
// (a first month of 28 days): the plan ends at once, and the retries with it.
func TestRule_MON2_EarlyCancellationInGraceRefundsTheInitialCharge(t *testing.T) {
	start := at(2027, 1, 31)
	l := newSim(t, bought(t, catalog.Monthly, start))
	l.gateway = decline
	exp := l.s.ExpiresAt() // February 28
	l.advance(exp.Add(time.Hour))
	if got := logged[subscription.ChargeDeclined](l); len(got) != 1 {
		t.Fatalf("declines %+v, want the renewal's first", got)
	}
	cancelAt := exp.Add(2 * time.Hour) // day 28 of the plan
	wantStatus(t, l.s, cancelAt, subscription.StatusGrace)
	events := l.do(cancelAt, subscription.Cancel{AccountID: ann})
	if got := only[subscription.RefundRequested](events); len(got) != 1 || !got[0].Initial || got[0].Amount != initialFee {
		t.Fatalf("cancel in grace within the 30 days: %s, want the initial charge's refund", show(events))
	}
	l.advance(cancelAt.Add(10 * day))
	wantStatus(t, l.s, cancelAt, subscription.StatusRefunded)
	if got := logged[subscription.ChargeRequested](l); len(got) != 1 {
		t.Fatalf("charges requested %+v, want no retry after the plan ended", got)
	}
	l.noneDue()
}

// rule MON-2: a plan bought at the end of January renews on February 28,
// inside the 30 days; while that charge is under way, an early
// cancellation (which would refund and end the plan at once) is refused
// with ErrChargePending, so the charge's outcome never renews a refunded
// plan. Once the charge is settled the cancellation goes through: the
// initial charge is refunded, the plan ends at once, and the renewal's
// month, which it will never deliver, is refunded too.
func TestRule_MON2_EarlyCancellationWaitsForAChargeUnderWay(t *testing.T) {
	start := at(2027, 1, 31)
	l := newSim(t, bought(t, catalog.Monthly, start))
	exp := l.s.ExpiresAt() // February 28
	if days := exp.Sub(start) / day; days >= 30 {
		t.Fatalf("the first month lasts %d days; the test needs a renewal inside the 30-day window", days)
	}
	l.advance(exp.Add(-ns))
	l.runDue(exp)
	if _, ok := l.s.PendingCharge(); !ok {
		t.Fatal("no renewal charge under way at expiry")
	}
	if _, err := l.try(exp.Add(time.Minute), subscription.Cancel{AccountID: ann}); !errors.Is(err, subscription.ErrChargePending) {
		t.Fatalf("an early cancellation during the charge: %v, want ErrChargePending", err)
	}
	l.advance(exp.Add(time.Minute))
	if _, ok := l.s.PendingCharge(); ok {
		t.Fatal("the charge is still under way")
	}
	cancelAt := exp.Add(time.Hour)
	events := l.do(cancelAt, subscription.Cancel{AccountID: ann})
	if got := only[subscription.RefundRequested](events); len(got) != 1 || !got[0].Initial {
		t.Fatalf("cancel after the charge: %s, want the initial charge's refund", show(events))
	}
	renewal := logged[subscription.ChargeSucceeded](l)
	if len(renewal) != 1 {
		t.Fatalf("renewals charged: %+v, want one", renewal)
	}
	l.advance(cancelAt)
	refunds := logged[subscription.Refunded](l)
	if len(refunds) != 2 || refunds[0].ChargeID != "ch_initial" || refunds[1].ChargeID != renewal[0].ChargeID ||
		refunds[1].Amount != renewal[0].Amount {
		t.Fatalf("refunds %+v, want the initial charge's and then the renewal's (%s)", refunds, renewal[0].ChargeID)
	}
	for _, r := range refunds {
		if !r.ExpiresAt.Equal(cancelAt) {
			t.Fatalf("refund %s leaves the plan expiring %s, want the cancellation's instant %s", r.ChargeID, r.ExpiresAt, cancelAt)
		}
	}
	wantStatus(t, l.s, cancelAt, subscription.StatusRefunded)
	l.noneDue()
}

// rule MON-3: add-ons are charged with the base product each month while
// active, and cancelled on their own. rule ARS-2: one bought after a
// period's notice has the notice given again with the new fee, and the
// charge waits its lead after it (in grace past the expiry).
func TestRule_MON3_AddOnsChargedWithTheBaseWhileActive(t *testing.T) {
	start := at(2027, 1, 10)
	storage := subscription.AddAddOn{AccountID: ann, AddOn: "storage", Name: "Additional storage", Price: money.New(199, usd)}
	users := subscription.AddAddOn{AccountID: ann, AddOn: "users", Name: "Additional users", Price: money.New(299, usd)}
	l := newSim(t, bought(t, catalog.Monthly, start))
	wantEvents(t, "AddAddOn", l.do(start.Add(day), storage), subscription.AddOnAdded{AddOn: "storage", Name: "Additional storage", Price: money.New(199, usd), At: start.Add(day)})
	wantEvents(t, "AddAddOn again", l.do(start.Add(day), storage))
	period := func(n int) (notice, charge money.Money) {
		t.Helper()
		l.advance(l.s.ExpiresAt())
		notices, charges := logged[subscription.RenewalNoticeIssued](l), logged[subscription.ChargeSucceeded](l)
		last := notices[len(notices)-1]
		if len(charges) != n || last.Period != n || charges[n-1].Period != n {
			t.Fatalf("period %d: notices %+v, charges %+v", n, notices, charges)
		}
		return last.Amount, charges[n-1].Amount
	}
	if n, c := period(1); n != money.New(1198, usd) || c != n {
		t.Fatalf("period 1: notice %v, charge %v, want 11.98 both", n, c)
	}
	exp := l.s.ExpiresAt()
	l.advance(exp.Add(-3 * day))
	usersAt := exp.Add(-day)
	l.do(usersAt, users) // after the notice of period 2
	l.advance(exp.Add(3 * day))
	notices, charges := logged[subscription.RenewalNoticeIssued](l), logged[subscription.ChargeSucceeded](l)
	if len(notices) != 3 || len(charges) != 2 {
		t.Fatalf("period 2 (users bought after its notice): notices %+v, charges %+v, want the notice given again", notices, charges)
	}
	if again, c := notices[2], charges[1]; again.Period != 2 || !again.At.Equal(usersAt) || again.Amount != money.New(1497, usd) ||
		c.Period != 2 || c.Amount != again.Amount || !c.At.Equal(usersAt.Add(3*day)) {
		t.Fatalf("period 2: notice again %+v, charge %+v, want 14.97 noticed at the purchase and charged 3 days later", again, c)
	}
	if !l.s.ExpiresAt().Equal(calendar.AddMonths(start, 3)) {
		t.Fatalf("period 2 renewed until %s, want %s: a month from the old expiry (ARS-1)", l.s.ExpiresAt(), calendar.AddMonths(start, 3))
	}
	if n, c := period(3); n != money.New(1497, usd) || c != n {
		t.Fatalf("period 3: notice %v, charge %v, want 14.97 both", n, c)
	}
	wantEvents(t, "CancelAddOn", l.do(l.now, subscription.CancelAddOn{AccountID: ann, AddOn: "storage"}), subscription.AddOnCancelled{AddOn: "storage", At: l.now})
	if _, err := l.peek(l.now, subscription.CancelAddOn{AccountID: ann, AddOn: "storage"}); !errors.Is(err, subscription.ErrAddOnNotActive) {
		t.Fatalf("cancelled twice: %v", err)
	}
	if n, c := period(4); n != money.New(1298, usd) || c != n {
		t.Fatalf("period 4: notice %v, charge %v, want 12.98 both", n, c)
	}
	if got := l.s.AddOns(); !slices.Equal(got, []string{"users"}) {
		t.Fatalf("add-ons %v", got)
	}
	a := newSim(t, bought(t, catalog.Annual, start))
	var ve *domain.ValidationError
	if _, err := a.peek(start, storage); !errors.As(err, &ve) {
		t.Fatalf("an add-on on an annual term: %v", err)
	}
}

// rule MON-3, ARS-2: add-ons bought one after another in a monthly plan's
// grace each have the notice given again while the charge it sets still
// falls within the grace; one that would push it past the grace comes with
// the next month instead, and the plan renews (it lapsed, the plan ending).
func TestRule_MON3_AddOnLateInTheGraceComesWithTheNextMonth(t *testing.T) {
	start := at(2027, 1, 10)
	storage := subscription.AddAddOn{AccountID: ann, AddOn: "storage", Name: "Additional storage", Price: money.New(199, usd)}
	users := subscription.AddAddOn{AccountID: ann, AddOn: "users", Name: "Additional users", Price: money.New(299, usd)}
	l := newSim(t, bought(t, catalog.Monthly, start))
	exp := l.s.ExpiresAt()
	l.advance(exp.Add(-day))
	l.do(exp.Add(-day), storage)       // noticed again: charged 3 days later, in the grace
	l.advance(exp.Add(36 * time.Hour)) // in the grace, the charge not yet made
	l.do(l.now, users)                 // noticed again: charged at exp + 4.5 days, still in the grace
	late := exp.Add(4*day + 6*time.Hour)
	l.advance(late)
	l.do(late, subscription.CancelAddOn{AccountID: ann, AddOn: "storage"})
	events := l.do(late, storage) // noticed again, it would be charged past the grace
	if added := only[subscription.AddOnAdded](events); len(added) != 1 || !added[0].NextPeriod {
		t.Fatalf("storage bought again late in the grace: %+v, want it for the next month", events)
	}
	l.advance(exp.Add(pol.Grace + day))
	if lapsed := logged[subscription.RenewalLapsed](l); len(lapsed) > 0 {
		t.Fatalf("the plan lapsed: %+v", lapsed)
	}
	charged := logged[subscription.ChargeSucceeded](l)
	if len(charged) != 1 || !charged[0].At.Equal(exp.Add(36*time.Hour+3*day)) || !charged[0].Amount.Equal(money.New(1198+299-199, usd)) {
		t.Fatalf("charges %+v, want the month with users (storage cancelled) 3 days after the last notice", charged)
	}
}

// rule TRI-1: a trial is current for 30 days from its start and charges
// nothing before it ends.
func TestRule_TRI1_TrialCurrentForThirtyDays(t *testing.T) {
	start := at(2027, 1, 10)
	l := newSim(t, bought(t, catalog.Trial, start))
	end := start.Add(30 * day)
	if !l.s.ExpiresAt().Equal(end) {
		t.Fatalf("trial ends %s, want %s", l.s.ExpiresAt(), end)
	}
	for _, now := range []time.Time{start, start.Add(15 * day), end.Add(-ns)} {
		wantStatus(t, l.s, now, subscription.StatusTrial)
	}
	events := l.advance(end.Add(-ns))
	if got := only[subscription.ChargeRequested](events); len(got) > 0 {
		t.Fatalf("charged during the trial: %v", got)
	}
	l.do(end.Add(-ns), subscription.SetAutoRenewal{AccountID: ann, On: false})
	wantStatus(t, l.s, end, subscription.StatusExpired)
}

// rule TRI-2: opting out at any time during the trial means nothing is
// ever charged and the subscription expires when the trial ends.
func TestRule_TRI2_OptOutNeverCharges(t *testing.T) {
	start := at(2027, 1, 10)
	end := start.Add(30 * day)
	for _, optOut := range []time.Time{start, end.Add(-3*day - ns), end.Add(-3 * day), end.Add(-ns)} {
		t.Run(optOut.Sub(start).String(), func(t *testing.T) {
			l := newSim(t, bought(t, catalog.Trial, start))
			l.advance(optOut)
			wantEvents(t, "opt out", l.do(optOut, subscription.SetAutoRenewal{AccountID: ann, On: false}), subscription.AutoRenewalChanged{On: false, At: optOut})
			l.noneDue()
			l.advance(end.AddDate(3, 0, 0))
			if got := logged[subscription.ChargeRequested](l); len(got) > 0 {
				t.Fatalf("charged after opting out: %v", got)
			}
			wantStatus(t, l.s, end.Add(-ns), subscription.StatusTrial)
			wantStatus(t, l.s, end, subscription.StatusExpired)
		})
	}
}

// rule TRI-2: an opted-out trial that has ended stays uncharged: turning
// automatic renewal on then is refused (nothing is left to renew), for a
// monthly plan cancelled (MON-1: refunded and ended at once, MON-2) alike;
// before the end it is allowed.
func TestRule_TRI2_RenewalTurnedOnAfterAnOptedOutTrialEndedChargesNothing(t *testing.T) {
	start := at(2027, 1, 10)
	for term, ended := range map[catalog.Term]subscription.Status{catalog.Trial: subscription.StatusExpired, catalog.Monthly: subscription.StatusRefunded} {
		t.Run(term.String(), func(t *testing.T) {
			l := newSim(t, bought(t, term, start))
			end := l.s.ExpiresAt()
			l.advance(start.Add(day))
			l.do(start.Add(day), subscription.SetAutoRenewal{AccountID: ann, On: false})
			l.advance(end.Add(2 * day))
			if _, err := l.peek(l.now, subscription.SetAutoRenewal{AccountID: ann, On: true}); !errors.Is(err, subscription.ErrEnded) {
				t.Fatalf("renewal turned on after the end: %v, want ErrEnded", err)
			}
			l.advance(end.AddDate(1, 0, 0))
			if got := logged[subscription.ChargeRequested](l); len(got) > 0 {
				t.Fatalf("charged after the end: %v", got)
			}
			wantStatus(t, l.s, l.now, ended)
		})
	}
	l := newSim(t, bought(t, catalog.Trial, start))
	l.do(start.Add(day), subscription.SetAutoRenewal{AccountID: ann, On: false})
	wantEvents(t, "on again before the end", l.do(start.Add(2*day), subscription.SetAutoRenewal{AccountID: ann, On: true}),
		subscription.AutoRenewalChanged{On: true, At: start.Add(2 * day)})
}

// rule TRI-3: the trial-ending e-mail 3 days before the trial ends, with
// the price of the year that follows.
func TestRule_TRI3_TrialEndingNoticeThreeDaysBefore(t *testing.T) {
	start := at(2027, 1, 10)
	end := start.Add(30 * day)
	l := newSim(t, bought(t, catalog.Trial, start))
	notice := end.Add(-3 * day)
	if d := l.due(); !d.Equal(notice) {
		t.Fatalf("due %s, want %s", d, notice)
	}
	wantEvents(t, "one instant before", l.runDue(notice.Add(-ns)))
	wantEvents(t, "at the notice date", l.runDue(notice),
		subscription.TrialEndingNoticeIssued{Period: 1, ExpiresAt: end, ChargeAt: end, Amount: annualFee, At: notice})
	wantEvents(t, "one instant after", l.runDue(notice.Add(ns)))
}

// rule TRI-2, TRI-3: a customer who opts out after a late trial-ending
// e-mail, within the 3 days it gives (TestRule_ARS2_LateNotice…), is
// never charged.
func TestRule_TRI3_OptOutAfterALateNotice_NothingCharged(t *testing.T) {
	l := newSim(t, bought(t, catalog.Trial, at(2027, 1, 10)))
	end := l.s.ExpiresAt()
	l.runDue(end)
	l.do(end.Add(2*day), subscription.SetAutoRenewal{AccountID: ann, On: false})
	l.advance(end.Add(pol.Grace + 40*day))
	if got := logged[subscription.ChargeRequested](l); len(got) > 0 {
		t.Fatalf("charged after opting out: %+v", got)
	}
	wantStatus(t, l.s, end.Add(2*day), subscription.StatusExpired)
}

// rule TRI-4: at the trial's end the subscription is extended a full year
// at the standard price and the card charged; renewal stays on. Declined,
// it follows ARS-6 and expires when the retries fail.
func TestRule_TRI4_TrialEndExtendsAYearOrExpires(t *testing.T) {
	start := at(2027, 1, 10)
	end := start.Add(30 * day)
	t.Run("charged", func(t *testing.T) {
		created := bought(t, catalog.Trial, start)
		l := newSim(t, created)
		l.advance(end.Add(-ns))
		wantEvents(t, "one instant before the end", l.runDue(end.Add(-ns)))
		wantEvents(t, "at the end", l.runDue(end), chargeRequested(created, 1, 1, "tok_order", annualFee, end, end))
		events, _, _ := l.step(end)
		wantEvents(t, "charged", events, subscription.ChargeSucceeded{Period: 1, Attempt: 1, ChargeID: "ch_p1_a1", Amount: annualFee,
			Term: "annual", ExpiresAt: end.AddDate(1, 0, 0), At: end})
		wantStatus(t, l.s, end, subscription.StatusActive)
		if !l.s.AutoRenew() || l.s.Term() != "annual" || !l.due().Equal(end.AddDate(1, 0, 0).Add(-30*day)) {
			t.Fatalf("after the trial: auto-renew %v, term %s, due %s", l.s.AutoRenew(), l.s.Term(), l.due())
		}
		l.advance(end.AddDate(1, 0, 0))
		if got := logged[subscription.ChargeSucceeded](l); len(got) != 2 || got[1].Amount != annualFee || !got[1].ExpiresAt.Equal(end.AddDate(2, 0, 0)) {
			t.Fatalf("second year: %+v", got)
		}
	})
	// rule TRI-1: the trial is billed to a card; the account's billing
	// method is used when it is one, the order's card otherwise.
	for _, c := range []struct {
		name, token string
		method      func(t *testing.T) payment.PaymentMethod
	}{
		{"a card on the account", "tok_card", func(t *testing.T) payment.PaymentMethod { return mustCard(t, "tok_card", 12, 2030) }},
		{"a direct debit on the account", "tok_order", func(t *testing.T) payment.PaymentMethod {
			m, err := payment.NewDirectDebitMethod("tok_dd", "DE", "3000", "Ann Example")
			if err != nil {
				t.Fatal(err)
			}
			return m
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			created := bought(t, catalog.Trial, start)
			l := newSim(t, created)
			l.method = c.method(t)
			l.advance(end.Add(-ns))
			wantEvents(t, "at the end", l.runDue(end), chargeRequested(created, 1, 1, c.token, annualFee, end, end))
		})
	}
	t.Run("declined until the retries end", func(t *testing.T) {
		l := newSim(t, bought(t, catalog.Trial, start))
		l.gateway = decline
		l.advance(end.Add(5*day - ns))
		wantStatus(t, l.s, end, subscription.StatusGrace)
		wantStatus(t, l.s, end.Add(5*day-ns), subscription.StatusGrace)
		events := l.advance(end.Add(5 * day))
		if len(only[subscription.RenewalLapsed](events)) != 1 {
			t.Fatalf("at the last retry: %s", show(events))
		}
		var times []time.Time
		for _, c := range logged[subscription.ChargeRequested](l) {
			times = append(times, c.At)
		}
		if want := []time.Time{end, end.Add(day), end.Add(3 * day), end.Add(5 * day)}; !slices.EqualFunc(times, want, time.Time.Equal) {
			t.Fatalf("attempts at %v, want %v", times, want)
		}
		wantStatus(t, l.s, end.Add(5*day), subscription.StatusExpired)
		l.noneDue()
	})
}

// rule TRI-5: once the trial was billed, its charge is refunded within 60
// days (ARS-7), taking the year back.
func TestRule_TRI5_RefundAfterTrialBilling(t *testing.T) {
	start := at(2027, 1, 10)
	end := start.Add(30 * day)
	for _, c := range []struct {
		after time.Duration
		ok    bool
	}{{60 * day, true}, {60*day + ns, false}} {
		t.Run(c.after.String(), func(t *testing.T) {
			l := newSim(t, bought(t, catalog.Trial, start))
			if _, err := l.peek(end.Add(-day), subscription.RequestRefund{AccountID: ann}); !errors.Is(err, subscription.ErrNothingToRefund) {
				t.Fatalf("during the trial: %v", err)
			}
			l.advance(end)
			now := end.Add(c.after)
			_, err := l.try(now, subscription.RequestRefund{AccountID: ann})
			if !c.ok {
				var closed *subscription.RefundWindowClosedError
				if !errors.As(err, &closed) || !closed.ClosedAt.Equal(end.Add(60*day)) {
					t.Fatalf("error %v, want the window closed at %s", err, end.Add(60*day))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			l.advance(now)
			if !l.s.ExpiresAt().Equal(end) || l.s.AutoRenew() {
				t.Fatalf("after the refund: expires %s, auto-renew %v", l.s.ExpiresAt(), l.s.AutoRenew())
			}
			wantStatus(t, l.s, now, subscription.StatusRefunded)
		})
	}
}

// rule TRI-6: a card that becomes invalid during the trial gets the
// update-your-card e-mail with the trial-ending notice (ARS-6), and an
// update retries the declined charge at once. The card is the account's
// billing method, or, with none, the card the trial was ordered with.
func TestRule_TRI6_CardInvalidDuringTheTrialWarned(t *testing.T) {
	start := at(2027, 1, 10) // ends 2027-02-09
	end := start.Add(30 * day)
	for _, c := range []struct {
		month   int
		ordered bool // the order's card, the account having no billing method
		warn    bool
	}{{1, false, true}, {2, false, false}, {1, true, true}, {2, true, false}} {
		name := fmt.Sprintf("account's card %02d/2027", c.month)
		if c.ordered {
			name = fmt.Sprintf("order's card %02d/2027", c.month)
		}
		t.Run(name, func(t *testing.T) {
			created := bought(t, catalog.Trial, start)
			if c.ordered {
				created.PaymentToken, created.PaymentCard = "tok_card", &payment.CardExpiry{LastFour: "4242", Month: c.month, Year: 2027}
			}
			l := newSim(t, created)
			if !c.ordered {
				l.method = mustCard(t, "tok_card", c.month, 2027)
			}
			notice := end.Add(-3 * day)
			want := []domain.Event{subscription.TrialEndingNoticeIssued{Period: 1, ExpiresAt: end, ChargeAt: end, Amount: annualFee, At: notice}}
			if c.warn {
				want = append(want, subscription.PaymentMethodWarned{Period: 1, ChargeAt: end, CardExpiry: "01/2027", LastFour: "4242", At: notice})
			}
			wantEvents(t, "trial-ending notice", l.runDue(notice), want...)
			if !c.warn {
				return
			}
			l.gateway = func(c subscription.ChargeRequested) payment.ChargeOutcome {
				if c.Token == "tok_card" {
					return decline(c)
				}
				return approve(c)
			}
			l.advance(end)
			l.method = mustCard(t, "tok_new", 12, 2030)
			update := end.Add(time.Hour)
			wantEvents(t, "billing updated", l.runDue(update), chargeRequested(created, 1, 2, "tok_new", annualFee, end, update))
			l.advance(update)
			if !l.s.ExpiresAt().Equal(end.AddDate(1, 0, 0)) {
				t.Fatalf("expires %s", l.s.ExpiresAt())
			}
		})
	}
}

// rule TIM-1: every step reads the instant it is given, and only it: each
// event carries the command's instant, and the same state, command and
// instant decide the same events.
func TestRule_TIM1_EveryStepSeesTheInstantItIsGiven(t *testing.T) {
	for _, term := range []catalog.Term{catalog.Annual, catalog.Monthly, catalog.Trial} {
		t.Run(term.String(), func(t *testing.T) {
			start := at(2027, 1, 10)
			l := newSim(t, bought(t, term, start))
			l.gateway = declineAttempts(1)
			for range 200 {
				d, ok := l.s.NextDue(l.p)
				if !ok || d.After(start.AddDate(3, 0, 0)) {
					break
				}
				now := later(d, l.now)
				if _, pending := l.s.PendingCharge(); !pending && now.Equal(d) {
					if early, err := l.peek(now.Add(-ns), subscription.RunDue{}); err != nil || len(early) > 0 {
						t.Fatalf("one instant before NextDue %s: %s %v", now, show(early), err)
					}
					a, errA := l.peek(now, subscription.RunDue{})
					b, errB := l.peek(now, subscription.RunDue{})
					if errA != nil || errB != nil {
						t.Fatal(errA, errB)
					}
					wantEvents(t, "the same step decided twice", a, b...)
				}
				l.step(now)
			}
			if len(logged[subscription.ChargeSucceeded](l)) == 0 {
				t.Fatal("nothing renewed")
			}
			for _, s := range l.log {
				if e, ok := eventAt(s.e); ok && !e.Equal(s.now) {
					t.Fatalf("%T at %s decided at %s", s.e, e, s.now)
				}
			}
		})
	}
}

// rule ARS-8: a requested charge or refund stays due until its outcome is
// recorded, whatever happened to the subscription meanwhile, so that the
// worker settles it with the gateway (with the same idempotency key).
func TestRule_ARS8_PendingChargeOrRefundStaysDue(t *testing.T) {
	start := at(2027, 1, 10)
	changes := []struct {
		name string
		cmd  subscription.Command
	}{
		{"automatic renewal turned off", subscription.SetAutoRenewal{AccountID: ann, On: false}},
		{"key disabled", subscription.Disable{}},
	}
	for _, c := range changes {
		t.Run("charge, "+c.name, func(t *testing.T) {
			l := newSim(t, bought(t, catalog.Annual, start))
			chargeAt := l.s.ExpiresAt().Add(-7 * day)
			l.advance(chargeAt.Add(-ns))
			l.runDue(chargeAt)
			l.do(chargeAt.Add(time.Minute), c.cmd)
			if d := l.due(); !d.Equal(chargeAt) {
				t.Fatalf("pending charge due %s, want %s", d, chargeAt)
			}
			events, _, _ := l.step(chargeAt.Add(time.Hour))
			if len(only[subscription.ChargeSucceeded](events)) != 1 {
				t.Fatalf("settled: %s", show(events))
			}
		})
		t.Run("refund, "+c.name, func(t *testing.T) {
			l := newSim(t, bought(t, catalog.Annual, start))
			chargeAt := l.s.ExpiresAt().Add(-7 * day)
			l.advance(chargeAt)
			l.do(chargeAt.Add(day), subscription.RequestRefund{AccountID: ann})
			l.do(chargeAt.Add(day+time.Minute), c.cmd)
			if d := l.due(); !d.Equal(chargeAt.Add(day)) {
				t.Fatalf("pending refund due %s, want %s", d, chargeAt.Add(day))
			}
			events, _, _ := l.step(chargeAt.Add(2 * day))
			if len(only[subscription.Refunded](events)) != 1 {
				t.Fatalf("settled: %s", show(events))
			}
		})
	}
}

// rule ARS-8, ARS-7, AGT-1: a renewal charge pending when an agent disables
// the key is still settled with the gateway (ARS-8), but a key that does
// not work is not billed: the charge is refunded at once and the renewed
// term taken back. One settled before the key was disabled stays.
func TestRule_ARS8_ChargeSettledOnADisabledKeyIsRefunded(t *testing.T) {
	start := at(2027, 1, 10)
	t.Run("pending when disabled: refunded", func(t *testing.T) {
		l := newSim(t, bought(t, catalog.Annual, start))
		exp := l.s.ExpiresAt()
		chargeAt := exp.Add(-7 * day)
		l.advance(chargeAt.Add(-ns))
		l.runDue(chargeAt)
		l.do(chargeAt.Add(time.Minute), subscription.Disable{})
		events := l.advance(chargeAt.Add(time.Hour))
		succeeded, requested, refunded := only[subscription.ChargeSucceeded](events), only[subscription.RefundRequested](events),
			only[subscription.Refunded](events)
		if len(succeeded) != 1 || len(requested) != 1 || len(refunded) != 1 {
			t.Fatalf("settled on a disabled key: %s", show(events))
		}
		if requested[0].ChargeID != succeeded[0].ChargeID || requested[0].Amount != succeeded[0].Amount {
			t.Fatalf("refund %+v of charge %+v", requested[0], succeeded[0])
		}
		if !refunded[0].ExpiresAt.Equal(exp) || !l.s.ExpiresAt().Equal(exp) {
			t.Fatalf("expiry after the refund %s, want the renewed term taken back to %s", l.s.ExpiresAt(), exp)
		}
		wantStatus(t, l.s, chargeAt.Add(time.Hour), subscription.StatusDisabled)
		l.noneDue()
		if got := l.advance(exp.AddDate(2, 0, 0)); len(got) > 0 {
			t.Fatalf("after the refund: %s", show(got))
		}
	})
	t.Run("settled before: kept", func(t *testing.T) {
		l := newSim(t, bought(t, catalog.Annual, start))
		exp := l.s.ExpiresAt()
		chargeAt := exp.Add(-7 * day)
		l.advance(chargeAt)
		l.do(chargeAt.Add(time.Minute), subscription.Disable{})
		if got := l.advance(exp.AddDate(2, 0, 0)); len(got) > 0 {
			t.Fatalf("after disabling a renewed key: %s", show(got))
		}
		if !l.s.ExpiresAt().Equal(exp.AddDate(1, 0, 0)) {
			t.Fatalf("expiry %s, want the renewed term kept", l.s.ExpiresAt())
		}
	})
}

// rule ARS-2, ARS-7: a refunded subscription enrolled again stays current
// in grace after its expiry while its renewal may still be charged; it is
// shown refunded once nothing will renew it.
func TestRule_ARS7_RefundedThenRenewingAgainIsInGrace(t *testing.T) {
	exp := at(2028, 1, 10)
	cases := []struct {
		name  string
		facts subscription.StatusFacts
		want  map[time.Duration]subscription.Status // relative to expiry
	}{
		{"refunded, renewing again", subscription.StatusFacts{ExpiresAt: exp, Refunded: true, Renewing: true},
			map[time.Duration]subscription.Status{-ns: subscription.StatusActive, 0: subscription.StatusGrace,
				pol.Grace - ns: subscription.StatusGrace, pol.Grace: subscription.StatusRefunded}},
		{"refunded", subscription.StatusFacts{ExpiresAt: exp, Refunded: true},
			map[time.Duration]subscription.Status{-ns: subscription.StatusActive, 0: subscription.StatusRefunded}},
		{"renewing", subscription.StatusFacts{ExpiresAt: exp, Renewing: true},
			map[time.Duration]subscription.Status{0: subscription.StatusGrace, pol.Grace: subscription.StatusExpired}},
		{"disabled", subscription.StatusFacts{ExpiresAt: exp, Refunded: true, Renewing: true, Disabled: true},
			map[time.Duration]subscription.Status{-ns: subscription.StatusDisabled, 0: subscription.StatusDisabled}},
	}
	for _, c := range cases {
		for off, want := range c.want {
			if got := subscription.StatusAt(c.facts, exp.Add(off), pol); got != want {
				t.Errorf("%s, expiry%+v: %s, want %s", c.name, off, got, want)
			}
		}
	}

	// The same through the lifecycle: refunded before the old expiry, then
	// enrolled again.
	l := newSim(t, bought(t, catalog.Annual, at(2027, 1, 10)))
	old := l.s.ExpiresAt()
	chargeAt := old.Add(-7 * day)
	l.advance(chargeAt)
	l.do(chargeAt.Add(day), subscription.RequestRefund{AccountID: ann})
	l.advance(chargeAt.Add(day))
	l.do(chargeAt.Add(2*day), subscription.SetAutoRenewal{AccountID: ann, On: true})
	notice := only[subscription.RenewalNoticeIssued](l.runDue(chargeAt.Add(2 * day)))
	if len(notice) != 1 || !notice[0].ExpiresAt.Equal(old) || !notice[0].ChargeAt.Equal(old.Add(2*day)) {
		t.Fatalf("notice after enrolling again: %+v", notice)
	}
	wantStatus(t, l.s, old.Add(day), subscription.StatusGrace)
	l.advance(old.Add(2 * day))
	if got, want := l.s.ExpiresAt(), at(2029, 1, 10); !got.Equal(want) {
		t.Fatalf("renewed to %s, want %s", got, want)
	}
	wantStatus(t, l.s, old.Add(2*day), subscription.StatusActive)
}
