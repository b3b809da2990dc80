package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/bus/bustest"
	"github.com/ork-go/ork/pkg/client"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/workflow"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type fixture struct {
	bus    *bus.Bus
	client *client.Client
	ctx    context.Context
}

func setup(t *testing.T) *fixture {
	t.Helper()
	srv := bustest.Start(t)
	b, err := bus.Connect(bus.Config{URL: srv.ClientURL(), Memory: true}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(b.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	if err := b.Provision(ctx); err != nil {
		t.Fatalf("provision: %v", err)
	}
	return &fixture{bus: b, client: client.New(b), ctx: ctx}
}

func testPlan() *workflow.Plan {
	return &workflow.Plan{
		Name: "hello", Dir: "/tmp/hello", Hash: "abc123",
		Tasks: []workflow.Task{{Name: "a", Executor: workflow.ExecutorNoop, TimeoutSeconds: 300}},
	}
}

func (f *fixture) publish(t *testing.T, events ...event.Event) {
	t.Helper()
	msgs := make([]bus.Msg, 0, len(events))
	for i := range events {
		m, err := bus.EventMsg(&events[i])
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	if err := f.bus.Publish(f.ctx, msgs...); err != nil {
		t.Fatalf("publish: %v", err)
	}
}

func (f *fixture) submittedCount(t *testing.T) uint64 {
	t.Helper()
	st, err := f.bus.JS.Stream(f.ctx, event.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(f.ctx, jetstream.WithSubjectFilter(event.SubjectRunSubmitted))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects[event.SubjectRunSubmitted]
}

func TestSubmit(t *testing.T) {
	t.Parallel()

	t.Run("publishes a decodable run.submitted with the idempotency msg id", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		runID, err := f.client.Submit(f.ctx, client.SubmitParams{Plan: testPlan(), IdempotencyKey: "key-1", TriggeredBy: "test"})
		if err != nil {
			t.Fatalf("submit: %v", err)
		}
		if want := event.DeriveRunID("key-1"); runID != want {
			t.Fatalf("run id %q, want derived %q", runID, want)
		}
		st, err := f.bus.JS.Stream(f.ctx, event.StreamEvents)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := st.GetLastMsgForSubject(f.ctx, event.SubjectRunSubmitted)
		if err != nil {
			t.Fatalf("get message: %v", err)
		}
		if got := raw.Header.Get(jetstream.MsgIDHeader); got != "submit/key-1" {
			t.Errorf("Nats-Msg-Id %q, want submit/key-1", got)
		}
		e, err := event.DecodeEvent(raw.Data)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if e.Type != event.TypeRunSubmitted || e.RunID != runID || e.Workflow != "hello" ||
			e.IdempotencyKey != "key-1" || e.TriggeredBy != "test" || e.ID == "" {
			t.Errorf("unexpected event %+v", e)
		}
		if e.Plan == nil || e.Plan.Hash != "abc123" || len(e.Plan.Tasks) != 1 || e.Plan.Tasks[0].Name != "a" {
			t.Errorf("plan not carried: %+v", e.Plan)
		}
	})

	t.Run("same idempotency key is stored once", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		p := client.SubmitParams{Plan: testPlan(), IdempotencyKey: "once"}
		id1, err := f.client.Submit(f.ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		id2, err := f.client.Submit(f.ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if id1 != id2 {
			t.Errorf("run ids differ: %s, %s", id1, id2)
		}
		if n := f.submittedCount(t); n != 1 {
			t.Errorf("stream holds %d submissions, want 1", n)
		}
	})

	t.Run("without a key every submission is a new run", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		id1, err := f.client.Submit(f.ctx, client.SubmitParams{Plan: testPlan()})
		if err != nil {
			t.Fatal(err)
		}
		id2, err := f.client.Submit(f.ctx, client.SubmitParams{Plan: testPlan(), RunID: "my-run"})
		if err != nil {
			t.Fatal(err)
		}
		if id1 == "" || id1 == id2 || id2 != "my-run" {
			t.Errorf("run ids %q, %q", id1, id2)
		}
		if n := f.submittedCount(t); n != 2 {
			t.Errorf("stream holds %d submissions, want 2", n)
		}
	})

	t.Run("plan is required", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		if _, err := f.client.Submit(f.ctx, client.SubmitParams{RunID: "x"}); err == nil {
			t.Fatal("submit without plan succeeded")
		}
	})
}

func TestFollow(t *testing.T) {
	t.Parallel()

	t.Run("delivers the run's events in order and stops", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		run, other := event.NewID(), event.NewID()
		f.publish(t,
			event.New(event.TypeRunStarted, run, "", 0),
			event.New(event.TypeRunStarted, other, "", 0),
			event.New(event.TypeTaskDispatched, run, "a", 1),
			event.New(event.TypeTaskStarted, run, "a", 1),
			event.New(event.TypeTaskSucceeded, run, "a", 1),
		)
		// Garbage on the run's subjects is skipped, not fatal.
		if err := f.bus.Publish(f.ctx, bus.Msg{Subject: event.SubjectEvent("task.failed", run), Data: []byte("{not json")}); err != nil {
			t.Fatal(err)
		}
		f.publish(t, event.New(event.TypeRunFinished, run, "", 0))

		var got []string
		var lastSeq uint64
		err := f.client.Follow(f.ctx, run, func(e event.Event) error {
			if e.RunID != run {
				t.Errorf("event of another run: %+v", e)
			}
			if e.Seq <= lastSeq {
				t.Errorf("seq %d after %d", e.Seq, lastSeq)
			}
			lastSeq = e.Seq
			got = append(got, e.Type)
			if len(got) == 5 {
				return client.ErrStop
			}
			return nil
		})
		if err != nil {
			t.Fatalf("follow: %v", err)
		}
		want := []string{event.TypeRunStarted, event.TypeTaskDispatched, event.TypeTaskStarted, event.TypeTaskSucceeded, event.TypeRunFinished}
		if len(got) != len(want) {
			t.Fatalf("got %v, want %v", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("got %v, want %v", got, want)
			}
		}
	})

	t.Run("returns the callback's error", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		run := event.NewID()
		f.publish(t, event.New(event.TypeRunStarted, run, "", 0))
		boom := errors.New("boom")
		err := f.client.Follow(f.ctx, run, func(event.Event) error { return boom })
		if !errors.Is(err, boom) {
			t.Fatalf("err %v, want boom", err)
		}
	})

	t.Run("ends with the context", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		ctx, cancel := context.WithCancel(f.ctx)
		run := event.NewID()
		f.publish(t, event.New(event.TypeRunStarted, run, "", 0))
		err := f.client.Follow(ctx, run, func(event.Event) error {
			cancel() // the first event arrives, then nothing more will
			return nil
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v, want context.Canceled", err)
		}
	})
}

