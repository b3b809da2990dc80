package executor

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/metrics"
)

// Metrics are the executor's Prometheus metrics (docs/metrics.md). Set Config.Metrics to record
// them; a nil *Metrics records nothing. One Metrics may serve several executors of a process. The
// series of every known executor type are resolved once, so recording costs no allocation.
type Metrics struct {
	started         *prometheus.CounterVec
	finished        *prometheus.CounterVec
	running         *prometheus.GaugeVec
	dispatchToStart *prometheus.HistogramVec
	duration        *prometheus.HistogramVec
	lost            *prometheus.CounterVec
	consumers       *metrics.ConsumerCollector
	byType          map[string]*typeMetrics
}

// typeMetrics are the resolved series of one executor type.
type typeMetrics struct {
	started         prometheus.Counter
	running         prometheus.Gauge
	dispatchToStart prometheus.Observer
	duration        prometheus.Observer
	lost            prometheus.Counter
	finished        map[finishKey]prometheus.Counter
}

type finishKey struct{ status, reason string }

// NewMetrics creates the executor's metrics and registers them, with a collector of its
// consumers' backlogs, on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		started: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: "executor", Name: "tasks_started_total",
			Help: "Attempts this executor started running (after publishing task.started), by executor type.",
		}, []string{"type"}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: "executor", Name: "tasks_finished_total",
			Help: "Started attempts that ended, by executor type, status (success, failed, cancelled, lost) and failure reason.",
		}, []string{"type", "status", "reason"}),
		running: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: metrics.Namespace, Subsystem: "executor", Name: "tasks_running",
			Help: "Attempts running now, by executor type.",
		}, []string{"type"}),
		dispatchToStart: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metrics.Namespace, Subsystem: "executor", Name: "dispatch_to_start_seconds",
			Help:    "From a dispatch's dispatched_at (the scheduler's clock), or its not_before when later, to the start of the task, after task.started is acknowledged, by executor type.",
			Buckets: metrics.LatencyBuckets,
		}, []string{"type"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metrics.Namespace, Subsystem: "executor", Name: "task_duration_seconds",
			Help:    "Run time of started attempts, from their start to their end, by executor type.",
			Buckets: metrics.DurationBuckets,
		}, []string{"type"}),
		lost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: "executor", Name: "lost_attempts_total",
			Help: "Attempts this executor reported lost (task.failed, reason lost): redelivered after their executor stopped, or stopped by a drain, by executor type.",
		}, []string{"type"}),
		consumers: metrics.NewConsumerCollector(),
		byType:    make(map[string]*typeMetrics),
	}
	keys := []finishKey{{event.TaskSuccess, ""}, {event.TaskCancelled, ""}, {event.TaskLost, event.ReasonLost}}
	for _, r := range []string{event.ReasonExit, event.ReasonTimeout, event.ReasonOutput, event.ReasonStart, event.ReasonInput} {
		keys = append(keys, finishKey{event.TaskFailed, r})
	}
	for _, typ := range KnownTypes() {
		tm := &typeMetrics{
			started:         m.started.WithLabelValues(typ),
			running:         m.running.WithLabelValues(typ),
			dispatchToStart: m.dispatchToStart.WithLabelValues(typ),
			duration:        m.duration.WithLabelValues(typ),
			lost:            m.lost.WithLabelValues(typ),
			finished:        make(map[finishKey]prometheus.Counter, len(keys)),
		}
		for _, k := range keys {
			tm.finished[k] = m.finished.WithLabelValues(typ, k.status, k.reason)
		}
		m.byType[typ] = tm
	}
	reg.MustRegister(m.started, m.finished, m.running, m.dispatchToStart, m.duration, m.lost, m.consumers)
	return m
}

// start records an attempt starting at begin.
func (m *Metrics) start(typ string, d *event.Dispatch, begin time.Time) {
	if m == nil {
		return
	}
	tm := m.byType[typ]
	if tm == nil {
		return // Config.Validate admits only known types
	}
	tm.started.Inc()
	tm.running.Inc()
	if d.DispatchedAt.IsZero() {
		return
	}
	due := d.DispatchedAt
	if d.NotBefore != nil && d.NotBefore.After(due) {
		due = *d.NotBefore
	}
	tm.dispatchToStart.Observe(begin.Sub(due).Seconds())
}

// finish records the end of an attempt that start recorded.
func (m *Metrics) finish(typ, status, reason string, ran time.Duration) {
	if m == nil {
		return
	}
	tm := m.byType[typ]
	if tm == nil {
		return
	}
	tm.running.Dec()
	tm.duration.Observe(ran.Seconds())
	if c, ok := tm.finished[finishKey{status, reason}]; ok {
		c.Inc()
		return
	}
	m.finished.WithLabelValues(typ, status, reason).Inc()
}

// lostAttempt records an attempt reported lost.
func (m *Metrics) lostAttempt(typ string) {
	if m == nil {
		return
	}
	if tm := m.byType[typ]; tm != nil {
		tm.lost.Inc()
	}
}

// watch adds the consumer of an executor type to the backlog collector.
func (m *Metrics) watch(js jetstream.JetStream, typ string) {
	if m != nil {
		m.consumers.Watch(js, event.StreamTasks, event.ConsumerExecutor(typ))
	}
}
