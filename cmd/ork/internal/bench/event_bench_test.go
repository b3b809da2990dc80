package bench

import (
	"encoding/json"
	"testing"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/workflow"
)

// The envelopes of the hot path: one task.succeeded per task (the largest of the per-task events,
// with an output), one dispatch per task. pkg/event has no benchmarks of its own.

func succeededEvent() event.Event {
	e := event.New(event.TypeTaskSucceeded, event.NewID(), "transform_1234", 1)
	e.Workflow = "bench"
	e.Status = event.TaskSuccess
	e.Executor = workflow.ExecutorProcess
	e.Instance = "executor-1/4f1c"
	e.Output = json.RawMessage(`{"rows":1200,"path":"s3://bucket/run/part-0001.parquet"}`)
	code := 0
	e.ExitCode = &code
	e.DurationMS = 12
	return e
}

func dispatch() event.Dispatch {
	return event.Dispatch{
		V: event.SchemaVersion, RunID: event.NewID(), Workflow: "bench", Attempt: 1, Dir: "/srv/flows",
		Task: workflow.Task{
			Name: "transform_1234", Index: 1234, Executor: workflow.ExecutorProcess,
			Command: []string{"python3", "transform.py"}, DependsOn: []string{"extract"}, TimeoutSeconds: 300,
		},
		Inputs: json.RawMessage(`{"rows":1200}`),
	}
}

func BenchmarkEncodeEvent(b *testing.B) {
	e := succeededEvent()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bus.EventMsg(&e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeEvent(b *testing.B) {
	e := succeededEvent()
	msg, err := bus.EventMsg(&e)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(msg.Data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := event.DecodeEvent(msg.Data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeDispatch(b *testing.B) {
	d := dispatch()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bus.DispatchMsg(&d); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeDispatch(b *testing.B) {
	d := dispatch()
	msg, err := bus.DispatchMsg(&d)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(msg.Data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := event.DecodeDispatch(msg.Data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeSubmission(b *testing.B) {
	plan, err := BuildPlan(Scenario{Shape: ShapeWide, Tasks: 1000}, "/tmp")
	if err != nil {
		b.Fatal(err)
	}
	e := event.New(event.TypeRunSubmitted, event.NewID(), "", 0)
	e.Plan = plan
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bus.EventMsg(&e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeLogBatch(b *testing.B) {
	lb := event.LogBatch{V: event.SchemaVersion, RunID: event.NewID(), Task: "transform", Attempt: 1}
	for i := range 64 {
		lb.Lines = append(lb.Lines, event.LogLine{Seq: int64(i + 1), Stream: event.Stdout, Line: "processed a chunk of 1200 rows from part-0001"})
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bus.LogMsg(&lb); err != nil {
			b.Fatal(err)
		}
	}
}
