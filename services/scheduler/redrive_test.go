package scheduler

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/poll"
	"github.com/ork-go/ork/pkg/workflow"
)

// These tests reach under the scheduler on purpose: they write run states into the KV bucket the way
// a scheduler killed at the wrong instant leaves them, or withhold or delete the message that would
// have moved a run on, and check that the run still ends.

// sweepConfig is a scheduler whose reconciler sweeps often and re-drives a run unchanged for 200 ms.
func sweepConfig() Config {
	return Config{Concurrency: 1, ReconcileInterval: 50 * time.Millisecond, StallTimeout: 200 * time.Millisecond,
		LostGrace: time.Hour, NoExecutorTimeout: time.Hour}
}

// putRun writes the plan and the state of a run as a scheduler would have written them, tasks in plan
// order with the given states.
func (h *harness) putRun(runID string, p *workflow.Plan, status RunStatus, tasks ...TaskState) {
	h.t.Helper()
	g, err := NewGraph(p)
	if err != nil {
		h.t.Fatal(err)
	}
	st := NewRunState(g)
	st.Status = status
	for i, ts := range tasks {
		st.set(i, ts)
		if ts.Status.Terminal() {
			st.Remaining--
		}
		if ts.Status == TaskFailed && st.FailedTask == 0 {
			st.FailedTask, st.Error = i+1, "task failed"
		}
	}
	data, err := json.Marshal(p)
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.kv.Create(h.ctx, planKey(runID), data); err != nil {
		h.t.Fatal(err)
	}
	enc, err := st.MarshalBinary()
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.kv.Create(h.ctx, stateKey(runID), enc); err != nil {
		h.t.Fatal(err)
	}
}

// schedulerDelivery takes the next message of the schedulers' consumer, as a scheduler that is then
// killed would, and returns it; the caller naks it (a delivery cut short) or acks it (withheld).
func (h *harness) schedulerDelivery() jetstream.Msg {
	h.t.Helper()
	cons, err := h.b.Consumer(h.ctx, bus.ConsumerSpec{Stream: event.StreamEvents, Durable: DurableDefault,
		Filters: Filters, AckWait: AckWaitDefault})
	if err != nil {
		h.t.Fatal(err)
	}
	m, err := cons.Next(jetstream.FetchMaxWait(waitLimit))
	if err != nil {
		h.t.Fatalf("fetching from the schedulers' consumer: %v", err)
	}
	return m
}

// sweptAfter waits until the reconciler has swept after t: its lease, renewed at each sweep until
// three intervals later, reaches past t plus three intervals.
func (h *harness) sweptAfter(t time.Time) {
	h.t.Helper()
	interval := sweepConfig().ReconcileInterval
	poll.Until(h.t, h.ctx, "a sweep after "+t.Format(time.StampMilli), func() bool {
		entry, err := h.kv.Get(h.ctx, leaseKey)
		if err != nil {
			return false
		}
		var l lease
		return json.Unmarshal(entry.Value(), &l) == nil && l.Until.After(t.Add(3*interval))
	})
}

func dispatchOf(runID, task string, attempt int) event.Dispatch {
	return event.Dispatch{RunID: runID, Task: workflow.Task{Name: task}, Attempt: attempt}
}

// TestServiceRepublishesTheEndAfterACrash is the deterministic form of the chaos failure of seed
// 16879355522013959892: a scheduler applied the last result of a run, wrote the finished state and
// was killed before publishing run.finished. The result is delivered again to the next scheduler,
// which found the run finished and acknowledged the event as stale without publishing anything,
// so the run never ended in the database.
func TestServiceRepublishesTheEndAfterACrash(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		status RunStatus
		task   TaskState
		result event.Event
		want   string
	}{
		{"success", RunSucceeded, TaskState{Status: TaskSucceeded, Attempt: 1},
			succeeded(dispatchOf("run-crash", "a", 1), ""), event.RunSuccess},
		{"failure", RunFailed, TaskState{Status: TaskFailed, Attempt: 1},
			failed(dispatchOf("run-crash", "a", 1), "exit 3"), event.RunFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := setup(t)
			// Without its reconciler: the redelivery alone must end the run.
			h.putRun("run-crash", plan("crash", workflow.Task{Name: "a"}), tc.status, tc.task)
			h.publish(tc.result)
			if err := h.schedulerDelivery().Nak(); err != nil { // the killed scheduler's delivery
				t.Fatal(err)
			}
			h.start(Config{Concurrency: 1, ReconcileInterval: -1})
			if e := h.waitEvent(event.TypeRunFinished, "run-crash", ""); e.Status != tc.want {
				t.Fatalf("run.finished %+v, want status %s", e, tc.want)
			}
			poll.Until(t, h.ctx, "the run's compaction", func() bool { return h.state("run-crash").Compacted })
		})
	}
}

