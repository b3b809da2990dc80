package executor

import (
	"context"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/workflow"
)

func sleepTask(name string, seconds string) (workflow.Task, []byte) {
	return workflow.Task{Name: name, Executor: workflow.ExecutorSleep}, []byte(`{"seconds": ` + seconds + `}`)
}

func started(evs []event.Event, d event.Dispatch) []event.Event {
	var out []event.Event
	for _, e := range evs {
		if e.Type == event.TypeTaskStarted && e.RunID == d.RunID && e.Task == d.Task.Name {
			out = append(out, e)
		}
	}
	return out
}

func TestBuiltinTypes(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.start(t, testConfig(t))
	e := h.result(t, h.dispatch(t, event.Dispatch{Task: workflow.Task{Name: "n", Executor: workflow.ExecutorNoop}}))
	wantSuccess(t, e)
	if e.Output != nil {
		t.Errorf("noop output = %s, want none", e.Output)
	}
	tk, in := sleepTask("s", "0.05")
	wantSuccess(t, h.result(t, h.dispatch(t, event.Dispatch{Task: tk, Inputs: in})))
	tk, in = sleepTask("timeout", "30")
	tk.TimeoutSeconds = 1
	wantFailure(t, h.result(t, h.dispatch(t, event.Dispatch{Task: tk, Inputs: in})), event.ReasonTimeout, "timed out after 1s")
	tk, _ = sleepTask("bad", "0")
	wantFailure(t, h.result(t, h.dispatch(t, event.Dispatch{Task: tk, Inputs: []byte(`{"seconds": "x"}`)})), event.ReasonInput, "inputs.seconds")
}

func TestNotBeforeNaksWithoutHoldingASlot(t *testing.T) {
	t.Parallel()
	h := setup(t)
	cfg := testConfig(t)
	cfg.Concurrency = 1
	h.start(t, cfg)
	notBefore := time.Now().Add(1500 * time.Millisecond).UTC()
	late := h.dispatch(t, event.Dispatch{Task: workflow.Task{Name: "late", Executor: workflow.ExecutorNoop}, NotBefore: &notBefore})
	// With the one slot free, the task dispatched after the delayed one runs first.
	now := h.dispatch(t, event.Dispatch{Task: workflow.Task{Name: "now", Executor: workflow.ExecutorNoop}})
	wantSuccess(t, h.result(t, now))
	e := h.result(t, late)
	wantSuccess(t, e)
	all := h.events.wait(t, "both", func([]event.Event) bool { return true })
	st := started(all, late)
	if len(st) != 1 {
		t.Fatalf("late task started %d times", len(st))
	}
	if st[0].Time.Before(notBefore) {
		t.Errorf("late task started at %s, before its not_before %s", st[0].Time, notBefore)
	}
	if i, j := slices.IndexFunc(all, func(e event.Event) bool { return isTerminal(e, now) }), slices.IndexFunc(all, func(e event.Event) bool { return isTerminal(e, late) }); i > j {
		t.Errorf("the delayed task finished before the one dispatched after it")
	}
}

func TestInstancesShareTheConsumer(t *testing.T) {
	t.Parallel()
	h := setup(t)
	cfg := testConfig(t)
	cfg.Concurrency = 1
	cfg.DrainGrace = time.Millisecond
	cfg.AckWait = 10 * time.Minute
	cfg.Instance = "a"
	_, stopA := h.start(t, cfg)
	cfg.Instance = "b"
	_, stopB := h.start(t, cfg)
	// Each instance runs one task at a time, so two long tasks must be spread over both.
	tk1, in := sleepTask("one", "600")
	tk2, _ := sleepTask("two", "600")
	d1 := h.dispatch(t, event.Dispatch{Task: tk1, Inputs: in})
	d2 := h.dispatch(t, event.Dispatch{Task: tk2, Inputs: in})
	evs := h.events.wait(t, "both tasks started", func(evs []event.Event) bool {
		return len(started(evs, d1)) > 0 && len(started(evs, d2)) > 0
	})
	got := []string{started(evs, d1)[0].Instance, started(evs, d2)[0].Instance}
	slices.Sort(got)
	if !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("tasks ran on instances %q, want one each on a and b", got)
	}
	// A hard stop after the drain grace reports the running attempts lost, so that the scheduler
	// starts new ones, instead of running them again under the same number.
	stopA()
	stopB()
	for _, d := range []event.Dispatch{d1, d2} {
		e := h.result(t, d)
		wantFailure(t, e, event.ReasonLost, "drain grace")
		if e.Instance != started(evs, d)[0].Instance {
			t.Errorf("%s: lost reported by %q, started on %q", d.Task.Name, e.Instance, started(evs, d)[0].Instance)
		}
	}
	waitSettled(t, h, workflow.ExecutorSleep)
}

