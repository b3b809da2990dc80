package scheduler

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/metrics"
	"github.com/ork-go/ork/pkg/metrics/metricstest"
	"github.com/ork-go/ork/pkg/workflow"
)

// serveMetrics serves reg on a free port until the test ends and returns the address.
func serveMetrics(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	srv, err := metrics.Listen("127.0.0.1:0", reg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("metrics server: %v", err)
		}
	})
	return srv.Addr().String()
}

// waitHandled waits until the scheduler has acknowledged every event it was given: its metrics
// are recorded before its acks.
func (h *harness) waitHandled() {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.ctx, waitLimit)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := h.b.JS.Consumer(ctx, event.StreamEvents, DurableDefault)
		if err != nil {
			h.t.Fatal(err)
		}
		info := c.CachedInfo()
		if info.NumPending == 0 && info.NumAckPending == 0 {
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			h.t.Fatalf("the scheduler did not handle every event: %+v", info)
		}
	}
}

func TestMetricsAreServed(t *testing.T) {
	t.Parallel()
	h := setup(t)
	reg := metrics.NewRegistry()
	addr := serveMetrics(t, reg)
	h.start(Config{Metrics: NewMetrics(reg)})

	p := plan("metered", workflow.Task{Name: "a"}, workflow.Task{Name: "b", DependsOn: []string{"a"}})
	h.publish(submission("run-metered", "", p))
	a := h.nextDispatch()
	// Rewrite the run's state behind the scheduler's back: its cached revision is now stale, so
	// its next write is refused once by the compare-and-swap.
	entry, err := h.kv.Get(h.ctx, stateKey("run-metered"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.kv.Put(h.ctx, stateKey("run-metered"), entry.Value()); err != nil {
		t.Fatal(err)
	}
	h.publish(succeeded(a, ""))
	b := h.nextDispatch()
	h.publish(succeeded(b, ""))
	if e := h.waitEvent(event.TypeRunFinished, "run-metered", ""); e.Status != event.RunSuccess {
		t.Fatalf("run.finished %+v", e)
	}
	h.publish(failed(b, "late")) // after the end: stale
	h.waitHandled()

	body := metricstest.Scrape(t, addr)
	for series, want := range map[string]float64{
		`ork_scheduler_tasks_dispatched_total{type="noop"}`:                           2,
		`ork_scheduler_tasks_dispatched_total{type="python"}`:                         0,
		`ork_scheduler_ready_to_dispatch_seconds_count{type="noop"}`:                  2,
		`ork_scheduler_events_total{outcome="applied",type="run.submitted"}`:          1,
		`ork_scheduler_events_total{outcome="applied",type="task.succeeded"}`:         2,
		`ork_scheduler_events_total{outcome="stale",type="task.failed"}`:              1,
		`ork_scheduler_events_total{outcome="applied",type="task.failed"}`:            0,
		`ork_scheduler_runs_finished_total{status="success"}`:                         1,
		`ork_scheduler_runs_finished_total{status="failed"}`:                          0,
		`ork_scheduler_cas_conflicts_total`:                                           1,
		`ork_scheduler_reconciler_failed_attempts_total{reason="lost"}`:               0,
		`ork_consumer_pending_messages{consumer="scheduler",stream="ORK_EVENTS"}`:     0,
		`ork_consumer_ack_pending_messages{consumer="scheduler",stream="ORK_EVENTS"}`: 0,
	} {
		metricstest.Want(t, body, series, metricstest.Equal(want), "its expected value")
	}
	// Ready to dispatch is the scheduler's hop: well under the test's own waits.
	metricstest.Want(t, body, `ork_scheduler_ready_to_dispatch_seconds_bucket{type="noop",le="10"}`, metricstest.Equal(2), "2")
	metricstest.Want(t, body, "go_goroutines", metricstest.AtLeast(1), "at least 1")
}

func TestNilMetricsRecordNothing(t *testing.T) {
	t.Parallel()
	var m *Metrics
	m.event(event.TypeTaskSucceeded, Applied)
	m.casConflict()
	m.published([]sentDispatch{{typ: workflow.ExecutorNoop, since: time.Now()}}, []Commands{{Finished: true}})
	m.reconcilerFailed(event.ReasonLost, 1)
	m.watch(nil, DurableDefault)
}

// BenchmarkRecording measures the cost the metrics add per event (0 allocs/op expected).
func BenchmarkRecording(b *testing.B) {
	m := NewMetrics(metrics.NewRegistry())
	sent := []sentDispatch{{typ: workflow.ExecutorNoop, since: time.Now()}, {typ: workflow.ExecutorPython}}
	cmds := []Commands{{Outcome: Applied}}
	b.ReportAllocs()
	for b.Loop() {
		m.event(event.TypeTaskSucceeded, Applied)
		m.casConflict()
		m.published(sent, cmds)
	}
}
