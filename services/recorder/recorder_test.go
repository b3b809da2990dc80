package recorder_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/bus/bustest"
	"github.com/ork-go/ork/pkg/client"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/poll"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/workflow"
	"github.com/ork-go/ork/services/recorder"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, bustest.ServerLeftovers()...) }

// fastRetry makes failing writes retry, and orphans come back, in milliseconds.
var fastRetry = recorder.Config{RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond,
	OrphanDelay: time.Millisecond, OrphanDelayMax: 5 * time.Millisecond, OrphanMaxAge: 50 * time.Millisecond}

type fixture struct {
	t      testing.TB
	bus    *bus.Bus
	client *client.Client
	ctx    context.Context

	mu            sync.Mutex
	committed     map[string]int // messages committed per stream
	registrations int            // registry changes committed
	changed       chan struct{}
}

func setup(t testing.TB) *fixture {
	t.Helper()
	return setupOn(t, bustest.Start(t))
}

// setupOn is setup on a server the test started.
func setupOn(t testing.TB, srv *server.Server) *fixture {
	t.Helper()
	b, err := bus.Connect(bus.Config{URL: srv.ClientURL()}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(b.Close)
	f := fixtureOn(t, b)
	if err := b.Provision(f.ctx); err != nil {
		t.Fatalf("provision: %v", err)
	}
	return f
}

// fixtureOn is a fixture on a connection the test made, to a provisioned server.
func fixtureOn(t testing.TB, b *bus.Bus) *fixture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return &fixture{
		t: t, bus: b, client: client.New(b), ctx: ctx,
		committed: map[string]int{}, changed: make(chan struct{}, 1),
	}
}

// start runs a recorder on st until the returned stop is called (or the test ends); stop returns
// Run's error.
func (f *fixture) start(st store.Store, cfg recorder.Config) (stop func() error) {
	f.t.Helper()
	rec, err := recorder.New(f.bus, st, cfg, zaptest.NewLogger(f.t).Named("recorder"))
	if err != nil {
		f.t.Fatalf("new recorder: %v", err)
	}
	rec.OnCommit = func(c recorder.Commit) {
		f.mu.Lock()
		f.committed[c.Stream] += c.Messages
		f.registrations += c.Registrations
		f.mu.Unlock()
		select {
		case f.changed <- struct{}{}:
		default:
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rec.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			runErr = <-done
		})
		return runErr
	}
	f.t.Cleanup(func() {
		if err := stop(); err != nil {
			f.t.Errorf("recorder run: %v", err)
		}
	})
	return stop
}

// waitCommitted waits until at least n messages of stream are committed.
func (f *fixture) waitCommitted(stream string, n int) {
	f.t.Helper()
	for {
		f.mu.Lock()
		got := f.committed[stream]
		f.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-f.changed:
		case <-f.ctx.Done():
			f.t.Fatalf("%d of %d messages of %s committed", got, n, stream)
		}
	}
}

// watch subscribes to the recorded notice of run; wait returns the status it carries.
func (f *fixture) watch(run string) (wait func() string) {
	f.t.Helper()
	rec, err := f.client.WatchRecorded(run)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { _ = rec.Close() })
	return func() string {
		f.t.Helper()
		status, err := rec.Wait(f.ctx)
		if err != nil {
			f.t.Fatalf("waiting for recorded notice of %s: %v", run, err)
		}
		return status
	}
}

func (f *fixture) publish(msgs ...bus.Msg) {
	f.t.Helper()
	if err := f.bus.Publish(f.ctx, msgs...); err != nil {
		f.t.Fatalf("publish: %v", err)
	}
}

func eventMsgs(t testing.TB, events ...event.Event) []bus.Msg {
	t.Helper()
	msgs := make([]bus.Msg, len(events))
	for i := range events {
		m, err := bus.EventMsg(&events[i])
		if err != nil {
			t.Fatal(err)
		}
		msgs[i] = m
	}
	return msgs
}

