package executor

import (
	"context"
	"path/filepath"
	"testing"

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
	s, err := New(bb, Config{Types: KnownTypes(), CacheDir: b.TempDir()}, zap.NewNop())
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
