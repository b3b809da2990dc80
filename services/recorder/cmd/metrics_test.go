package main

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/ork-go/ork/pkg/bus/bustest"
	"github.com/ork-go/ork/pkg/metrics/metricstest"
)

func TestMetricsAddrServesMetrics(t *testing.T) {
	t.Parallel()
	srv := bustest.Start(t)
	o, err := parseOptions([]string{"--nats", srv.ClientURL(), "--db", "sqlite://" + filepath.Join(t.TempDir(), "ork.db"),
		"--metrics-addr", "127.0.0.1:0"}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	log, addrs := metricstest.LoggedAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- command(&o.options).Serve(ctx, o.Common, log) }()
	body := metricstest.Scrape(t, metricstest.WaitAddr(t, addrs))
	metricstest.Want(t, body, `ork_recorder_messages_total{stream="ORK_EVENTS"}`, metricstest.Equal(0), "0")
	metricstest.Want(t, body, "go_goroutines", metricstest.AtLeast(1), "at least 1")
	cancel()
	select {
	case err := <-done:
		// A stop during the start is a cancelled migration or provisioning, which main does not report.
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
}
