package main

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/ork-go/ork/pkg/bus/bustest"
	"github.com/ork-go/ork/pkg/metrics/metricstest"
)

func TestMetricsAddrServesMetrics(t *testing.T) {
	t.Parallel()
	srv := bustest.Start(t)
	var o options
	cmd := command(&o)
	common, err := cmd.Parse([]string{"--nats", srv.ClientURL(), "--types", "noop", "--metrics-addr", "127.0.0.1:0",
		"--drain-grace", "1s"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	log, addrs := metricstest.LoggedAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmd.Serve(ctx, common, log) }()
	body := metricstest.Scrape(t, metricstest.WaitAddr(t, addrs))
	metricstest.Want(t, body, `ork_executor_tasks_started_total{type="noop"}`, metricstest.Equal(0), "0")
	metricstest.Want(t, body, "go_goroutines", metricstest.AtLeast(1), "at least 1")
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
}
