package executor

import (
	"context"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/bus/bustest"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/workflow"
)

// benchService is a service for calling execute directly: launch overhead without the bus round
// trips (a task that prints nothing publishes nothing).
func benchService(b *testing.B) *Service {
	b.Helper()
	srv := bustest.Start(b)
	bb, err := bus.Connect(bus.Config{URL: srv.ClientURL()}, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(bb.Close)
	s, err := New(bb, Config{Types: KnownTypes(), CacheDir: filepath.Join(b.TempDir(), "cache")}, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func benchExecute(b *testing.B, typ string, d *event.Dispatch) {
	s := benchService(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if o := s.execute(ctx, typ, d); !o.ok {
			b.Fatalf("task failed: %s", o.err)
		}
	}
}

// BenchmarkProcessTrue measures starting, waiting for and reaping one process task.
func BenchmarkProcessTrue(b *testing.B) {
	d := &event.Dispatch{RunID: "r", Workflow: "w", Attempt: 1, Dir: b.TempDir(),
		Task: workflow.Task{Name: "t", Executor: workflow.ExecutorProcess, Command: []string{"true"}}}
	benchExecute(b, workflow.ExecutorProcess, d)
}

// BenchmarkPythonNoop measures a python task that returns None: interpreter start, runner, import.
func BenchmarkPythonNoop(b *testing.B) {
	dir := b.TempDir()
	if err := writeBenchFile(filepath.Join(dir, "noop.py"), "def main():\n    return None\n"); err != nil {
		b.Fatal(err)
	}
	d := &event.Dispatch{RunID: "r", Workflow: "w", Attempt: 1, Dir: dir,
		Task: workflow.Task{Name: "t", Executor: workflow.ExecutorPython, File: "noop.py"}}
	benchExecute(b, workflow.ExecutorPython, d)
}

// BenchmarkNoop measures the built-in noop type's execution path.
func BenchmarkNoop(b *testing.B) {
	d := &event.Dispatch{RunID: "r", Workflow: "w", Attempt: 1, Task: workflow.Task{Name: "t", Executor: workflow.ExecutorNoop}}
	benchExecute(b, workflow.ExecutorNoop, d)
}

// BenchmarkDispatchNoop measures noop tasks through the bus: dispatch, fetch, task.started,
// task.succeeded and ack, with the default concurrency.
func BenchmarkDispatchNoop(b *testing.B) {
	srv := bustest.Start(b)
	bb, err := bus.Connect(bus.Config{URL: srv.ClientURL()}, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(bb.Close)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := bb.Provision(ctx); err != nil {
		b.Fatal(err)
	}
	s, err := New(bb, Config{Types: []string{workflow.ExecutorNoop}, CacheDir: filepath.Join(b.TempDir(), "cache")}, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{}, 1024)
	sub, err := bb.NC.Subscribe(event.SubjectEventsOfType(event.TypeTaskSucceeded), func(*nats.Msg) { done <- struct{}{} })
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	ran := make(chan error, 1)
	go func() { ran <- s.Run(ctx) }()
	<-s.Ready()
	b.ResetTimer()
	msgs := make([]bus.Msg, 0, 256)
	sent := 0
	for sent < b.N {
		msgs = msgs[:0]
		for ; sent < b.N && len(msgs) < cap(msgs); sent++ {
			d := event.Dispatch{V: event.SchemaVersion, RunID: "bench", Workflow: "w", Attempt: 1,
				Task: workflow.Task{Name: "t" + strconv.Itoa(sent), Executor: workflow.ExecutorNoop}}
			m, err := bus.DispatchMsg(&d)
			if err != nil {
				b.Fatal(err)
			}
			msgs = append(msgs, m)
		}
		go func(msgs []bus.Msg) {
			if err := bb.Publish(ctx, msgs...); err != nil {
				b.Error(err)
			}
		}(slices.Clone(msgs))
	}
	for range b.N {
		<-done
	}
	b.StopTimer()
	cancel()
	if err := <-ran; err != nil {
		b.Fatal(err)
	}
}