func logMsg(t *testing.T, run, task string, attempt int, lines ...string) bus.Msg {
	t.Helper()
	lb := event.LogBatch{V: event.SchemaVersion, RunID: run, Task: task, Attempt: attempt}
	for i, l := range lines {
		lb.Lines = append(lb.Lines, event.LogLine{Seq: int64(i + 1), Stream: event.Stdout, Line: l, Time: time.Now().UTC()})
	}
	m, err := bus.LogMsg(&lb)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func testPlan(name string, tasks ...string) *workflow.Plan {
	p := &workflow.Plan{Name: name, Dir: "/tmp/" + name, Hash: name + "-hash"}
	for i, tk := range tasks {
		p.Tasks = append(p.Tasks, workflow.Task{Name: tk, Index: i, Executor: workflow.ExecutorNoop, TimeoutSeconds: 300})
	}
	return p
}

// runEvents returns the events of a whole successful run of p.
func runEvents(run string, p *workflow.Plan) []event.Event {
	sub := event.New(event.TypeRunSubmitted, run, "", 0)
	sub.Workflow, sub.Plan, sub.TriggeredBy = p.Name, p, "test"
	evs := []event.Event{sub, event.New(event.TypeRunStarted, run, "", 0)}
	for _, tk := range p.Tasks {
		d := event.New(event.TypeTaskDispatched, run, tk.Name, 1)
		d.Executor = tk.Executor
		s := event.New(event.TypeTaskStarted, run, tk.Name, 1)
		ok := event.New(event.TypeTaskSucceeded, run, tk.Name, 1)
		ok.Output = []byte(`{"n":1}`)
		evs = append(evs, d, s, ok)
	}
	fin := event.New(event.TypeRunFinished, run, "", 0)
	fin.Status = event.RunSuccess
	return append(evs, fin)
}

// checkRunSucceeded checks that st holds run as a success with every task a success at attempt 1.
func checkRunSucceeded(t *testing.T, ctx context.Context, st store.Store, run string, tasks int) {
	t.Helper()
	r, err := st.RunGet(ctx, store.RunGetParams{ID: run})
	if err != nil {
		t.Fatalf("run %s: %v", run, err)
	}
	if r.Status != event.RunSuccess {
		t.Errorf("run status %q, want success", r.Status)
	}
	ts, err := st.TaskList(ctx, store.TaskListParams{RunID: run})
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != tasks {
		t.Fatalf("%d tasks, want %d", len(ts), tasks)
	}
	for _, tk := range ts {
		if tk.Status != event.TaskSuccess || tk.Attempt != 1 {
			t.Errorf("task %s: %s at attempt %d", tk.Name, tk.Status, tk.Attempt)
		}
	}
}

func TestRecordsRun(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		f := setup(t)
		st := open(t)
		f.start(st, recorder.Config{})
		run := event.NewID()
		wait := f.watch(run)
		p := testPlan("hello", "a", "b")
		f.publish(logMsg(t, run, "a", 1, "one", "two"), logMsg(t, run, "b", 1, "three"))
		f.publish(eventMsgs(t, runEvents(run, p)...)...)

		if status := wait(); status != event.RunSuccess {
			t.Fatalf("notice status %q, want success", status)
		}
		checkRunSucceeded(t, f.ctx, st, run, 2)
		f.waitCommitted(event.StreamLogs, 2)
		lines, err := st.LogList(f.ctx, store.LogListParams{RunID: run})
		if err != nil {
			t.Fatal(err)
		}
		if len(lines) != 3 {
			t.Errorf("%d log lines, want 3: %+v", len(lines), lines)
		}
	})
}