// waitConsumer polls a consumer's info until ok holds: consumer state has no change notification.
func waitConsumer(t *testing.T, ctx context.Context, h *harness, typ string, ok func(*jetstream.ConsumerInfo) bool) *jetstream.ConsumerInfo {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := h.bus.JS.Consumer(ctx, event.StreamTasks, event.ConsumerExecutor(typ))
		if err != nil {
			t.Fatalf("consumer: %v", err)
		}
		info, err := c.Info(ctx)
		if err != nil {
			t.Fatalf("consumer info: %v", err)
		}
		if ok(info) {
			return info
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("consumer never reached the wanted state: %+v", info)
		}
	}
}

func TestHeartbeatPreventsRedelivery(t *testing.T) {
	t.Parallel()
	h := setup(t)
	cfg := testConfig(t)
	cfg.AckWait = time.Second
	cfg.Concurrency = 2
	cfg.Instance = "a"
	h.start(t, cfg)
	// A second instance would receive any redelivery at once.
	cfg.Instance = "b"
	h.start(t, cfg)
	// Both run four times the ack wait: a process task and a built-in one.
	count := filepath.Join(t.TempDir(), "count")
	proc := h.dispatch(t, event.Dispatch{Task: countedTask("process", count, "4")})
	tk, in := sleepTask("sleep", "4")
	slp := h.dispatch(t, event.Dispatch{Task: tk, Inputs: in})
	wantSuccess(t, h.result(t, proc))
	wantSuccess(t, h.result(t, slp))
	if n := runs(t, count); n != 1 {
		t.Errorf("the process task ran %d times, want once", n)
	}
	all := h.events.wait(t, "", func([]event.Event) bool { return true })
	for _, d := range []event.Dispatch{proc, slp} {
		if n := len(started(all, d)); n != 1 {
			t.Errorf("%s started %d times: it was redelivered while running", d.Task.Name, n)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitDeadline)
	defer cancel()
	for _, typ := range []string{workflow.ExecutorProcess, workflow.ExecutorSleep} {
		info := waitConsumer(t, ctx, h, typ, func(ci *jetstream.ConsumerInfo) bool { return ci.NumAckPending == 0 })
		if info.NumRedelivered != 0 {
			t.Errorf("%s: %d redeliveries", typ, info.NumRedelivered)
		}
	}
}

func TestWaitingDispatchIsHeartbeated(t *testing.T) {
	t.Parallel()
	h := setup(t)
	cfg := testConfig(t)
	cfg.Types = []string{workflow.ExecutorNoop}
	cfg.AckWait = time.Second
	cfg.Concurrency = 1
	cfg.Instance = "a"
	a, err := New(h.bus, cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	a.dupWindow = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), waitDeadline)
	defer cancel()
	cons, err := a.consumer(ctx, workflow.ExecutorNoop)
	if err != nil {
		t.Fatal(err)
	}
	// A's only slot is taken, as if by a task of another type.
	a.slots.claim()
	if err := a.slots.acquire(ctx); err != nil {
		t.Fatal(err)
	}
	beats := make(chan struct{}, 1)
	sub, err := h.bus.NC.Subscribe("$JS.ACK."+event.StreamTasks+".>", func(m *nats.Msg) {
		if string(m.Data) == "+WPI" {
			select {
			case beats <- struct{}{}:
			default:
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()

	d := h.dispatch(t, event.Dispatch{Task: workflow.Task{Name: "n", Executor: workflow.ExecutorNoop}})
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(waitDeadline))
	if err != nil {
		t.Fatal(err)
	}
	msg, ok := <-batch.Messages()
	if !ok {
		t.Fatalf("no dispatch fetched: %v", batch.Error())
	}
	a.slots.claim()
	handled := make(chan struct{})
	go func() { defer close(handled); a.handle(ctx, ctx, workflow.ExecutorNoop, msg) }()
	// Any redelivery would go to B, which would run the task.
	cfg.Instance = "b"
	h.start(t, cfg)
	// Ten heartbeats take over three ack waits.
	for range 10 {
		select {
		case <-beats:
		case <-ctx.Done():
			t.Fatal("the waiting dispatch is not heartbeated")
		}
	}
	a.slots.release()
	e := h.result(t, d)
	wantSuccess(t, e)
	<-handled
	evs := h.events.wait(t, "", func([]event.Event) bool { return true })
	if st := started(evs, d); len(st) != 1 || st[0].Instance != "a" || e.Instance != "a" {
		t.Errorf("started %d times (%v), finished on %q: want once, on a", len(st), st, e.Instance)
	}
}

func TestUndecodableDispatchIsTerminated(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.start(t, testConfig(t))
	ctx, cancel := context.WithTimeout(context.Background(), waitDeadline)
	defer cancel()
	if _, err := h.bus.JS.Publish(ctx, event.SubjectTasks(workflow.ExecutorNoop), []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	waitConsumer(t, ctx, h, workflow.ExecutorNoop, func(ci *jetstream.ConsumerInfo) bool {
		return ci.Delivered.Consumer >= 1 && ci.NumAckPending == 0 && ci.NumPending == 0
	})
	// The executor goes on working.
	wantSuccess(t, h.result(t, h.dispatch(t, event.Dispatch{Task: workflow.Task{Name: "n", Executor: workflow.ExecutorNoop}})))
}

func TestConcurrencyIsSharedAcrossTypes(t *testing.T) {
	t.Parallel()
	h := setup(t)
	cfg := testConfig(t)
	cfg.Concurrency = 2
	cfg.DrainGrace = time.Millisecond
	h.start(t, cfg)
	tk, in := sleepTask("short", "1")
	short := h.dispatch(t, event.Dispatch{Task: tk, Inputs: in})
	tk, in = sleepTask("long", "600")
	long := h.dispatch(t, event.Dispatch{Task: tk, Inputs: in})
	h.events.wait(t, "two sleeps started", func(evs []event.Event) bool {
		return len(started(evs, short)) == 1 && len(started(evs, long)) == 1
	})
	// Both slots are taken: a task of another type waits for the short sleep to end.
	n := h.dispatch(t, event.Dispatch{Task: workflow.Task{Name: "n", Executor: workflow.ExecutorNoop}})
	wantSuccess(t, h.result(t, n))
	evs := h.events.wait(t, "", func([]event.Event) bool { return true })
	shortEnd := slices.IndexFunc(evs, func(e event.Event) bool { return isTerminal(e, short) })
	noopStart := slices.IndexFunc(evs, func(e event.Event) bool { return e.Type == event.TypeTaskStarted && e.RunID == n.RunID })
	if shortEnd < 0 || noopStart < shortEnd {
		t.Errorf("the noop started (event %d) before a slot was free (event %d)", noopStart, shortEnd)
	}
}

func TestDrainLetsRunningTasksFinish(t *testing.T) {
	t.Parallel()
	h := setup(t)
	cfg := testConfig(t)
	_, stop := h.start(t, cfg)
	tk, in := sleepTask("short", "0.5")
	d := h.dispatch(t, event.Dispatch{Task: tk, Inputs: in})
	h.events.wait(t, "started", func(evs []event.Event) bool { return len(started(evs, d)) == 1 })
	stop() // returns only after the drain
	// The drain published the result before stop returned; this test's follower may see it a moment
	// later, so it waits for the result itself (and fails on any other end).
	evs := h.events.wait(t, "the task's end", func(evs []event.Event) bool {
		return slices.ContainsFunc(evs, func(e event.Event) bool { return isTerminal(e, d) })
	})
	if !slices.ContainsFunc(evs, func(e event.Event) bool { return isTerminal(e, d) && e.Type == event.TypeTaskSucceeded }) {
		t.Fatal("the running task did not finish during the drain")
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitDeadline)
	defer cancel()
	waitConsumer(t, ctx, h, workflow.ExecutorSleep, func(ci *jetstream.ConsumerInfo) bool {
		return ci.NumAckPending == 0 && ci.NumPending == 0
	})
}

func TestHardStopKillsTheProcessGroup(t *testing.T) {
	t.Parallel()
	h := setup(t)
	cfg := testConfig(t)
	cfg.DrainGrace = time.Millisecond
	_, stop := h.start(t, cfg)
	d := h.dispatch(t, event.Dispatch{Task: processTask("t", "sh", "-c", "sleep 1000 & echo $!; wait")})
	lines := h.logs.wait(t, "the child's pid", func(lbs []event.LogBatch) bool {
		return slices.ContainsFunc(lbs, func(lb event.LogBatch) bool { return lb.RunID == d.RunID })
	})
	i := slices.IndexFunc(lines, func(lb event.LogBatch) bool { return lb.RunID == d.RunID })
	pid, err := strconv.Atoi(lines[i].Lines[0].Line)
	if err != nil {
		t.Fatal(err)
	}
	stop()
	waitGone(t, pid)
}

func TestOutputOverTheServerMessageLimitFails(t *testing.T) {
	t.Parallel()
	h := setup(t)
	cfg := testConfig(t)
	cfg.OutputMaxBytes = 16 << 20 // the test server takes messages up to 8 MiB
	h.start(t, cfg)
	writeFile(t, filepath.Join(h.dir, "big.py"), "def main():\n    return 'x' * (9 << 20)\n", 0o644)
	d := h.dispatch(t, event.Dispatch{Task: workflow.Task{Name: "big", Executor: workflow.ExecutorPython, File: "big.py"}})
	wantFailure(t, h.result(t, d), event.ReasonOutput, "message limit of the NATS server")
}

func TestCancelKillsTheRunningAttempt(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.start(t, testConfig(t))
	cases := []struct {
		name  string
		event func(d event.Dispatch) event.Event
	}{
		{"task cancelled", func(d event.Dispatch) event.Event {
			return event.New(event.TypeTaskCancelled, d.RunID, d.Task.Name, d.Attempt)
		}},
		{"run finished", func(d event.Dispatch) event.Event {
			e := event.New(event.TypeRunFinished, d.RunID, "", 0)
			e.Status = event.RunCancelled
			return e
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			other := h.dispatch(t, event.Dispatch{Task: processTask("other", "sleep", "0.5")})
			d := h.dispatch(t, event.Dispatch{Task: processTask("victim", "sh", "-c", "sleep 1000 & echo $!; wait")})
			lbs := h.logs.wait(t, "the child's pid", func(lbs []event.LogBatch) bool {
				return slices.ContainsFunc(lbs, func(lb event.LogBatch) bool { return lb.RunID == d.RunID })
			})
			pid, err := strconv.Atoi(lbs[slices.IndexFunc(lbs, func(lb event.LogBatch) bool { return lb.RunID == d.RunID })].Lines[0].Line)
			if err != nil {
				t.Fatal(err)
			}
			e := c.event(d)
			m, err := bus.EventMsg(&e)
			if err != nil {
				t.Fatal(err)
			}
			if err := h.bus.Publish(context.Background(), m); err != nil {
				t.Fatal(err)
			}
			waitGone(t, pid)
			// Another run's task is untouched.
			wantSuccess(t, h.result(t, other))
			for _, ev := range h.events.wait(t, "", func([]event.Event) bool { return true }) {
				if isTerminal(ev, d) {
					t.Errorf("the cancelled attempt published %s", ev.Type)
				}
			}
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitDeadline)
	defer cancel()
	waitConsumer(t, ctx, h, workflow.ExecutorProcess, func(ci *jetstream.ConsumerInfo) bool {
		return ci.NumAckPending == 0 && ci.NumPending == 0
	})
}

func TestDispatchOfACancelledTaskDoesNotRun(t *testing.T) {
	t.Parallel()
	h := setup(t)
	s, _ := h.start(t, testConfig(t))
	runID := event.NewID()
	e := event.New(event.TypeTaskCancelled, runID, "t", 1)
	m, err := bus.EventMsg(&e)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.bus.Publish(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	// Let the cancellation reach the executor first.
	deadline := time.NewTimer(waitDeadline)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		s.runningMu.Lock()
		seen := s.cancelled.has(attemptKey{runID, "t", 1})
		s.runningMu.Unlock()
		if seen {
			break
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatal("the executor never saw the cancellation")
		}
	}
	h.dispatch(t, event.Dispatch{RunID: runID, Task: workflow.Task{Name: "t", Executor: workflow.ExecutorNoop}})
	after := h.dispatch(t, event.Dispatch{RunID: runID, Task: workflow.Task{Name: "t", Executor: workflow.ExecutorNoop}, Attempt: 2})
	wantSuccess(t, h.result(t, after))
	ctx, cancel := context.WithTimeout(context.Background(), waitDeadline)
	defer cancel()
	waitConsumer(t, ctx, h, workflow.ExecutorNoop, func(ci *jetstream.ConsumerInfo) bool {
		return ci.NumAckPending == 0 && ci.NumPending == 0
	})
	for _, ev := range h.events.wait(t, "", func([]event.Event) bool { return true }) {
		if ev.RunID == runID && ev.Attempt == 1 && ev.Type != event.TypeTaskCancelled {
			t.Errorf("the cancelled attempt produced %s", ev.Type)
		}
	}
}
