package bench

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/ork-go/ork/pkg/workflow"
)

// taskTimeoutSeconds bounds every benchmark task; a noop never comes near it.
const taskTimeoutSeconds = 60

// BuildPlan compiles the workflow of one run of s, in topological order, with its content hash.
// dir is the plan's directory (the working directory of process tasks).
func BuildPlan(s Scenario, dir string) (*workflow.Plan, error) {
	s = s.WithDefaults()
	if err := s.Validate(); err != nil {
		return nil, err
	}
	b := planBuilder{s: s}
	switch s.Shape {
	case ShapeWide:
		for i := range s.Tasks {
			b.add(taskName("t", i))
		}
	case ShapeChain:
		for i := range s.Depth {
			if i == 0 {
				b.add(taskName("c", i))
			} else {
				b.add(taskName("c", i), taskName("c", i-1))
			}
		}
	case ShapeFanout:
		b.add("start")
		mid := make([]string, s.Tasks)
		for i := range s.Tasks {
			mid[i] = taskName("f", i)
			b.add(mid[i], "start")
		}
		b.add("end", mid...)
	case ShapeRuns:
		b.add("a")
		b.add("b", "a")
		b.add("c", "a")
		b.add("d", "b", "c")
	}
	plan := &workflow.Plan{Name: "bench-" + s.Name, Description: "ork bench scenario " + s.Name, Tasks: b.tasks}
	raw, err := json.Marshal(plan)
	if err != nil {
		return nil, fmt.Errorf("encoding plan for its hash: %w", err)
	}
	sum := sha256.Sum256(raw)
	plan.Hash = hex.EncodeToString(sum[:])
	plan.Dir = dir
	if err := plan.Validate(); err != nil {
		return nil, fmt.Errorf("building plan of %s: %w", s.Name, err)
	}
	return plan, nil
}

type planBuilder struct {
	s     Scenario
	tasks []workflow.Task
}

func (b *planBuilder) add(name string, deps ...string) {
	t := workflow.Task{
		Name:           name,
		Index:          len(b.tasks),
		Executor:       b.s.TaskType,
		DependsOn:      deps,
		TimeoutSeconds: taskTimeoutSeconds,
	}
	switch b.s.TaskType {
	case TaskProcess:
		t.Command = []string{"true"}
	case TaskSleep:
		t.Inputs = map[string]workflow.Binding{"seconds": {Const: json.RawMessage(strconv.FormatFloat(b.s.SleepSeconds, 'f', -1, 64))}}
	}
	b.tasks = append(b.tasks, t)
}

func taskName(prefix string, i int) string { return prefix + strconv.Itoa(i) }
