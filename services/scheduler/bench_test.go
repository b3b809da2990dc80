package scheduler

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/workflow"
)

// benchPlan returns a chain of n tasks, or a wide run: n-1 independent tasks and a join on all.
func benchPlan(shape string, n int) *workflow.Plan {
	p := &workflow.Plan{Name: "bench", Tasks: make([]workflow.Task, n)}
	for i := range p.Tasks {
		p.Tasks[i] = workflow.Task{Name: "t" + strconv.Itoa(i), Index: i, Executor: workflow.ExecutorNoop}
	}
	switch shape {
	case "chain":
		for i := 1; i < n; i++ {
			p.Tasks[i].DependsOn = []string{p.Tasks[i-1].Name}
		}
	case "wide":
		deps := make([]string, n-1)
		for i := range deps {
			deps[i] = p.Tasks[i].Name
		}
		p.Tasks[n-1].DependsOn = deps
	}
	return p
}

// benchEvents returns the submission and one success per task, in an order the run accepts. With
// scatter, a wide run's tasks complete in a strided order, the worst case for the state encoding.
func benchEvents(p *workflow.Plan, scatter bool) []event.Event {
	n := len(p.Tasks)
	evs := []event.Event{{V: event.SchemaVersion, ID: "s", Type: event.TypeRunSubmitted, RunID: "r"}}
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	if scatter {
		// A stride coprime with n-1 visits every independent task once, far from its neighbours.
		stride := 7919
		for i := range n - 1 {
			order[i] = i * stride % (n - 1)
		}
	}
	for _, i := range order {
		evs = append(evs, event.Event{V: event.SchemaVersion, ID: "e" + strconv.Itoa(i), Type: event.TypeTaskSucceeded,
			RunID: "r", Task: p.Tasks[i].Name, Attempt: 1})
	}
	return evs
}

// BenchmarkApply runs whole runs through Apply, encoding the state after every event as the service
// does. It reports the cost per event and the largest encoded state seen.
func BenchmarkApply(b *testing.B) {
	for _, bc := range []struct {
		shape   string
		n       int
		scatter bool
	}{
		{"chain", 1000, false},
		{"wide", 1000, false},
		{"wide", 1000, true},
		{"chain", 10000, false},
		{"wide", 10000, false},
		{"wide", 10000, true},
	} {
		name := fmt.Sprintf("%s-%d", bc.shape, bc.n)
		if bc.scatter {
			name += "-scattered"
		}
		p := benchPlan(bc.shape, bc.n)
		g, err := NewGraph(p)
		if err != nil {
			b.Fatal(err)
		}
		evs := benchEvents(p, bc.scatter)
		now := time.Unix(0, 0)
		for _, encode := range []bool{false, true} {
			sub := name + "/apply"
			if encode {
				sub += "+encode"
			}
			b.Run(sub, func(b *testing.B) {
				b.ReportAllocs()
				maxBytes := 0
				buf := make([]byte, 0, 1024)
				for b.Loop() {
					st := NewRunState(g)
					for i := range evs {
						c, err := Apply(g, st, &evs[i], now, testPolicy)
						if err != nil || c.Outcome != Applied {
							b.Fatalf("event %d: %v %v", i, c.Outcome, err)
						}
						if encode {
							buf, _ = st.AppendBinary(buf[:0])
							maxBytes = max(maxBytes, len(buf))
						}
					}
					if st.Status != RunSucceeded {
						b.Fatalf("run ended %s", st.Status)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(evs)), "ns/event")
				if encode {
					b.ReportMetric(float64(maxBytes), "max-state-bytes")
				}
			})
		}
	}
}