func TestFailedRunWithSkippedTask(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		f := setup(t)
		st := open(t)
		f.start(st, fastRetry)
		run := event.NewID()
		wait := f.watch(run)
		p := testPlan("failing", "a", "b")
		p.Tasks[1].DependsOn = []string{"a"}
		sub := event.New(event.TypeRunSubmitted, run, "", 0)
		sub.Workflow, sub.Plan = p.Name, p
		failed := event.New(event.TypeTaskFailed, run, "a", 1)
		failed.Reason, failed.Error, failed.ExitCode = event.ReasonExit, "exit status 3", new(3)
		// b never ran: it is skipped without an attempt.
		skipped := event.New(event.TypeTaskSkipped, run, "b", 0)
		skipped.Reason, skipped.Error = event.ReasonUpstreamFailed, `upstream task "a" failed`
		fin := event.New(event.TypeRunFinished, run, "", 0)
		fin.Status, fin.Error = event.RunFailed, "task a failed"
		evs := []event.Event{sub, event.New(event.TypeRunStarted, run, "", 0),
			event.New(event.TypeTaskDispatched, run, "a", 1), event.New(event.TypeTaskStarted, run, "a", 1),
			failed, skipped, fin}
		f.publish(eventMsgs(t, evs...)...)

		if status := wait(); status != event.RunFailed {
			t.Fatalf("notice status %q, want failed", status)
		}
		f.waitCommitted(event.StreamEvents, len(evs))
		r, err := st.RunGet(f.ctx, store.RunGetParams{ID: run})
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != event.RunFailed {
			t.Errorf("run %s, want failed", r.Status)
		}
		ts, err := st.TaskList(f.ctx, store.TaskListParams{RunID: run})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, tk := range ts {
			got[tk.Name] = tk.Status
		}
		if got["a"] != event.TaskFailed || got["b"] != event.TaskSkipped {
			t.Errorf("task statuses %v, want a failed, b skipped", got)
		}
		dls, err := st.DeadLetterList(f.ctx, store.DeadLetterListParams{})
		if err != nil {
			t.Fatal(err)
		}
		if len(dls) != 0 {
			t.Errorf("dead letters %+v", dls)
		}
	})
}

func TestDeadLetters(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		f := setup(t)
		st := open(t)
		unknown := event.NewID()
		noAttempt := event.New(event.TypeTaskStarted, unknown, "a", 0)
		orphan := event.New(event.TypeTaskStarted, unknown, "a", 1)
		orphanMsg := eventMsgs(t, orphan)[0]
		noAttemptMsg := eventMsgs(t, noAttempt)[0]
		hugeMsg := eventMsgs(t, event.New(event.TypeTaskStarted, unknown, strings.Repeat("x", 5000), 1))[0]
		bad := []struct {
			msg    bus.Msg
			reason string
		}{
			{bus.Msg{Subject: event.SubjectEvent("task.started", unknown), Data: []byte("\x00garbage")}, "decoding event"},
			{bus.Msg{Subject: event.SubjectEvent("run.started", unknown), Data: []byte(`{"v":99,"id":"x","type":"run.started","run_id":"` + unknown + `"}`)}, "unknown schema version"},
			{bus.Msg{Subject: event.SubjectEvent("task.exploded", unknown), Data: []byte(`{"v":1,"id":"y","type":"task.exploded","run_id":"` + unknown + `"}`)}, "unknown event type"},
			{bus.Msg{Subject: noAttemptMsg.Subject, Data: noAttemptMsg.Data}, "without task or attempt"},
			{hugeMsg, "field task is 5000 bytes, over its limit of 1024"},
			{orphanMsg, "orphan"},
			{bus.Msg{Subject: (&event.LogBatch{RunID: unknown, Task: "a"}).Subject(), Data: []byte("[1,2")}, "decoding log batch"},
		}
		for _, b := range bad {
			f.publish(b.msg)
		}
		// A good run behind the bad messages is recorded: they do not block the stream.
		run := event.NewID()
		wait := f.watch(run)
		good := runEvents(run, testPlan("after", "a"))
		f.publish(eventMsgs(t, good...)...)
		f.start(st, fastRetry)

		if status := wait(); status != event.RunSuccess {
			t.Fatalf("notice status %q", status)
		}
		checkRunSucceeded(t, f.ctx, st, run, 1)
		f.waitCommitted(event.StreamEvents, len(bad)-1+len(good))
		f.waitCommitted(event.StreamLogs, 1)
		dls, err := st.DeadLetterList(f.ctx, store.DeadLetterListParams{})
		if err != nil {
			t.Fatal(err)
		}
		if len(dls) != len(bad) {
			t.Fatalf("%d dead letters, want %d: %+v", len(dls), len(bad), dls)
		}
		for _, b := range bad {
			var found *store.DeadLetter
			for i := range dls {
				if bytes.Equal(dls[i].Data, b.msg.Data) {
					found = &dls[i]
				}
			}
			if found == nil {
				t.Errorf("no dead letter for %s %q", b.msg.Subject, b.msg.Data)
				continue
			}
			wantStream := event.StreamEvents
			if event.IsLogSubject(b.msg.Subject) {
				wantStream = event.StreamLogs
			}
			if found.Stream != wantStream || found.Subject != b.msg.Subject || found.Seq == 0 || !strings.Contains(found.Reason, b.reason) {
				t.Errorf("dead letter %s/%d %s %q, want stream %s subject %s reason ~%q",
					found.Stream, found.Seq, found.Subject, found.Reason, wantStream, b.msg.Subject, b.reason)
			}
		}
	})
}

