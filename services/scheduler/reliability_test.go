package scheduler

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/workflow"
)

// control returns a control request of a run.
func control(typ, runID string) event.Event { return event.New(typ, runID, "", 0) }

// marker submits a one-task run and waits for its start; with Concurrency 1 it proves that every
// event published before it was handled. It consumes the marker's dispatch.
func (h *harness) marker(runID string) {
	h.t.Helper()
	h.publish(submission(runID, "", plan("marker", workflow.Task{Name: "m"})))
	h.waitEvent(event.TypeRunStarted, runID, "")
	if d := h.nextDispatch(); d.RunID != runID {
		h.t.Fatalf("dispatch of %s/%s, want the marker's", d.RunID, d.Task.Name)
	}
}

func sleepTask(name string, retries int) workflow.Task {
	return workflow.Task{Name: name, Executor: workflow.ExecutorSleep, Retries: retries,
		Inputs: map[string]workflow.Binding{"seconds": {Const: json.RawMessage(`1`)}}}
}

func (h *harness) state(runID string) *RunState {
	h.t.Helper()
	entry, err := h.kv.Get(h.ctx, stateKey(runID))
	if err != nil {
		h.t.Fatal(err)
	}
	st := new(RunState)
	if err := st.UnmarshalBinary(entry.Value()); err != nil {
		h.t.Fatal(err)
	}
	return st
}

// waitQueueEmpty waits until ORK_TASKS holds no dispatch, or fails the test at the harness deadline.
func (h *harness) waitQueueEmpty() {
	h.t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		n := h.queuedTasks()
		if n == 0 {
			return
		}
		select {
		case <-tick.C:
		case <-h.ctx.Done():
			h.t.Fatalf("%d dispatches left in %s", n, event.StreamTasks)
		}
	}
}

