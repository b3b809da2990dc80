package event_test

import (
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