func TestReplayIsHarmless(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		f := setup(t)
		st := open(t)
		run := event.NewID()
		p := testPlan("replay", "a", "b", "c")
		evs := eventMsgs(t, runEvents(run, p)...)
		logs := logMsg(t, run, "a", 1, "x", "y")
		f.publish(append(evs, logs)...)
		// The same messages again without their ids: the stream keeps both copies, the store one.
		again := make([]bus.Msg, 0, len(evs)+1)
		for _, m := range append(evs, logs) {
			m.MsgID = ""
			again = append(again, m)
		}
		f.publish(again...)
		f.start(st, recorder.Config{BatchSize: 4})

		f.waitCommitted(event.StreamEvents, 2*len(evs))
		f.waitCommitted(event.StreamLogs, 2)
		checkRunSucceeded(t, f.ctx, st, run, 3)
		lines, err := st.LogList(f.ctx, store.LogListParams{RunID: run})
		if err != nil {
			t.Fatal(err)
		}
		if len(lines) != 2 {
			t.Errorf("%d log lines, want 2", len(lines))
		}
		runs, err := st.RunList(f.ctx, store.RunListParams{})
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) != 1 {
			t.Errorf("%d runs, want 1", len(runs))
		}
		dls, err := st.DeadLetterList(f.ctx, store.DeadLetterListParams{})
		if err != nil {
			t.Fatal(err)
		}
		if len(dls) != 0 {
			t.Errorf("replay made dead letters: %+v", dls)
		}
	})
}

func TestEventsAheadOfTheirSubmissionAreApplied(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		f := setup(t)
		st := open(t)
		run := event.NewID()
		wait := f.watch(run)
		evs := runEvents(run, testPlan("late", "a"))
		// The stream holds the run's events before its submission, as after a redelivery.
		msgs := eventMsgs(t, append(evs[1:], evs[0])...)
		f.publish(msgs...)
		f.start(st, fastRetry)

		if status := wait(); status != event.RunSuccess {
			t.Fatalf("notice status %q", status)
		}
		f.waitCommitted(event.StreamEvents, len(evs))
		checkRunSucceeded(t, f.ctx, st, run, 1)
		dls, err := st.DeadLetterList(f.ctx, store.DeadLetterListParams{})
		if err != nil {
			t.Fatal(err)
		}
		if len(dls) != 0 {
			t.Errorf("dead letters %+v", dls)
		}
	})
}

// orphanCountingStore counts the writes that returned orphans.
type orphanCountingStore struct {
	store.Store
	orphanWrites atomic.Int64
	changed      chan struct{}
}

