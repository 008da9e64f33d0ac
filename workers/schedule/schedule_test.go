package schedule_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"
	"github.com/subs-engine/subs/domain/clock"
	"github.com/subs-engine/subs/workers/schedule"
)

// t0 is a tick of every schedule used here: midnight, first of a month.
var t0 = time.Date(2026, time.March, 1, 0, 0, 0, 0, time.UTC)

// call is one run of a job, as the recorder saw it.
type call struct {
	job string
	now time.Time
}

// recorder keeps every run of the jobs it makes, in the order they ran.
type recorder struct {
	mu    sync.Mutex
	calls []call
}

// job returns a job named name that records its runs and returns fail(now)
// when fail is set.
func (r *recorder) job(name string, fail func(now time.Time) error) schedule.Job {
	return schedule.Job{Name: name, Run: func(_ context.Context, now time.Time) error {
		r.mu.Lock()
		r.calls = append(r.calls, call{name, now})
		r.mu.Unlock()
		if fail != nil {
			return fail(now)
		}
		return nil
	}}
}

func (r *recorder) snapshot() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// instants returns the instants job ran at, in order.
func (r *recorder) instants(job string) []time.Time {
	var out []time.Time
	for _, c := range r.snapshot() {
		if c.job == job {
			out = append(out, c.now)
		}
	}
	return out
}

// MustNew builds a scheduler or fails the test.
func MustNew(tb testing.TB, cfg schedule.Config) *schedule.Scheduler {
	tb.Helper()
	s, err := schedule.New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return s
}

// every returns the instants from first to last, step apart.
func every(first, last time.Time, step time.Duration) []time.Time {
	var out []time.Time
	for t := first; !t.After(last); t = t.Add(step) {
		out = append(out, t)
	}
	return out
}

func TestConfig_specs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		spec      string
		start     time.Time
		advance   time.Duration
		wantTicks []time.Time
	}{
		{"default is every minute", "", t0, 3 * time.Minute,
			every(t0.Add(time.Minute), t0.Add(3*time.Minute), time.Minute)},
		{"seconds field", "*/15 * * * * *", t0, time.Minute,
			every(t0.Add(15*time.Second), t0.Add(time.Minute), 15*time.Second)},
		{"a fixed second of every minute", "30 * * * * *", t0, 2 * time.Minute,
			[]time.Time{t0.Add(30 * time.Second), t0.Add(90 * time.Second)}},
		{"descriptor @hourly", "@hourly", t0.Add(10 * time.Minute), 3 * time.Hour,
			every(t0.Add(time.Hour), t0.Add(3*time.Hour), time.Hour)},
		{"descriptor @daily", "@daily", t0, 48 * time.Hour,
			[]time.Time{t0.Add(24 * time.Hour), t0.Add(48 * time.Hour)}},
		{"descriptor @every", "@every 90s", t0, 5 * time.Minute,
			every(t0.Add(90*time.Second), t0.Add(5*time.Minute), 90*time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var r recorder
			s := MustNew(t, schedule.Config{Spec: tt.spec, Clock: clock.NewSimulated(tt.start), Jobs: []schedule.Job{r.job("a", nil)}})
			ticks, err := s.Advance(context.Background(), tt.advance)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.instants("a"); !slices.Equal(got, tt.wantTicks) || ticks != len(tt.wantTicks) {
				t.Errorf("ticks = %d at %v, want %v", ticks, got, tt.wantTicks)
			}
		})
	}
}