// TestReconcilerRedrivesStalledRuns withholds or deletes the one message that would move a run on,
// or leaves a state no handler will touch again, and checks that the run-level sweep ends the run.
func TestReconcilerRedrivesStalledRuns(t *testing.T) {
	t.Parallel()

	t.Run("withheld result", func(t *testing.T) {
		t.Parallel()
		h := setup(t)
		p := plan("withheld", workflow.Task{Name: "a"}, workflow.Task{Name: "b", DependsOn: []string{"a"}})
		h.putRun("run-w", p, RunActive, TaskState{Status: TaskDispatched, Attempt: 1})
		// a's executor published its result and acknowledged its dispatch; the result reached the
		// schedulers' consumer and was acknowledged without being applied.
		h.publish(succeeded(dispatchOf("run-w", "a", 1), `{"n": 1}`))
		if err := h.schedulerDelivery().Ack(); err != nil {
			t.Fatal(err)
		}
		h.start(sweepConfig())
		b := h.nextDispatch()
		if b.Task.Name != "b" || b.Attempt != 1 {
			t.Fatalf("dispatch %+v, want b attempt 1", b)
		}
		h.publish(succeeded(b, ""))
		if e := h.waitEvent(event.TypeRunFinished, "run-w", ""); e.Status != event.RunSuccess {
			t.Fatalf("run.finished %+v", e)
		}
		if n := h.dispatchCount(); n != 1 {
			t.Fatalf("%d dispatches, want 1 (b): a's result must be applied, not a ran again", n)
		}
	})

	t.Run("deleted dispatch", func(t *testing.T) {
		t.Parallel()
		h := setup(t)
		cons, err := h.b.Consumer(h.ctx, bus.ConsumerSpec{Stream: event.StreamTasks, Durable: "test-sleep",
			Filters: []string{event.SubjectTasks(workflow.ExecutorSleep)}, AckWait: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		h.start(sweepConfig())
		h.publish(submission("run-d", "", plan("deleted", sleepTask("x", 0))))
		h.waitEvent(event.TypeRunStarted, "run-d", "")
		tasks, err := h.b.JS.Stream(h.ctx, event.StreamTasks)
		if err != nil {
			t.Fatal(err)
		}
		// run.started is published before the dispatch: wait for the dispatch itself.
		var m *jetstream.RawStreamMsg
		for deadline := time.Now().Add(waitLimit); ; time.Sleep(5 * time.Millisecond) {
			m, err = tasks.GetLastMsgForSubject(h.ctx, event.SubjectTasks(workflow.ExecutorSleep))
			if err == nil {
				break
			}
			if !errors.Is(err, jetstream.ErrMsgNotFound) || time.Now().After(deadline) {
				t.Fatalf("waiting for the dispatch of x: %v", err)
			}
		}
		if err := tasks.DeleteMsg(h.ctx, m.Sequence); err != nil {
			t.Fatal(err)
		}
		if e := h.waitEvent(event.TypeTaskFailed, "run-d", "x"); e.Attempt != 1 || e.Reason != event.ReasonLost {
			t.Fatalf("task.failed %+v, want attempt 1 lost", e)
		}
		dm, err := cons.Next(jetstream.FetchMaxWait(waitLimit))
		if err != nil {
			t.Fatal(err)
		}
		d, err := event.DecodeDispatch(dm.Data())
		if err != nil || d.Attempt != 2 {
			t.Fatalf("dispatch %+v %v, want attempt 2", d, err)
		}
		if err := dm.Ack(); err != nil {
			t.Fatal(err)
		}
		h.publish(succeeded(d, ""))
		if e := h.waitEvent(event.TypeRunFinished, "run-d", ""); e.Status != event.RunSuccess {
			t.Fatalf("run.finished %+v", e)
		}
	})

	t.Run("ready task never dispatched", func(t *testing.T) {
		t.Parallel()
		h := setup(t)
		p := plan("ready", workflow.Task{Name: "a"}, workflow.Task{Name: "b", DependsOn: []string{"a"}},
			workflow.Task{Name: "c", DependsOn: []string{"b"}})
		h.putRun("run-r", p, RunActive, TaskState{Status: TaskSucceeded, Attempt: 1})
		if _, err := h.kv.Put(h.ctx, outKey("run-r", "a"), []byte(`null`)); err != nil {
			t.Fatal(err)
		}
		h.start(sweepConfig())
		b := h.nextDispatch()
		if b.Task.Name != "b" || b.Attempt != 1 {
			t.Fatalf("dispatch %+v, want b attempt 1", b)
		}
		h.publish(failed(b, "exit 1"))
		if e := h.waitEvent(event.TypeTaskSkipped, "run-r", "c"); e.Reason != event.ReasonUpstreamFailed {
			t.Fatalf("task.skipped %+v", e)
		}
		if e := h.waitEvent(event.TypeRunFinished, "run-r", ""); e.Status != event.RunFailed {
			t.Fatalf("run.finished %+v", e)
		}
	})

	t.Run("finished state never published", func(t *testing.T) {
		t.Parallel()
		h := setup(t)
		h.putRun("run-f", plan("finished", workflow.Task{Name: "a"}), RunSucceeded, TaskState{Status: TaskSucceeded, Attempt: 1})
		h.start(sweepConfig())
		if e := h.waitEvent(event.TypeRunFinished, "run-f", ""); e.Status != event.RunSuccess {
			t.Fatalf("run.finished %+v", e)
		}
		poll.Until(t, h.ctx, "the run's compaction", func() bool { return h.state("run-f").Compacted })
	})

	t.Run("plan gone", func(t *testing.T) {
		t.Parallel()
		h := setup(t)
		h.putRun("run-p", plan("gone", workflow.Task{Name: "a"}), RunActive, TaskState{Status: TaskDispatched, Attempt: 1})
		if err := h.kv.Delete(h.ctx, planKey("run-p")); err != nil {
			t.Fatal(err)
		}
		h.start(sweepConfig())
		e := h.waitEvent(event.TypeRunFinished, "run-p", "")
		if e.Status != event.RunFailed || e.Error == "" {
			t.Fatalf("run.finished %+v, want failed with a reason", e)
		}
	})

	t.Run("paused and in-flight runs are left alone", func(t *testing.T) {
		t.Parallel()
		h := setup(t)
		cons, err := h.b.Consumer(h.ctx, bus.ConsumerSpec{Stream: event.StreamTasks, Durable: "test-sleep",
			Filters: []string{event.SubjectTasks(workflow.ExecutorSleep)}, AckWait: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		h.putRun("run-paused", plan("paused", workflow.Task{Name: "a"}, workflow.Task{Name: "b", DependsOn: []string{"a"}}),
			RunPaused, TaskState{Status: TaskSucceeded, Attempt: 1}, TaskState{Status: TaskHeld, Attempt: 1})
		cfg := sweepConfig()
		h.start(cfg)
		// The long task's dispatch waits in ORK_TASKS, unfetched, through many stall timeouts.
		h.publish(submission("run-long", "", plan("long", sleepTask("x", 0))))
		h.waitEvent(event.TypeRunStarted, "run-long", "")
		h.sweptAfter(time.Now().Add(10 * cfg.StallTimeout))
		if st := h.state("run-paused"); st.Status != RunPaused || st.Tasks[1].Status != TaskHeld {
			t.Fatalf("paused run changed: %+v", st)
		}
		if st := h.state("run-long"); st.Tasks[0] != (TaskState{Status: TaskDispatched, Attempt: 1}) {
			t.Fatalf("in-flight run changed: %+v", st.Tasks[0])
		}
		m, err := cons.Next(jetstream.FetchMaxWait(waitLimit))
		if err != nil {
			t.Fatal(err)
		}
		if d, err := event.DecodeDispatch(m.Data()); err != nil || d.Attempt != 1 {
			t.Fatalf("dispatch %+v %v, want the one attempt 1", d, err)
		}
	})
}
