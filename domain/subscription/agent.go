package subscription

import (
	"fmt"
	"slices"
	"time"

	"github.com/subs-engine/subs/domain"
)

// DaysAdjusted: a support agent added (Days > 0) or removed (Days < 0)
// whole days of the subscription (AGT-2); ExpiresAt is the new expiration
// date.
type DaysAdjusted struct {
	Days      int       `json:"days"`
	ExpiresAt time.Time `json:"expires_at"`
	At        time.Time `json:"at"`
}

func (DaysAdjusted) EventType() string { return "subscription.days_adjusted" }

// AdjustDays moves the expiration date by a whole number of days (AGT-2):
// positive adds, negative removes.
type AdjustDays struct{ Days int }

func (AdjustDays) subscriptionCommand() {}

// maxAdjustDays bounds one adjustment: ten years either way is beyond any
// support case and keeps a typo from pushing an expiry into the next century.
const maxAdjustDays = 3660

// TooManyDaysRemovedError: removing Days would take away more than the
// Remaining time the subscription has (AGT-2).
type TooManyDaysRemovedError struct {
	Days      int
	Remaining time.Duration
}

func (e *TooManyDaysRemovedError) Error() string {
	return fmt.Sprintf("cannot remove %d days: only %d whole days remain before the expiration date", e.Days, int(e.Remaining/(24*time.Hour)))
}

// FieldErrors names the field for the API (SEC-4).
func (e *TooManyDaysRemovedError) FieldErrors() [][2]string {
	return [][2]string{{"days", e.Error()}}
}

// AddDays returns t moved by days calendar days: whole days, so the time of
// day stays (AGT-2).
func AddDays(t time.Time, days int) time.Time { return t.AddDate(0, 0, days) }

// DaysBetween returns how many whole calendar days move from's date onto
// to's date (negative when to is earlier): the adjustment that makes one
// expiration date fall on the same day as another (CNV-4).
func DaysBetween(from, to time.Time) int {
	fy, fm, fd := from.UTC().Date()
	ty, tm, td := to.UTC().Date()
	a := time.Date(fy, fm, fd, 0, 0, 0, 0, time.UTC)
	b := time.Date(ty, tm, td, 0, 0, 0, 0, time.UTC)
	return int(b.Sub(a).Round(24*time.Hour) / (24 * time.Hour))
}

// decideAdjustDays applies AGT-2: a whole, non-zero number of days on a
// subscription that is not disabled; removing more days than remain before
// the expiration date is refused.
func decideAdjustDays(s Subscription, c AdjustDays, now time.Time) ([]domain.Event, error) {
	switch {
	case c.Days == 0:
		return nil, domain.Invalid("days", "must not be zero: a positive number adds days, a negative one removes them")
	case c.Days > maxAdjustDays || c.Days < -maxAdjustDays:
		return nil, domain.Invalid("days", fmt.Sprintf("must be within ±%d", maxAdjustDays))
	case s.st.Disabled:
		return nil, ErrKeyDisabled
	}
	from := s.st.Renewal.ExpiresAt
	to := AddDays(from, c.Days)
	if c.Days < 0 && to.Before(now) {
		return nil, &TooManyDaysRemovedError{Days: -c.Days, Remaining: max(from.Sub(now), 0)}
	}
	return []domain.Event{DaysAdjusted{Days: c.Days, ExpiresAt: to, At: now}}, nil
}

// evolveDaysAdjusted moves the expiration date and makes it the renewal
// anchor, no term counted yet, so that later renewals count on from the new
// date (ARS-1): moving the old anchor by the days instead lost or gained
// days when the expiry was a month's end cut short (January 30's plan
// expiring February 28, two days added, renewed to April 1, not April 2).
// The expiry is no longer a refund's. A period whose charge has not been
// tried yet starts its notices and reminders over: a notice sent already
// announced the old date, and its charge date was counted from it (ARS-2);
// the next notice announces the new one, and the charge follows that
// notice's policy (removing days no longer lets the old charge date fall
// past the grace, lapsing the period with automatic renewal on). A period
// whose charge was declined (awaiting a retry, or lapsed once the retries
// ended) starts over from the new date the same way, its attempts numbered
// on (a new attempt, a new idempotency key: ARS-8): days added to a lapsed
// subscription renew it again (ARS-1), and a retry no longer charges the new
// date's term before its notice (ARS-2). A charge in flight is left to its
// outcome, and so is a period whose new date has passed already (days
// added in grace, too few to leave it): a notice given again could not
// charge before the grace ends and would lapse it, where the notice given
// and its charge date, or the retries, still fall within the new grace.
// The charges paid before keep the days too: a refund takes back the term
// it paid for, not the days (ARS-7).
func evolveDaysAdjusted(s Subscription, e DaysAdjusted) Subscription {
	r := &s.st.Renewal
	r.ExpiresAt, r.Anchor, r.Terms, r.Refunded = e.ExpiresAt, e.ExpiresAt, 0, false
	r.Paid = slices.Clone(r.Paid) // the state evolved from keeps its own
	for i := range r.Paid {
		if pc := &r.Paid[i]; !pc.Refunded {
			pc.PrevExpiry = AddDays(pc.PrevExpiry, e.Days)
			pc.PrevAnchor, pc.PrevTerms = pc.PrevExpiry, 0
		}
	}
	switch {
	case r.Cycle.Pending != nil, !e.ExpiresAt.After(e.At):
	case r.Cycle.unbilled():
		r.Cycle.forgetNotice()
		r.Cycle.ReminderDays = 0
	default:
		r.Cycle = r.Cycle.startedOver()
	}
	return s
}
