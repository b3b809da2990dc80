package scheduler

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ork-go/ork/pkg/workflow"
)

// Graph is a plan indexed for the transition function: task positions by name, dependencies and
// successors as positions, and which outputs a downstream binding references. It is immutable and
// may be shared between goroutines.
type Graph struct {
	Plan       *workflow.Plan
	index      map[string]int
	deps       [][]int32
	succ       [][]int32
	roots      []int32
	referenced []bool
	// params are the run's parameter values by name (a Graph is one run's), for params.* refs.
	params map[string]json.RawMessage
	// reuse holds, by task position, the outputs a rerun takes from the run it reruns: those tasks
	// do not run, they count as succeeded (at attempt 0).
	reuse map[int]json.RawMessage
}

// bindReuse checks a rerun's reused outputs against the plan: every name a task, and every
// dependency of a reused task reused too (a task that runs again makes what depends on it run
// again). It keeps them for the run.
func (g *Graph) bindReuse(reuse map[string]json.RawMessage) error {
	g.reuse = nil
	if len(reuse) == 0 {
		return nil
	}
	g.reuse = make(map[int]json.RawMessage, len(reuse))
	for name, out := range reuse {
		i, ok := g.index[name]
		if !ok {
			return fmt.Errorf("the rerun reuses the output of %q, which is not a task of the workflow", name)
		}
		if len(out) == 0 {
			out = json.RawMessage("null")
		} else if !json.Valid(out) {
			return fmt.Errorf("the rerun's output of %q is not JSON", name)
		}
		g.reuse[i] = out
	}
	for i := range g.reuse {
		for _, d := range g.deps[i] {
			if _, ok := g.reuse[int(d)]; !ok {
				return fmt.Errorf("the rerun reuses the output of %q, but it depends on %q, which runs again", g.Task(i).Name, g.Task(int(d)).Name)
			}
		}
	}
	return nil
}

// bindParams checks the run's parameters (the submission's JSON object, or nothing) against the
// plan, filling defaults, and keeps them for the params.* refs. It returns the bound object.
func (g *Graph) bindParams(raw json.RawMessage) (json.RawMessage, error) {
	var given map[string]json.RawMessage
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &given); err != nil {
			return nil, fmt.Errorf("the run's params are not a JSON object: %w", err)
		}
	}
	bound, err := g.Plan.BindParams(given)
	if err != nil {
		return nil, err
	}
	g.params = nil
	if len(bound) > 0 {
		if err := json.Unmarshal(bound, &g.params); err != nil {
			return nil, err
		}
	}
	return bound, nil
}

// NewGraph indexes a plan. It checks what the transition function relies on: unique task names,
// an executor per task, dependencies that exist and come earlier in the plan (so the graph has no
// cycle), no duplicate dependency, and refs that point at a dependency.
func NewGraph(p *workflow.Plan) (*Graph, error) {
	if p == nil {
		return nil, errors.New("no plan")
	}
	n := len(p.Tasks)
	g := &Graph{
		Plan:       p,
		index:      make(map[string]int, n),
		deps:       make([][]int32, n),
		succ:       make([][]int32, n),
		referenced: make([]bool, n),
	}
	for i := range p.Tasks {
		t := &p.Tasks[i]
		if t.Name == "" {
			return nil, fmt.Errorf("task %d has no name", i)
		}
		if _, dup := g.index[t.Name]; dup {
			return nil, fmt.Errorf("task %q is defined twice", t.Name)
		}
		if t.Executor == "" {
			return nil, fmt.Errorf("task %q has no executor", t.Name)
		}
		if t.Retries < 0 {
			return nil, fmt.Errorf("task %q has negative retries", t.Name)
		}
		deps := make([]int32, 0, len(t.DependsOn))
		for _, d := range t.DependsOn {
			j, ok := g.index[d]
			if !ok {
				return nil, fmt.Errorf("task %q depends on %q, which is unknown or does not come before it", t.Name, d)
			}
			for _, k := range deps {
				if int(k) == j {
					return nil, fmt.Errorf("task %q depends on %q twice", t.Name, d)
				}
			}
			deps = append(deps, int32(j))
			g.succ[j] = append(g.succ[j], int32(i))
		}
		for name, b := range t.Inputs {
			if b.Ref == nil || b.Ref.Param != "" {
				continue
			}
			j, ok := g.index[b.Ref.Task]
			if !ok || !contains(deps, int32(j)) {
				return nil, fmt.Errorf("input %q of task %q refers to %q, which is not a dependency", name, t.Name, b.Ref.Task)
			}
			g.referenced[j] = true
		}
		g.deps[i] = deps
		if len(deps) == 0 {
			g.roots = append(g.roots, int32(i))
		}
		g.index[t.Name] = i
	}
	return g, nil
}

// Len returns the number of tasks.
func (g *Graph) Len() int { return len(g.Plan.Tasks) }

// Index returns the position of a task by name.
func (g *Graph) Index(name string) (int, bool) {
	i, ok := g.index[name]
	return i, ok
}

// Task returns the task at position i.
func (g *Graph) Task(i int) *workflow.Task { return &g.Plan.Tasks[i] }

// Referenced reports whether a downstream binding references the output of task i.
func (g *Graph) Referenced(i int) bool { return g.referenced[i] }

func contains(s []int32, v int32) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
