package main

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/bus/bustest"
	"github.com/ork-go/ork/pkg/metrics/metricstest"
	"github.com/ork-go/ork/services/scheduler"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMetricsAddrServesMetrics(t *testing.T) {
	t.Parallel()
	srv := bustest.Start(t)
	log, addrs := metricstest.LoggedAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, bus.Config{URL: srv.ClientURL()}, "127.0.0.1:0", scheduler.Config{ReconcileInterval: -1}, log)
	}()
	addr := metricstest.WaitAddr(t, addrs)
	body := metricstest.Scrape(t, addr)
	metricstest.Want(t, body, "ork_scheduler_cas_conflicts_total", metricstest.Equal(0), "0")
	metricstest.Want(t, body, `ork_scheduler_tasks_dispatched_total{type="process"}`, metricstest.Equal(0), "0")
	metricstest.Want(t, body, "process_cpu_seconds_total", metricstest.AtLeast(0), "present")
	cancel()
	select {
	case err := <-done:
		// A stop during the start is a cancelled provisioning, which main does not report.
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
	if c, err := net.DialTimeout("tcp", addr, 5*time.Second); err == nil {
		_ = c.Close()
		t.Error("the metrics endpoint is still up after run returned")
	}
}