func (s *orphanCountingStore) ApplyBatch(ctx context.Context, p store.ApplyBatchParams) (store.ApplyBatchResult, error) {
	res, err := s.Store.ApplyBatch(ctx, p)
	if err == nil && len(res.Orphans) > 0 {
		s.orphanWrites.Add(1)
		select {
		case s.changed <- struct{}{}:
		default:
		}
	}
	return res, err
}

// A run's events recorded long before its submission arrives, as when a recorder crashed holding
// the submission and it comes back only after AckWait, wait for it: they are delivered again and
// again, far more than a few times, and all applied once it is there; nothing is dead-lettered.
func TestOrphansWaitForALateSubmission(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		f := setup(t)
		st := &orphanCountingStore{Store: open(t), changed: make(chan struct{}, 1)}
		run := event.NewID()
		wait := f.watch(run)
		evs := runEvents(run, testPlan("late", "a", "b"))
		f.publish(eventMsgs(t, evs[1:]...)...)
		f.start(st, recorder.Config{OrphanDelay: 5 * time.Millisecond, OrphanDelayMax: 20 * time.Millisecond,
			OrphanMaxAge: time.Minute})
		// The old rule dead-lettered an orphan at its third delivery.
		for st.orphanWrites.Load() < 8 {
			select {
			case <-st.changed:
			case <-f.ctx.Done():
				t.Fatalf("orphans written %d times", st.orphanWrites.Load())
			}
		}
		f.publish(eventMsgs(t, evs[0])...)

		if status := wait(); status != event.RunSuccess {
			t.Fatalf("notice status %q", status)
		}
		f.waitCommitted(event.StreamEvents, len(evs))
		checkRunSucceeded(t, f.ctx, st, run, 2)
		dls, err := st.DeadLetterList(f.ctx, store.DeadLetterListParams{})
		if err != nil {
			t.Fatal(err)
		}
		if len(dls) != 0 {
			t.Errorf("dead letters %+v", dls)
		}
	})
}

// slowStore takes `slow` over its first write of events, like a database under load.
type slowStore struct {
	store.Store
	slow  time.Duration
	first atomic.Bool
}

func (s *slowStore) ApplyBatch(ctx context.Context, p store.ApplyBatchParams) (store.ApplyBatchResult, error) {
	if len(p.Events) > 0 && s.first.CompareAndSwap(false, true) {
		select {
		case <-time.After(s.slow):
		case <-ctx.Done():
			return store.ApplyBatchResult{}, ctx.Err()
		}
	}
	return s.Store.ApplyBatch(ctx, p)
}

// A write that takes several times AckWait does not get its batch redelivered: the recorder
// keeps the messages in progress.
func TestSlowWriteIsNotRedelivered(t *testing.T) {
	t.Parallel()
	f := setup(t)
	st := &slowStore{Store: openSQLite(t), slow: 3500 * time.Millisecond}
	run := event.NewID()
	wait := f.watch(run)
	evs := runEvents(run, testPlan("slow", "a"))
	f.publish(eventMsgs(t, evs...)...)
	f.start(st, recorder.Config{AckWait: time.Second, BatchWait: 100 * time.Millisecond})

	if status := wait(); status != event.RunSuccess {
		t.Fatalf("notice status %q", status)
	}
	f.waitCommitted(event.StreamEvents, len(evs))
	cons, err := f.bus.JS.Consumer(f.ctx, event.StreamEvents, event.ConsumerRecorderEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.NumRedelivered != 0 || info.Delivered.Stream != uint64(len(evs)) || info.Delivered.Consumer != uint64(len(evs)) {
		t.Errorf("delivered %+v, %d redelivered; want %d messages delivered once", info.Delivered, info.NumRedelivered, len(evs))
	}
}

// failingStore fails its first `failures` writes, or every write while `always` is set.
type failingStore struct {
	store.Store
	failures atomic.Int64
	always   atomic.Bool
	calls    atomic.Int64
	called   chan struct{}
}

var errDown = errors.New("database down")

func newFailingStore(inner store.Store, failures int64) *failingStore {
	s := &failingStore{Store: inner, called: make(chan struct{}, 1)}
	s.failures.Store(failures)
	return s
}

func (s *failingStore) ApplyBatch(ctx context.Context, p store.ApplyBatchParams) (store.ApplyBatchResult, error) {
	s.calls.Add(1)
	defer func() {
		select {
		case s.called <- struct{}{}:
		default:
		}
	}()
	if s.always.Load() || s.failures.Add(-1) >= 0 {
		return store.ApplyBatchResult{}, errDown
	}
	return s.Store.ApplyBatch(ctx, p)
}

func TestRetriesUntilCommit(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		f := setup(t)
		inner := open(t)
		st := newFailingStore(inner, 4)
		cfg := fastRetry
		cfg.IsolateAfter = 1000 // retry the whole batch, never split it
		run := event.NewID()
		wait := f.watch(run)
		evs := runEvents(run, testPlan("flaky", "a", "b"))
		f.publish(eventMsgs(t, evs...)...)
		f.start(st, cfg)

		if status := wait(); status != event.RunSuccess {
			t.Fatalf("notice status %q", status)
		}
		checkRunSucceeded(t, f.ctx, inner, run, 2)
		if n := st.calls.Load(); n < 5 {
			t.Errorf("%d writes, want at least 5 (4 failures and a commit)", n)
		}
		f.waitCommitted(event.StreamEvents, len(evs))
		f.mu.Lock()
		defer f.mu.Unlock()
		if got := f.committed[event.StreamEvents]; got != len(evs) {
			t.Errorf("%d events committed, want %d exactly", got, len(evs))
		}
	})
}

