package bench

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/logging"
)

func TestCommitTapCountsRecorderBatchesOnly(t *testing.T) {
	t.Parallel()
	inner, logs := observer.New(zapcore.WarnLevel)
	var c batchCounter
	log := zap.New(newCommitTap(inner, &c))
	rec := log.Named("recorder")
	rec.Debug(commitMessage, zap.String("stream", event.StreamEvents), logging.Count(7))
	rec.With(zap.String("stream", event.StreamEvents)).Debug(commitMessage, logging.Count(3))
	rec.Debug(commitMessage, zap.String("stream", event.StreamLogs), logging.Count(2))
	log.Named("scheduler").Debug(commitMessage, logging.Count(100))
	rec.Debug("something else", logging.Count(100))
	rec.Warn("kept")
	got := c.take()
	want := RecorderStats{EventBatches: 2, EventMessages: 10, LogBatches: 1, LogMessages: 2}
	if got != want {
		t.Errorf("counted %+v, want %+v", got, want)
	}
	if logs.Len() != 1 || logs.All()[0].Message != "kept" {
		t.Errorf("the inner core got %v, want only the warning", logs.All())
	}
	if again := c.take(); again != (RecorderStats{}) {
		t.Errorf("take did not reset: %+v", again)
	}
}

func TestBatchesFromLogReadsTheWindow(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "recorder.log")
	lines := `{"level":"debug","ts":"2026-01-02T10:00:00.000Z","logger":"recorder","msg":"batch committed","stream":"ORK_EVENTS","count":5}
{"level":"debug","ts":"2026-01-02T10:00:01.000Z","logger":"recorder","msg":"batch committed","stream":"ORK_EVENTS","count":40}
{"level":"debug","ts":"2026-01-02T10:00:01.500Z","logger":"recorder","msg":"batch committed","stream":"ORK_LOGS","count":2}
{"level":"info","ts":"2026-01-02T10:00:01.600Z","logger":"recorder","msg":"batch committed soon"}
not json at all
{"level":"debug","ts":"2026-01-02T10:00:03.000Z","logger":"recorder","msg":"batch committed","stream":"ORK_EVENTS","count":9}
`
	if err := os.WriteFile(path, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 1, 2, 10, 0, 0, 500e6, time.UTC)
	got, found, err := batchesFromLog(path, from, from.Add(2*time.Second))
	if err != nil || !found {
		t.Fatalf("found %v, err %v", found, err)
	}
	if want := (RecorderStats{EventBatches: 1, EventMessages: 40, LogBatches: 1, LogMessages: 2}); got != want {
		t.Errorf("read %+v, want %+v", got, want)
	}
	if err := os.WriteFile(path, []byte(`{"level":"info","msg":"started"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, found, err := batchesFromLog(path, from, from); err != nil || found {
		t.Errorf("an info-level log: found %v, err %v; want not found", found, err)
	}
}

func TestProcessReadsLiveAndPidFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("scheduler.pid", strconv.Itoa(os.Getpid())+"\n")
	write("gone.pid", "999999999")
	write("junk.pid", "abc")
	procs, err := devstackProcesses(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(procs) != 1 || procs[0].service != "scheduler" || procs[0].pid != os.Getpid() {
		t.Fatalf("processes %+v, want only the live scheduler", procs)
	}
	m, err := startMeter(append(procs, process{service: "self"}))
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.stop()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.PID != os.Getpid() || r.RSSMB <= 0 || r.PeakRSSMB <= 0 || r.CPUSeconds < 0 {
			t.Errorf("resource %+v, want this process with its memory", r)
		}
	}
}

func TestBatchCounterWaitsForLateBatches(t *testing.T) {
	t.Parallel()
	var c batchCounter
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.waitEvents(5, time.Minute)
	}()
	c.add(event.StreamEvents, 2)
	c.add(event.StreamLogs, 9)
	c.add(event.StreamEvents, 3)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("waitEvents did not return once 5 events were counted")
	}
	start := time.Now()
	c.waitEvents(100, 10*time.Millisecond) // gives up after its timeout
	if time.Since(start) > 20*time.Second {
		t.Error("waitEvents ignored its timeout")
	}
	if got := c.take(); got.EventMessages != 5 || got.LogMessages != 9 {
		t.Errorf("counted %+v", got)
	}
}
