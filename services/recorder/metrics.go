package recorder

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/metrics"
)

// Classes of dead letters, the reason label of ork_recorder_dead_letters_total.
const (
	deadUndecodable = "undecodable" // not JSON, or not an event or log batch
	deadInvalid     = "invalid"     // well formed but impossible (unknown type, no task, no plan, ...)
	deadOrphan      = "orphan"      // names a run or task the database never learnt of
	deadRejected    = "rejected"    // the store kept refusing it alone
)

// BatchSizeBuckets are the buckets of ork_recorder_batch_size_messages.
var BatchSizeBuckets = []float64{1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 100000}

// Metrics are the recorder's Prometheus metrics (docs/metrics.md). Set Config.Metrics to record
// them; a nil *Metrics records nothing. The series of both streams are resolved once, so
// recording costs no allocation.
type Metrics struct {
	batchSize    *prometheus.HistogramVec
	commit       *prometheus.HistogramVec
	commitErrors *prometheus.CounterVec
	messages     *prometheus.CounterVec
	dead         *prometheus.CounterVec
	consumers    *metrics.ConsumerCollector
	byStream     map[string]*streamMetrics
}

// streamMetrics are the resolved series of one stream.
type streamMetrics struct {
	batchSize    prometheus.Observer
	commit       prometheus.Observer
	commitErrors prometheus.Counter
	messages     prometheus.Counter
	dead         map[string]prometheus.Counter
}

// NewMetrics creates the recorder's metrics and registers them, with a collector of its
// consumers' backlogs, on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		batchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metrics.Namespace, Subsystem: "recorder", Name: "batch_size_messages",
			Help:    "Messages per committed batch, by stream.",
			Buckets: BatchSizeBuckets,
		}, []string{"stream"}),
		commit: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metrics.Namespace, Subsystem: "recorder", Name: "commit_seconds",
			Help:    "Duration of one successful write transaction (store ApplyBatch, commit included), by stream.",
			Buckets: metrics.LatencyBuckets,
		}, []string{"stream"}),
		commitErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: "recorder", Name: "commit_errors_total",
			Help: "Write transactions that failed and are retried, by stream.",
		}, []string{"stream"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: "recorder", Name: "messages_total",
			Help: "Messages committed and acknowledged, dead letters included, by stream.",
		}, []string{"stream"}),
		dead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Subsystem: "recorder", Name: "dead_letters_total",
			Help: "Messages stored in dead_letters instead of being applied, by stream and reason class (undecodable, invalid, orphan, rejected).",
		}, []string{"stream", "reason"}),
		consumers: metrics.NewConsumerCollector(),
		byStream:  make(map[string]*streamMetrics, 2),
	}
	for _, stream := range []string{event.StreamEvents, event.StreamLogs} {
		sm := &streamMetrics{
			batchSize:    m.batchSize.WithLabelValues(stream),
			commit:       m.commit.WithLabelValues(stream),
			commitErrors: m.commitErrors.WithLabelValues(stream),
			messages:     m.messages.WithLabelValues(stream),
			dead:         make(map[string]prometheus.Counter, 4),
		}
		for _, class := range []string{deadUndecodable, deadInvalid, deadOrphan, deadRejected} {
			sm.dead[class] = m.dead.WithLabelValues(stream, class)
		}
		m.byStream[stream] = sm
	}
	reg.MustRegister(m.batchSize, m.commit, m.commitErrors, m.messages, m.dead, m.consumers)
	return m
}

func (m *Metrics) stream(name string) *streamMetrics {
	if m == nil {
		return nil
	}
	return m.byStream[name]
}

// committed records a batch of n messages committed and acknowledged.
func (m *Metrics) committed(stream string, n int) {
	if sm := m.stream(stream); sm != nil {
		sm.batchSize.Observe(float64(n))
		sm.messages.Add(float64(n))
	}
}

// applied records one ApplyBatch call that took d and failed when failed is true.
func (m *Metrics) applied(stream string, d time.Duration, failed bool) {
	sm := m.stream(stream)
	switch {
	case sm == nil:
	case failed:
		sm.commitErrors.Inc()
	default:
		sm.commit.Observe(d.Seconds())
	}
}

// deadLetters records the committed dead letters among items.
func (m *Metrics) deadLetters(items []item) {
	if m == nil {
		return
	}
	for i := range items {
		if it := &items[i]; it.dead != nil {
			if sm := m.stream(it.stream); sm != nil && sm.dead[it.deadClass] != nil {
				sm.dead[it.deadClass].Inc()
			}
		}
	}
}

// watch adds the recorder's consumers to the backlog collector.
func (m *Metrics) watch(js jetstream.JetStream) {
	if m != nil {
		m.consumers.Watch(js, event.StreamEvents, event.ConsumerRecorderEvents)
		m.consumers.Watch(js, event.StreamLogs, event.ConsumerRecorderLogs)
	}
}