func TestUncommittedBatchIsRedelivered(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		f := setup(t)
		inner := open(t)
		down := newFailingStore(inner, 0)
		down.always.Store(true)
		run := event.NewID()
		wait := f.watch(run)
		evs := runEvents(run, testPlan("outage", "a"))
		f.publish(eventMsgs(t, evs...)...)

		// A recorder whose database is down writes nothing, acknowledges nothing, and stops cleanly.
		stop := f.start(down, fastRetry)
		for range 3 {
			select {
			case <-down.called:
			case <-f.ctx.Done():
				t.Fatal("recorder did not write")
			}
		}
		if err := stop(); err != nil {
			t.Fatalf("stopping recorder: %v", err)
		}
		if _, err := inner.RunGet(f.ctx, store.RunGetParams{ID: run}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("run stored during the outage: %v", err)
		}
		cons, err := f.bus.JS.Consumer(f.ctx, event.StreamEvents, event.ConsumerRecorderEvents)
		if err != nil {
			t.Fatal(err)
		}
		info, err := cons.Info(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.AckFloor.Stream != 0 {
			t.Fatalf("ack floor %d after an outage, want 0", info.AckFloor.Stream)
		}

		// The next recorder gets the same messages and stores them once.
		f.start(inner, fastRetry)
		if status := wait(); status != event.RunSuccess {
			t.Fatalf("notice status %q", status)
		}
		checkRunSucceeded(t, f.ctx, inner, run, 1)
		f.waitCommitted(event.StreamEvents, len(evs))
		waitAcked(t, f.ctx, cons, uint64(len(evs)))
	})
}

// waitAcked waits until the consumer's ack floor reaches seq. Acks are asynchronous, so it asks
// again after each short wait, bounded by ctx.
func waitAcked(t *testing.T, ctx context.Context, cons jetstream.Consumer, seq uint64) {
	t.Helper()
	var info *jetstream.ConsumerInfo
	poll.Until(t, ctx, fmt.Sprintf("the ack floor to reach %d with nothing pending", seq), func() bool {
		var err error
		if info, err = cons.Info(ctx); err != nil {
			return false
		}
		return info.AckFloor.Stream >= seq && info.NumAckPending == 0
	})
}

// rejectingStore refuses any batch holding an event of task "poison".
type rejectingStore struct{ store.Store }

