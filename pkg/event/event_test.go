package event_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ork-go/ork/pkg/event"
)

// Every subject is built here; the constructors and the stream filters must agree.
func TestSubjects(t *testing.T) {
	e := event.New(event.TypeTaskSucceeded, "run-1", "a", 1)
	if got, want := e.Subject(), event.SubjectEvent(event.TypeTaskSucceeded, "run-1"); got != want {
		t.Errorf("event subject %q, want %q", got, want)
	}
	if !event.IsEventSubject(e.Subject()) || event.IsLogSubject(e.Subject()) {
		t.Errorf("%q is on ORK_EVENTS only", e.Subject())
	}
	lb := event.LogBatch{RunID: "run-1", Task: "a"}
	if !event.IsLogSubject(lb.Subject()) || event.IsEventSubject(lb.Subject()) {
		t.Errorf("%q is on ORK_LOGS only", lb.Subject())
	}
	typ, ok := event.ExecutorTypeOfSubject(event.SubjectTasks("python"))
	if !ok || typ != "python" {
		t.Errorf("executor type of %q: %q %v", event.SubjectTasks("python"), typ, ok)
	}
	if _, ok := event.ExecutorTypeOfSubject(e.Subject()); ok {
		t.Errorf("%q is not a dispatch subject", e.Subject())
	}
	got := event.SubjectsEventsOfTypes(event.TypeRunFinished, event.TypeTaskFailed)
	if len(got) != 2 || got[0] != event.SubjectEventsOfType(event.TypeRunFinished) || got[1] != "ork.events.task.failed.*" {
		t.Errorf("filters %q", got)
	}
	if event.ConsumerExecutor("python") == event.ConsumerExecutor("process") {
		t.Error("two executor types share a consumer")
	}
}

// A replayed control request yields the same answer id; another request or answer type does not.
func TestAnswerID(t *testing.T) {
	a := event.AnswerID("req-1", event.TypeRunPaused)
	if a != event.AnswerID("req-1", event.TypeRunPaused) {
		t.Fatal("AnswerID is not stable")
	}
	if a == event.AnswerID("req-2", event.TypeRunPaused) || a == event.AnswerID("req-1", event.TypeRunResumed) {
		t.Fatal("AnswerID collides")
	}
}

// An event with a field over its limit is refused by the decoder, naming the field; one at the
// limit is accepted.
func TestFieldLimits(t *testing.T) {
	t.Parallel()
	run := event.NewID()
	ok := event.New(event.TypeTaskFailed, run, "a", 1)
	ok.Error = strings.Repeat("e", event.MaxErrorBytes)
	for name, e := range map[string]event.Event{
		"task":   event.New(event.TypeTaskStarted, run, strings.Repeat("t", event.MaxTokenBytes+1), 1),
		"run_id": event.New(event.TypeRunStarted, strings.Repeat("r", event.MaxIDBytes+1), "", 0),
		"error":  func() event.Event { e := ok; e.Error += "e"; return e }(),
		"output": func() event.Event {
			e := event.New(event.TypeTaskSucceeded, run, "a", 1)
			e.Output = json.RawMessage(`"` + strings.Repeat("o", event.MaxOutputBytes) + `"`)
			return e
		}(),
	} {
		data, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := event.DecodeEvent(data); err == nil || !strings.Contains(err.Error(), "field "+name+" is ") {
			t.Errorf("%s over its limit: %v, want it refused naming the field", name, err)
		}
	}
	data, _ := json.Marshal(ok)
	if _, err := event.DecodeEvent(data); err != nil {
		t.Errorf("an error at the limit: %v", err)
	}
}
