package client_test

import (
	"errors"
	"testing"
	"time"

	"github.com/ork-go/ork/pkg/client"
	"github.com/ork-go/ork/pkg/event"
)

func TestControl(t *testing.T) {
	t.Parallel()
	f := setup(t)

	// A run no scheduler knows gets no request: nobody would answer it.
	_, err := f.client.Pause(f.ctx, client.ControlParams{RunID: "run-nobody", KnownWithin: 50 * time.Millisecond})
	if !errors.Is(err, client.ErrUnknownRun) {
		t.Fatalf("pausing an unknown run: %v, want ErrUnknownRun", err)
	}
	if _, err := f.client.Cancel(f.ctx, client.ControlParams{}); err == nil {
		t.Fatal("a control request without a run id was sent")
	}

	// The scheduler's run state makes the run known.
	kv, err := f.bus.Runs(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(f.ctx, event.RunStateKey("run-ctl"), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	pause, err := f.client.Pause(f.ctx, client.ControlParams{RunID: "run-ctl", TriggeredBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if pause.Type != event.TypeRunPauseRequested || pause.RunID != "run-ctl" || pause.TriggeredBy != "test" {
		t.Fatalf("pause request %+v", pause)
	}
	cancel, err := f.client.Cancel(f.ctx, client.ControlParams{RunID: "run-ctl", Reason: "enough"})
	if err != nil {
		t.Fatal(err)
	}
	if cancel.Error != "enough" {
		t.Fatalf("cancel request carries error %q, want the reason", cancel.Error)
	}

	// Another request's answer is not this one's; the run's end answers every request.
	other := event.New(event.TypeRunPaused, "run-ctl", "", 0)
	other.ID = event.AnswerID("someone-else", event.TypeRunPaused)
	mine := event.New(event.TypeRunPaused, "run-ctl", "", 0)
	mine.ID = event.AnswerID(pause.ID, event.TypeRunPaused)
	end := event.New(event.TypeRunFinished, "run-ctl", "", 0)
	end.Status = event.RunCancelled
	f.publish(t, other, mine, end)

	got, err := f.client.AwaitAnswer(f.ctx, pause)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != mine.ID {
		t.Fatalf("the answer to the pause is %s %s, want %s", got.Type, got.ID, mine.ID)
	}
	got, err = f.client.AwaitAnswer(f.ctx, cancel)
	if err != nil {
		t.Fatal(err)
	}
	if got.Type != event.TypeRunFinished || got.Status != event.RunCancelled {
		t.Fatalf("the answer to the cancel is %s %s, want run.finished cancelled", got.Type, got.Status)
	}
	if _, err := f.client.AwaitAnswer(f.ctx, end); err == nil {
		t.Fatal("AwaitAnswer accepted an event that is not a control request")
	}
}
