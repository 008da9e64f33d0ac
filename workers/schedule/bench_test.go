package schedule_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/subs-engine/subs/domain/clock"
	"github.com/subs-engine/subs/workers/schedule"
)

// benchWindow is how long each side of the comparison runs.
const benchWindow = time.Second

// BenchmarkAdvanceYearHourly moves a simulated clock through a year with
// an hourly SimulatedSpec (8,760 ticks) and four jobs that do next to
// nothing, so it measures the scheduler's own cost per tick: the schedule's
// Next, setting the clock, calling the jobs. The raw figure calls the same
// jobs for the same instants from a plain loop. It prints
//
//	BENCH schedule_advance_year_hourly <ticks/s> ticks/s raw=<ticks/s> ratio=<scheduler/raw>
//
// Run it with `make bench` (-benchtime=1x: each side runs its own window).
func BenchmarkAdvanceYearHourly(b *testing.B) {
	start := time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)
	end := start.AddDate(1, 0, 0)
	var sink int64
	run := func(_ context.Context, now time.Time) error { sink += now.Unix(); return nil }
	jobs := []schedule.Job{{Name: "notices", Run: run}, {Name: "charges", Run: run}, {Name: "retries", Run: run}, {Name: "trials", Run: run}}
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		scheduled := tickRate(b, func() int {
			s, err := schedule.New(schedule.Config{SimulatedSpec: "@hourly", Clock: clock.NewSimulated(start), Jobs: jobs})
			if err != nil {
				b.Fatal(err)
			}
			ticks, err := s.AdvanceTo(ctx, end)
			if err != nil {
				b.Fatal(err)
			}
			return ticks
		})
		raw := tickRate(b, func() int {
			ticks := 0
			for t := start.Add(time.Hour); !t.After(end); t = t.Add(time.Hour) {
				for _, j := range jobs {
					if err := j.Run(ctx, t); err != nil {
						b.Fatal(err)
					}
				}
				ticks++
			}
			return ticks
		})
		b.ReportMetric(scheduled, "ticks/s")
		b.ReportMetric(raw, "raw_ticks/s")
		b.ReportMetric(scheduled/raw, "ratio")
		fmt.Printf("BENCH schedule_advance_year_hourly %.0f ticks/s raw=%.0f ratio=%.3f\n", scheduled, raw, scheduled/raw)
	}
	_ = sink
}

// tickRate runs year again and again for benchWindow and returns the ticks
// per second it ran.
func tickRate(b *testing.B, year func() int) float64 {
	b.Helper()
	ticks := 0
	started := time.Now()
	for time.Since(started) < benchWindow {
		n := year()
		if n != 8760 {
			b.Fatalf("a year of hourly ticks = %d, want 8760", n)
		}
		ticks += n
	}
	return float64(ticks) / time.Since(started).Seconds()
}
