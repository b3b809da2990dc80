package scheduler

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/metrics"
	"github.com/ork-go/ork/pkg/workflow"
)

// Metrics are the scheduler's Prometheus metrics (docs/metrics.md). Set Config.Metrics to record
// them; a nil *Metrics records nothing. One Metrics may serve several schedulers of a process.
// The series of known label values are resolved once, so recording costs no allocation.
type Metrics struct {
	events          *prometheus.CounterVec
	eventsBy        map[eventKey]prometheus.Counter
	casConflicts    prometheus.Counter
	dispatched      *prometheus.CounterVec
	dispatchedBy    map[string]prometheus.Counter
	readyToDispatch *prometheus.HistogramVec
	readyBy         map[string]prometheus.Observer
	runsFinished    *prometheus.CounterVec
	reconciled      *prometheus.CounterVec
	redriven        prometheus.Counter
	appliedMissed   prometheus.Counter
	scheduleFires   *prometheus.CounterVec
	scheduleSkips   *prometheus.CounterVec
	scheduleLate    prometheus.Histogram
	consumers       *metrics.ConsumerCollector
}

type eventKey struct {
	typ     string
	outcome Outcome
}

// NewMetrics creates the scheduler's metrics and registers them, with a collector of its
// consumer's backlog, on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: "scheduler", Name: "events_total",
			Help: "Events handled by the transition function, by event type and outcome (applied, duplicate, stale, ignored).",
		}, []string{"type", "outcome"}),
		casConflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: "scheduler", Name: "cas_conflicts_total",
			Help: "Run-state writes refused by the KV compare-and-swap (another handler wrote first); each is reloaded and re-applied.",
		}),
		dispatched: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: "scheduler", Name: "tasks_dispatched_total",
			Help: "Task dispatches published to ORK_TASKS and acknowledged by the stream, by executor type.",
		}, []string{"type"}),
		readyToDispatch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metrics.Namespace, Subsystem: "scheduler", Name: "ready_to_dispatch_seconds",
			Help:    "From the time of the event that made a task ready (its publisher's clock) to the stream's ack of the task's dispatch, by executor type. First deliveries only.",
			Buckets: metrics.LatencyBuckets,
		}, []string{"type"}),
		runsFinished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: "scheduler", Name: "runs_finished_total",
			Help: "Runs this scheduler ended (run.finished published), by final status.",
		}, []string{"status"}),
		reconciled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: "scheduler", Name: "reconciler_failed_attempts_total",
			Help: "Attempts (and, for stalled, runs) the reconciler failed, by reason (lost, no_executor, max_deliveries, stalled).",
		}, []string{"reason"}),
		redriven: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: "scheduler", Name: "reconciler_redriven_runs_total",
			Help: "Runs the reconciler re-drove because they had nothing in flight and had not changed for the stall timeout.",
		}),
		appliedMissed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: "scheduler", Name: "reconciler_applied_results_total",
			Help: "Task results the reconciler found on ORK_EVENTS for in-flight attempts whose dispatch was gone, and applied.",
		}),
		scheduleFires: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: "scheduler", Name: "schedule_fires_total",
			Help: "Runs schedules submitted, by kind (cron: a tick of the cron, catchup included; trigger; backfill).",
		}, []string{"kind"}),
		scheduleSkips: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: "scheduler", Name: "schedule_skips_total",
			Help: "Schedule ticks that did not fire, by reason (overlap, buffer_full, superseded, missed, paused, catchup_window, catchup_cap).",
		}, []string{"reason"}),
		scheduleLate: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metrics.Namespace, Subsystem: "scheduler", Name: "schedule_lateness_seconds",
			Help:    "How late a cron tick's run was submitted: the stream's ack of the submission minus the nominal time plus its jitter.",
			Buckets: metrics.LatencyBuckets,
		}),
		consumers:    metrics.NewConsumerCollector(),
		eventsBy:     make(map[eventKey]prometheus.Counter),
		dispatchedBy: make(map[string]prometheus.Counter),
		readyBy:      make(map[string]prometheus.Observer),
	}
	for _, typ := range []string{event.TypeRunSubmitted, event.TypeTaskSucceeded, event.TypeTaskFailed,
		event.TypeRunCancelRequested, event.TypeRunPauseRequested, event.TypeRunResumeRequested} {
		for _, o := range []Outcome{Applied, Duplicate, Stale, Ignored} {
			m.eventsBy[eventKey{typ, o}] = m.events.WithLabelValues(typ, o.String())
		}
	}
	for _, typ := range []string{workflow.ExecutorProcess, workflow.ExecutorPython, workflow.ExecutorNoop, workflow.ExecutorSleep} {
		m.dispatchedBy[typ] = m.dispatched.WithLabelValues(typ)
		m.readyBy[typ] = m.readyToDispatch.WithLabelValues(typ)
	}
	for _, st := range []string{event.RunSuccess, event.RunFailed, event.RunCancelled} {
		m.runsFinished.WithLabelValues(st)
	}
	for _, r := range []string{event.ReasonLost, event.ReasonNoExecutor, event.ReasonMaxDeliveries, event.ReasonStalled} {
		m.reconciled.WithLabelValues(r)
	}
	reg.MustRegister(m.events, m.casConflicts, m.dispatched, m.readyToDispatch, m.runsFinished, m.reconciled, m.redriven,
		m.appliedMissed, m.scheduleFires, m.scheduleSkips, m.scheduleLate, m.consumers)
	return m
}

