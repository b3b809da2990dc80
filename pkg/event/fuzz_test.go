package event_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/workflow"
)

// The decoders take bytes from the network: whatever arrives, they return an envelope or an error,
// never panic, and an envelope they accept survives the re-encoding every service does (the scheduler
// re-encodes plans and dispatches, the recorder events). The seed corpus runs in every `go test`
// (make test); `go test -fuzz FuzzDecodeEvent ./event` explores further.

func seedEnvelopes(f *testing.F, envs ...any) {
	f.Helper()
	for _, e := range envs {
		data, err := json.Marshal(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{"", "null", "{}", "[]", `{"v":1}`, `{"v":1,"type":"x","run_id":""}`,
		`{"v":1,"type":"run.submitted","plan":{"tasks":[{"name":"a","depends_on":["a"]}]}}`,
		`{"v":1,"type":"task.succeeded","run_id":"r","output":{"a":`, `{"v":1e400}`, `{"v":1,"time":"not a time"}`} {
		f.Add([]byte(s))
	}
}

func FuzzDecodeEvent(f *testing.F) {
	sub := event.New(event.TypeRunSubmitted, "run-1", "", 0)
	sub.Plan = &workflow.Plan{Name: "etl", Tasks: []workflow.Task{
		{Name: "a", Executor: workflow.ExecutorProcess, Command: []string{"true"}},
		{Name: "b", Executor: workflow.ExecutorPython, File: "b.py", DependsOn: []string{"a"}},
	}}
	done := event.New(event.TypeTaskSucceeded, "run-1", "a", 1)
	done.Output, done.Instance, done.DurationMS = json.RawMessage(`{"n":1}`), "exec-1", 12
	code := 3
	failed := event.New(event.TypeTaskFailed, "run-1", "b", 2)
	failed.ExitCode, failed.Error, failed.Reason = &code, "boom", event.ReasonOutput
	seedEnvelopes(f, sub, done, failed, event.New(event.TypeRunFinished, "run-1", "", 0))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := event.DecodeEvent(data)
		if err != nil {
			return
		}
		_ = e.Subject()
		if e.Plan != nil {
			_ = e.Plan.Validate() // a plan from the network is checked, never trusted
		}
		again, err := json.Marshal(&e)
		if err != nil {
			t.Fatalf("an accepted event does not encode again: %v", err)
		}
		e2, err := event.DecodeEvent(again)
		if err != nil {
			t.Fatalf("an accepted event, re-encoded, is refused: %v\n%s", err, again)
		}
		if e2.Type != e.Type || e2.RunID != e.RunID || e2.Task != e.Task || e2.Attempt != e.Attempt || !e2.Time.Equal(e.Time) {
			t.Fatalf("re-encoding changed the event: %+v, then %+v", e, e2)
		}
	})
}

func FuzzDecodeDispatch(f *testing.F) {
	d := event.Dispatch{V: event.SchemaVersion, RunID: "run-1", Workflow: "etl", Attempt: 1, Dir: "/work/flows",
		Task:   workflow.Task{Name: "b", Executor: workflow.ExecutorPython, File: "b.py", Function: "main"},
		Inputs: json.RawMessage(`{"n":1}`), DispatchedAt: time.Unix(1700000000, 0).UTC()}
	seedEnvelopes(f, d)
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := event.DecodeDispatch(data)
		if err != nil {
			return
		}
		_, _ = d.Subject(), d.MsgID()
		again, err := json.Marshal(&d)
		if err != nil {
			t.Fatalf("an accepted dispatch does not encode again: %v", err)
		}
		d2, err := event.DecodeDispatch(again)
		if err != nil {
			t.Fatalf("an accepted dispatch, re-encoded, is refused: %v\n%s", err, again)
		}
		if d2.RunID != d.RunID || d2.Task.Name != d.Task.Name || d2.Attempt != d.Attempt || !reflect.DeepEqual(d2.Task.Command, d.Task.Command) {
			t.Fatalf("re-encoding changed the dispatch: %+v, then %+v", d, d2)
		}
	})
}

func FuzzDecodeLogBatch(f *testing.F) {
	b := event.LogBatch{V: event.SchemaVersion, RunID: "run-1", Task: "a", Attempt: 1, Lines: []event.LogLine{
		{Seq: 1, Stream: event.Stdout, Line: "hello", Time: time.Unix(1700000000, 0).UTC()},
		{Seq: 2, Stream: event.Stderr, Line: "\x00\xff not utf-8", Time: time.Unix(1700000001, 0).UTC()},
	}}
	seedEnvelopes(f, b)
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := event.DecodeLogBatch(data)
		if err != nil {
			return
		}
		_ = b.Subject()
		again, err := json.Marshal(&b)
		if err != nil {
			t.Fatalf("an accepted log batch does not encode again: %v", err)
		}
		b2, err := event.DecodeLogBatch(again)
		if err != nil {
			t.Fatalf("an accepted log batch, re-encoded, is refused: %v\n%s", err, again)
		}
		if len(b2.Lines) != len(b.Lines) {
			t.Fatalf("re-encoding changed the lines: %d, then %d", len(b.Lines), len(b2.Lines))
		}
	})
}
