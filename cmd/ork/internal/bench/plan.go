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
	case TaskPython:
		t.File, t.Function = PythonTaskFile, "step"
		t.OutputType = &workflow.Type{Kind: workflow.KindInt}
		if len(deps) == 1 && b.s.Shape == ShapeChain {
			t.InputType = &workflow.Type{Kind: workflow.KindObject, Fields: []workflow.Field{{Name: "prev", Type: &workflow.Type{Kind: workflow.KindInt}}}}
			t.Inputs = map[string]workflow.Binding{"prev": {Ref: &workflow.Ref{Task: deps[0]}}}
		}
	case TaskProcess:
		t.Command = []string{"true"}
	case TaskSleep:
		t.Inputs = map[string]workflow.Binding{"seconds": {Const: json.RawMessage(strconv.FormatFloat(b.s.SleepSeconds, 'f', -1, 64))}}
	}
	b.tasks = append(b.tasks, t)
}

func taskName(prefix string, i int) string { return prefix + strconv.Itoa(i) }

// PythonTaskFile is the file of TaskPython tasks, written into the plans' directory by Run.
const PythonTaskFile = "bench_task.py"

// pythonTaskSource is TaskPython's function: fibo(10) added to the upstream value.
const pythonTaskSource = `def fibo(n):
    return n if n < 2 else fibo(n - 1) + fibo(n - 2)


def step(prev=0):
    return prev + fibo(10)
`

// PythonChainResult is what the last task of a python chain of depth n returns.
func PythonChainResult(n int) int { return 55 * n }