func TestConfig_invalid(t *testing.T) {
	t.Parallel()
	parserMessage := func(spec string) string {
		_, err := cron.NewParser(cron.Second | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor).Parse(spec)
		if err == nil {
			t.Fatalf("%q parses", spec)
		}
		return err.Error()
	}
	run := schedule.Job{Name: "a", Run: func(context.Context, time.Time) error { return nil }}
	sim := clock.NewSimulated(t0)
	tests := []struct {
		name string
		cfg  schedule.Config
		want []string // substrings of the error
	}{
		{"five fields: no seconds", schedule.Config{Spec: "* * * * *", Clock: sim},
			[]string{"Spec", `"* * * * *"`, parserMessage("* * * * *")}},
		{"not a spec", schedule.Config{Spec: "every minute", Clock: sim},
			[]string{"Spec", parserMessage("every minute")}},
		{"unknown descriptor", schedule.Config{Spec: "@fortnightly", Clock: sim},
			[]string{"Spec", parserMessage("@fortnightly")}},
		{"out of range", schedule.Config{Spec: "0 61 * * * *", Clock: sim},
			[]string{"Spec", parserMessage("0 61 * * * *")}},
		{"never fires", schedule.Config{Spec: "0 0 0 30 2 *", Clock: sim},
			[]string{"Spec", "never fires"}},
		{"invalid SimulatedSpec", schedule.Config{SimulatedSpec: "@yearly-ish", Clock: sim},
			[]string{"SimulatedSpec", parserMessage("@yearly-ish")}},
		{"missing Clock", schedule.Config{}, []string{"Clock"}},
		{"job without name", schedule.Config{Clock: sim, Jobs: []schedule.Job{{Run: run.Run}}},
			[]string{"Jobs[0]", "Name"}},
		{"job without run", schedule.Config{Clock: sim, Jobs: []schedule.Job{{Name: "a"}}},
			[]string{"Jobs[0]", "Run"}},
		{"job name twice", schedule.Config{Clock: sim, Jobs: []schedule.Job{run, run}},
			[]string{"Jobs[1]", `"a"`, "twice"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := schedule.New(tt.cfg)
			if err == nil {
				t.Fatal("New accepted the config")
			}
			for _, w := range append([]string{"invalid config"}, tt.want...) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestAdvance_everyMinuteRunsEachJobAtEachMinuteInOrder(t *testing.T) {
	t.Parallel()
	var r recorder
	sim := clock.NewSimulated(t0)
	s := MustNew(t, schedule.Config{Clock: sim, Jobs: []schedule.Job{r.job("notices", nil), r.job("charges", nil), r.job("trials", nil)}})
	ticks, err := s.Advance(context.Background(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if ticks != 60 {
		t.Errorf("ticks = %d, want 60", ticks)
	}
	var want []call
	for _, at := range every(t0.Add(time.Minute), t0.Add(time.Hour), time.Minute) {
		want = append(want, call{"notices", at}, call{"charges", at}, call{"trials", at})
	}
	if got := r.snapshot(); !slices.Equal(got, want) {
		t.Errorf("runs =\n%v\nwant\n%v", got, want)
	}
	if got, want := sim.Now(), t0.Add(time.Hour); !got.Equal(want) {
		t.Errorf("clock = %s, want %s", got, want)
	}
}

// TestAdvance_clockShowsTheTickDuringTheRun: a job reading the clock (as a
// command handler does) sees the tick's instant, not the target.
func TestAdvance_clockShowsTheTickDuringTheRun(t *testing.T) {
	t.Parallel()
	sim := clock.NewSimulated(t0)
	var mismatches []string
	s := MustNew(t, schedule.Config{Clock: sim, Jobs: []schedule.Job{{Name: "a", Run: func(_ context.Context, now time.Time) error {
		if c := sim.Now(); !c.Equal(now) {
			mismatches = append(mismatches, fmt.Sprintf("now %s, clock %s", now, c))
		}
		return nil
	}}}})
	if _, err := s.Advance(context.Background(), 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	if len(mismatches) > 0 {
		t.Errorf("the clock differs from the tick: %v", mismatches)
	}
}

func TestAdvance_calendarBoundaries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		spec          string
		start, target time.Time
		want          []time.Time
	}{
		{"midnight and month end (Jan 31 to Feb 1)", "0 * * * * *",
			time.Date(2026, 1, 31, 23, 58, 30, 0, time.UTC), time.Date(2026, 2, 1, 0, 2, 0, 0, time.UTC),
			[]time.Time{time.Date(2026, 1, 31, 23, 59, 0, 0, time.UTC), time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC),
				time.Date(2026, 2, 1, 0, 1, 0, 0, time.UTC), time.Date(2026, 2, 1, 0, 2, 0, 0, time.UTC)}},
		{"leap day (Feb 29 to Mar 1)", "@hourly",
			time.Date(2028, 2, 29, 22, 0, 0, 0, time.UTC), time.Date(2028, 3, 1, 1, 0, 0, 0, time.UTC),
			every(time.Date(2028, 2, 29, 23, 0, 0, 0, time.UTC), time.Date(2028, 3, 1, 1, 0, 0, 0, time.UTC), time.Hour)},
		{"year end", "@daily",
			time.Date(2026, 12, 30, 12, 0, 0, 0, time.UTC), time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC),
			every(time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC), 24*time.Hour)},
		// UTC has no daylight saving time: the night Europe and the US change
		// their clocks has 24 hourly ticks like any other.
		{"a DST night elsewhere is a plain day in UTC", "@hourly",
			time.Date(2026, 3, 29, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 30, 0, 0, 0, 0, time.UTC),
			every(time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC), time.Date(2026, 3, 30, 0, 0, 0, 0, time.UTC), time.Hour)},
		{"monthly on the 1st across months of 28, 30 and 31 days", "0 0 0 1 * *",
			time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC), time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC),
			[]time.Time{time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
				time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var r recorder
			sim := clock.NewSimulated(tt.start)
			s := MustNew(t, schedule.Config{SimulatedSpec: tt.spec, Clock: sim, Jobs: []schedule.Job{r.job("a", nil)}})
			ticks, err := s.AdvanceTo(context.Background(), tt.target)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.instants("a"); !slices.Equal(got, tt.want) || ticks != len(tt.want) {
				t.Errorf("ticks = %d at\n%v\nwant\n%v", ticks, got, tt.want)
			}
			if got := sim.Now(); !got.Equal(tt.target) {
				t.Errorf("clock = %s, want %s", got, tt.target)
			}
		})
	}
}

