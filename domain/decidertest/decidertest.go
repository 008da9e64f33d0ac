// Package decidertest states a rule as given events, when a command at an
// instant, then events or an error — without a database:
//
//	decidertest.Given(t, subscription.Decider, opened, renewed).
//		At(expiry.AddDate(0, 0, -30)).
//		When(subscription.SendNotice{}).
//		Then(subscription.NoticeSent{...})
package decidertest

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/subs-engine/subs/domain"
	"github.com/subs-engine/subs/domain/policy"
)

// DefaultNow is the instant a scenario decides at unless At says otherwise.
var DefaultNow = time.Date(2027, 1, 15, 12, 0, 0, 0, time.UTC)

// Scenario is a decider with its given history.
type Scenario[S, C any] struct {
	tb     testing.TB
	d      domain.Decider[S, C]
	given  []domain.Event
	now    time.Time
	policy policy.Policy
}

// Given starts a scenario with the events already in the stream.
func Given[S, C any](tb testing.TB, d domain.Decider[S, C], events ...domain.Event) *Scenario[S, C] {
	tb.Helper()
	return &Scenario[S, C]{tb: tb, d: d, given: events, now: DefaultNow, policy: policy.Default()}
}

// At sets the instant the command is decided at.
func (s *Scenario[S, C]) At(now time.Time) *Scenario[S, C] {
	s.now = now
	return s
}

// WithPolicy decides under p instead of the default policy.
func (s *Scenario[S, C]) WithPolicy(p policy.Policy) *Scenario[S, C] {
	s.policy = p
	return s
}

// State returns the state folded from the given events.
func (s *Scenario[S, C]) State() S { return s.d.Fold(s.given...) }

// When decides cmd and returns the outcome to check.
func (s *Scenario[S, C]) When(cmd C) *Outcome[S, C] {
	s.tb.Helper()
	events, err := s.d.Decide(s.State(), cmd, s.now, s.policy)
	return &Outcome[S, C]{s: s, cmd: cmd, events: events, err: err}
}

// Outcome is what a command decided.
type Outcome[S, C any] struct {
	s      *Scenario[S, C]
	cmd    C
	events []domain.Event
	err    error
}

// Then fails the test unless the command decided exactly want, in order.
func (o *Outcome[S, C]) Then(want ...domain.Event) *Outcome[S, C] {
	o.s.tb.Helper()
	if o.err != nil {
		o.s.tb.Fatalf("when %T: got error %v, want events:\n%s", o.cmd, o.err, show(want))
	}
	if len(want) == 0 && len(o.events) == 0 {
		return o
	}
	if !reflect.DeepEqual(o.events, want) {
		o.s.tb.Fatalf("when %T:\ngot events:\n%s\nwant:\n%s", o.cmd, show(o.events), show(want))
	}
	return o
}

// ThenNothing fails the test unless the command decided no event and no
// error (an idempotent repeat).
func (o *Outcome[S, C]) ThenNothing() *Outcome[S, C] {
	o.s.tb.Helper()
	return o.Then()
}

// ThenError fails the test unless the command was refused with an error
// matching target: errors.Is for a value, errors.As when target is a
// pointer to an error type (then *target holds the error for more checks).
func (o *Outcome[S, C]) ThenError(target any) *Outcome[S, C] {
	o.s.tb.Helper()
	if o.err == nil {
		o.s.tb.Fatalf("when %T: got events, want error %v:\n%s", o.cmd, target, show(o.events))
	}
	if len(o.events) > 0 {
		o.s.tb.Fatalf("when %T: got an error and events; a refusal records nothing", o.cmd)
	}
	if err, ok := target.(error); ok {
		if !errors.Is(o.err, err) {
			o.s.tb.Fatalf("when %T: got error %q, want %q", o.cmd, o.err, err)
		}
		return o
	}
	if !errors.As(o.err, target) {
		o.s.tb.Fatalf("when %T: got error %q (%T), want a %T", o.cmd, o.err, o.err, target)
	}
	return o
}

// Events returns what the command decided.
func (o *Outcome[S, C]) Events() []domain.Event { return o.events }

// State returns the state after the given and the decided events.
func (o *Outcome[S, C]) State() S { return o.s.d.FoldFrom(o.s.State(), o.events...) }

func show(events []domain.Event) string {
	if len(events) == 0 {
		return "  (none)"
	}
	var out string
	for _, e := range events {
		b, err := json.Marshal(e)
		if err != nil {
			b = fmt.Appendf(nil, "%+v", e)
		}
		out += fmt.Sprintf("  %s %s\n", e.EventType(), b)
	}
	return out
}
