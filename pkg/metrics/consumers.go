package metrics

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// consumerInfoTimeout bounds the server round trips of one scrape.
const consumerInfoTimeout = 5 * time.Second

// ConsumerCollector reports the backlog of durable JetStream consumers. It asks the server for
// each consumer's info when scraped, and only then: no polling loop, no cost between scrapes.
type ConsumerCollector struct {
	pending    *prometheus.Desc
	ackPending *prometheus.Desc
	redeliver  *prometheus.Desc

	mu      sync.Mutex
	js      jetstream.JetStream
	watched []consumerRef
}

type consumerRef struct{ stream, durable string }

// NewConsumerCollector returns a collector watching no consumer yet; Watch adds them.
func NewConsumerCollector() *ConsumerCollector {
	labels := []string{"stream", "consumer"}
	return &ConsumerCollector{
		pending: prometheus.NewDesc(Namespace+"_consumer_pending_messages",
			"Messages of the consumer's stream not yet delivered to it (JetStream NumPending), read when scraped.", labels, nil),
		ackPending: prometheus.NewDesc(Namespace+"_consumer_ack_pending_messages",
			"Messages delivered to the consumer and not yet acknowledged (JetStream NumAckPending), read when scraped.", labels, nil),
		redeliver: prometheus.NewDesc(Namespace+"_consumer_redelivered_messages",
			"Messages delivered more than once and not yet acknowledged (JetStream NumRedelivered), read when scraped.", labels, nil),
	}
}

// Watch makes the collector report the durable consumer of stream through js. Watching the same
// consumer twice reports it once. Every call must pass the same js; the last one is used.
func (c *ConsumerCollector) Watch(js jetstream.JetStream, stream, durable string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.js = js
	ref := consumerRef{stream, durable}
	for _, w := range c.watched {
		if w == ref {
			return
		}
	}
	c.watched = append(c.watched, ref)
}

// Describe implements prometheus.Collector.
func (c *ConsumerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pending
	ch <- c.ackPending
	ch <- c.redeliver
}

// Collect implements prometheus.Collector: one CONSUMER.INFO request per watched consumer. A
// consumer the server cannot describe is reported as a collection error, the others still are.
func (c *ConsumerCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	js, watched := c.js, append([]consumerRef(nil), c.watched...)
	c.mu.Unlock()
	if js == nil || len(watched) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), consumerInfoTimeout)
	defer cancel()
	for _, w := range watched {
		cons, err := js.Consumer(ctx, w.stream, w.durable)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(c.pending, fmt.Errorf("reading consumer %s of %s: %w", w.durable, w.stream, err))
			continue
		}
		info := cons.CachedInfo()
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(info.NumPending), w.stream, w.durable)
		ch <- prometheus.MustNewConstMetric(c.ackPending, prometheus.GaugeValue, float64(info.NumAckPending), w.stream, w.durable)
		ch <- prometheus.MustNewConstMetric(c.redeliver, prometheus.GaugeValue, float64(info.NumRedelivered), w.stream, w.durable)
	}
}

var _ prometheus.Collector = (*ConsumerCollector)(nil)
