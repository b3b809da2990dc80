package executor

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/bus/bustest"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/workflow"
)

func TestMain(m *testing.M) {
	if url := os.Getenv(childNATSEnv); url != "" {
		// This test binary was started by startChild as an executor process.
		os.Exit(runChild(url, os.Getenv(childConfigEnv)))
	}
	goleak.VerifyTestMain(m, bustest.ServerLeftovers()...)
}

// waitDeadline bounds every wait of these tests.
const waitDeadline = 30 * time.Second

// collector gathers values received on a subscription and lets a test wait for a condition.
type collector[T any] struct {
	mu      sync.Mutex
	items   []T
	changed chan struct{}
}

func newCollector[T any]() *collector[T] { return &collector[T]{changed: make(chan struct{})} }

func (c *collector[T]) add(v T) {
	c.mu.Lock()
	c.items = append(c.items, v)
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

// wait returns the items once ok holds for them, failing the test after waitDeadline.
func (c *collector[T]) wait(t *testing.T, what string, ok func([]T) bool) []T {
	t.Helper()
	deadline := time.NewTimer(waitDeadline)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		items := slices.Clone(c.items)
		ch := c.changed
		c.mu.Unlock()
		if ok(items) {
			return items
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s; have %d items", what, len(items))
		}
	}
}

// harness is one nats server and bus, with every event and log batch observed.
type harness struct {
	bus    *bus.Bus
	dir    string
	events *collector[event.Event]
	logs   *collector[event.LogBatch]
}

func setup(t *testing.T) *harness {
	t.Helper()
	return setupAt(t, bustest.Start(t).ClientURL())
}

// setupAt is setup on a server of the test's own.
func setupAt(t *testing.T, url string) *harness {
	t.Helper()
	b, err := bus.Connect(bus.Config{URL: url}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	t.Cleanup(b.Close)
	ctx, cancel := context.WithTimeout(context.Background(), waitDeadline)
	defer cancel()
	if err := b.Provision(ctx); err != nil {
		t.Fatalf("provisioning: %v", err)
	}
	h := &harness{bus: b, dir: t.TempDir(), events: newCollector[event.Event](), logs: newCollector[event.LogBatch]()}
	// One subscription for events and logs, so they are seen in the order they were published.
	sub, err := b.NC.Subscribe("ork.>", func(m *nats.Msg) {
		switch {
		case event.IsEventSubject(m.Subject):
			e, err := event.DecodeEvent(m.Data)
			if err != nil {
				t.Errorf("undecodable event on %s: %v", m.Subject, err)
				return
			}
			h.events.add(e)
		case event.IsLogSubject(m.Subject):
			lb, err := event.DecodeLogBatch(m.Data)
			if err != nil {
				t.Errorf("undecodable log batch on %s: %v", m.Subject, err)
				return
			}
			h.logs.add(lb)
		}
	})
	if err != nil {
		t.Fatalf("subscribing: %v", err)
	}
	if err := b.NC.Flush(); err != nil {
		t.Fatalf("flushing: %v", err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return h
}

// testConfig is a config suited to tests: a private cache and every type.
func testConfig(t *testing.T) Config {
	return Config{Types: KnownTypes(), CacheDir: filepath.Join(t.TempDir(), "cache"), KillGrace: 500 * time.Millisecond}
}

// start runs a service until the test ends; the returned function stops it and waits for Run.
func (h *harness) start(t *testing.T, cfg Config) (*Service, func()) {
	t.Helper()
	return h.startLogged(t, cfg, zaptest.NewLogger(t))
}

// startLogged is start with the service logging to log.
func (h *harness) startLogged(t *testing.T, cfg Config, log *zap.Logger) (*Service, func()) {
	t.Helper()
	s, err := New(h.bus, cfg, log)
	if err != nil {
		t.Fatalf("new executor: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("run: %v", err)
				}
			case <-time.After(waitDeadline):
				t.Errorf("executor did not stop")
			}
		})
	}
	t.Cleanup(stop)
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(waitDeadline):
		t.Fatal("executor not ready")
	}
	return s, stop
}

