package metrics_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/bus/bustest"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/metrics"
	"github.com/ork-go/ork/pkg/metrics/metricstest"
	"github.com/ork-go/ork/pkg/poll"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// serve runs a metrics server on a free port until the test ends and returns its address.
func serve(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	s, err := metrics.Listen("127.0.0.1:0", reg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return s.Addr().String()
}

func TestServerServesMetricsAndProfiles(t *testing.T) {
	t.Parallel()
	reg := metrics.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: metrics.Namespace, Name: "test_total", Help: "A test counter."})
	reg.MustRegister(c)
	c.Add(3)
	addr := serve(t, reg)

	body := metricstest.Scrape(t, addr)
	metricstest.Want(t, body, "ork_test_total", metricstest.Equal(3), "3")
	metricstest.Want(t, body, "go_goroutines", metricstest.AtLeast(1), "at least 1")
	metricstest.Want(t, body, "process_resident_memory_bytes", metricstest.AtLeast(1), "positive")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/goroutine?debug=1", "/debug/pprof/cmdline"} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK || len(b) == 0 {
			t.Errorf("GET %s: %s, %d bytes", path, resp.Status, len(b))
		}
	}
}

func TestRegistriesAreSeparate(t *testing.T) {
	t.Parallel()
	a, b := metrics.NewRegistry(), metrics.NewRegistry()
	a.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "ork_only_in_a_total", Help: "x"}))
	body := metricstest.Scrape(t, serve(t, b))
	if strings.Contains(body, "ork_only_in_a_total") {
		t.Error("a metric of one registry is served by another")
	}
}

func TestServeStopsWhenContextEnds(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- metrics.Serve(ctx, "127.0.0.1:0", metrics.NewRegistry(), zaptest.NewLogger(t)) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
}

func TestListenReportsABadAddress(t *testing.T) {
	t.Parallel()
	if _, err := metrics.Listen("256.0.0.1:bad", metrics.NewRegistry(), nil); err == nil {
		t.Error("a bad address was accepted")
	}
	if _, err := metrics.Listen("127.0.0.1:0", nil, nil); err == nil {
		t.Error("a nil registry was accepted")
	}
}

func TestConsumerCollectorReadsBacklogWhenScraped(t *testing.T) {
	t.Parallel()
	srv := bustest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := bus.Connect(bus.Config{URL: srv.ClientURL()}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	if err := b.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	cons, err := b.Consumer(ctx, bus.ConsumerSpec{Stream: event.StreamTasks, Durable: "exec-noop",
		Filters: []string{event.SubjectTasks("noop")}, AckWait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	msgs := make([]bus.Msg, 5)
	for i := range msgs {
		msgs[i] = bus.Msg{Subject: event.SubjectTasks("noop"), Data: []byte("{}")}
	}
	if err := b.Publish(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(2, jetstream.FetchMaxWait(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for range batch.Messages() {
		got++ // left unacknowledged
	}
	if got != 2 {
		t.Fatalf("fetched %d messages, want 2", got)
	}

	col := metrics.NewConsumerCollector()
	col.Watch(b.JS, event.StreamTasks, "exec-noop")
	col.Watch(b.JS, event.StreamTasks, "exec-noop")
	col.Watch(b.JS, event.StreamEvents, "no-such-consumer")
	reg := metrics.NewRegistry()
	reg.MustRegister(col)
	addr := serve(t, reg)
	// The server counts a consumer's pending messages as it processes the stored ones, which under
	// load can lag behind the publish acks: scrape until the count has caught up.
	var body string
	poll.Within(10*time.Second, func() bool {
		body = metricstest.Scrape(t, addr)
		v, _ := metricstest.Value(body, `ork_consumer_pending_messages{consumer="exec-noop",stream="ORK_TASKS"}`)
		return v == 3
	})
	metricstest.Want(t, body, `ork_consumer_pending_messages{consumer="exec-noop",stream="ORK_TASKS"}`, metricstest.Equal(3), "3")
	metricstest.Want(t, body, `ork_consumer_ack_pending_messages{consumer="exec-noop",stream="ORK_TASKS"}`, metricstest.Equal(2), "2")
	metricstest.Want(t, body, `ork_consumer_redelivered_messages{consumer="exec-noop",stream="ORK_TASKS"}`, metricstest.Equal(0), "0")
	if strings.Count(body, `ork_consumer_pending_messages{`) != 1 {
		t.Errorf("want exactly one pending series (the missing consumer is an error, the duplicate is folded):\n%s", body)
	}
}

func TestStartServesUntilStopped(t *testing.T) {
	t.Parallel()
	log, addrs := metricstest.LoggedAddr(t)
	stop, err := metrics.Start(context.Background(), "127.0.0.1:0", metrics.NewRegistry(), log)
	if err != nil {
		t.Fatal(err)
	}
	addr := metricstest.WaitAddr(t, addrs)
	metricstest.Want(t, metricstest.Scrape(t, addr), "go_goroutines", metricstest.AtLeast(1), "at least 1")
	if err := stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
	stop, err = metrics.Start(context.Background(), addr, metrics.NewRegistry(), log)
	if err != nil {
		t.Fatalf("the address is not free after stop: %v", err)
	}
	if err := stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
}
