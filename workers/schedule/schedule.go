// Package schedule decides when the engine's worker runs happen (DESIGN §6):
// a cron schedule, with seconds, triggers ticks, and each tick calls every
// registered job, in order, with one instant (TIM-1).
//
// There are two ways to drive it, one per kind of clock:
//
//   - On the system clock, Start lets robfig/cron trigger the ticks in real
//     time; each tick reads the Clock once and passes that instant to every
//     job. A job's error is logged and counted, and the others still run.
//   - On a simulated clock, nothing happens by itself. AdvanceTo and Advance
//     compute the tick instants with the parsed schedule's Next (robfig/cron
//     has no injectable clock, DESIGN §11), and for each one, in time order,
//     set the clock there and run every job, so that advancing the clock runs
//     every due action as if the time had passed for real (TIM-2).
//
// The package knows nothing of subscriptions or databases: a job claims
// whatever is due at the instant it is given, so a tick that comes late (a
// coarse simulated tick, a skipped tick on a busy system) only delays work,
// never skips it.
package schedule

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"
	"github.com/subs-engine/subs/domain/clock"
)

// DefaultSpec is the schedule used when Config.Spec is empty: second 0 of
// every minute.
const DefaultSpec = "0 * * * * *"

// parser reads cron specs with a leading seconds field, and descriptors
// such as "@hourly" and "@every 10m". A spec without a CRON_TZ= prefix
// follows the location of the instants it is given, which are UTC here, so
// ticks know no daylight saving time.
var parser = cron.NewParser(cron.Second | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Run is one worker action: it does whatever is due at now (claims the due
// rows and acts on them) and returns. It must use now, never read a clock
// of its own, so that one tick sees one instant (TIM-1), and it must honour
// ctx. An error stops nothing on the system clock (it is logged and counted)
// but stops a simulated advance at the failing tick.
type Run func(ctx context.Context, now time.Time) error

// Job is a named Run. Name identifies the job in logs, errors and metric
// labels; it must be unique within a Scheduler.
type Job struct {
	Name string
	Run  Run
}

// Config configures a Scheduler. The zero value of every optional field
// takes the default its comment names.
type Config struct {
	// Spec is the cron schedule of the ticks on the system clock, with a
	// seconds field ("0 */5 * * * *": every five minutes) or a descriptor
	// ("@hourly", "@every 30s"). Default DefaultSpec, every minute.
	Spec string
	// SimulatedSpec is the cron schedule of the ticks that AdvanceTo runs
	// on a simulated clock, in the same syntax. A coarser schedule than
	// Spec (say "@hourly" to move through a year in 8,760 ticks rather than
	// 525,600) only delays an action to the next tick, never skips it,
	// because every job claims all that is due at the tick's instant.
	// Default: Spec.
	SimulatedSpec string
	// Clock gives the ticks their instant. AdvanceTo and Advance need a
	// clock that can be set (Settable, such as *clock.Simulated). Required.
	Clock clock.Clock
	// DueAt, when set, tells AdvanceTo the earliest instant after a given
	// one at which some job has work (say, the due-work schedule's earliest
	// row), and false when none is known. AdvanceTo then also runs the jobs
	// at each such instant between ticks, so that a due action runs at its
	// exact instant rather than at the next tick. Optional.
	DueAt func(ctx context.Context, after time.Time) (time.Time, bool, error)
	// DueNow, when set, tells AdvanceTo whether some job has work due at
	// the clock's instant that no run at that instant has done (a command
	// made a step due at once: automatic renewal turned on inside the
	// notice window). An advance then runs the jobs at its start, as the
	// system clock's schedule would within its next minute, rather than
	// leaving the work to the next tick (TIM-2). Optional.
	DueNow func(ctx context.Context, now time.Time) (bool, error)
	// Jobs run at every tick, one after the other, in this order, each with
	// the tick's instant. Names must be non-empty and unique. Optional: a
	// scheduler without jobs only moves the simulated clock.
	Jobs []Job
	// Logger receives the errors of jobs run on the system clock and the
	// ticks skipped because the previous one was still running. Default:
	// discard.
	Logger *slog.Logger
	// Metrics, when set, receives subs_schedule_runs_total (by job and
	// outcome, "ok" or "error") and subs_schedule_run_duration_seconds (the
	// last run's duration, by job). Default: none registered.
	Metrics prometheus.Registerer
}

func (c *Config) setDefaults() {
	if c.Spec == "" {
		c.Spec = DefaultSpec
	}
	if c.SimulatedSpec == "" {
		c.SimulatedSpec = c.Spec
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// Validate reports the first invalid field of c, naming it. A spec that
// does not parse is reported with the parser's message; so is one that
// never fires (a 30th of February).
func (c Config) Validate() error {
	if _, err := parseSpec("Spec", c.Spec); err != nil {
		return err
	}
	if _, err := parseSpec("SimulatedSpec", c.SimulatedSpec); err != nil {
		return err
	}
	if c.Clock == nil {
		return errors.New("missing Clock: where the ticks read their instant")
	}
	seen := make(map[string]bool, len(c.Jobs))
	for i, j := range c.Jobs {
		switch {
		case j.Name == "":
			return fmt.Errorf("missing Name in Jobs[%d]", i)
		case j.Run == nil:
			return fmt.Errorf("missing Run in Jobs[%d] (%q)", i, j.Name)
		case seen[j.Name]:
			return fmt.Errorf("duplicate Name in Jobs[%d]: %q is used twice", i, j.Name)
		}
		seen[j.Name] = true
	}
	return nil
}

// neverReference is the instant a spec must fire after to count as one
// that fires at all. robfig/cron gives up (returns the zero time) after five
// years without a match, so any fixed instant does.
var neverReference = time.Date(2000, time.January, 1, 0, 0, 0, 0, time.UTC)

// CheckSpec reports why spec is not a schedule the scheduler takes (a cron
// spec with seconds, or a descriptor, that fires), for a caller to name
// where spec came from.
func CheckSpec(spec string) error {
	_, err := parseSpec("spec", spec)
	return err
}

func parseSpec(field, spec string) (cron.Schedule, error) {
	if spec == "" {
		return nil, fmt.Errorf("missing %s: a cron spec with seconds, such as %q", field, DefaultSpec)
	}
	s, err := parser.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", field, spec, err)
	}
	if s.Next(neverReference).IsZero() {
		return nil, fmt.Errorf("%s %q: the schedule never fires", field, spec)
	}
	return s, nil
}

// ErrStarted is returned by Start when the scheduler already runs on the
// system clock.
var ErrStarted = errors.New("schedule: already started")

// ErrNotSimulated is returned (wrapped) by AdvanceTo and Advance when the
// scheduler's clock cannot be set: only a simulated clock is moved by
// command; the system clock moves by itself and Start follows it.
var ErrNotSimulated = errors.New("schedule: the clock is not a simulated clock")

// Settable is a clock that can be moved forward by command, as
// *clock.Simulated can. Set must refuse an instant before the current one
// with an error and leave the clock unchanged.
type Settable interface {
	clock.Clock
	Set(t time.Time) error
}

// JobError is the error AdvanceTo returns when a job fails: which job, at
// which tick instant (where the simulated clock stopped), and why.
type JobError struct {
	Job  string
	Tick time.Time
	Err  error
}

// Error says which job failed at which instant, and why.
func (e *JobError) Error() string {
	return fmt.Sprintf("schedule: job %q at %s: %v", e.Job, e.Tick.Format(time.RFC3339Nano), e.Err)
}

// Unwrap returns the job's error.
func (e *JobError) Unwrap() error { return e.Err }

// Scheduler triggers the jobs' runs. It is safe for concurrent use: ticks,
// whether triggered by Start or run by AdvanceTo, never overlap, and each
// tick runs all jobs before the next one starts.
type Scheduler struct {
	cfg     Config
	spec    cron.Schedule // Spec, for the system clock
	simSpec cron.Schedule // SimulatedSpec, for AdvanceTo
	metrics *metrics      // nil when Config.Metrics is nil

	// tickMu is held for a whole tick and for a whole advance, so that
	// ticks run one at a time and in time order.
	tickMu sync.Mutex
	// next is the instant of the next simulated tick (guarded by tickMu).
	next time.Time

	lifeMu  sync.Mutex    // guards the fields below: Start and Stop
	cron    *cron.Cron    // nil unless started
	stopped chan struct{} // closed by Stop, ends the watcher
	watcher chan struct{} // closed when the watcher of Start's ctx is done
}

// New applies cfg's defaults, validates it and returns a scheduler that
// does nothing until Start, AdvanceTo or Advance. It fails when cfg is
// invalid or its metrics cannot be registered (say, twice on one registry).
// With a Settable clock, the first simulated tick is the first instant of
// SimulatedSpec after the clock's current one.
func New(cfg Config) (*Scheduler, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("schedule: invalid config: %w", err)
	}
	s := &Scheduler{cfg: cfg}
	// Validate parsed both specs already; these cannot fail.
	s.spec, _ = parser.Parse(cfg.Spec)
	s.simSpec, _ = parser.Parse(cfg.SimulatedSpec)
	s.cfg.Jobs = append([]Job(nil), cfg.Jobs...)
	if cfg.Metrics != nil {
		m := newMetrics(s.cfg.Jobs)
		if err := cfg.Metrics.Register(m); err != nil {
			return nil, fmt.Errorf("schedule: register metrics: %w", err)
		}
		s.metrics = m
	}
	// Only a settable clock is read here: on the system clock the simulated
	// state is never used, and reading the clock would be a tick's business.
	if sim, ok := cfg.Clock.(Settable); ok {
		s.next = s.simSpec.Next(sim.Now()).UTC()
	}
	return s, nil
}

// Start runs the jobs on Spec's schedule, in real time, until Stop or until
// ctx is done, and returns at once. Each tick reads the Clock once and gives
// that instant to every job, in order; a job's error is logged and counted,
// and the next job still runs. A tick that comes while the previous one
// still runs is skipped (and logged): the next one claims what it would
// have. The jobs get ctx, so cancelling it also cancels a running tick;
// call Stop in any case to wait for it. Start returns ErrStarted when the
// scheduler already runs; after Stop it can be started again.
//
// Started on a simulated clock, ticks still come in real time and run at
// the clock's current instant, serialized with AdvanceTo.
func (s *Scheduler) Start(ctx context.Context) error {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.cron != nil {
		return ErrStarted
	}
	logger := cronLogger{s.cfg.Logger}
	c := cron.New(cron.WithParser(parser), cron.WithLocation(time.UTC), cron.WithChain(cron.SkipIfStillRunning(logger)))
	var id cron.EntryID
	// cron sets the entry's Prev to the tick's planned instant before its
	// job can read it (the job runs on its own goroutine, the entries are
	// read through cron's loop).
	id = c.Schedule(s.spec, cron.FuncJob(func() { s.tick(ctx, c.Entry(id).Prev) }))
	stopped, watcher := make(chan struct{}), make(chan struct{})
	c.Start()
	// cron knows no context: this goroutine stops it when ctx is done.
	go func() {
		defer close(watcher)
		select {
		case <-ctx.Done():
			c.Stop()
		case <-stopped:
		}
	}()
	s.cron, s.stopped, s.watcher = c, stopped, watcher
	return nil
}

// Stop stops the ticks started by Start and waits for a running tick to
// finish; it does not cancel it (cancel Start's ctx for that). It does
// nothing when the scheduler is not started.
func (s *Scheduler) Stop() {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.cron == nil {
		return
	}
	close(s.stopped)
	<-s.watcher
	<-s.cron.Stop().Done()
	s.cron, s.stopped, s.watcher = nil, nil, nil
}

// tick is one real-time tick: one instant for every job, errors logged. On
// a clock that is not simulated the instant is the tick's planned one,
// planned (by the clock read once) the same in every process with the same
// spec: their runs then claim the same due rows as visited at the same
// instant (ARS-8), where their clocks' readings, microseconds apart, had
// each visit again what another had just claimed.
func (s *Scheduler) tick(ctx context.Context, planned time.Time) {
	s.tickMu.Lock()
	defer s.tickMu.Unlock()
	if ctx.Err() != nil {
		return
	}
	now := s.cfg.Clock.Now()
	if _, simulated := s.cfg.Clock.(Settable); !simulated && !planned.IsZero() && !planned.After(now) {
		now = planned.UTC()
	}
	for _, j := range s.cfg.Jobs {
		if ctx.Err() != nil {
			return
		}
		if err := s.run(ctx, j, now); err != nil {
			s.cfg.Logger.Error("schedule: run failed; the next tick retries what is still due",
				slog.String("job", j.Name), slog.Time("now", now), slog.Any("err", err))
		}
	}
}

// run runs one job at now and counts it.
func (s *Scheduler) run(ctx context.Context, j Job, now time.Time) error {
	if s.metrics == nil {
		return j.Run(ctx, now)
	}
	// The duration is the machine's, not the clock's: it measures cost.
	start := time.Now()
	err := j.Run(ctx, now)
	s.metrics.observe(j.Name, time.Since(start), err)
	return err
}

// cronLogger hands robfig/cron's log lines (SkipIfStillRunning's "skip")
// to slog.
type cronLogger struct{ l *slog.Logger }

// Info logs cron's routine messages; "skip" means a tick was dropped.
func (c cronLogger) Info(msg string, keysAndValues ...any) {
	if msg == "skip" {
		c.l.Warn("schedule: tick skipped: the previous tick is still running", keysAndValues...)
		return
	}
	c.l.Info("schedule: cron: "+msg, keysAndValues...)
}

// Error logs cron's errors.
func (c cronLogger) Error(err error, msg string, keysAndValues ...any) {
	c.l.Error("schedule: cron: "+msg, append(keysAndValues, slog.Any("err", err))...)
}
