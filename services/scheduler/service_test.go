package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/bus/bustest"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/workflow"
)

const waitLimit = 15 * time.Second

type harness struct {
	t      *testing.T
	ctx    context.Context
	b      *bus.Bus
	kv     jetstream.KeyValue
	events jetstream.MessagesContext
	tasks  jetstream.MessagesContext
	tasksC jetstream.Consumer
	seen   []event.Event // observed events not waited for yet
}

func setup(t *testing.T) *harness {
	t.Helper()
	srv := bustest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	b, err := bus.Connect(bus.Config{URL: srv.ClientURL(), Name: t.Name()}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	if err := b.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	kv, err := b.Runs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, ctx: ctx, b: b, kv: kv}
	ec, err := b.JS.OrderedConsumer(ctx, event.StreamEvents, jetstream.OrderedConsumerConfig{
		FilterSubjects: event.SubjectsEventsOfTypes("run.*", event.TypeTaskDispatched, event.TypeTaskSkipped,
			event.TypeTaskFailed, event.TypeTaskCancelled),
	})
	if err != nil {
		t.Fatal(err)
	}
	if h.events, err = ec.Messages(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.events.Stop)
	// The test plays the executor: one consumer of noop dispatches.
	if h.tasksC, err = b.Consumer(ctx, bus.ConsumerSpec{Stream: event.StreamTasks, Durable: "test-executor",
		Filters: []string{event.SubjectTasks(workflow.ExecutorNoop)}, AckWait: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if h.tasks, err = h.tasksC.Messages(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.tasks.Stop)
	return h
}

// start runs a scheduler until the test ends.
func (h *harness) start(cfg Config) {
	h.t.Helper()
	if cfg.Backoff.Base == 0 {
		cfg.Backoff = Backoff{Base: 20 * time.Millisecond, Max: 200 * time.Millisecond, Jitter: 0.5}
	}
	svc, err := New(h.b, cfg, zaptest.NewLogger(h.t))
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(h.ctx)
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	h.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			h.t.Errorf("scheduler Run: %v", err)
		}
	})
}

