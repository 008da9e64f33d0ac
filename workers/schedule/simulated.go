package schedule

import (
	"context"
	"fmt"
	"time"

	"github.com/subs-engine/subs/domain/clock"
)

// AdvanceTo moves the simulated clock to target, running every tick of
// SimulatedSpec on the way (TIM-2): for each tick instant up to and
// including target, in time order, it sets the clock to that instant and
// runs every job, in order, with it. Then it sets the clock to target, and
// returns how many ticks ran completely.
//
// The first tick is the first instant of SimulatedSpec after the previous
// advance's last tick (after the clock's instant at New, at first). When
// the clock was moved by other means past a pending tick, that tick runs at
// the clock's current instant: late, so that nothing is skipped.
//
// With Config.DueAt, the jobs also run at every instant DueAt names between
// ticks, in time order with them; with Config.DueNow, at the clock's
// instant first, when work is due then that no run at it has done. Those
// runs do not count as ticks.
//
// A job's error stops the advance: AdvanceTo returns a *JobError naming the
// job and the tick, and leaves the clock at that tick, whose jobs all run
// again at the same instant on the next advance. A done ctx stops it
// between ticks, with ctx's error. A target before the clock's instant is
// refused with an error matching clock.ErrBackwards; a clock that cannot be
// set, with one matching ErrNotSimulated. Concurrent calls run one after
// the other.
func (s *Scheduler) AdvanceTo(ctx context.Context, target time.Time) (ticks int, err error) {
	sim, err := s.settable()
	if err != nil {
		return 0, err
	}
	s.tickMu.Lock()
	defer s.tickMu.Unlock()
	return s.advanceTo(ctx, sim, target.UTC().Round(0))
}

// Advance is AdvanceTo the clock's current instant plus d, read once the
// advances before it are done, so two concurrent Advance(d) calls move the
// clock by 2d. A negative d is refused with an error matching
// clock.ErrBackwards.
func (s *Scheduler) Advance(ctx context.Context, d time.Duration) (ticks int, err error) {
	sim, err := s.settable()
	if err != nil {
		return 0, err
	}
	if d < 0 {
		return 0, fmt.Errorf("schedule: %w: Advance(%s)", clock.ErrBackwards, d)
	}
	s.tickMu.Lock()
	defer s.tickMu.Unlock()
	return s.advanceTo(ctx, sim, sim.Now().Add(d))
}

func (s *Scheduler) settable() (Settable, error) {
	sim, ok := s.cfg.Clock.(Settable)
	if !ok {
		return nil, fmt.Errorf("%w (it is a %T): run the scheduler with Start, or give it a *clock.Simulated", ErrNotSimulated, s.cfg.Clock)
	}
	return sim, nil
}

// advanceTo runs the ticks up to target; the caller holds tickMu.
func (s *Scheduler) advanceTo(ctx context.Context, sim Settable, target time.Time) (ticks int, err error) {
	now := sim.Now()
	if target.Before(now) {
		return 0, fmt.Errorf("schedule: %w: advance to %s while the clock shows %s",
			clock.ErrBackwards, target.Format(time.RFC3339Nano), now.Format(time.RFC3339Nano))
	}
	if !s.next.IsZero() && s.next.Before(now) {
		s.next = now
	}
	if err := s.runDueNow(ctx, now, target); err != nil {
		return 0, err
	}
	// A zero next means the schedule fires no more (robfig/cron looks five
	// years ahead); the clock still moves.
	for {
		at, tick, err := s.nextRun(ctx, sim.Now(), target)
		if err != nil {
			return ticks, err
		}
		if at.IsZero() {
			return s.setTarget(sim, target, ticks)
		}
		if err := ctx.Err(); err != nil {
			return ticks, fmt.Errorf("schedule: advance stopped before the run at %s: %w", at.Format(time.RFC3339Nano), err)
		}
		if err := sim.Set(at); err != nil {
			return ticks, fmt.Errorf("schedule: set the clock to the run: %w", err)
		}
		for _, j := range s.cfg.Jobs {
			if err := s.run(ctx, j, at); err != nil {
				return ticks, &JobError{Job: j.Name, Tick: at, Err: err}
			}
		}
		if tick {
			ticks++
			s.next = s.simSpec.Next(at).UTC()
		}
	}
}

// runDueNow runs the jobs at now, before an advance to a later target, when
// DueNow says work is due at now that no run at now has done.
func (s *Scheduler) runDueNow(ctx context.Context, now, target time.Time) error {
	if s.cfg.DueNow == nil || !target.After(now) {
		return nil
	}
	due, err := s.cfg.DueNow(ctx, now)
	if err != nil {
		return fmt.Errorf("schedule: work due at %s: %w", now.Format(time.RFC3339Nano), err)
	}
	if !due {
		return nil
	}
	for _, j := range s.cfg.Jobs {
		if err := s.run(ctx, j, now); err != nil {
			return &JobError{Job: j.Name, Tick: now, Err: err}
		}
	}
	return nil
}

// nextRun is the instant of the next run up to target: the next tick, or an
// earlier instant DueAt names after now (tick false then). It is zero when
// there is none.
func (s *Scheduler) nextRun(ctx context.Context, now, target time.Time) (at time.Time, tick bool, err error) {
	if !s.next.IsZero() && !s.next.After(target) {
		at, tick = s.next, true
	}
	if s.cfg.DueAt == nil {
		return at, tick, nil
	}
	due, ok, err := s.cfg.DueAt(ctx, now)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("schedule: next due instant after %s: %w", now.Format(time.RFC3339Nano), err)
	}
	if ok && due.After(now) && !due.After(target) && (at.IsZero() || due.Before(at)) {
		return due.UTC(), false, nil
	}
	return at, tick, nil
}

// setTarget ends an advance: the clock shows target.
func (s *Scheduler) setTarget(sim Settable, target time.Time, ticks int) (int, error) {
	if err := sim.Set(target); err != nil {
		return ticks, fmt.Errorf("schedule: set the clock to the target: %w", err)
	}
	return ticks, nil
}
