package schedule_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/subs-engine/subs/workers/schedule"
)

// realClock is the machine's clock, as serve wires it.
type realClock struct{}

func (realClock) Now() time.Time { return time.Now().UTC() }

// readingsClock is the machine's clock that keeps every reading.
type readingsClock struct {
	mu       sync.Mutex
	readings []time.Time
}

func (c *readingsClock) Now() time.Time {
	t := time.Now().UTC()
	c.mu.Lock()
	c.readings = append(c.readings, t)
	c.mu.Unlock()
	return t
}

func (c *readingsClock) snapshot() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.readings)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(tb testing.TB, what string, within time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// everySecond ticks the system-clock tests once a second, the finest cron
// goes.
const everySecond = "* * * * * *"

func TestStart_ticksReadTheClockOnceAndRunEveryJob(t *testing.T) {
	t.Parallel()
	var r recorder
	clk := &readingsClock{}
	s := MustNew(t, schedule.Config{Spec: everySecond, Clock: clk, Jobs: []schedule.Job{r.job("a", nil), r.job("b", nil)}})
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "two ticks", 5*time.Second, func() bool { return len(r.instants("b")) >= 2 })
	s.Stop()

	a, b := r.instants("a"), r.instants("b")
	if !slices.Equal(a, b) {
		t.Errorf("a ran at %v, b at %v: one tick, one instant (TIM-1)", a, b)
	}
	readings := clk.snapshot()
	if len(readings) != len(a) {
		t.Errorf("%d clock readings for %d ticks: want one reading per tick", len(readings), len(a))
	}
	for i := range min(len(readings), len(a)) {
		// The jobs get the tick's planned instant, the whole second it was
		// due at: the reading is at it or just after.
		if !a[i].Equal(readings[i].Truncate(time.Second)) || a[i].Nanosecond() != 0 {
			t.Errorf("tick %d read the clock at %s and ran at %s, want the planned second", i, readings[i], a[i])
		}
	}
	for i := 1; i < len(a); i++ {
		if !a[i].After(a[i-1]) {
			t.Errorf("tick %d at %s is not after tick %d at %s", i, a[i], i-1, a[i-1])
		}
	}
	runs := len(r.snapshot())
	if err := s.Start(context.Background()); err != nil {
		t.Errorf("Start after Stop: %v", err)
	}
	s.Stop()
	s.Stop() // a second Stop does nothing
	if len(r.snapshot()) < runs {
		t.Error("runs disappeared")
	}
}

func TestStart_twiceIsRefused(t *testing.T) {
	t.Parallel()
	s := MustNew(t, schedule.Config{Clock: realClock{}})
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if err := s.Start(context.Background()); !errors.Is(err, schedule.ErrStarted) {
		t.Errorf("second Start = %v, want ErrStarted", err)
	}
}

func TestStart_jobErrorIsLoggedAndTheOthersRun(t *testing.T) {
	t.Parallel()
	var r recorder
	var logs lockedBuffer
	s := MustNew(t, schedule.Config{Spec: everySecond, Clock: realClock{}, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Jobs: []schedule.Job{
			r.job("failing", func(time.Time) error { return errors.New("database unreachable") }),
			r.job("after", nil),
		}})
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a tick", 5*time.Second, func() bool { return len(r.instants("after")) >= 1 })
	s.Stop()
	if out := logs.String(); !strings.Contains(out, "job=failing") || !strings.Contains(out, "database unreachable") {
		t.Errorf("log = %q, want the failing job and its error", out)
	}
}

func TestStop_waitsForTheRunningTick(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	var finished atomic.Bool
	s := MustNew(t, schedule.Config{Spec: everySecond, Clock: realClock{}, Jobs: []schedule.Job{{Name: "slow",
		Run: func(context.Context, time.Time) error {
			once.Do(func() { close(entered) })
			<-release
			finished.Store(true)
			return nil
		}}}})
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("no tick within 5s")
	}
	stopped := make(chan struct{})
	go func() { s.Stop(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("Stop returned while a tick was running")
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not return after the tick finished")
	}
	if !finished.Load() {
		t.Error("Stop returned before the running job finished")
	}
}

func TestStart_cancelledContextCancelsTheRunningTick(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	entered := make(chan struct{})
	var once sync.Once
	var sawCancel atomic.Bool
	s := MustNew(t, schedule.Config{Spec: everySecond, Clock: realClock{}, Jobs: []schedule.Job{{Name: "waits",
		Run: func(ctx context.Context, _ time.Time) error {
			once.Do(func() { close(entered) })
			<-ctx.Done()
			sawCancel.Store(true)
			return ctx.Err()
		}}}})
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("no tick within 5s")
	}
	cancel()
	s.Stop()
	if !sawCancel.Load() {
		t.Error("the running job did not see ctx cancelled")
	}
}

// lockedBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// rule ARS-8: worker processes on one schedule give their runs the same
// planned instant, whatever microseconds apart their clocks read it: they
// share the due rows claimed as visited at that instant, rather than each
// visiting again what another has just claimed.
func TestStart_processesOnOneSpecRunAtTheSamePlannedInstants(t *testing.T) {
	t.Parallel()
	var a, b recorder
	first := MustNew(t, schedule.Config{Spec: everySecond, Clock: realClock{}, Jobs: []schedule.Job{a.job("renewals", nil)}})
	second := MustNew(t, schedule.Config{Spec: everySecond, Clock: realClock{}, Jobs: []schedule.Job{b.job("renewals", nil)}})
	for _, s := range []*schedule.Scheduler{first, second} {
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "three ticks each", 6*time.Second, func() bool { return len(a.instants("renewals")) >= 3 && len(b.instants("renewals")) >= 3 })
	first.Stop()
	second.Stop()
	common := 0
	for _, at := range a.instants("renewals") {
		if slices.ContainsFunc(b.instants("renewals"), at.Equal) {
			common++
		}
	}
	if common < 2 {
		t.Errorf("the processes ran at %v and %v: want the same planned instants", a.instants("renewals"), b.instants("renewals"))
	}
}
