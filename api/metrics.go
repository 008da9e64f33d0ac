package api

import (
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// httpMetrics counts requests and times them, by method, route pattern and
// status code.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics() *httpMetrics {
	labels := []string{"method", "route", "code"}
	return &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "subs_http_requests_total",
			Help: "HTTP requests served, by method, route pattern and status code.",
		}, labels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "subs_http_request_duration_seconds",
			Help:    "Time to serve an HTTP request, by method, route pattern and status code.",
			Buckets: prometheus.DefBuckets,
		}, labels),
	}
}

func (m *httpMetrics) observe(method, route string, status int, elapsed time.Duration) {
	code := statusLabel(status)
	m.requests.WithLabelValues(method, route, code).Inc()
	m.duration.WithLabelValues(method, route, code).Observe(elapsed.Seconds())
}

// Describe implements prometheus.Collector.
func (m *httpMetrics) Describe(ch chan<- *prometheus.Desc) {
	m.requests.Describe(ch)
	m.duration.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *httpMetrics) Collect(ch chan<- prometheus.Metric) {
	m.requests.Collect(ch)
	m.duration.Collect(ch)
}

// poolCollector exports pgxpool statistics, read at scrape time: current
// connection counts as gauges, cumulative counts as counters.
type poolCollector struct {
	pool *pgxpool.Pool

	acquiredConns, idleConns, constructingConns, totalConns, maxConns *prometheus.Desc
	acquires, emptyAcquires, canceledAcquires, newConns               *prometheus.Desc
	acquireSeconds, emptyAcquireWaitSeconds                           *prometheus.Desc
	lifetimeDestroys, idleDestroys                                    *prometheus.Desc
}

func newPoolCollector(pool *pgxpool.Pool) *poolCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("subs_db_pool_"+name, help, nil, nil)
	}
	return &poolCollector{
		pool:                    pool,
		acquiredConns:           d("acquired_connections", "Connections currently checked out of the pool."),
		idleConns:               d("idle_connections", "Idle connections in the pool."),
		constructingConns:       d("constructing_connections", "Connections being opened."),
		totalConns:              d("total_connections", "Connections in the pool: acquired, idle and constructing."),
		maxConns:                d("max_connections", "Maximum size of the pool."),
		acquires:                d("acquires_total", "Successful acquires from the pool."),
		emptyAcquires:           d("empty_acquires_total", "Acquires that had to wait for a connection."),
		canceledAcquires:        d("canceled_acquires_total", "Acquires canceled by their context."),
		newConns:                d("new_connections_total", "Connections opened."),
		acquireSeconds:          d("acquire_seconds_total", "Total time spent acquiring connections."),
		emptyAcquireWaitSeconds: d("empty_acquire_wait_seconds_total", "Total time acquires waited for a connection."),
		lifetimeDestroys:        d("max_lifetime_destroys_total", "Connections closed for exceeding their maximum lifetime."),
		idleDestroys:            d("max_idle_destroys_total", "Connections closed for exceeding their maximum idle time."),
	}
}

// Describe implements prometheus.Collector.
func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.acquiredConns, c.idleConns, c.constructingConns, c.totalConns, c.maxConns,
		c.acquires, c.emptyAcquires, c.canceledAcquires, c.newConns,
		c.acquireSeconds, c.emptyAcquireWaitSeconds, c.lifetimeDestroys, c.idleDestroys,
	} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	gauge(c.acquiredConns, float64(s.AcquiredConns()))
	gauge(c.idleConns, float64(s.IdleConns()))
	gauge(c.constructingConns, float64(s.ConstructingConns()))
	gauge(c.totalConns, float64(s.TotalConns()))
	gauge(c.maxConns, float64(s.MaxConns()))
	counter(c.acquires, float64(s.AcquireCount()))
	counter(c.emptyAcquires, float64(s.EmptyAcquireCount()))
	counter(c.canceledAcquires, float64(s.CanceledAcquireCount()))
	counter(c.newConns, float64(s.NewConnsCount()))
	counter(c.acquireSeconds, s.AcquireDuration().Seconds())
	counter(c.emptyAcquireWaitSeconds, s.EmptyAcquireWaitTime().Seconds())
	counter(c.lifetimeDestroys, float64(s.MaxLifetimeDestroyCount()))
	counter(c.idleDestroys, float64(s.MaxIdleDestroyCount()))
}
