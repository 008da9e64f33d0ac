package calendar_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/subs-engine/subs/domain/calendar"
)

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 9, 30, 0, 0, time.UTC) }

// rule ARS-1: the boundaries people get wrong.
func TestRule_ARS1_PeriodEndsAnchoredOnTheOriginalDay(t *testing.T) {
	cases := []struct {
		name   string
		anchor time.Time
		months int
		want   []time.Time // ends of periods 1, 2, 3, …
	}{
		{"monthly from Jan 31, common year", date(2027, 1, 31), 1,
			[]time.Time{date(2027, 2, 28), date(2027, 3, 31), date(2027, 4, 30), date(2027, 5, 31)}},
		{"monthly from Jan 31, leap year", date(2028, 1, 31), 1,
			[]time.Time{date(2028, 2, 29), date(2028, 3, 31), date(2028, 4, 30)}},
		{"monthly from Nov 30 across a leap February", date(2027, 11, 30), 1,
			[]time.Time{date(2027, 12, 30), date(2028, 1, 30), date(2028, 2, 29), date(2028, 3, 30)}},
		{"annual from Feb 29", date(2028, 2, 29), 12,
			[]time.Time{date(2029, 2, 28), date(2030, 2, 28), date(2031, 2, 28), date(2032, 2, 29)}},
		{"annual from Dec 31", date(2027, 12, 31), 12,
			[]time.Time{date(2028, 12, 31), date(2029, 12, 31)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for k, want := range c.want {
				if got := calendar.PeriodEnd(c.anchor, c.months, k+1); !got.Equal(want) {
					t.Errorf("period %d ends %s, want %s", k+1, got.Format(time.DateTime), want.Format(time.DateTime))
				}
			}
		})
	}
}

// rule ARS-1, property-based: over random anchors and numbers of renewals,
// periods follow each other without overlap or gap, each lasts a month or a
// year of the calendar it falls in, and twelve monthly periods end where one
// annual period does. Adding a month to the previous end instead (the usual
// bug) loses days after a short month and fails these properties.
func TestRule_ARS1_NoDayLostOrGained_Property(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC)
	for range 5000 {
		anchor := start.Add(time.Duration(rng.Int64N(int64(120 * 365 * 24 * time.Hour)))).Truncate(time.Second)
		months := []int{1, 12}[rng.IntN(2)]
		renewals := 1 + rng.IntN(40)
		prev := anchor
		for k := 1; k <= renewals; k++ {
			end := calendar.PeriodEnd(anchor, months, k)
			days := end.Sub(prev).Hours() / 24
			switch {
			case months == 1 && (days < 28 || days > 31):
				t.Fatalf("anchor %s: monthly period %d lasts %.2f days", anchor, k, days)
			case months == 12 && (days < 365 || days > 366):
				t.Fatalf("anchor %s: annual period %d lasts %.2f days", anchor, k, days)
			}
			wantDay := min(anchor.Day(), calendar.DaysIn(end.Year(), end.Month()))
			monthsApart := (end.Year()-anchor.Year())*12 + int(end.Month()-anchor.Month())
			if end.Day() != wantDay || monthsApart != months*k || end.Sub(end.Truncate(24*time.Hour)) != anchor.Sub(anchor.Truncate(24*time.Hour)) {
				t.Fatalf("anchor %s: period %d ends %s, want day %d of the month %d months later at the anchor's time", anchor, k, end, wantDay, months*k)
			}
			prev = end
		}
		years := 1 + rng.IntN(10)
		if m, a := calendar.PeriodEnd(anchor, 1, 12*years), calendar.PeriodEnd(anchor, 12, years); !m.Equal(a) {
			t.Fatalf("anchor %s: %d monthly periods end %s, %d annual ones %s", anchor, 12*years, m, years, a)
		}
	}
}
