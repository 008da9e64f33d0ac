// Package domain holds the rules of the subscription lifecycle as deciders:
// pure functions from a state, a command, an instant and the policy to
// events, and from a state and an event to the next state (DESIGN §3). It
// does no I/O, reads no clock and starts no goroutine; the aggregates live in
// its sub-packages.
package domain

import (
	"time"

	"github.com/subs-engine/subs/domain/policy"
)

// Event is a fact the domain recorded. EventType is its stable name in the
// log, such as "subscription.renewed"; it never changes once events of that
// type exist.
type Event interface {
	EventType() string
}

// Claim is a value that at most one stream may hold within its scope, such
// as an e-mail address (ACC-1) or a product key (KEY-2). The domain states
// the claim; the event store enforces it atomically with the append.
type Claim struct {
	Scope string
	Key   string
	// Personal marks a key that is personal data, such as an e-mail
	// address: the event store keeps only its keyed hash (AUD-5).
	Personal bool
}

// Claimer is implemented by events that take unique values for their stream.
type Claimer interface {
	Claims() []Claim
}

// Releaser is implemented by events that give unique values up.
type Releaser interface {
	Releases() []Claim
}

// Decider is an aggregate's behaviour. Decide must be pure: the same state,
// command, instant and policy always give the same events or the same error.
// Evolve must be total: every event the aggregate ever recorded folds.
type Decider[S, C any] struct {
	// Initial is the state of a stream with no event.
	Initial S
	// Decide returns the events a command causes in state at now, or an
	// error saying which rule refuses it. No event and no error means the
	// command changes nothing (an idempotent repeat).
	Decide func(state S, cmd C, now time.Time, p policy.Policy) ([]Event, error)
	// Evolve returns the state after e.
	Evolve func(state S, e Event) S
}

// Fold returns the state after events, from Initial.
func (d Decider[S, C]) Fold(events ...Event) S {
	return d.FoldFrom(d.Initial, events...)
}

// FoldFrom returns the state after events, from state.
func (d Decider[S, C]) FoldFrom(state S, events ...Event) S {
	for _, e := range events {
		state = d.Evolve(state, e)
	}
	return state
}

// ClaimsOf returns what events claim and release, in order.
func ClaimsOf(events []Event) (claims, releases []Claim) {
	for _, e := range events {
		if c, ok := e.(Claimer); ok {
			claims = append(claims, c.Claims()...)
		}
		if r, ok := e.(Releaser); ok {
			releases = append(releases, r.Releases()...)
		}
	}
	return claims, releases
}
