package executor

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/workflow"
)

// countedTask is a process task that appends a line to a file each time it runs, says "running" in
// its log and then sleeps for seconds.
func countedTask(name, countFile, seconds string) workflow.Task {
	return processTask(name, "sh", "-c", `echo run >> "$1"; echo running; exec sleep "$2"`, "sh", countFile, seconds)
}

// runs returns how many times a countedTask ran.
func runs(t *testing.T, countFile string) int {
	t.Helper()
	raw, err := os.ReadFile(countFile)
	if errors.Is(err, fs.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(raw), "run\n")
}

// waitRunning waits for the "running" log line of an attempt.
func (h *harness) waitRunning(t *testing.T, d event.Dispatch) {
	t.Helper()
	h.logs.wait(t, d.Task.Name+" running", func(lbs []event.LogBatch) bool {
		return slices.ContainsFunc(lbs, func(lb event.LogBatch) bool {
			return lb.RunID == d.RunID && lb.Task == d.Task.Name && lb.Attempt == d.Attempt &&
				slices.ContainsFunc(lb.Lines, func(l event.LogLine) bool { return l.Line == "running" })
		})
	})
}

// waitSettled waits until a type's consumer has nothing pending or unacknowledged and the task
// stream holds no message of it.
func waitSettled(t *testing.T, h *harness, typ string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitDeadline)
	defer cancel()
	waitConsumer(t, ctx, h, typ, func(ci *jetstream.ConsumerInfo) bool { return ci.NumAckPending == 0 && ci.NumPending == 0 })
	st, err := h.bus.JS.Stream(ctx, event.StreamTasks)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(event.SubjectTasks(typ)))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(info.State.Subjects); n != 0 {
		t.Errorf("the task stream still holds dispatches of %s: %v", typ, info.State.Subjects)
	}
}

func TestKilledExecutorsAttemptIsReportedLost(t *testing.T) {
	t.Parallel()
	h := setup(t)
	cfg := testConfig(t)
	cfg.Types = []string{workflow.ExecutorProcess}
	cfg.AckWait = time.Second
	cfg.Instance = "a"
	a := h.startChild(t, cfg)
	count := filepath.Join(t.TempDir(), "count")
	d := h.dispatch(t, event.Dispatch{Task: countedTask("t", count, "1000")})
	h.waitRunning(t, d)
	killChild(t, a)

	// B receives the dispatch again once A's ack wait is over, and must not run it.
	cfg.Instance = "b"
	h.start(t, cfg)
	e := h.result(t, d)
	wantFailure(t, e, event.ReasonLost, "attempt 1 was lost: its executor stopped (redelivered after the ack wait)")
	if e.Instance != "b" {
		t.Errorf("lost reported by %q, want b", e.Instance)
	}
	waitSettled(t, h, workflow.ExecutorProcess)
	if n := runs(t, count); n != 1 {
		t.Errorf("the task ran %d times, want once", n)
	}
}

func TestDrainReportsRunningAttemptsLost(t *testing.T) {
	t.Parallel()
	h := setup(t)
	cfg := testConfig(t)
	cfg.DrainGrace = time.Millisecond
	cfg.AckWait = 10 * time.Minute // only the executor's own answer can settle the dispatch in time
	cfg.Instance = "a"
	_, stopA := h.start(t, cfg)
	count := filepath.Join(t.TempDir(), "count")
	d := h.dispatch(t, event.Dispatch{Task: countedTask("t", count, "1000")})
	h.waitRunning(t, d)
	stopA()
	e := h.result(t, d)
	wantFailure(t, e, event.ReasonLost, "attempt 1 was lost: its executor stopped before it finished (drain grace of 1ms over)")
	if e.Instance != "a" {
		t.Errorf("lost reported by %q, want a", e.Instance)
	}
	// Another instance does not run the attempt again.
	cfg.Instance = "b"
	h.start(t, cfg)
	waitSettled(t, h, workflow.ExecutorProcess)
	if n := runs(t, count); n != 1 {
		t.Errorf("the stopped task ran %d times, want once", n)
	}
}

func TestDelayedRedeliveryIsNotLost(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.start(t, testConfig(t))
	count := filepath.Join(t.TempDir(), "count")
	notBefore := time.Now().Add(time.Second).UTC()
	d := h.dispatch(t, event.Dispatch{Task: countedTask("t", count, "0"), Attempt: 2, NotBefore: &notBefore})
	wantSuccess(t, h.result(t, d))
	ctx, cancel := context.WithTimeout(context.Background(), waitDeadline)
	defer cancel()
	info := waitConsumer(t, ctx, h, workflow.ExecutorProcess, func(ci *jetstream.ConsumerInfo) bool { return ci.NumAckPending == 0 })
	if info.Delivered.Consumer < 2 {
		t.Errorf("the dispatch was delivered %d times; the test needs a redelivery", info.Delivered.Consumer)
	}
	if n := runs(t, count); n != 1 {
		t.Errorf("the task ran %d times, want once", n)
	}
}

// deliveredMsg is a received dispatch as lostBefore sees it.
type deliveredMsg struct {
	jetstream.Msg
	meta jetstream.MsgMetadata
}

func (m deliveredMsg) Metadata() (*jetstream.MsgMetadata, error) { return &m.meta, nil }

