package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/domain/clock"
)

// ClockAdvancer moves a simulated clock to an instant, or by a span read
// from the clock once the advances before it are done, running every due
// worker action on the way, in time order (TIM-2). workers/schedule's
// Scheduler is one.
type ClockAdvancer interface {
	AdvanceTo(ctx context.Context, target time.Time) (ticks int, err error)
	Advance(ctx context.Context, d time.Duration) (ticks int, err error)
}

type (
	advanceRequest struct {
		To       *time.Time `json:"to,omitempty" doc:"the instant to move to (RFC 3339); give exactly one of to, days, duration"`
		Days     *int       `json:"days,omitempty" doc:"whole days to move forward"`
		Duration string     `json:"duration,omitempty" doc:"a Go duration to move forward, e.g. 36h or 90m"`
	}
	advanceView struct {
		Now   time.Time `json:"now" doc:"the simulated clock after the advance"`
		Ticks int       `json:"ticks" doc:"how many schedule ticks ran on the way (due actions between ticks also ran, at their instant)"`
	}
	clockView struct {
		Now time.Time `json:"now"`
	}
)

// RegisterTestClock adds the test-clock endpoints, for a server that runs
// on a simulated clock: reading it, and advancing it through adv, which
// runs every worker action due on the way (DOMAIN §11, like Stripe's test
// clocks). Serve registers them only with --clock=simulated, so that a
// production engine has no way to move time.
func RegisterTestClock(s *Server, adv ClockAdvancer) {
	tags := []string{"test clock"}
	s.Route(Route{Method: "GET", Pattern: "/v1/test-clock", Tags: tags, Auth: AuthNone,
		Summary:     "Read the simulated clock",
		Description: "The engine's simulated clock (only with --clock=simulated).",
		Responses:   map[int]any{http.StatusOK: clockView{}},
		Handler: HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			return WriteJSON(w, http.StatusOK, clockView{Now: s.Clock().Now()})
		})})
	s.Route(Route{Method: "POST", Pattern: "/v1/test-clock/advance", Tags: tags, Auth: AuthNone,
		Summary: "Advance the simulated clock",
		Description: "Moves the simulated clock forward to `to`, or by `days` or `duration`, running every due worker action " +
			"(pre-billing notices, reminders, charges, retries, trial ends, lapses, e-mails) in time order, as if the time had " +
			"passed (TIM-2); answers once they have run and the read models show them. Only with --clock=simulated. A target " +
			"before the clock's instant is refused with 400 naming the field.",
		Request:   advanceRequest{},
		Responses: map[int]any{http.StatusOK: advanceView{}},
		Handler: HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			var in advanceRequest
			if err := DecodeJSON(w, r, &in); err != nil {
				return err
			}
			to, by, err := in.move()
			if err != nil {
				return err
			}
			// A span is added to the clock as the advance finds it (TIM-1:
			// one instant), so that concurrent advances by a day add up.
			var ticks int
			if in.To == nil {
				ticks, err = adv.Advance(r.Context(), by)
			} else {
				ticks, err = adv.AdvanceTo(r.Context(), to)
			}
			if errors.Is(err, clock.ErrBackwards) {
				return domain.Invalid("to", "is before the clock's instant: a clock only moves forward")
			}
			if err != nil {
				return err
			}
			return WriteJSON(w, http.StatusOK, advanceView{Now: s.Clock().Now(), Ticks: ticks})
		})})
}

// maxAdvanceDays bounds an advance by days: ten years at once is beyond
// any test, and keeps the span within a time.Duration.
const maxAdvanceDays = 3660

// move is what the request asks: the instant to move to, or else the span
// to move by (days are 24 hours: the clock is UTC's).
func (in advanceRequest) move() (to time.Time, by time.Duration, err error) {
	given := 0
	for _, set := range []bool{in.To != nil, in.Days != nil, in.Duration != ""} {
		if set {
			given++
		}
	}
	if given != 1 {
		return time.Time{}, 0, domain.Invalid("to", "give exactly one of to, days and duration")
	}
	switch {
	case in.To != nil:
		return in.To.UTC(), 0, nil
	case in.Days != nil:
		if *in.Days < 0 || *in.Days > maxAdvanceDays {
			return time.Time{}, 0, domain.Invalid("days", fmt.Sprintf("must be from 0 to %d (ten years) at once", maxAdvanceDays))
		}
		return time.Time{}, time.Duration(*in.Days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(in.Duration)
	if err != nil || d < 0 {
		return time.Time{}, 0, domain.Invalid("duration", "is not a forward Go duration such as 36h or 90m")
	}
	return time.Time{}, d, nil
}
