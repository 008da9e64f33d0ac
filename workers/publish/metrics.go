package publish

import "github.com/prometheus/client_golang/prometheus"

// metrics are the publisher's Prometheus metrics, one collector.
type metrics struct {
	published prometheus.Counter
	errors    prometheus.Counter
	lag       prometheus.Gauge
	active    prometheus.Gauge
}

func newMetrics() *metrics {
	return &metrics{
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "subs_publisher_published_total",
			Help: "Events published to JetStream and acked, republished ones included.",
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "subs_publisher_errors_total",
			Help: "Failures of the publisher (PostgreSQL or NATS), each followed by a retry.",
		}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "subs_publisher_lag_events",
			Help: "Approximate number of events appended but not yet published: the log's highest position minus the checkpoint's.",
		}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "subs_publisher_active",
			Help: "1 while this process's publisher holds the lock and publishes, 0 while it stands by.",
		}),
	}
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.all() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.all() {
		c.Collect(ch)
	}
}

func (m *metrics) all() []prometheus.Collector {
	return []prometheus.Collector{m.published, m.errors, m.lag, m.active}
}