func TestWait(t *testing.T) {
	t.Parallel()
	f := setup(t)
	run := event.NewID()
	f.publish(t, event.New(event.TypeRunStarted, run, "", 0))

	type result struct {
		e    event.Event
		seen []string
		err  error
	}
	done := make(chan result, 1)
	firstSeen := make(chan struct{})
	go func() {
		var r result
		r.e, r.err = f.client.Wait(f.ctx, client.WaitParams{RunID: run, OnEvent: func(e event.Event) {
			if len(r.seen) == 0 {
				close(firstSeen)
			}
			r.seen = append(r.seen, e.Type)
		}})
		done <- r
	}()

	// Publish the rest only once Wait is live, so it sees them arrive.
	select {
	case <-firstSeen:
	case <-f.ctx.Done():
		t.Fatal("wait saw no event")
	}
	finished := event.New(event.TypeRunFinished, run, "", 0)
	finished.Status = event.RunSuccess
	f.publish(t, event.New(event.TypeTaskSucceeded, run, "a", 1), finished)

	var r result
	select {
	case r = <-done:
	case <-f.ctx.Done():
		t.Fatal("wait did not return")
	}
	if r.err != nil {
		t.Fatalf("wait: %v", r.err)
	}
	if r.e.Type != event.TypeRunFinished || r.e.Status != event.RunSuccess || r.e.ID != finished.ID {
		t.Errorf("final event %+v", r.e)
	}
	if len(r.seen) != 3 || r.seen[2] != event.TypeRunFinished {
		t.Errorf("seen %v", r.seen)
	}
}

// A waiter without OnEvent is sent only run.finished, and still gets it when the run ended before
// it started waiting.
func TestWaitForTheEndOnly(t *testing.T) {
	t.Parallel()
	f := setup(t)
	run := event.NewID()
	finished := event.New(event.TypeRunFinished, run, "", 0)
	finished.Status = event.RunFailed
	f.publish(t, event.New(event.TypeRunStarted, run, "", 0), event.New(event.TypeTaskFailed, run, "a", 1), finished)
	e, err := f.client.Wait(f.ctx, client.WaitParams{RunID: run})
	if err != nil {
		t.Fatalf("wait: %v", err)
	}
	if e.ID != finished.ID || e.Status != event.RunFailed {
		t.Errorf("final event %+v, want %+v", e, finished)
	}
}

func TestWatchRecorded(t *testing.T) {
	t.Parallel()

	t.Run("receives the notice", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		run := event.NewID()
		rec, err := f.client.WatchRecorded(run)
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := rec.Close(); err != nil {
				t.Error(err)
			}
		}()
		if err := f.bus.NC.Publish(event.SubjectRecordedPrefix+event.NewID(), []byte(event.RunFailed)); err != nil {
			t.Fatal(err)
		}
		if err := f.bus.NC.Publish(event.SubjectRecordedPrefix+run, []byte(event.RunSuccess)); err != nil {
			t.Fatal(err)
		}
		status, err := rec.Wait(f.ctx)
		if err != nil {
			t.Fatalf("wait: %v", err)
		}
		if status != event.RunSuccess {
			t.Errorf("status %q, want success", status)
		}
	})

	t.Run("wait ends with the context", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		rec, err := f.client.WatchRecorded(event.NewID())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(f.ctx)
		cancel()
		if _, err := rec.Wait(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("err %v, want context.Canceled", err)
		}
		if err := rec.Close(); err != nil {
			t.Error(err)
		}
	})
}
