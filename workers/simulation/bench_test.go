package simulation_test

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkSimulation moves a population through a simulated year (365
// days) with the engine's real workers, once per size, and prints
//
//	BENCH simulation_<customers>x365 <customer-years/s> customer-years/s events/s=<events/s> events=<n> seconds=<s> peak_rss_mb=<VmHWM> mail=<memory|disk>
//
// peak_rss_mb is the test process's peak resident memory (VmHWM) so far;
// the PostgreSQL server's is not counted. mail says where the maildir was
// (mailDir). The 100,000-customer year takes some 4 minutes here (the
// throughput goal: under 5), and its process 8 GB at the peak;
// `make bench-100k` runs it alone.
func BenchmarkSimulation(b *testing.B) {
	for _, customers := range []int{10_000, 100_000} {
		name := fmt.Sprintf("simulation_%dx365", customers)
		b.Run(strconv.Itoa(customers), func(b *testing.B) {
			for range b.N {
				r, mailOn := simulate(b, customers, 1, "")
				if !r.Passed() {
					b.Fatalf("an invariant failed: %+v", r.Checks)
				}
				secs := r.Elapsed.Seconds()
				years := float64(r.Customers) * float64(r.Days) / 365
				peak := peakRSSMB(b)
				b.ReportMetric(years/secs, "customer-years/s")
				b.ReportMetric(float64(r.Events)/secs, "events/s")
				b.ReportMetric(peak, "peak_rss_MB")
				fmt.Printf("BENCH %s %.1f customer-years/s events/s=%.0f events=%d seconds=%.1f peak_rss_mb=%.0f mail=%s\n",
					name, years/secs, float64(r.Events)/secs, r.Events, secs, peak, mailOn)
			}
		})
	}
}

// peakRSSMB is the process's peak resident set size (VmHWM), in MB.
func peakRSSMB(b *testing.B) float64 {
	b.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Logf("peak memory unknown: %v", err)
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err == nil {
				return kb / 1024
			}
		}
	}
	return 0
}