func (s rejectingStore) ApplyBatch(ctx context.Context, p store.ApplyBatchParams) (store.ApplyBatchResult, error) {
	for _, e := range p.Events {
		if e.Task == "poison" {
			return store.ApplyBatchResult{}, errors.New("value out of range")
		}
	}
	return s.Store.ApplyBatch(ctx, p)
}

func TestPoisonMessageIsIsolated(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		f := setup(t)
		inner := open(t)
		cfg := fastRetry
		cfg.IsolateAfter = 2
		run := event.NewID()
		wait := f.watch(run)
		evs := runEvents(run, testPlan("poisoned", "a", "poison"))
		msgs := eventMsgs(t, evs...)
		f.publish(msgs...)
		f.start(rejectingStore{inner}, cfg)

		if status := wait(); status != event.RunSuccess {
			t.Fatalf("notice status %q", status)
		}
		f.waitCommitted(event.StreamEvents, len(evs))
		ts, err := inner.TaskList(f.ctx, store.TaskListParams{RunID: run})
		if err != nil {
			t.Fatal(err)
		}
		for _, tk := range ts {
			want := event.TaskSuccess
			if tk.Name == "poison" {
				want = event.TaskPending
			}
			if tk.Status != want {
				t.Errorf("task %s %s, want %s", tk.Name, tk.Status, want)
			}
		}
		dls, err := inner.DeadLetterList(f.ctx, store.DeadLetterListParams{})
		if err != nil {
			t.Fatal(err)
		}
		if len(dls) != 3 {
			t.Fatalf("%d dead letters, want the 3 poison events: %+v", len(dls), dls)
		}
		for _, d := range dls {
			if !strings.Contains(d.Reason, "store rejected") || !strings.Contains(string(d.Data), `"task":"poison"`) {
				t.Errorf("dead letter %q %s", d.Reason, d.Data)
			}
		}
	})
}

func TestRunFailsWithoutStreams(t *testing.T) {
	t.Parallel()
	srv := bustest.Start(t)
	b, err := bus.Connect(bus.Config{URL: srv.ClientURL()}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	rec, err := recorder.New(b, openSQLite(t), recorder.Config{}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rec.Run(ctx); err == nil || !strings.Contains(err.Error(), "recorder") {
		t.Fatalf("run without streams: %v", err)
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	if err := (recorder.Config{}).WithDefaults().Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	d := recorder.Config{}.WithDefaults()
	if d.BatchSize != recorder.BatchSizeDefault || d.BatchWait != recorder.BatchWaitDefault ||
		d.MaxAckPending != recorder.MaxAckPendingFactor*recorder.BatchSizeDefault {
		t.Errorf("defaults %+v", d)
	}
	// An orphan waits for a submission a crashed recorder held, which comes back after AckWait.
	if d.OrphanMaxAge != 2*d.AckWait+recorder.OrphanMaxAgeSlack {
		t.Errorf("OrphanMaxAge %s with AckWait %s", d.OrphanMaxAge, d.AckWait)
	}
	if d := (recorder.Config{AckWait: time.Minute}).WithDefaults(); d.OrphanMaxAge != 2*time.Minute+recorder.OrphanMaxAgeSlack {
		t.Errorf("OrphanMaxAge %s with AckWait %s", d.OrphanMaxAge, d.AckWait)
	}
	for _, tc := range []struct {
		name  string
		cfg   recorder.Config
		field string
	}{
		{"batch size", recorder.Config{BatchSize: -1}, "BatchSize"},
		{"batch wait", recorder.Config{BatchWait: -time.Second}, "BatchWait"},
		{"retry order", recorder.Config{RetryMin: time.Second, RetryMax: time.Millisecond}, "RetryMax"},
		{"ack wait", recorder.Config{AckWait: time.Millisecond}, "AckWait"},
		{"max ack pending", recorder.Config{BatchSize: 100, MaxAckPending: 10}, "MaxAckPending"},
		{"isolate after", recorder.Config{IsolateAfter: -1}, "IsolateAfter"},
		{"orphan delay", recorder.Config{OrphanDelay: -time.Second}, "OrphanDelay"},
		{"orphan delay max", recorder.Config{OrphanDelay: time.Second, OrphanDelayMax: time.Millisecond}, "OrphanDelayMax"},
		{"orphan max age", recorder.Config{OrphanMaxAge: -time.Second}, "OrphanMaxAge"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.cfg.WithDefaults().Validate()
			if err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Errorf("error %v, want one naming %s", err, tc.field)
			}
		})
	}
	if _, err := recorder.New(nil, nil, recorder.Config{}, nil); err == nil {
		t.Error("New accepted nil dependencies")
	}
}

// A NUL byte in a log line is valid JSON that PostgreSQL's text type rejects: whatever the store
// does with it, the lines around it are recorded and the stream goes on.
func TestLogLineWithNULDoesNotBlock(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		f := setup(t)
		st := open(t)
		run := event.NewID()
		cfg := fastRetry
		cfg.IsolateAfter = 2
		f.publish(logMsg(t, run, "a", 1, "before"), logMsg(t, run, "b", 1, "bad\x00line"), logMsg(t, run, "c", 1, "after"))
		f.start(st, cfg)
		f.waitCommitted(event.StreamLogs, 3)

		lines, err := st.LogList(f.ctx, store.LogListParams{RunID: run})
		if err != nil {
			t.Fatal(err)
		}
		dls, err := st.DeadLetterList(f.ctx, store.DeadLetterListParams{})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, l := range lines {
			got[l.Task] = true
		}
		if !got["a"] || !got["c"] {
			t.Errorf("lines %+v, want those of tasks a and c", lines)
		}
		if got["b"] == (len(dls) == 1) || len(dls) > 1 {
			t.Errorf("the NUL line must be stored or dead-lettered, once: lines %+v, dead letters %+v", lines, dls)
		}
		t.Logf("NUL line stored: %v, dead letters: %d", got["b"], len(dls))
	})
}

