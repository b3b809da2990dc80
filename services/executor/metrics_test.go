package executor

import (
	"context"
	"slices"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/metrics"
	"github.com/ork-go/ork/pkg/metrics/metricstest"
	"github.com/ork-go/ork/pkg/poll"
	"github.com/ork-go/ork/pkg/workflow"
)

func TestMetricsAreServed(t *testing.T) {
	t.Parallel()
	h := setup(t)
	reg := metrics.NewRegistry()
	srv, err := metrics.Listen("127.0.0.1:0", reg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("metrics server: %v", err)
		}
	})
	cfg := testConfig(t)
	cfg.Metrics = NewMetrics(reg)
	cfg.DrainGrace = 10 * time.Millisecond
	_, stop := h.start(t, cfg)

	for _, name := range []string{"n1", "n2"} {
		wantSuccess(t, h.result(t, h.dispatch(t, event.Dispatch{Task: workflow.Task{Name: name, Executor: workflow.ExecutorNoop}})))
	}
	wantFailure(t, h.result(t, h.dispatch(t, event.Dispatch{Task: processTask("fail", "/bin/sh", "-c", "exit 3")})), event.ReasonExit, "")
	tk, _ := sleepTask("bad", "0")
	wantFailure(t, h.result(t, h.dispatch(t, event.Dispatch{Task: tk, Inputs: []byte(`{"seconds": "x"}`)})), event.ReasonInput, "")
	// A task still running when the drain grace is over is stopped and reported lost.
	tk, in := sleepTask("long", "30")
	long := h.dispatch(t, event.Dispatch{Task: tk, Inputs: in})
	h.events.wait(t, "task.started of long", func(evs []event.Event) bool { return len(started(evs, long)) > 0 })
	// The gauge moves just after task.started is published: wait for it.
	poll.UntilWithin(t, waitDeadline, "ork_executor_tasks_running{type=\"sleep\"} = 1 while it runs", func() bool {
		v, ok := metricstest.Value(metricstest.Scrape(t, srv.Addr().String()), `ork_executor_tasks_running{type="sleep"}`)
		return ok && v == 1
	})
	stop()
	h.events.wait(t, "the lost attempt", func(evs []event.Event) bool {
		return slices.ContainsFunc(evs, func(e event.Event) bool { return isTerminal(e, long) && e.Reason == event.ReasonLost })
	})

	body := metricstest.Scrape(t, srv.Addr().String())
	for series, want := range map[string]float64{
		`ork_executor_tasks_started_total{type="noop"}`:                                   2,
		`ork_executor_tasks_started_total{type="process"}`:                                1,
		`ork_executor_tasks_started_total{type="sleep"}`:                                  2,
		`ork_executor_tasks_finished_total{reason="",status="success",type="noop"}`:       2,
		`ork_executor_tasks_finished_total{reason="exit",status="failed",type="process"}`: 1,
		`ork_executor_tasks_finished_total{reason="input",status="failed",type="sleep"}`:  1,
		`ork_executor_tasks_finished_total{reason="lost",status="lost",type="sleep"}`:     1,
		`ork_executor_tasks_finished_total{reason="",status="success",type="python"}`:     0,
		`ork_executor_tasks_running{type="sleep"}`:                                        0,
		`ork_executor_task_duration_seconds_count{type="noop"}`:                           2,
		`ork_executor_task_duration_seconds_count{type="sleep"}`:                          2,
		`ork_executor_dispatch_to_start_seconds_count{type="noop"}`:                       2,
		`ork_executor_dispatch_to_start_seconds_count{type="process"}`:                    1,
		`ork_executor_lost_attempts_total{type="sleep"}`:                                  1,
		`ork_executor_lost_attempts_total{type="noop"}`:                                   0,
	} {
		metricstest.Want(t, body, series, metricstest.Equal(want), "its expected value")
	}
	for _, typ := range KnownTypes() {
		metricstest.Want(t, body, `ork_consumer_pending_messages{consumer="exec-`+typ+`",stream="ORK_TASKS"}`, metricstest.Equal(0), "0")
	}
	// The noops started well within the test's wait, however slow the machine.
	metricstest.Want(t, body, `ork_executor_dispatch_to_start_seconds_bucket{type="noop",le="30"}`, metricstest.Equal(2), "2")
}

func TestNilMetricsRecordNothing(t *testing.T) {
	t.Parallel()
	var m *Metrics
	d := event.Dispatch{DispatchedAt: time.Now()}
	m.start(workflow.ExecutorNoop, &d, time.Now())
	m.finish(workflow.ExecutorNoop, event.TaskSuccess, "", time.Millisecond)
	m.lostAttempt(workflow.ExecutorNoop)
	m.watch(nil, workflow.ExecutorNoop)
}

// BenchmarkRecording measures the cost the metrics add per attempt (0 allocs/op expected).
func BenchmarkRecording(b *testing.B) {
	m := NewMetrics(metrics.NewRegistry())
	now := time.Now()
	d := event.Dispatch{DispatchedAt: now.Add(-time.Millisecond), NotBefore: &now}
	b.ReportAllocs()
	for b.Loop() {
		m.start(workflow.ExecutorNoop, &d, now)
		m.finish(workflow.ExecutorNoop, event.TaskFailed, event.ReasonExit, time.Millisecond)
		m.lostAttempt(workflow.ExecutorNoop)
	}
}