func TestAdvance_zeroRunsNothing(t *testing.T) {
	t.Parallel()
	var r recorder
	sim := clock.NewSimulated(t0)
	s := MustNew(t, schedule.Config{Clock: sim, Jobs: []schedule.Job{r.job("a", nil)}})
	ticks, err := s.Advance(context.Background(), 0)
	if err != nil || ticks != 0 || len(r.snapshot()) != 0 {
		t.Errorf("Advance(0) = %d, %v; runs %v; want nothing", ticks, err, r.snapshot())
	}
	if got := sim.Now(); !got.Equal(t0) {
		t.Errorf("clock = %s, want %s", got, t0)
	}
}

func TestAdvance_toAnInstantBetweenTicks(t *testing.T) {
	t.Parallel()
	var r recorder
	sim := clock.NewSimulated(t0)
	s := MustNew(t, schedule.Config{Clock: sim, Jobs: []schedule.Job{r.job("a", nil)}})
	between := t0.Add(2*time.Minute + 30*time.Second)
	ticks, err := s.AdvanceTo(context.Background(), between)
	if err != nil {
		t.Fatal(err)
	}
	if want := []time.Time{t0.Add(time.Minute), t0.Add(2 * time.Minute)}; ticks != 2 || !slices.Equal(r.instants("a"), want) {
		t.Errorf("ticks = %d at %v, want %v", ticks, r.instants("a"), want)
	}
	if got := sim.Now(); !got.Equal(between) {
		t.Errorf("clock = %s, want %s", got, between)
	}
	// The next advance goes on from the schedule, not from the target: the
	// next tick is 00:03, and 00:02 does not run twice.
	if ticks, err := s.AdvanceTo(context.Background(), t0.Add(3*time.Minute)); err != nil || ticks != 1 {
		t.Fatalf("second advance = %d, %v; want 1 tick", ticks, err)
	}
	if want := []time.Time{t0.Add(time.Minute), t0.Add(2 * time.Minute), t0.Add(3 * time.Minute)}; !slices.Equal(r.instants("a"), want) {
		t.Errorf("ticks at %v, want %v", r.instants("a"), want)
	}
}

