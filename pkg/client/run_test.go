package client_test

import (
	"context"
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/client"
	"github.com/ork-go/ork/pkg/event"
)

// fakeScheduler answers what a scheduler would, from the stream: for each submission it marks the
// run known and publishes the events answer(submission) returns; for each cancel request it ends
// the run cancelled.
func (f *fixture) fakeScheduler(t *testing.T, answer func(sub event.Event) []event.Event) {
	t.Helper()
	kv, err := f.bus.Runs(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := f.bus.JS.OrderedConsumer(f.ctx, event.StreamEvents, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{event.SubjectRunSubmitted, event.SubjectEventsOfType(event.TypeRunCancelRequested)},
	})
	if err != nil {
		t.Fatal(err)
	}
	it, err := cons.Messages()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { it.Stop(); <-done })
	go func() {
		defer close(done)
		for {
			msg, err := it.Next()
			if err != nil {
				return
			}
			e, err := event.DecodeEvent(msg.Data())
			if err != nil {
				t.Errorf("decoding %s: %v", msg.Subject(), err)
				return
			}
			var out []event.Event
			switch e.Type {
			case event.TypeRunSubmitted:
				if _, err := kv.Put(f.ctx, event.RunStateKey(e.RunID), []byte("{}")); err != nil {
					t.Errorf("run state: %v", err)
				}
				out = answer(e)
			case event.TypeRunCancelRequested:
				end := event.New(event.TypeRunFinished, e.RunID, "", 0)
				end.Status, end.Error = event.RunCancelled, e.Error
				out = []event.Event{end}
			}
			for i := range out {
				m, err := bus.EventMsg(&out[i])
				if err == nil {
					err = f.bus.Publish(f.ctx, m)
				}
				if err != nil {
					t.Errorf("publishing %s: %v", out[i].Type, err)
				}
			}
		}
	}()
}

func TestRun(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.fakeScheduler(t, func(sub event.Event) []event.Event {
		started := event.New(event.TypeRunStarted, sub.RunID, "", 0)
		task := event.New(event.TypeTaskSucceeded, sub.RunID, "a", 1)
		end := event.New(event.TypeRunFinished, sub.RunID, "", 0)
		end.Status = event.RunSuccess
		return []event.Event{started, task, end}
	})
	var seen []string
	res, err := f.client.Run(f.ctx, client.RunParams{
		Submit:  client.SubmitParams{Plan: testPlan(), IdempotencyKey: "run-1", TriggeredBy: "test"},
		OnEvent: func(e event.Event) { seen = append(seen, e.Type) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.RunID != event.DeriveRunID("run-1") || res.Final.Type != event.TypeRunFinished || res.Final.Status != event.RunSuccess || res.Interrupted {
		t.Fatalf("result %+v", res)
	}
	if len(seen) != 3 || seen[2] != event.TypeRunFinished {
		t.Errorf("OnEvent saw %v, want the three events", seen)
	}
	if res.Run == nil || res.Run.Status != event.RunSuccess || res.Run.Tasks["a"].Status != event.TaskSuccess {
		t.Errorf("the run built from the events: %+v", res.Run)
	}
}

func TestRunInterrupted(t *testing.T) {
	t.Parallel()
	f := setup(t)
	// A run that never ends by itself.
	f.fakeScheduler(t, func(sub event.Event) []event.Event {
		return []event.Event{event.New(event.TypeRunStarted, sub.RunID, "", 0)}
	})

	t.Run("left running", func(t *testing.T) {
		ctx, cancel := context.WithCancel(f.ctx)
		res, err := f.client.Run(ctx, client.RunParams{
			Submit:  client.SubmitParams{Plan: testPlan()},
			OnEvent: func(e event.Event) { cancel() },
		})
		if !errors.Is(err, context.Canceled) || !res.Interrupted || res.Final.Type != "" {
			t.Fatalf("result %+v, err %v; want interrupted with the run going on", res, err)
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(f.ctx)
		interrupted := false
		res, err := f.client.Run(ctx, client.RunParams{
			Submit:            client.SubmitParams{Plan: testPlan()},
			OnEvent:           func(e event.Event) { cancel() },
			CancelOnInterrupt: true,
			OnInterrupt:       func() { interrupted = true },
		})
		if err != nil {
			t.Fatal(err)
		}
		if !res.Interrupted || !interrupted || res.Final.Status != event.RunCancelled || res.Final.Error != "interrupted" {
			t.Fatalf("result %+v; want the run cancelled because it was interrupted", res)
		}
	})
}
