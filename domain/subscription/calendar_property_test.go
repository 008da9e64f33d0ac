package subscription_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/subs-engine/subs/domain/catalog"
	"github.com/subs-engine/subs/domain/payment"
	"github.com/subs-engine/subs/domain/subscription"
)

// anchored is the end of a term of months months that started at anchor,
// computed on its own (not with package calendar): the anchor's day in the
// target month, or that month's last day when it has fewer days; the
// anchor's time of day.
func anchored(anchor time.Time, months int) time.Time {
	m0 := int(anchor.Month()) - 1 + months
	y, m := anchor.Year()+m0/12, m0%12
	days := [12]int{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}[m]
	if m == 1 && y%4 == 0 && (y%100 != 0 || y%400 == 0) {
		days = 29
	}
	d := min(anchor.Day(), days)
	return time.Date(y, time.Month(m+1), d, anchor.Hour(), anchor.Minute(), anchor.Second(), anchor.Nanosecond(), time.UTC)
}

// randomStart draws a start instant between 2026 and 2045, one time in two
// on a day the calendar gets wrong: the 29th to 31st of January, February
// 28 or 29 of a leap year, the last day of a 31-day month.
func randomStart(rng *rand.Rand) time.Time {
	clock := time.Duration(rng.Int64N(int64(24 * time.Hour))).Truncate(time.Second)
	y := 2026 + rng.IntN(20)
	if rng.IntN(2) == 0 {
		return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(rng.Int64N(int64(20*365*day))) + clock).Truncate(time.Second)
	}
	leap := 2028 + 4*rng.IntN(5)
	special := []time.Time{
		time.Date(y, 1, 29, 0, 0, 0, 0, time.UTC), time.Date(y, 1, 30, 0, 0, 0, 0, time.UTC), time.Date(y, 1, 31, 0, 0, 0, 0, time.UTC),
		time.Date(leap, 2, 29, 0, 0, 0, 0, time.UTC), time.Date(leap, 2, 28, 0, 0, 0, 0, time.UTC), time.Date(leap, 1, 31, 0, 0, 0, 0, time.UTC),
		time.Date(y, 3, 31, 0, 0, 0, 0, time.UTC), time.Date(y, 8, 31, 0, 0, 0, 0, time.UTC), time.Date(y, 12, 31, 0, 0, 0, 0, time.UTC),
	}
	return special[rng.IntN(len(special))].Add(clock)
}

// rule ARS-1, property-based: over random start dates and terms, and
// renewals charged at random attempts (so at random instants of their
// period, into grace), the n-th expiration date is the start's anchor
// moved by n terms, whatever happened before: no day lost or gained.
func TestRule_ARS1_NthExpiryIsAnchored_Property(t *testing.T) {
	rng := rand.New(rand.NewPCG(2027, 131))
	terms := []catalog.Term{catalog.Annual, catalog.Monthly, catalog.Trial}
	for range 300 {
		term := terms[rng.IntN(len(terms))]
		start := randomStart(rng)
		l := newSim(t, bought(t, term, start))
		declines := map[int]int{} // period → attempts declined before the success
		l.gateway = func(c subscription.ChargeRequested) payment.ChargeOutcome {
			if _, ok := declines[c.Period]; !ok {
				declines[c.Period] = rng.IntN(4)
			}
			if c.Attempt <= declines[c.Period] {
				return decline(c)
			}
			return approve(c)
		}
		// The n-th renewal ends first+n terms after the anchor: the first
		// term is the one bought; a billed trial's years start at its end.
		anchor, months, first, renewals := start, 12, 1, 1+rng.IntN(8)
		switch term {
		case catalog.Monthly:
			months, renewals = 1, 1+rng.IntN(40)
		case catalog.Trial:
			anchor, first = start.Add(pol.TrialLength), 0
		}
		if term != catalog.Trial && !l.s.ExpiresAt().Equal(anchored(anchor, months)) {
			t.Fatalf("%s from %s: first term ends %s, want %s", term, start, l.s.ExpiresAt(), anchored(anchor, months))
		}
		for n := 1; n <= renewals; n++ {
			prev := l.s.ExpiresAt()
			l.advance(prev.Add(pol.Grace))
			got, want := l.s.ExpiresAt(), anchored(anchor, months*(first+n))
			if !got.Equal(want) {
				t.Fatalf("%s from %s: renewal %d ends %s, want %s (charges: %+v)", term, start, n, got, want, logged[subscription.ChargeSucceeded](l))
			}
			days := got.Sub(prev).Hours() / 24
			if (months == 1 && (days < 28 || days > 31)) || (months == 12 && (days < 365 || days > 366)) {
				t.Fatalf("%s from %s: renewal %d lasts %.2f days", term, start, n, days)
			}
		}
	}
}
