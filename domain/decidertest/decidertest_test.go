package decidertest_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/domain/decidertest"
	"github.com/subs-engine/subs/domain/policy"
)

// A switch that can be turned on once, and only on weekdays: enough to show
// the helper passes what is right and fails what is wrong.
type (
	state  struct{ on bool }
	turnOn struct{}
	turned struct{ At time.Time }
)

func (turned) EventType() string { return "switch.turned_on" }

type weekendError struct{ Day time.Weekday }

func (e *weekendError) Error() string { return fmt.Sprintf("switch: cannot turn on on a %s", e.Day) }

var errAlreadyOn = errors.New("switch: already on")

var decider = domain.Decider[state, turnOn]{
	Decide: func(s state, _ turnOn, now time.Time, _ policy.Policy) ([]domain.Event, error) {
		switch {
		case s.on:
			return nil, errAlreadyOn
		case now.Weekday() == time.Saturday || now.Weekday() == time.Sunday:
			return nil, &weekendError{now.Weekday()}
		}
		return []domain.Event{turned{At: now}}, nil
	},
	Evolve: func(s state, e domain.Event) state { s.on = true; return s },
}

var monday = time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC)

func TestScenario_PassesWhatHolds(t *testing.T) {
	out := decidertest.Given(t, decider).At(monday).When(turnOn{}).Then(turned{At: monday})
	if !out.State().on {
		t.Error("state after the events is not on")
	}
	decidertest.Given(t, decider, turned{At: monday}).When(turnOn{}).ThenError(errAlreadyOn)
	var weekend *weekendError
	decidertest.Given(t, decider).At(monday.AddDate(0, 0, 5)).When(turnOn{}).ThenError(&weekend)
	if weekend.Day != time.Saturday {
		t.Errorf("ThenError did not hand over the error: %+v", weekend)
	}
}

// recorder stands in for testing.T to see whether the helper fails.
type recorder struct {
	testing.TB
	failed bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Fatalf(string, ...any) { r.failed = true }
func (r *recorder) Errorf(string, ...any) { r.failed = true }

func TestScenario_FailsWhatDoesNotHold(t *testing.T) {
	cases := []struct {
		name  string
		check func(tb testing.TB)
	}{
		{"other events", func(tb testing.TB) {
			decidertest.Given(tb, decider).At(monday).When(turnOn{}).Then(turned{At: monday.Add(time.Hour)})
		}},
		{"events where an error was wanted", func(tb testing.TB) {
			decidertest.Given(tb, decider).At(monday).When(turnOn{}).ThenError(errAlreadyOn)
		}},
		{"an error where events were wanted", func(tb testing.TB) {
			decidertest.Given(tb, decider, turned{}).At(monday).When(turnOn{}).Then(turned{At: monday})
		}},
		{"another error", func(tb testing.TB) {
			var weekend *weekendError
			decidertest.Given(tb, decider, turned{}).At(monday).When(turnOn{}).ThenError(&weekend)
		}},
		{"nothing where events came", func(tb testing.TB) {
			decidertest.Given(tb, decider).At(monday).When(turnOn{}).ThenNothing()
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := &recorder{TB: t}
			c.check(r)
			if !r.failed {
				t.Error("the helper passed a scenario that does not hold")
			}
		})
	}
}