// rule TIM-2: work a command made due at the clock's instant runs at the
// start of the next advance, as the system clock's schedule would run it
// within a minute, not at the next tick; with nothing due, nothing runs
// then. Those runs are not ticks.
func TestRule_TIM2_AdvanceRunsWorkDueAtItsStartFirst(t *testing.T) {
	t.Parallel()
	for _, due := range []bool{true, false} {
		t.Run(fmt.Sprintf("due now: %v", due), func(t *testing.T) {
			t.Parallel()
			var r recorder
			sim := clock.NewSimulated(t0.Add(10 * time.Second))
			var asked []time.Time
			s := MustNew(t, schedule.Config{Clock: sim, Jobs: []schedule.Job{r.job("a", nil), r.job("b", nil)},
				DueNow: func(_ context.Context, now time.Time) (bool, error) {
					asked = append(asked, now)
					return due, nil
				}})
			ticks, err := s.AdvanceTo(context.Background(), t0.Add(90*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			want := []call{{"a", t0.Add(time.Minute)}, {"b", t0.Add(time.Minute)}}
			if due {
				want = append([]call{{"a", t0.Add(10 * time.Second)}, {"b", t0.Add(10 * time.Second)}}, want...)
			}
			if got := r.snapshot(); ticks != 1 || !slices.Equal(got, want) {
				t.Errorf("ticks = %d, runs %v; want 1 tick, runs %v", ticks, got, want)
			}
			if !slices.Equal(asked, []time.Time{t0.Add(10 * time.Second)}) {
				t.Errorf("DueNow asked at %v, want once, at the advance's start", asked)
			}
		})
	}
}

func TestAdvance_simulatedSpecCanBeCoarserThanSpec(t *testing.T) {
	t.Parallel()
	var r recorder
	s := MustNew(t, schedule.Config{Spec: "0 * * * * *", SimulatedSpec: "@hourly", Clock: clock.NewSimulated(t0), Jobs: []schedule.Job{r.job("a", nil)}})
	ticks, err := s.Advance(context.Background(), 24*time.Hour)
	if err != nil || ticks != 24 {
		t.Errorf("Advance(24h) = %d, %v; want 24 hourly ticks", ticks, err)
	}
}

func TestAdvance_jobErrorStopsAtItsTick(t *testing.T) {
	t.Parallel()
	var r recorder
	declined := errors.New("gateway unreachable")
	failAt := t0.Add(3 * time.Minute)
	failing := true
	sim := clock.NewSimulated(t0)
	s := MustNew(t, schedule.Config{Clock: sim, Jobs: []schedule.Job{
		r.job("a", nil),
		r.job("b", func(now time.Time) error {
			if failing && now.Equal(failAt) {
				return declined
			}
			return nil
		}),
		r.job("c", nil),
	}})
	ticks, err := s.Advance(context.Background(), time.Hour)
	if ticks != 2 {
		t.Errorf("ticks = %d, want 2 complete ones", ticks)
	}
	var je *schedule.JobError
	if !errors.As(err, &je) || je.Job != "b" || !je.Tick.Equal(failAt) || !errors.Is(err, declined) {
		t.Fatalf("err = %v, want a JobError for b at %s wrapping %v", err, failAt, declined)
	}
	for _, w := range []string{`"b"`, failAt.Format(time.RFC3339), declined.Error()} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not name %q", err, w)
		}
	}
	if got := sim.Now(); !got.Equal(failAt) {
		t.Errorf("clock = %s, want the failing tick %s", got, failAt)
	}
	if got, want := r.instants("c"), []time.Time{t0.Add(time.Minute), t0.Add(2 * time.Minute)}; !slices.Equal(got, want) {
		t.Errorf("c ran at %v, want %v (not at the failing tick)", got, want)
	}
	// The next advance runs the failed tick again, all its jobs, at the same
	// instant, then goes on.
	failing = false
	ticks, err = s.AdvanceTo(context.Background(), t0.Add(4*time.Minute))
	if err != nil || ticks != 2 {
		t.Fatalf("resumed advance = %d, %v; want 2 ticks", ticks, err)
	}
	if got, want := r.instants("c"), every(t0.Add(time.Minute), t0.Add(4*time.Minute), time.Minute); !slices.Equal(got, want) {
		t.Errorf("c ran at %v, want %v", got, want)
	}
}

func TestAdvance_cancelledContextStopsBetweenTicks(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var r recorder
	sim := clock.NewSimulated(t0)
	s := MustNew(t, schedule.Config{Clock: sim, Jobs: []schedule.Job{r.job("a", func(now time.Time) error {
		if now.Equal(t0.Add(5 * time.Minute)) {
			cancel()
		}
		return nil
	})}})
	ticks, err := s.Advance(ctx, time.Hour)
	if ticks != 5 || !errors.Is(err, context.Canceled) {
		t.Errorf("Advance = %d, %v; want 5 ticks and context.Canceled", ticks, err)
	}
	if got, want := sim.Now(), t0.Add(5*time.Minute); !got.Equal(want) {
		t.Errorf("clock = %s, want the last tick %s", got, want)
	}
}

func TestAdvance_refusals(t *testing.T) {
	t.Parallel()
	sim := clock.NewSimulated(t0)
	s := MustNew(t, schedule.Config{Clock: sim})
	if _, err := s.AdvanceTo(context.Background(), t0.Add(-time.Second)); !errors.Is(err, clock.ErrBackwards) {
		t.Errorf("AdvanceTo(the past) = %v, want ErrBackwards", err)
	}
	if _, err := s.Advance(context.Background(), -time.Second); !errors.Is(err, clock.ErrBackwards) {
		t.Errorf("Advance(-1s) = %v, want ErrBackwards", err)
	}
	if got := sim.Now(); !got.Equal(t0) {
		t.Errorf("clock = %s, want it unchanged at %s", got, t0)
	}
	system := MustNew(t, schedule.Config{Clock: realClock{}})
	if _, err := system.Advance(context.Background(), time.Minute); !errors.Is(err, schedule.ErrNotSimulated) {
		t.Errorf("Advance on the system clock = %v, want ErrNotSimulated", err)
	}
	if _, err := system.AdvanceTo(context.Background(), time.Now()); !errors.Is(err, schedule.ErrNotSimulated) {
		t.Errorf("AdvanceTo on the system clock = %v, want ErrNotSimulated", err)
	}
}

