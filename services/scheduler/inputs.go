package scheduler

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/ork-go/ork/pkg/workflow"
)

// resolveInputs builds the JSON object of a task's inputs: constants as given, refs read from the
// upstream outputs (cached in outputs for the other dispatches of the same event).
func (s *Service) resolveInputs(ctx context.Context, runID string, g *Graph, task *workflow.Task, outputs *map[int]json.RawMessage) (json.RawMessage, error) {
	if len(task.Inputs) == 0 {
		return nil, nil
	}
	obj := make(map[string]json.RawMessage, len(task.Inputs))
	for name, b := range task.Inputs {
		if b.Ref == nil {
			v := b.Const
			if len(v) == 0 {
				v = json.RawMessage("null")
			}
			obj[name] = v
			continue
		}
		if p := b.Ref.Param; p != "" {
			val, ok := g.params[p]
			if !ok {
				return nil, fmt.Errorf("input %q refers to param %q, which the run has no value for", name, p)
			}
			v, err := lookupPath(val, b.Ref.Path)
			if err != nil {
				return nil, fmt.Errorf("input %q: param %q: %w", name, p, err)
			}
			obj[name] = v
			continue
		}
		j, ok := g.Index(b.Ref.Task)
		if !ok {
			return nil, fmt.Errorf("input %q refers to unknown task %q", name, b.Ref.Task)
		}
		out, ok := (*outputs)[j]
		if !ok {
			entry, err := s.kv.Get(ctx, outKey(runID, b.Ref.Task))
			if err != nil {
				return nil, fmt.Errorf("input %q: reading the output of %q: %w", name, b.Ref.Task, err)
			}
			out = entry.Value()
			if *outputs == nil {
				*outputs = make(map[int]json.RawMessage)
			}
			(*outputs)[j] = out
		}
		v, err := lookupPath(out, b.Ref.Path)
		if err != nil {
			return nil, fmt.Errorf("input %q: the output of %q: %w", name, b.Ref.Task, err)
		}
		obj[name] = v
	}
	data, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encoding inputs: %w", err)
	}
	return data, nil
}

// lookupPath walks object fields down from v.
func lookupPath(v json.RawMessage, path []string) (json.RawMessage, error) {
	for i, f := range path {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(v, &obj); err != nil || obj == nil {
			return nil, fmt.Errorf("%s is not an object", pathText(path[:i]))
		}
		next, ok := obj[f]
		if !ok {
			return nil, fmt.Errorf("%s has no field %q", pathText(path[:i]), f)
		}
		v = next
	}
	return v, nil
}

func pathText(path []string) string {
	s := "output"
	for _, f := range path {
		s += "." + f
	}
	return s
}