func TestLostBefore(t *testing.T) {
	t.Parallel()
	s := &Service{dupWindow: 2 * time.Minute}
	now := time.Now()
	recent, old := now.Add(-10*time.Second), now.Add(-5*time.Minute)
	cases := []struct {
		name      string
		delivered uint64
		stored    time.Time
		notBefore *time.Time
		duplicate bool
		want      string // part of the reason; "" runs the attempt
	}{
		{"first delivery", 1, old, nil, false, ""},
		{"first delivery, recent", 1, recent, nil, false, ""},
		{"first delivery, started before (delivery state lost)", 1, recent, nil, true, "the NATS server lost the dispatch's delivery state"},
		{"old first delivery, started before", 1, old, nil, true, "the NATS server lost the dispatch's delivery state"},
		{"redelivered, started before", 2, recent, nil, true, "was lost: its executor stopped"},
		{"redelivered, never started", 2, recent, nil, false, ""},
		{"redelivered past the window", 3, old, nil, false, "past the 2m0s duplicate window"},
		{"delayed retry due now", 2, old, &recent, false, ""},
		{"delayed retry started before", 2, old, &recent, true, "was lost: its executor stopped"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			m := deliveredMsg{meta: jetstream.MsgMetadata{NumDelivered: c.delivered, Timestamp: c.stored}}
			d := &event.Dispatch{Attempt: 4, NotBefore: c.notBefore}
			got := s.lostBefore(m, d, c.duplicate)
			if c.want == "" && got != "" || c.want != "" && !strings.Contains(got, c.want) {
				t.Errorf("lostBefore = %q, want %q", got, c.want)
			}
			if got != "" && !strings.HasPrefix(got, "attempt 4 was lost") {
				t.Errorf("reason %q does not name the attempt", got)
			}
		})
	}
}

// gatedTask is a process task that appends a line to a file each time it runs, says "running" in
// its log and waits until the gate file exists.
func gatedTask(name, countFile, gate string) workflow.Task {
	return processTask(name, "sh", "-c", `echo run >> "$1"; echo running; while [ ! -e "$2" ]; do sleep 0.02; done`, "sh", countFile, gate)
}

func TestFirstDeliveryOfAStartedAttemptIsReportedLost(t *testing.T) {
	t.Parallel()
	h := setup(t)
	cfg := testConfig(t)
	cfg.Instance = "b"
	h.start(t, cfg)
	// Instance a started the attempt; then the server crashed and lost the consumer's delivery state,
	// so the dispatch comes to b as a first delivery.
	runID := event.NewID()
	started := event.New(event.TypeTaskStarted, runID, "t", 1)
	started.Instance = "a"
	m, err := bus.EventMsg(&started)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.bus.Publish(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	count := filepath.Join(t.TempDir(), "count")
	d := h.dispatch(t, event.Dispatch{RunID: runID, Task: countedTask("t", count, "0")})
	e := h.result(t, d)
	wantFailure(t, e, event.ReasonLost, "attempt 1 was lost: it had started before")
	if e.Instance != "b" {
		t.Errorf("lost reported by %q, want b", e.Instance)
	}
	waitSettled(t, h, workflow.ExecutorProcess)
	if n := runs(t, count); n != 0 {
		t.Errorf("the started attempt ran %d times here, want never", n)
	}
}

// againMsg is a dispatch delivered again to the instance that runs it. It records how it was
// settled; any other use panics.
type againMsg struct {
	jetstream.Msg
	data    []byte
	settled []string
}

func (m *againMsg) Data() []byte    { return m.data }
func (m *againMsg) Subject() string { return event.SubjectTasks(workflow.ExecutorProcess) }
func (m *againMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{NumDelivered: 1, Timestamp: time.Now()}, nil
}
func (m *againMsg) Ack() error { m.settled = append(m.settled, "ack"); return nil }
func (m *againMsg) Nak() error { m.settled = append(m.settled, "nak"); return nil }
func (m *againMsg) NakWithDelay(time.Duration) error {
	m.settled = append(m.settled, "nak")
	return nil
}
func (m *againMsg) Term() error       { m.settled = append(m.settled, "term"); return nil }
func (m *againMsg) InProgress() error { return nil }

func TestDispatchDeliveredAgainToItsRunningInstanceIsLeftToIt(t *testing.T) {
	t.Parallel()
	h := setup(t)
	cfg := testConfig(t)
	cfg.Types = []string{workflow.ExecutorProcess}
	s, _ := h.start(t, cfg)
	dir := t.TempDir()
	count, gate := filepath.Join(dir, "count"), filepath.Join(dir, "gate")
	t.Cleanup(func() { _ = os.WriteFile(gate, nil, 0o644) }) // a failed test still stops
	d := h.dispatch(t, event.Dispatch{Task: gatedTask("t", count, gate)})
	h.waitRunning(t, d)

	// What a crashed server can do: forget the consumer's deliveries and deliver the dispatch again,
	// with a delivery count of 1, to the instance that runs it. Acks and heartbeats go by stream
	// sequence, so the running attempt settles it: this delivery is left alone.
	m, err := bus.DispatchMsg(&d)
	if err != nil {
		t.Fatal(err)
	}
	again := &againMsg{data: m.Data}
	s.slots.claim()
	s.handle(context.Background(), s.hard, workflow.ExecutorProcess, again)
	if len(again.settled) != 0 {
		t.Errorf("the second delivery was settled (%v), want it left to the running attempt", again.settled)
	}
	writeFile(t, gate, "", 0o644)

	// The running attempt ends normally and settles the dispatch; nothing reports it lost.
	wantSuccess(t, h.result(t, d))
	waitSettled(t, h, workflow.ExecutorProcess)
	if n := runs(t, count); n != 1 {
		t.Errorf("the task ran %d times, want once", n)
	}
	h.events.mu.Lock()
	defer h.events.mu.Unlock()
	for _, e := range h.events.items {
		if isTerminal(e, d) && e.Type != event.TypeTaskSucceeded {
			t.Errorf("unexpected %s (%s: %s)", e.Type, e.Reason, e.Error)
		}
	}
}
