// Package clock is where the domain gets "now" from (TIM-1). The domain never
// reads the system time itself: a Clock is injected at the edge, and the
// simulated one lets tests and the simulator move time by command (TIM-2).
package clock

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// Clock tells the current instant.
//
// Now returns an instant in UTC. A command handler calls Now exactly once and
// passes that instant down, so that one command sees one instant (TIM-1).
// Implementations must be safe for concurrent use.
type Clock interface {
	Now() time.Time
}

// ErrBackwards is returned (wrapped) by Simulated.Advance and Simulated.Set
// when asked to move time backwards: the event log and the due-work schedule
// assume time never runs back.
var ErrBackwards = errors.New("clock: time cannot go backwards")

// Simulated is a Clock that stands still until told to move (TIM-2). It is
// safe for concurrent use; it starts no goroutine and runs nothing by itself:
// whoever advances it is responsible for running the work that became due.
type Simulated struct {
	mu  sync.Mutex
	now time.Time
}

// NewSimulated returns a simulated clock showing start, converted to UTC,
// stripped of any monotonic reading and cut to whole microseconds.
func NewSimulated(start time.Time) *Simulated {
	return &Simulated{now: storable(start)}
}

// storable is t as the event store and the read models keep instants: UTC,
// in whole microseconds (PostgreSQL's timestamptz). A simulated instant
// finer than that would be kept a little earlier than it is, and a step
// scheduled at it found not yet due when visited there (TIM-2).
func storable(t time.Time) time.Time { return t.UTC().Round(0).Truncate(time.Microsecond) }

// Now returns the simulated instant, in UTC.
func (s *Simulated) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now
}

// Advance moves the clock forward by d. A negative d is refused with an
// error matching ErrBackwards and leaves the clock unchanged; zero is allowed.
func (s *Simulated) Advance(d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("%w: Advance(%s)", ErrBackwards, d)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = storable(s.now.Add(d))
	return nil
}

// Set moves the clock to t (converted to UTC, cut to whole microseconds).
// An instant before the current one is refused with an error matching
// ErrBackwards and leaves the clock unchanged; setting the current instant
// again is allowed.
func (s *Simulated) Set(t time.Time) error {
	t = storable(t)
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.Before(s.now) {
		return fmt.Errorf("%w: Set(%s) while the clock shows %s", ErrBackwards, t.Format(time.RFC3339Nano), s.now.Format(time.RFC3339Nano))
	}
	s.now = t
	return nil
}