// dispatch publishes a dispatch of task, filling in what a test leaves out, and returns it.
func (h *harness) dispatch(t *testing.T, d event.Dispatch) event.Dispatch {
	t.Helper()
	d.V = event.SchemaVersion
	if d.RunID == "" {
		d.RunID = event.NewID()
	}
	if d.Workflow == "" {
		d.Workflow = "wf"
	}
	if d.Task.Name == "" {
		d.Task.Name = "t"
	}
	if d.Attempt == 0 {
		d.Attempt = 1
	}
	if d.Dir == "" {
		d.Dir = h.dir
	}
	d.DispatchedAt = time.Now().UTC()
	m, err := bus.DispatchMsg(&d)
	if err != nil {
		t.Fatalf("encoding dispatch: %v", err)
	}
	if err := h.bus.Publish(context.Background(), m); err != nil {
		t.Fatalf("publishing dispatch: %v", err)
	}
	return d
}

// result waits for the terminal event of a run's attempt.
func (h *harness) result(t *testing.T, d event.Dispatch) event.Event {
	t.Helper()
	evs := h.events.wait(t, "terminal event of "+d.Task.Name, func(evs []event.Event) bool {
		return slices.ContainsFunc(evs, func(e event.Event) bool { return isTerminal(e, d) })
	})
	i := slices.IndexFunc(evs, func(e event.Event) bool { return isTerminal(e, d) })
	return evs[i]
}

func isTerminal(e event.Event, d event.Dispatch) bool {
	return e.RunID == d.RunID && e.Task == d.Task.Name && e.Attempt == d.Attempt &&
		(e.Type == event.TypeTaskSucceeded || e.Type == event.TypeTaskFailed)
}

// lines returns the log lines of an attempt once its terminal event is out (logs are shipped first),
// ordered by seq.
func (h *harness) lines(t *testing.T, d event.Dispatch) []event.LogLine {
	t.Helper()
	h.result(t, d)
	var out []event.LogLine
	h.logs.mu.Lock()
	for _, lb := range h.logs.items {
		if lb.RunID == d.RunID && lb.Task == d.Task.Name && lb.Attempt == d.Attempt {
			out = append(out, lb.Lines...)
		}
	}
	h.logs.mu.Unlock()
	slices.SortFunc(out, func(a, b event.LogLine) int { return int(a.Seq - b.Seq) })
	return out
}

func texts(lines []event.LogLine) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l.Line
	}
	return out
}

func wantSuccess(t *testing.T, e event.Event) {
	t.Helper()
	if e.Type != event.TypeTaskSucceeded {
		t.Fatalf("got %s (%s: %s), want success", e.Type, e.Reason, e.Error)
	}
}

func wantFailure(t *testing.T, e event.Event, reason, msgPart string) {
	t.Helper()
	if e.Type != event.TypeTaskFailed {
		t.Fatalf("got %s with output %s, want a failure", e.Type, e.Output)
	}
	if e.Reason != reason {
		t.Errorf("reason = %q, want %q (error %q)", e.Reason, reason, e.Error)
	}
	if !strings.Contains(e.Error, msgPart) {
		t.Errorf("error = %q, want it to contain %q", e.Error, msgPart)
	}
}

func jsonEqual(t *testing.T, got json.RawMessage, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("output %q is not JSON: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want %q: %v", want, err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if string(gb) != string(wb) {
		t.Errorf("output = %s, want %s", gb, wb)
	}
}

func processTask(name string, argv ...string) workflow.Task {
	return workflow.Task{Name: name, Executor: workflow.ExecutorProcess, Command: argv}
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func jsonUnmarshal(raw json.RawMessage, v any) error { return json.Unmarshal(raw, v) }

func nopLogger() *zap.Logger { return zap.NewNop() }

// signalLogger returns a test logger and a channel closed once it logs an entry with message msg.
func signalLogger(t *testing.T, msg string) (*zap.Logger, <-chan struct{}) {
	seen := make(chan struct{})
	var once sync.Once
	log := zaptest.NewLogger(t, zaptest.WrapOptions(zap.Hooks(func(e zapcore.Entry) error {
		if e.Message == msg {
			once.Do(func() { close(seen) })
		}
		return nil
	})))
	return log, seen
}

// waitClosed waits until ch is closed, failing the test after waitDeadline.
func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitDeadline):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func writeBenchFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o644) }