func (m *Metrics) event(typ string, o Outcome) {
	if m == nil {
		return
	}
	if c, ok := m.eventsBy[eventKey{typ, o}]; ok {
		c.Inc()
		return
	}
	m.events.WithLabelValues(typ, o.String()).Inc()
}

func (m *Metrics) casConflict() {
	if m != nil {
		m.casConflicts.Inc()
	}
}

// sentDispatch is a dispatch in a publish: its executor type and the time of the event that
// made its task ready (zero for a redelivered event, whose time says nothing about this hop).
type sentDispatch struct {
	typ   string
	since time.Time
}

// published records the dispatches and run ends of a publish once the stream holds them.
func (m *Metrics) published(sent []sentDispatch, cmds []Commands) {
	if m == nil {
		return
	}
	for _, d := range sent {
		if c, ok := m.dispatchedBy[d.typ]; ok {
			c.Inc()
		} else {
			m.dispatched.WithLabelValues(d.typ).Inc()
		}
		if d.since.IsZero() {
			continue
		}
		obs, ok := m.readyBy[d.typ]
		if !ok {
			obs = m.readyToDispatch.WithLabelValues(d.typ)
		}
		obs.Observe(time.Since(d.since).Seconds())
	}
	for i := range cmds {
		if c := &cmds[i]; c.Finished {
			for j := range c.Events {
				if e := &c.Events[j]; e.Type == event.TypeRunFinished {
					m.runsFinished.WithLabelValues(e.Status).Inc()
				}
			}
		}
	}
}

// watch adds the scheduler's consumer to the backlog collector.
func (m *Metrics) watch(js jetstream.JetStream, durable string) {
	if m != nil {
		m.consumers.Watch(js, event.StreamEvents, durable)
	}
}

func (m *Metrics) reconcilerRedriven() {
	if m != nil {
		m.redriven.Inc()
	}
}

func (m *Metrics) reconcilerApplied() {
	if m != nil {
		m.appliedMissed.Inc()
	}
}

func (m *Metrics) reconcilerFailed(reason string, n int) {
	if m != nil && n > 0 {
		m.reconciled.WithLabelValues(reason).Add(float64(n))
	}
}

func (m *Metrics) scheduleFired(kind string, late time.Duration) {
	if m == nil {
		return
	}
	m.scheduleFires.WithLabelValues(kind).Inc()
	if kind == fireCron {
		m.scheduleLate.Observe(max(late, 0).Seconds())
	}
}

func (m *Metrics) scheduleSkipped(skipped map[string]int64) {
	if m == nil {
		return
	}
	for r, n := range skipped {
		m.scheduleSkips.WithLabelValues(r).Add(float64(n))
	}
}
