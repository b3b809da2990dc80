package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/workflow"
)

// Shape of one benchmark batch: benchRuns runs of benchTasks tasks, each submitted and every task
// dispatched, started and succeeded, which is 1,000 events.
const (
	benchRuns  = 10
	benchTasks = 33
)

// Bench measures ApplyBatch with batches of 1,000 events, the recorder's batch size, and reports
// events/s. open must return a fresh, migrated store and close it in b.Cleanup.
func Bench(b *testing.B, open func(b *testing.B) store.Store) {
	s := open(b)
	ctx := b.Context()
	tasks := make([]workflow.Task, benchTasks)
	for i := range tasks {
		tasks[i] = task(fmt.Sprintf("t%02d", i), i)
		if i > 0 {
			tasks[i].DependsOn = []string{tasks[i-1].Name}
		}
	}
	p := plan("bench", "ApplyBatch benchmark", tasks...)
	clock := time.Now().UTC()
	tick := func() time.Time {
		clock = clock.Add(time.Microsecond)
		return clock
	}
	build := func() store.ApplyBatchParams {
		evs := make([]event.Event, 0, benchRuns*(1+3*benchTasks))
		for range benchRuns {
			id := event.NewID()
			sub := event.New(event.TypeRunSubmitted, id, "", 0)
			sub.Time, sub.Workflow, sub.Plan, sub.TriggeredBy = tick(), p.Name, p, "bench"
			evs = append(evs, sub)
			for _, tk := range tasks {
				d := event.New(event.TypeTaskDispatched, id, tk.Name, 1)
				d.Time, d.Executor = tick(), tk.Executor
				st := event.New(event.TypeTaskStarted, id, tk.Name, 1)
				st.Time, st.Instance = tick(), "bench-1"
				ok := event.New(event.TypeTaskSucceeded, id, tk.Name, 1)
				ok.Time, ok.Instance, ok.Output, ok.ExitCode, ok.DurationMS = tick(), "bench-1", []byte(`{"n":1}`), intPtr(0), 3
				evs = append(evs, d, st, ok)
			}
		}
		return store.ApplyBatchParams{Events: evs}
	}

	events := 0
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		batch := build()
		b.StartTimer()
		res, err := s.ApplyBatch(ctx, batch)
		if err != nil {
			b.Fatalf("ApplyBatch: %v", err)
		}
		if len(res.Orphans) != 0 {
			b.Fatalf("%d orphans in a benchmark batch", len(res.Orphans))
		}
		events += len(batch.Events)
	}
	b.StopTimer()
	if secs := b.Elapsed().Seconds(); secs > 0 {
		b.ReportMetric(float64(events)/secs, "events/s")
	}
}
