package main

import (
	"time"

	"github.com/subs-engine/subs/domain/clock"
)

// systemClock is the machine's clock, the only place the engine reads it:
// the domain gets the time from the clock.Clock wired here.
type systemClock struct{}

// Now returns the machine's current time in UTC.
func (systemClock) Now() time.Time { return time.Now().UTC() }

// newClock returns the clock cfg asks for: the system clock, or a simulated
// one starting at cfg.ClockStart (the current time when zero).
func newClock(cfg Config) clock.Clock {
	if cfg.Clock != ClockSimulated {
		return systemClock{}
	}
	start := cfg.ClockStart
	if start.IsZero() {
		start = systemClock{}.Now().Truncate(time.Second)
	}
	return clock.NewSimulated(start)
}
