package bench

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/ork-go/ork/cmd/ork/internal/embedded"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/metrics"
	"github.com/ork-go/ork/services/recorder"
)

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

// In cluster mode the recorder's batches come from its metrics endpoint: here a real recorder (the
// in-process stack's, with its metrics served over HTTP as ork-recorder serves them), benchmarked
// over NATS as a cluster.
func TestClusterModeCountsBatchesFromRecorderMetrics(t *testing.T) {
	t.Parallel()
	reg := metrics.NewRegistry()
	stk, err := embedded.Start(context.Background(), embedded.Config{
		DataDir: t.TempDir(), Port: -1, Recorder: recorder.Config{Metrics: recorder.NewMetrics(reg)},
	}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stk.Stop(); err != nil {
			t.Errorf("stopping the stack: %v", err)
		}
	})
	srv := httptest.NewServer(metrics.Handler(reg, zaptest.NewLogger(t)))
	t.Cleanup(srv.Close)

	cfg := Config{Mode: ModeCluster, NATSURL: stk.Server.ClientURL(), RecorderMetricsURL: srv.URL + "/metrics",
		DevstackDir: t.TempDir(), Scenarios: []Scenario{{Shape: ShapeWide, Tasks: 20, TaskType: TaskNoop}}}
	rep, err := Run(context.Background(), cfg, zaptest.NewLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := rep.Scenarios[0]
	if min := 3*s.Runs + 3*s.Tasks; s.Recorder.Unavailable || s.Recorder.EventMessages < min || s.Recorder.EventBatches < 1 {
		t.Fatalf("recorder stats %+v, want at least %d events in at least one batch", s.Recorder, min)
	}
	if s.Recorder.Source != cfg.RecorderMetricsURL {
		t.Errorf("source %q, want the metrics endpoint", s.Recorder.Source)
	}

	// An endpoint that is not a recorder's says so instead of reporting zeros.
	other := httptest.NewServer(metrics.Handler(metrics.NewRegistry(), zaptest.NewLogger(t)))
	t.Cleanup(other.Close)
	if _, err := scrapeBatches(context.Background(), other.URL+"/metrics"); err == nil || !strings.Contains(err.Error(), batchSizeMetric) {
		t.Errorf("scraping an endpoint without the recorder's histogram: %v", err)
	}
}