// TestRecordsControlEvents checks that pause, resume and cancel requests and their answers are
// applied (or accepted) rather than dead-lettered.
func TestRecordsControlEvents(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, open opener) {
		f := setup(t)
		st := open(t)
		f.start(st, fastRetry)
		run := event.NewID()
		p := testPlan("ctl", "a")
		all := runEvents(run, p)
		sub, started := all[0], all[1]
		ctl := func(typ string) event.Event { return event.New(typ, run, "", 0) }
		evs := []event.Event{sub, started, ctl(event.TypeRunPauseRequested), ctl(event.TypeRunPaused)}
		f.publish(eventMsgs(t, evs...)...)
		f.waitCommitted(event.StreamEvents, len(evs))
		r, err := st.RunGet(f.ctx, store.RunGetParams{ID: run})
		if err != nil || r.Status != event.RunPaused {
			t.Fatalf("run after pause: %+v, %v; want paused", r, err)
		}
		wait := f.watch(run)
		cancelled := event.New(event.TypeTaskCancelled, run, "a", 0)
		fin := event.New(event.TypeRunFinished, run, "", 0)
		fin.Status, fin.Error = event.RunCancelled, "cancelled by the user"
		more := []event.Event{ctl(event.TypeRunResumeRequested), ctl(event.TypeRunResumed), ctl(event.TypeRunCancelRequested), cancelled, fin}
		f.publish(eventMsgs(t, more...)...)
		if status := wait(); status != event.RunCancelled {
			t.Fatalf("notice status %q, want cancelled", status)
		}
		dls, err := st.DeadLetterList(f.ctx, store.DeadLetterListParams{})
		if err != nil {
			t.Fatal(err)
		}
		if len(dls) != 0 {
			t.Fatalf("control events were dead-lettered: %+v", dls)
		}
		tasks, err := st.TaskList(f.ctx, store.TaskListParams{RunID: run})
		if err != nil || len(tasks) != 1 || tasks[0].Status != event.TaskCancelled {
			t.Fatalf("tasks %+v, %v; want a cancelled", tasks, err)
		}
	})
}
