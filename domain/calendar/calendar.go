// Package calendar is the date arithmetic of terms (ARS-1): a renewal adds
// one term counted from the old expiration date, and no day is lost or
// gained over any number of renewals. Periods are therefore computed from
// the term's anchor, never by adding to the previous period's end: January
// 31 + 1 month is February 28 (29 in a leap year), + 2 months is March 31,
// not March 28; an annual term from February 29 ends on February 28 in
// common years and on February 29 again in leap years.
package calendar

import "time"

// AddMonths returns t moved by months calendar months, keeping its
// time of day. When t's day does not exist in the target month, it is
// clamped to that month's last day.
func AddMonths(t time.Time, months int) time.Time {
	y, m, d := t.Date()
	first := time.Date(y, m+time.Month(months), 1, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), t.Location())
	return first.AddDate(0, 0, min(d, DaysIn(first.Year(), first.Month()))-1)
}

// DaysIn returns the number of days of month m of year y.
func DaysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// PeriodEnd returns the end of the k-th period of a term of monthsPerTerm
// months (1 for monthly, 12 for annual) that started at anchor: anchor
// moved by k terms, from the anchor itself. PeriodEnd(anchor, m, 0) is the
// anchor.
func PeriodEnd(anchor time.Time, monthsPerTerm, k int) time.Time {
	return AddMonths(anchor, monthsPerTerm*k)
}
