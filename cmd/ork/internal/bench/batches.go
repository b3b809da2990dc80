package bench

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/services/recorder"
)

// The recorder's batches are counted from the recorder itself, never from its log lines: in
// embedded mode through its commit hook (embedded.Config.OnRecorderCommit), in cluster mode from
// its Prometheus histogram of batch sizes, read before and after each scenario.

// batchCounter adds up the recorder's committed batches (embedded mode).
type batchCounter struct {
	mu      sync.Mutex
	stats   RecorderStats
	changed chan struct{} // closed and replaced by every add; nil until waited on
}

func (b *batchCounter) add(stream string, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.changed != nil {
		close(b.changed)
		b.changed = nil
	}
	b.stats.add(stream, 1, n)
}

// waitEvents waits until at least n event messages were counted since the last take, or until
// timeout. The recorder publishes a run's notice just before it reports the batch that committed
// it, so the last batch of a scenario may be reported a moment after its last notice arrived.
func (b *batchCounter) waitEvents(n int, timeout time.Duration) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		b.mu.Lock()
		if b.stats.EventMessages >= n {
			b.mu.Unlock()
			return
		}
		if b.changed == nil {
			b.changed = make(chan struct{})
		}
		ch := b.changed
		b.mu.Unlock()
		select {
		case <-ch:
		case <-t.C:
			return
		}
	}
}

// take returns the counts since the last take and resets them.
func (b *batchCounter) take() RecorderStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.stats
	b.stats = RecorderStats{}
	return s
}

// add counts batches of messages of one stream.
func (s *RecorderStats) add(stream string, batches, messages int) {
	switch stream {
	case recorder.RegistryStream:
		return // a batch of the registry's mirror alone, no run's events
	case event.StreamLogs:
		s.LogBatches += batches
		s.LogMessages += messages
		return
	}
	s.EventBatches += batches
	s.EventMessages += messages
}

// since returns the counts of s minus those of before.
func (s RecorderStats) since(before RecorderStats) RecorderStats {
	return RecorderStats{
		EventBatches: s.EventBatches - before.EventBatches, EventMessages: s.EventMessages - before.EventMessages,
		LogBatches: s.LogBatches - before.LogBatches, LogMessages: s.LogMessages - before.LogMessages,
	}
}

// batchSizeMetric is the recorder's histogram of messages per committed batch, by stream: its
// count is the batches, its sum the messages.
const batchSizeMetric = "ork_recorder_batch_size_messages"

// scrapeBatches reads the batches a recorder has committed since it started from its metrics
// endpoint (cluster mode).
func scrapeBatches(ctx context.Context, url string) (RecorderStats, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return RecorderStats{}, fmt.Errorf("recorder metrics %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return RecorderStats{}, fmt.Errorf("recorder metrics: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return RecorderStats{}, fmt.Errorf("recorder metrics %s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return RecorderStats{}, fmt.Errorf("recorder metrics %s: %w", url, err)
	}
	fam, ok := families[batchSizeMetric]
	if !ok {
		return RecorderStats{}, fmt.Errorf("recorder metrics %s: no %s: is it the recorder's endpoint?", url, batchSizeMetric)
	}
	var st RecorderStats
	for _, m := range fam.GetMetric() {
		h := m.GetHistogram()
		st.add(label(m, "stream"), int(h.GetSampleCount()), int(h.GetSampleSum()))
	}
	return st, nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