func (h *harness) queuedTasks() uint64 {
	h.t.Helper()
	st, err := h.b.JS.Stream(h.ctx, event.StreamTasks)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := st.Info(h.ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	return info.State.Msgs
}

func TestServicePauseResumeCancel(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.start(Config{Concurrency: 1})
	p := plan("ctl", workflow.Task{Name: "a"}, workflow.Task{Name: "b", DependsOn: []string{"a"}}, workflow.Task{Name: "c"})
	h.publish(submission("run-ctl", "", p))
	ds := h.nextDispatches(2)

	pause := control(event.TypeRunPauseRequested, "run-ctl")
	h.publish(pause)
	if e := h.waitEvent(event.TypeRunPaused, "run-ctl", ""); e.ID != event.AnswerID(pause.ID, event.TypeRunPaused) || e.Workflow != "ctl" {
		t.Fatalf("run.paused %+v", e)
	}
	// a's result is applied while paused, but b is held.
	h.publish(succeeded(ds["a"], ""))
	h.marker("marker1")
	if n := h.dispatchCount(); n != 3 {
		t.Fatalf("%d dispatches while paused, want 3 (a, c, marker)", n)
	}
	if st := h.state("run-ctl"); st.Status != RunPaused || st.Tasks[1].Status != TaskHeld {
		t.Fatalf("state while paused: %+v", st)
	}
	// Pausing again is answered again.
	again := control(event.TypeRunPauseRequested, "run-ctl")
	h.publish(again)
	if e := h.waitEvent(event.TypeRunPaused, "run-ctl", ""); e.ID != event.AnswerID(again.ID, event.TypeRunPaused) {
		t.Fatalf("second run.paused %+v", e)
	}

	resume := control(event.TypeRunResumeRequested, "run-ctl")
	h.publish(resume)
	if e := h.waitEvent(event.TypeRunResumed, "run-ctl", ""); e.ID != event.AnswerID(resume.ID, event.TypeRunResumed) {
		t.Fatalf("run.resumed %+v", e)
	}
	b := h.nextDispatch()
	if b.RunID != "run-ctl" || b.Task.Name != "b" || b.Attempt != 1 || b.NotBefore != nil {
		t.Fatalf("dispatch after resume %+v", b)
	}

	h.publish(control(event.TypeRunCancelRequested, "run-ctl"))
	for _, task := range []string{"b", "c"} {
		e := h.waitEvent(event.TypeTaskCancelled, "run-ctl", task)
		if e.Attempt != 1 || e.Reason != event.ReasonCancelled {
			t.Fatalf("task.cancelled %+v", e)
		}
	}
	if e := h.waitEvent(event.TypeRunFinished, "run-ctl", ""); e.Status != event.RunCancelled {
		t.Fatalf("run.finished %+v", e)
	}
	// Late results do not revive the run.
	h.publish(succeeded(b, ""), succeeded(ds["c"], ""))
	h.marker("marker2")
	if n := h.dispatchCount(); n != 5 {
		t.Fatalf("%d dispatches after the late results, want 5", n)
	}
	if st := h.state("run-ctl"); st.Status != RunCancelled || !st.Compacted {
		t.Fatalf("state after cancel: %+v", st)
	}
}

func TestServiceCancelWhilePaused(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.start(Config{Concurrency: 1})
	p := plan("ctl", workflow.Task{Name: "a"}, workflow.Task{Name: "b", DependsOn: []string{"a"}})
	h.publish(submission("run-cp", "", p))
	a := h.nextDispatch()
	h.publish(control(event.TypeRunPauseRequested, "run-cp"))
	h.waitEvent(event.TypeRunPaused, "run-cp", "")
	h.publish(succeeded(a, ""), control(event.TypeRunCancelRequested, "run-cp"))
	if e := h.waitEvent(event.TypeTaskCancelled, "run-cp", "b"); e.Attempt != 0 {
		t.Fatalf("task.cancelled of the held task %+v", e)
	}
	if e := h.waitEvent(event.TypeRunFinished, "run-cp", ""); e.Status != event.RunCancelled {
		t.Fatalf("run.finished %+v", e)
	}
	if n := h.dispatchCount(); n != 1 {
		t.Fatalf("%d dispatches, want 1", n)
	}
}

func TestServiceLostAttemptIsRedispatched(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.start(Config{Concurrency: 1, ReconcileInterval: 50 * time.Millisecond, LostGrace: 100 * time.Millisecond})
	p := plan("lost", workflow.Task{Name: "a"}, workflow.Task{Name: "b", DependsOn: []string{"a"}})
	h.publish(submission("run-lost", "", p))
	// The "executor" acknowledges the dispatch without a result: the message is gone.
	a1 := h.nextDispatch()
	e := h.waitEvent(event.TypeTaskFailed, "run-lost", "a")
	if e.Attempt != 1 || e.Reason != event.ReasonLost {
		t.Fatalf("task.failed %+v", e)
	}
	a2 := h.nextDispatch()
	if a2.Task.Name != "a" || a2.Attempt != 2 || a2.NotBefore != nil {
		t.Fatalf("dispatch after the loss %+v", a2)
	}
	// The superseded attempt's late success is fenced: b is dispatched once, by attempt 2.
	h.publish(succeeded(a1, ""), succeeded(a2, ""))
	b := h.nextDispatch()
	if b.Task.Name != "b" || b.Attempt != 1 {
		t.Fatalf("dispatch of b %+v", b)
	}
	h.publish(succeeded(b, ""))
	if e := h.waitEvent(event.TypeRunFinished, "run-lost", ""); e.Status != event.RunSuccess {
		t.Fatalf("run.finished %+v", e)
	}
	if n := h.dispatchCount(); n != 3 {
		t.Fatalf("%d dispatches, want 3", n)
	}
}

func TestServiceLostSparesQueuedDispatchesAndIsCapped(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.start(Config{Concurrency: 1, ReconcileInterval: 20 * time.Millisecond, LostGrace: 20 * time.Millisecond, MaxLostAttempts: 2})
	// run-q's dispatch stays in ORK_TASKS, unacknowledged, through every sweep below: not lost.
	h.publish(submission("run-q", "", plan("queued", workflow.Task{Name: "a"})))
	h.waitEvent(event.TypeRunStarted, "run-q", "")
	// run-gone's dispatches are taken and acknowledged without a result, three times.
	cons, err := h.b.Consumer(h.ctx, bus.ConsumerSpec{Stream: event.StreamTasks, Durable: "test-sleep",
		Filters: []string{event.SubjectTasks(workflow.ExecutorSleep)}, AckWait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	h.publish(submission("run-gone", "", plan("gone", sleepTask("x", 5))))
	for attempt := 1; attempt <= 3; attempt++ {
		m, err := cons.Next(jetstream.FetchMaxWait(waitLimit))
		if err != nil {
			t.Fatalf("attempt %d: %v", attempt, err)
		}
		d, err := event.DecodeDispatch(m.Data())
		if err != nil || d.Attempt != attempt || d.NotBefore != nil {
			t.Fatalf("dispatch %+v %v, want attempt %d", d, err, attempt)
		}
		if err := m.Ack(); err != nil {
			t.Fatal(err)
		}
		if e := h.waitEvent(event.TypeTaskFailed, "run-gone", "x"); e.Reason != event.ReasonLost || e.Attempt != attempt {
			t.Fatalf("task.failed %+v", e)
		}
	}
	// Two lost attempts were re-dispatched; the third fails the task for good, retries or not, and
	// the scheduler's verdict reaches the stream beside the loss (its own Nats-Msg-Id), for the
	// recorder to rank above a late result of that attempt.
	if e := h.waitEvent(event.TypeTaskFailed, "run-gone", "x"); e.Reason != event.ReasonMaxLost || e.Attempt != 3 {
		t.Fatalf("task.failed %+v, want the max_lost verdict on attempt 3", e)
	}
	if e := h.waitEvent(event.TypeRunFinished, "run-gone", ""); e.Status != event.RunFailed || !strings.Contains(e.Error, "lost") {
		t.Fatalf("run.finished %+v", e)
	}
	if st := h.state("run-q"); st.Tasks[0] != (TaskState{Status: TaskDispatched, Attempt: 1}) {
		t.Fatalf("queued task state %+v", st.Tasks[0])
	}
	if n := h.dispatchCount(); n != 4 {
		t.Fatalf("%d dispatches, want 4", n)
	}
}

func TestServiceNoExecutor(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.start(Config{ReconcileInterval: 20 * time.Millisecond, NoExecutorTimeout: 50 * time.Millisecond})
	p := plan("nobody", workflow.Task{Name: "py", Executor: workflow.ExecutorPython, Module: "m"},
		workflow.Task{Name: "after", DependsOn: []string{"py"}})
	h.publish(submission("run-none", "", p))
	e := h.waitEvent(event.TypeTaskFailed, "run-none", "py")
	if e.Reason != event.ReasonNoExecutor || e.Attempt != 1 || !strings.Contains(e.Error, `"python"`) {
		t.Fatalf("task.failed %+v", e)
	}
	if e := h.waitEvent(event.TypeRunFinished, "run-none", ""); e.Status != event.RunFailed {
		t.Fatalf("run.finished %+v", e)
	}
	h.waitQueueEmpty()
}

func TestServiceNoExecutorSparesOnlineExecutors(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.start(Config{Concurrency: 1, ReconcileInterval: 20 * time.Millisecond, NoExecutorTimeout: 50 * time.Millisecond})
	// An executor of type sleep is online: its consumer has a pull waiting.
	cons, err := h.b.Consumer(h.ctx, bus.ConsumerSpec{Stream: event.StreamTasks, Durable: event.ConsumerExecutor(workflow.ExecutorSleep),
		Filters: []string{event.SubjectTasks(workflow.ExecutorSleep)}, AckWait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	waiting := make(chan jetstream.MessageBatch, 1)
	go func() {
		b, _ := cons.Fetch(1, jetstream.FetchMaxWait(waitLimit))
		waiting <- b
	}()
	// No executor of type python: its run fails, after the sleep run was dispatched and taken.
	h.publish(submission("run-sleep", "", plan("s", sleepTask("s", 0))))
	batch := <-waiting
	var got int
	for m := range batch.Messages() {
		got++
		if err := m.InProgress(); err != nil {
			t.Fatal(err)
		}
	}
	if got != 1 {
		t.Fatalf("executor got %d dispatches (%v)", got, batch.Error())
	}
	h.publish(submission("run-py", "", plan("p", workflow.Task{Name: "p", Executor: workflow.ExecutorPython, Module: "m"})))
	h.waitEvent(event.TypeRunFinished, "run-py", "")
	if st := h.state("run-sleep"); st.Tasks[0] != (TaskState{Status: TaskDispatched, Attempt: 1}) {
		t.Fatalf("state of the running task %+v", st.Tasks[0])
	}
}

func TestServiceMaxDeliveriesAdvisory(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.start(Config{})
	cons, err := h.b.Consumer(h.ctx, bus.ConsumerSpec{Stream: event.StreamTasks, Durable: event.ConsumerExecutor(workflow.ExecutorSleep),
		Filters: []string{event.SubjectTasks(workflow.ExecutorSleep)}, AckWait: 100 * time.Millisecond, MaxDeliver: 2})
	if err != nil {
		t.Fatal(err)
	}
	h.publish(submission("run-md", "", plan("md", sleepTask("s", 0))))
	// The executor takes the dispatch twice and never answers; it keeps pulling, which is when the
	// server notices the delivery limit.
	for range 2 {
		if _, err := cons.Next(jetstream.FetchMaxWait(waitLimit)); err != nil {
			t.Fatal(err)
		}
	}
	pulling := make(chan struct{})
	stop := make(chan struct{})
	go func() {
		defer close(pulling)
		for {
			select {
			case <-stop:
				return
			default:
			}
			_, _ = cons.Next(jetstream.FetchMaxWait(200 * time.Millisecond))
		}
	}()
	defer func() { close(stop); <-pulling }()
	e := h.waitEvent(event.TypeTaskFailed, "run-md", "s")
	if e.Reason != event.ReasonMaxDeliveries || e.Attempt != 1 {
		t.Fatalf("task.failed %+v", e)
	}
	if e := h.waitEvent(event.TypeRunFinished, "run-md", ""); e.Status != event.RunFailed {
		t.Fatalf("run.finished %+v", e)
	}
	// The reconciler publishes the failure before it deletes the dispatch: wait for the delete.
	h.waitQueueEmpty()
}

func TestReconcilerLease(t *testing.T) {
	t.Parallel()
	h := setup(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	newRec := func(instance string) *reconciler {
		s, err := New(h.b, Config{Instance: instance, ReconcileInterval: time.Second}, nil)
		if err != nil {
			t.Fatal(err)
		}
		s.kv = h.kv
		return &reconciler{s: s, now: clock}
	}
	one, two := newRec("one"), newRec("two")
	hold := func(r *reconciler) bool {
		t.Helper()
		rev, err := r.holdLease(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return rev != 0
	}
	if !hold(one) || hold(two) || !hold(one) {
		t.Fatal("the first holder must keep the lease while it renews it")
	}
	now = now.Add(2 * time.Second)
	if hold(two) || !hold(one) {
		t.Fatal("a renewed lease must not be taken")
	}
	now = now.Add(4 * time.Second) // past the three intervals
	if !hold(two) || hold(one) {
		t.Fatal("an expired lease must pass to another instance")
	}
}
