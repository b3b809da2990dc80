package api

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ork-go/ork/pkg/metrics"
)

// Metrics are the API's Prometheus metrics (docs/metrics.md). Set Config.Metrics to record them;
// a nil *Metrics records nothing.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	streams  prometheus.Gauge
}

// NewMetrics creates the API's metrics and registers them on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: "api", Name: "requests_total",
			Help: "Requests answered, by route (the method and pattern of the operation) and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metrics.Namespace, Subsystem: "api", Name: "request_seconds",
			Help:    "Time from the request's arrival to its answer, event streams excluded, by route.",
			Buckets: metrics.LatencyBuckets,
		}, []string{"route"}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: metrics.Namespace, Subsystem: "api", Name: "open_streams",
			Help: "Event and log streams open now.",
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.streams)
	return m
}

// observe records one answered request.
func (m *Metrics) observe(route string, code int, stream bool, took time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
	if !stream {
		m.duration.WithLabelValues(route).Observe(took.Seconds())
	}
}

// streamOpen counts an event stream while it is open: call the returned function when it ends.
func (m *Metrics) streamOpen() func() {
	if m == nil {
		return func() {}
	}
	m.streams.Inc()
	return m.streams.Dec
}
