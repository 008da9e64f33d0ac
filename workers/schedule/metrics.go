package schedule

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the scheduler's Prometheus metrics, one collector. The
// children of every job are made at New, so a run costs no label lookup.
type metrics struct {
	runs     *prometheus.CounterVec
	duration *prometheus.GaugeVec
	byJob    map[string]jobMetrics
}

type jobMetrics struct {
	ok, failed prometheus.Counter
	duration   prometheus.Gauge
}

func newMetrics(jobs []Job) *metrics {
	m := &metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "subs_schedule_runs_total",
			Help: "Worker runs triggered by the schedule, by job and outcome (ok or error).",
		}, []string{"job", "outcome"}),
		duration: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "subs_schedule_run_duration_seconds",
			Help: "How long the last run of each job took, in seconds of the machine's clock.",
		}, []string{"job"}),
		byJob: make(map[string]jobMetrics, len(jobs)),
	}
	for _, j := range jobs {
		m.byJob[j.Name] = jobMetrics{
			ok:       m.runs.WithLabelValues(j.Name, "ok"),
			failed:   m.runs.WithLabelValues(j.Name, "error"),
			duration: m.duration.WithLabelValues(j.Name),
		}
	}
	return m
}

func (m *metrics) observe(job string, d time.Duration, err error) {
	jm := m.byJob[job]
	jm.duration.Set(d.Seconds())
	if err != nil {
		jm.failed.Inc()
	} else {
		jm.ok.Inc()
	}
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	m.runs.Describe(ch)
	m.duration.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.runs.Collect(ch)
	m.duration.Collect(ch)
}
