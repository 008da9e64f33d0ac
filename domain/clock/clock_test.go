package clock_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/subs-engine/subs/domain/clock"
)

var start = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// The simulated clock is a Clock.
var _ clock.Clock = (*clock.Simulated)(nil)

func TestSimulatedNowIsUTC(t *testing.T) {
	t.Parallel()
	paris := time.FixedZone("CET", 3600)
	c := clock.NewSimulated(time.Date(2026, 3, 1, 13, 0, 0, 0, paris))
	got := c.Now()
	if got.Location() != time.UTC {
		t.Errorf("Now().Location() = %v, want UTC", got.Location())
	}
	if !got.Equal(start) {
		t.Errorf("Now() = %v, want %v", got, start)
	}
	if got2 := c.Now(); !got2.Equal(got) {
		t.Errorf("the clock moved by itself: %v then %v", got, got2)
	}
}

func TestSimulatedAdvance(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		d       time.Duration
		want    time.Time
		wantErr error
	}{
		{"forward a year", 365 * 24 * time.Hour, start.AddDate(1, 0, 0), nil},
		{"zero", 0, start, nil},
		{"backwards", -time.Second, start, clock.ErrBackwards},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := clock.NewSimulated(start)
			if err := c.Advance(tt.d); !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("Advance(%s) error = %v, want %v", tt.d, err, tt.wantErr)
			}
			if got := c.Now(); !got.Equal(tt.want) {
				t.Errorf("Now() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSimulatedSet(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		to      time.Time
		want    time.Time
		wantErr error
	}{
		{"forward", start.Add(time.Hour), start.Add(time.Hour), nil},
		{"same instant", start, start, nil},
		{"same instant other zone", start.In(time.FixedZone("JST", 9*3600)), start, nil},
		{"backwards", start.Add(-time.Nanosecond), start, clock.ErrBackwards},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := clock.NewSimulated(start)
			if err := c.Set(tt.to); !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("Set(%v) error = %v, want %v", tt.to, err, tt.wantErr)
			}
			got := c.Now()
			if !got.Equal(tt.want) || got.Location() != time.UTC {
				t.Errorf("Now() = %v, want %v in UTC", got, tt.want)
			}
		})
	}
}

func TestSimulatedConcurrentUse(t *testing.T) {
	t.Parallel()
	c := clock.NewSimulated(start)
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := c.Advance(time.Minute); err != nil {
				t.Error(err)
			}
		}()
		go func() {
			defer wg.Done()
			_ = c.Now()
		}()
	}
	wg.Wait()
	if got, want := c.Now(), start.Add(50*time.Minute); !got.Equal(want) {
		t.Errorf("Now() = %v, want %v", got, want)
	}
}

// rule TIM-2: the simulated clock shows instants the store keeps (whole
// microseconds): a start, a Set or an Advance finer than that is cut, so a
// step scheduled at an instant is due when the clock shows it.
func TestRule_TIM2_SimulatedClockShowsWholeMicroseconds(t *testing.T) {
	t.Parallel()
	c := clock.NewSimulated(start.Add(500 * time.Nanosecond))
	if got := c.Now(); !got.Equal(start) {
		t.Errorf("started at %v, want %v", got, start)
	}
	if err := c.Set(start.Add(time.Microsecond + 999*time.Nanosecond)); err != nil {
		t.Fatal(err)
	}
	if got := c.Now(); !got.Equal(start.Add(time.Microsecond)) {
		t.Errorf("set to %v, want %v", got, start.Add(time.Microsecond))
	}
	if err := c.Advance(1500 * time.Nanosecond); err != nil {
		t.Fatal(err)
	}
	if got := c.Now(); !got.Equal(start.Add(2 * time.Microsecond)) {
		t.Errorf("advanced to %v, want %v", got, start.Add(2*time.Microsecond))
	}
}