// TestAdvance_clockMovedByOtherMeans: a tick that fell due while the clock
// was set directly runs late, at the clock's instant, rather than never.
func TestAdvance_clockMovedByOtherMeans(t *testing.T) {
	t.Parallel()
	var r recorder
	sim := clock.NewSimulated(t0)
	s := MustNew(t, schedule.Config{Clock: sim, Jobs: []schedule.Job{r.job("a", nil)}})
	moved := t0.Add(10*time.Minute + 30*time.Second)
	if err := sim.Set(moved); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AdvanceTo(context.Background(), t0.Add(12*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, want := r.instants("a"), []time.Time{moved, t0.Add(11 * time.Minute), t0.Add(12 * time.Minute)}; !slices.Equal(got, want) {
		t.Errorf("ticks at %v, want %v", got, want)
	}
}

func TestAdvance_concurrentCallsDoNotInterleave(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		advance func(s *schedule.Scheduler, i int) (int, error)
	}{
		// AdvanceTo to 30 and 60 minutes: the later target wins; the earlier
		// one, if it comes second, finds the clock past it and is refused.
		{"AdvanceTo", func(s *schedule.Scheduler, i int) (int, error) {
			ticks, err := s.AdvanceTo(context.Background(), t0.Add(time.Duration(30*(i+1))*time.Minute))
			if errors.Is(err, clock.ErrBackwards) {
				err = nil
			}
			return ticks, err
		}},
		// Advance by 30 minutes twice: an hour in all.
		{"Advance", func(s *schedule.Scheduler, _ int) (int, error) {
			return s.Advance(context.Background(), 30*time.Minute)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var r recorder
			sim := clock.NewSimulated(t0)
			s := MustNew(t, schedule.Config{Clock: sim, Jobs: []schedule.Job{r.job("a", nil), r.job("b", nil)}})
			var wg sync.WaitGroup
			start := make(chan struct{})
			ticks := make([]int, 2)
			errs := make([]error, 2)
			for i := range 2 {
				wg.Go(func() {
					<-start
					ticks[i], errs[i] = tt.advance(s, i)
				})
			}
			close(start)
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}
			if total := ticks[0] + ticks[1]; total != 60 {
				t.Errorf("ticks = %v, want 60 in all", ticks)
			}
			var want []call
			for _, at := range every(t0.Add(time.Minute), t0.Add(time.Hour), time.Minute) {
				want = append(want, call{"a", at}, call{"b", at})
			}
			if got := r.snapshot(); !slices.Equal(got, want) {
				t.Errorf("runs =\n%v\nwant each tick once, in order:\n%v", got, want)
			}
			if got, want := sim.Now(), t0.Add(time.Hour); !got.Equal(want) {
				t.Errorf("clock = %s, want %s", got, want)
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	var r recorder
	s := MustNew(t, schedule.Config{Clock: clock.NewSimulated(t0), Metrics: reg, Jobs: []schedule.Job{
		r.job("ok", nil),
		r.job("flaky", func(now time.Time) error {
			if now.Equal(t0.Add(3 * time.Minute)) {
				return errors.New("boom")
			}
			return nil
		}),
	}})
	if _, err := s.Advance(context.Background(), 5*time.Minute); err == nil {
		t.Fatal("the advance did not stop at the flaky job")
	}
	got := map[string]float64{}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetValue())
			}
			key := f.GetName() + "{" + strings.Join(labels, ",") + "}"
			if c := m.GetCounter(); c != nil {
				got[key] = c.GetValue()
			} else {
				got[key] = 1 // a gauge: present
			}
		}
	}
	want := map[string]float64{
		"subs_schedule_runs_total{ok,ok}":           3,
		"subs_schedule_runs_total{ok,error}":        0,
		"subs_schedule_runs_total{flaky,ok}":        2,
		"subs_schedule_runs_total{flaky,error}":     1,
		"subs_schedule_run_duration_seconds{ok}":    1,
		"subs_schedule_run_duration_seconds{flaky}": 1,
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], w, got)
		}
	}
	if _, err := schedule.New(schedule.Config{Clock: clock.NewSimulated(t0), Metrics: reg}); err == nil {
		t.Error("registering the metrics twice on one registry was accepted")
	}
}