func (h *harness) publish(events ...event.Event) {
	h.t.Helper()
	msgs := make([]bus.Msg, 0, len(events))
	for i := range events {
		m, err := bus.EventMsg(&events[i])
		if err != nil {
			h.t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	if err := h.b.Publish(h.ctx, msgs...); err != nil {
		h.t.Fatal(err)
	}
}

func submission(runID, key string, p *workflow.Plan) event.Event {
	e := event.New(event.TypeRunSubmitted, runID, "", 0)
	e.Plan, e.IdempotencyKey, e.Workflow, e.TriggeredBy = p, key, p.Name, "test"
	return e
}

func succeeded(d event.Dispatch, output string) event.Event {
	e := event.New(event.TypeTaskSucceeded, d.RunID, d.Task.Name, d.Attempt)
	if output != "" {
		e.Output = json.RawMessage(output)
	}
	return e
}

func failed(d event.Dispatch, msg string) event.Event {
	e := event.New(event.TypeTaskFailed, d.RunID, d.Task.Name, d.Attempt)
	e.Error, e.Reason = msg, event.ReasonExit
	return e
}

// nextDispatch returns the next dispatch, acknowledged.
func (h *harness) nextDispatch() event.Dispatch {
	h.t.Helper()
	m, err := h.tasks.Next(jetstream.NextMaxWait(waitLimit))
	if err != nil {
		h.t.Fatalf("waiting for a dispatch: %v", err)
	}
	d, err := event.DecodeDispatch(m.Data())
	if err != nil {
		h.t.Fatal(err)
	}
	if got := m.Headers().Get(jetstream.MsgIDHeader); got != d.MsgID() {
		h.t.Fatalf("dispatch Nats-Msg-Id %q, want %q", got, d.MsgID())
	}
	if err := m.Ack(); err != nil {
		h.t.Fatal(err)
	}
	return d
}

// nextDispatches returns the next n dispatches by task name.
func (h *harness) nextDispatches(n int) map[string]event.Dispatch {
	h.t.Helper()
	out := make(map[string]event.Dispatch, n)
	for range n {
		d := h.nextDispatch()
		if _, dup := out[d.Task.Name]; dup {
			h.t.Fatalf("task %s dispatched twice", d.Task.Name)
		}
		out[d.Task.Name] = d
	}
	return out
}

// waitEvent returns the first observed event matching typ and run (and, when set, task), keeping
// the others for later waits.
func (h *harness) waitEvent(typ, runID, task string) event.Event {
	h.t.Helper()
	match := func(e event.Event) bool {
		return e.Type == typ && e.RunID == runID && (task == "" || e.Task == task)
	}
	for i, e := range h.seen {
		if match(e) {
			h.seen = append(h.seen[:i], h.seen[i+1:]...)
			return e
		}
	}
	deadline := time.Now().Add(waitLimit)
	for {
		m, err := h.events.Next(jetstream.NextMaxWait(time.Until(deadline)))
		if err != nil {
			h.t.Fatalf("waiting for %s of run %s task %q: %v", typ, runID, task, err)
		}
		e, err := event.DecodeEvent(m.Data())
		if err != nil {
			continue // garbage a test published on purpose
		}
		if match(e) {
			return e
		}
		h.seen = append(h.seen, e)
	}
}

// dispatchCount is the number of dispatches the tasks stream ever stored.
func (h *harness) dispatchCount() uint64 {
	h.t.Helper()
	st, err := h.b.JS.Stream(h.ctx, event.StreamTasks)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := st.Info(h.ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	return info.State.LastSeq
}

func plan(name string, tasks ...workflow.Task) *workflow.Plan {
	for i := range tasks {
		tasks[i].Index = i
		if tasks[i].Executor == "" {
			tasks[i].Executor = workflow.ExecutorNoop
		}
	}
	return &workflow.Plan{Name: name, Dir: "/srv/flows", Hash: "h-" + name, Tasks: tasks}
}

func TestServiceChainResolvesInputs(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.start(Config{})
	p := plan("chain",
		workflow.Task{Name: "extract"},
		workflow.Task{Name: "transform", DependsOn: []string{"extract"}, Inputs: map[string]workflow.Binding{
			"limit": {Const: json.RawMessage(`5`)},
			"who":   {Ref: &workflow.Ref{Task: "extract", Path: []string{"user", "name"}}},
		}},
		workflow.Task{Name: "load", DependsOn: []string{"transform", "extract"}, Inputs: map[string]workflow.Binding{
			"rows": {Ref: &workflow.Ref{Task: "transform"}},
			"user": {Ref: &workflow.Ref{Task: "extract", Path: []string{"user"}}},
		}},
	)
	h.publish(submission("run-chain", "", p))
	if e := h.waitEvent(event.TypeRunStarted, "run-chain", ""); e.Workflow != "chain" {
		t.Fatalf("run.started workflow %q", e.Workflow)
	}
	d := h.nextDispatch()
	if d.Task.Name != "extract" || d.Attempt != 1 || d.Inputs != nil || d.Dir != "/srv/flows" || d.Workflow != "chain" || d.NotBefore != nil {
		t.Fatalf("first dispatch %+v", d)
	}
	h.publish(succeeded(d, `{"user":{"name":"ann","id":7},"n":2}`))
	d = h.nextDispatch()
	if d.Task.Name != "transform" {
		t.Fatalf("second dispatch is %s", d.Task.Name)
	}
	assertJSON(t, d.Inputs, `{"limit":5,"who":"ann"}`)
	h.publish(succeeded(d, `[1,2,3]`))
	d = h.nextDispatch()
	if d.Task.Name != "load" {
		t.Fatalf("third dispatch is %s", d.Task.Name)
	}
	assertJSON(t, d.Inputs, `{"rows":[1,2,3],"user":{"name":"ann","id":7}}`)
	h.publish(succeeded(d, ""))
	if e := h.waitEvent(event.TypeRunFinished, "run-chain", ""); e.Status != event.RunSuccess || e.Error != "" {
		t.Fatalf("run.finished %+v", e)
	}
	if n := h.dispatchCount(); n != 3 {
		t.Fatalf("%d dispatches, want 3", n)
	}
}

func assertJSON(t *testing.T, got json.RawMessage, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("inputs %s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	gs, _ := json.Marshal(g)
	ws, _ := json.Marshal(w)
	if string(gs) != string(ws) {
		t.Fatalf("inputs %s, want %s", gs, ws)
	}
}

func TestServiceRetriesAndSkips(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.start(Config{})
	p := plan("flaky",
		workflow.Task{Name: "a", Retries: 1},
		workflow.Task{Name: "b", DependsOn: []string{"a"}},
		workflow.Task{Name: "c", DependsOn: []string{"b"}},
		workflow.Task{Name: "side"},
	)
	h.publish(submission("run-flaky", "", p))
	ds := h.nextDispatches(2)
	if ds["a"].Attempt != 1 || ds["side"].Attempt != 1 {
		t.Fatalf("first dispatches %+v", ds)
	}
	failedAt := time.Now()
	h.publish(failed(ds["a"], "boom 1"))
	retry := h.nextDispatch()
	if retry.Task.Name != "a" || retry.Attempt != 2 || retry.NotBefore == nil {
		t.Fatalf("retry %+v", retry)
	}
	// Base 20ms with jitter 0.5: NotBefore is 10ms to 20ms after the failure was handled, which
	// happened after failedAt and before the retry was published (DispatchedAt). Only those two
	// clocks are known here; a busy machine may put any time between them.
	if early := retry.NotBefore.Sub(failedAt); early < 10*time.Millisecond {
		t.Fatalf("retry not before %s, only %s after the failure was published (want at least 10ms)", retry.NotBefore, early)
	}
	if late := retry.NotBefore.Sub(retry.DispatchedAt); late > 20*time.Millisecond {
		t.Fatalf("retry not before %s, %s after it was dispatched (want at most 20ms)", retry.NotBefore, late)
	}
	if retry.NotBefore.Before(failedAt) {
		t.Fatal("retry not before the failure")
	}
	if e := h.waitEvent(event.TypeTaskDispatched, "run-flaky", "a"); e.Attempt != 1 {
		t.Fatalf("first task.dispatched of a has attempt %d", e.Attempt)
	}
	if e := h.waitEvent(event.TypeTaskDispatched, "run-flaky", "a"); e.Attempt != 2 || e.NotBefore == nil {
		t.Fatalf("task.dispatched of the retry: %+v", e)
	}
	h.publish(failed(retry, "boom 2"))
	for _, task := range []string{"b", "c"} {
		if e := h.waitEvent(event.TypeTaskSkipped, "run-flaky", task); e.Reason != event.ReasonUpstreamFailed {
			t.Fatalf("skip of %s: %+v", task, e)
		}
	}
	// The other branch goes on and the run ends only then.
	h.publish(succeeded(ds["side"], ""))
	e := h.waitEvent(event.TypeRunFinished, "run-flaky", "")
	if e.Status != event.RunFailed || e.Error != `task "a" failed: boom 2` {
		t.Fatalf("run.finished %+v", e)
	}
	if n := h.dispatchCount(); n != 3 {
		t.Fatalf("%d dispatches, want 3", n)
	}
}

func TestServiceIdempotentSubmission(t *testing.T) {
	t.Parallel()
	h := setup(t)
	// One event at a time, so a later run's start proves the earlier events were handled.
	h.start(Config{Concurrency: 1})
	p := plan("once", workflow.Task{Name: "a"})
	first := submission("", "nightly-2026-01-01", p)
	h.publish(first)
	runID := event.DeriveRunID("nightly-2026-01-01")
	h.waitEvent(event.TypeRunStarted, runID, "")
	if d := h.nextDispatch(); d.RunID != runID {
		t.Fatalf("dispatch of %s, want %s", d.RunID, runID)
	}
	// The same key again, past the stream's deduplication window (another Nats-Msg-Id), and under
	// another explicit run id.
	again := submission("other-run", "nightly-2026-01-01", p)
	m, err := bus.EventMsg(&again)
	if err != nil {
		t.Fatal(err)
	}
	m.MsgID += "/late"
	if err := h.b.Publish(h.ctx, m); err != nil {
		t.Fatal(err)
	}
	// A redelivered copy of the first submission is harmless too.
	m, err = bus.EventMsg(&first)
	if err != nil {
		t.Fatal(err)
	}
	m.MsgID += "/copy"
	if err := h.b.Publish(h.ctx, m); err != nil {
		t.Fatal(err)
	}
	// The marker's own dispatch, waited for itself (its run.started is published before it), is
	// the next one: the duplicates dispatched nothing in between.
	h.marker("marker")
	if n := h.dispatchCount(); n != 2 {
		t.Fatalf("%d dispatches, want 2 (one per run)", n)
	}
	if _, err := h.kv.Get(h.ctx, stateKey("other-run")); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("state of the duplicate run: %v", err)
	}
}

func TestServiceInvalidPlanFailsRun(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.start(Config{})
	p := plan("broken", workflow.Task{Name: "a", DependsOn: []string{"nope"}})
	h.publish(submission("run-broken", "", p))
	e := h.waitEvent(event.TypeRunFinished, "run-broken", "")
	if e.Status != event.RunFailed || !strings.Contains(e.Error, "invalid workflow") || !strings.Contains(e.Error, "nope") {
		t.Fatalf("run.finished %+v", e)
	}
	empty := submission("run-empty", "", p)
	empty.Plan = nil
	h.publish(empty)
	if e := h.waitEvent(event.TypeRunFinished, "run-empty", ""); e.Status != event.RunFailed {
		t.Fatalf("run.finished %+v", e)
	}
}

func TestServiceIgnoresUnknownRunsAndTermsGarbage(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.start(Config{Concurrency: 1})
	stray := event.New(event.TypeTaskSucceeded, "no-such-run", "a", 1)
	h.publish(stray)
	// A run id that cannot be a KV key token is acknowledged and ignored, not redelivered forever.
	if err := h.b.Publish(h.ctx, bus.Msg{Subject: event.SubjectEvent("task.failed", "x"), MsgID: "bad-run-id",
		Data: []byte(`{"v":1,"id":"x","type":"task.failed","run_id":"a b*","task":"t","attempt":1}`)}); err != nil {
		t.Fatal(err)
	}
	if err := h.b.Publish(h.ctx, bus.Msg{Subject: event.SubjectEvent("task.failed", "x"), MsgID: "garbage", Data: []byte("{not json")}); err != nil {
		t.Fatal(err)
	}
	h.publish(submission("marker", "", plan("marker", workflow.Task{Name: "m"})))
	h.waitEvent(event.TypeRunStarted, "marker", "")
	cons, err := h.b.JS.Consumer(h.ctx, event.StreamEvents, DurableDefault)
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The marker itself may still await its ack; nothing before it does.
	if info.NumPending != 0 || info.NumAckPending > 1 || info.NumRedelivered != 0 {
		t.Fatalf("consumer: pending %d, ack pending %d, redelivered %d", info.NumPending, info.NumAckPending, info.NumRedelivered)
	}
}

func TestServiceCompactsFinishedRuns(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.start(Config{Concurrency: 1})
	p := plan("small", workflow.Task{Name: "a"},
		workflow.Task{Name: "b", DependsOn: []string{"a"}, Inputs: map[string]workflow.Binding{"x": {Ref: &workflow.Ref{Task: "a"}}}})
	h.publish(submission("run-small", "", p))
	d := h.nextDispatch()
	h.publish(succeeded(d, `{"v":1}`))
	d = h.nextDispatch()
	if _, err := h.kv.Get(h.ctx, outKey("run-small", "a")); err != nil {
		t.Fatalf("output of a while the run is active: %v", err)
	}
	h.publish(succeeded(d, `2`))
	h.waitEvent(event.TypeRunFinished, "run-small", "")
	h.marker("marker")
	entry, err := h.kv.Get(h.ctx, stateKey("run-small"))
	if err != nil {
		t.Fatal(err)
	}
	var st RunState
	if err := st.UnmarshalBinary(entry.Value()); err != nil || !st.Compacted || st.Status != RunSucceeded {
		t.Fatalf("state after finish: %+v %v", st, err)
	}
	for _, key := range []string{planKey("run-small"), outKey("run-small", "a")} {
		if _, err := h.kv.Get(h.ctx, key); !errors.Is(err, jetstream.ErrKeyNotFound) && !errors.Is(err, jetstream.ErrKeyDeleted) {
			t.Fatalf("%s after finish: %v", key, err)
		}
	}
	// A late replay of the run's submission starts nothing.
	again := submission("run-small", "", p)
	m, _ := bus.EventMsg(&again)
	m.MsgID += "/late"
	if err := h.b.Publish(h.ctx, m); err != nil {
		t.Fatal(err)
	}
	// Waiting for marker2's run.started is not enough: its dispatch is published after it.
	h.marker("marker2")
	if n := h.dispatchCount(); n != 4 {
		t.Fatalf("%d dispatches, want 4", n)
	}
}

// TestServiceRedeliveryRepublishes plays a scheduler that wrote the run state and died before
// publishing: the redelivered event must publish what it caused.
func TestServiceRedeliveryRepublishes(t *testing.T) {
	t.Parallel()
	h := setup(t)
	cons, err := h.b.Consumer(h.ctx, bus.ConsumerSpec{Stream: event.StreamEvents, Durable: DurableDefault, Filters: Filters,
		AckWait: AckWaitDefault})
	if err != nil {
		t.Fatal(err)
	}
	p := plan("crash", workflow.Task{Name: "a"}, workflow.Task{Name: "b", DependsOn: []string{"a"}})
	g, err := NewGraph(p)
	if err != nil {
		t.Fatal(err)
	}
	st := NewRunState(g)
	planData, _ := json.Marshal(p)
	if _, err := h.kv.Create(h.ctx, planKey("run-crash"), planData); err != nil {
		t.Fatal(err)
	}
	// crashAfterWrite takes the event's first delivery, applies it to the KV state like the
	// scheduler would, and naks it without publishing anything.
	crashAfterWrite := func(e event.Event, create bool) {
		t.Helper()
		h.publish(e)
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(waitLimit))
		if err != nil {
			t.Fatal(err)
		}
		var m jetstream.Msg
		for m = range batch.Messages() {
		}
		if m == nil {
			t.Fatalf("no delivery of %s: %v", e.Type, batch.Error())
		}
		got, err := event.DecodeEvent(m.Data())
		if err != nil || got.ID != e.ID {
			t.Fatalf("fetched %+v, %v", got, err)
		}
		if c, err := Apply(g, st, &got, time.Now(), testPolicy); err != nil || c.Outcome != Applied {
			t.Fatalf("applying %s: %v %v", got.Type, c.Outcome, err)
		}
		data, _ := st.MarshalBinary()
		if create {
			_, err = h.kv.Create(h.ctx, stateKey("run-crash"), data)
		} else {
			_, err = h.kv.Put(h.ctx, stateKey("run-crash"), data)
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Nak(); err != nil {
			t.Fatal(err)
		}
	}
	crashAfterWrite(submission("run-crash", "", p), true)
	h.start(Config{})
	h.waitEvent(event.TypeRunStarted, "run-crash", "")
	d := h.nextDispatch()
	if d.Task.Name != "a" || d.Attempt != 1 {
		t.Fatalf("re-published dispatch %+v", d)
	}
	if n := h.dispatchCount(); n != 1 {
		t.Fatalf("%d dispatches, want 1", n)
	}
	h.publish(succeeded(d, ""))
	d = h.nextDispatch()
	h.publish(succeeded(d, ""))
	if e := h.waitEvent(event.TypeRunFinished, "run-crash", ""); e.Status != event.RunSuccess {
		t.Fatalf("run.finished %+v", e)
	}
}

// TestServiceTwoInstances runs two schedulers on one consumer: every task is dispatched exactly once
// and every run finishes once.
func TestServiceTwoInstances(t *testing.T) {
	t.Parallel()
	h := setup(t)
	// Tiny caches make the instances reload and collide on the revision often.
	h.start(Config{Concurrency: 8, CachedRuns: 1})
	h.start(Config{Concurrency: 8, CachedRuns: 1})
	const runs, width = 6, 20
	var tasks []workflow.Task
	tasks = append(tasks, workflow.Task{Name: "root"})
	var mids []string
	for i := range width {
		name := fmt.Sprintf("mid%02d", i)
		mids = append(mids, name)
		tasks = append(tasks, workflow.Task{Name: name, DependsOn: []string{"root"}})
	}
	tasks = append(tasks, workflow.Task{Name: "join", DependsOn: mids})
	p := plan("fan", tasks...)
	var subs []event.Event
	for r := range runs {
		subs = append(subs, submission(fmt.Sprintf("fan-%d", r), "", p))
	}
	h.publish(subs...)

	seen := make(map[string]int)
	total := runs * (width + 2)
	for range total {
		d := h.nextDispatch()
		seen[d.MsgID()]++
		h.publish(succeeded(d, ""))
	}
	for r := range runs {
		if e := h.waitEvent(event.TypeRunFinished, fmt.Sprintf("fan-%d", r), ""); e.Status != event.RunSuccess {
			t.Fatalf("run %d finished %s", r, e.Status)
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s delivered %d times", id, n)
		}
	}
	if len(seen) != total {
		t.Fatalf("%d distinct dispatches, want %d", len(seen), total)
	}
	if n := h.dispatchCount(); n != uint64(total) {
		t.Fatalf("%d dispatches stored, want %d", n, total)
	}
}

func TestServiceUnresolvableInputFailsTheTask(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.start(Config{})
	p := plan("badref", workflow.Task{Name: "a"},
		workflow.Task{Name: "b", DependsOn: []string{"a"}, Inputs: map[string]workflow.Binding{
			"v": {Ref: &workflow.Ref{Task: "a", Path: []string{"missing"}}}}})
	h.publish(submission("run-badref", "", p))
	d := h.nextDispatch()
	h.publish(succeeded(d, `{"x":1}`))
	e := h.waitEvent(event.TypeRunFinished, "run-badref", "")
	want := `task "b" failed: input "v": the output of "a": output has no field "missing"`
	if e.Status != event.RunFailed || e.Error != want {
		t.Fatalf("run.finished %q %q, want error %q", e.Status, e.Error, want)
	}
	if n := h.dispatchCount(); n != 1 {
		t.Fatalf("%d dispatches, want 1: b must not reach an executor", n)
	}
}
