package recorder_test

import (
	"context"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/metrics"
	"github.com/ork-go/ork/pkg/metrics/metricstest"
	"github.com/ork-go/ork/services/recorder"
)

func TestMetricsAreServed(t *testing.T) {
	t.Parallel()
	f := setup(t)
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

	unknown := event.NewID()
	bad := []bus.Msg{
		{Subject: event.SubjectEvent("task.started", unknown), Data: []byte("\x00garbage")},
		{Subject: event.SubjectEvent("task.exploded", unknown), Data: []byte(`{"v":1,"id":"y","type":"task.exploded","run_id":"` + unknown + `"}`)},
		eventMsgs(t, event.New(event.TypeTaskStarted, unknown, "a", 1))[0], // an orphan
	}
	f.publish(bad...)
	run := event.NewID()
	wait := f.watch(run)
	good := runEvents(run, testPlan("metered", "a"))
	good = append(good[:len(good)-1], event.New(event.TypeTaskStarted, run, "poison", 1), good[len(good)-1])
	f.publish(eventMsgs(t, good...)...)
	f.publish(logMsg(t, run, "a", 1, "one", "two"), bus.Msg{Subject: (&event.LogBatch{RunID: run, Task: "a"}).Subject(), Data: []byte("[1,2")})

	cfg := fastRetry
	cfg.Metrics = recorder.NewMetrics(reg)
	// Two failed writes, then the poison event is refused until it is dead-lettered alone.
	f.start(rejectingStore{newFailingStore(openSQLite(t), 2)}, cfg)
	if status := wait(); status != event.RunSuccess {
		t.Fatalf("notice status %q", status)
	}
	f.waitCommitted(event.StreamEvents, len(bad)+len(good))
	f.waitCommitted(event.StreamLogs, 2)

	body := metricstest.Scrape(t, srv.Addr().String())
	for series, want := range map[string]float64{
		`ork_recorder_messages_total{stream="ORK_EVENTS"}`:                          float64(len(bad) + len(good)),
		`ork_recorder_messages_total{stream="ORK_LOGS"}`:                            2,
		`ork_recorder_batch_size_messages_sum{stream="ORK_EVENTS"}`:                 float64(len(bad) + len(good)),
		`ork_recorder_batch_size_messages_sum{stream="ORK_LOGS"}`:                   2,
		`ork_recorder_dead_letters_total{reason="undecodable",stream="ORK_EVENTS"}`: 1,
		`ork_recorder_dead_letters_total{reason="invalid",stream="ORK_EVENTS"}`:     1,
		`ork_recorder_dead_letters_total{reason="orphan",stream="ORK_EVENTS"}`:      1,
		`ork_recorder_dead_letters_total{reason="rejected",stream="ORK_EVENTS"}`:    1,
		`ork_recorder_dead_letters_total{reason="undecodable",stream="ORK_LOGS"}`:   1,
		`ork_recorder_dead_letters_total{reason="orphan",stream="ORK_LOGS"}`:        0,
	} {
		metricstest.Want(t, body, series, metricstest.Equal(want), "its expected value")
	}
	for _, stream := range []string{"ORK_EVENTS", "ORK_LOGS"} {
		metricstest.Want(t, body, `ork_recorder_batch_size_messages_count{stream="`+stream+`"}`, metricstest.AtLeast(1), "at least 1")
		metricstest.Want(t, body, `ork_recorder_commit_seconds_count{stream="`+stream+`"}`, metricstest.AtLeast(1), "at least 1")
	}
	errs, _ := metricstest.Value(body, `ork_recorder_commit_errors_total{stream="ORK_EVENTS"}`)
	logErrs, _ := metricstest.Value(body, `ork_recorder_commit_errors_total{stream="ORK_LOGS"}`)
	if errs+logErrs < 2+1 {
		t.Errorf("%v failed writes recorded, want at least 3 (two store failures and the poison)", errs+logErrs)
	}
	metricstest.Want(t, body, `ork_consumer_pending_messages{consumer="recorder",stream="ORK_EVENTS"}`, metricstest.Equal(0), "0")
	metricstest.Want(t, body, `ork_consumer_ack_pending_messages{consumer="recorder-logs",stream="ORK_LOGS"}`, metricstest.AtLeast(0), "present")
}
