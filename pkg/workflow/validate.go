package workflow

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
)

// Task returns the task called name, or nil.
func (p *Plan) Task(name string) *Task {
	for i := range p.Tasks {
		if p.Tasks[i].Name == name {
			return &p.Tasks[i]
		}
	}
	return nil
}

// Validate re-checks the structure of a plan that did not come from Parse, such as one received from
// the network: names, executors and their required fields, dependencies (unknown, self, duplicate,
// cycles, order), bindings (one of const or ref, refs to dependencies only, consts that fit the
// declared input type) and types. It touches no file system. The error is an ErrorList whose entries
// have a Path but no position.
func (p *Plan) Validate() error {
	var errs ErrorList
	add := func(path, format string, args ...any) {
		errs = append(errs, &Error{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	if p == nil {
		add("", "plan is missing")
		return errs.err()
	}
	if msg := workflowNameProblem(p.Name); msg != "" {
		add("name", "workflow name %q %s", p.Name, msg)
	}
	switch {
	case len(p.Tasks) == 0:
		add("tasks", "workflow has no tasks")
	case len(p.Tasks) > MaxTasks:
		add("tasks", "workflow has %d tasks, more than the limit of %d", len(p.Tasks), MaxTasks)
		return errs.err()
	}
	params := p.validParams(add)
	if p.Schedule != nil {
		for _, pr := range p.Schedule.Problems() {
			add("schedule."+pr.Field, "%s", pr.Message)
		}
		if _, err := p.BindParams(p.Schedule.Params); err != nil && len(params) == len(p.Params) {
			add("schedule.params", "%v", err)
		}
	}

	index := make(map[string]int, len(p.Tasks))
	for i := range p.Tasks {
		name := p.Tasks[i].Name
		if _, dup := index[name]; dup {
			add("tasks."+name, "task %q is defined twice", name)
			continue
		}
		index[name] = i
	}
	// What the rules across tasks look at: each task, with a type that is not well formed left out
	// (as the parser leaves it out), so that it is reported once and not again by every binding.
	tasks := make([]*Task, len(p.Tasks))
	for i := range p.Tasks {
		t := &p.Tasks[i]
		checked := *t
		tasks[i] = &checked
		path := "tasks." + t.Name
		if msg := nameProblem(t.Name); msg != "" {
			add(path, "task name %q %s", t.Name, msg)
		}
		if exec, ok := normalizeExecutor(t.Executor); !ok || exec != t.Executor {
			add(path+".executor", "task %q: unknown executor %q", t.Name, t.Executor)
		} else {
			for _, fp := range executorProblems(taskShape{
				executor: t.Executor, file: t.File != "", module: t.Module != "",
				function: t.Function != "" && t.Executor != ExecutorPython, command: len(t.Command) > 0,
			}) {
				add(path+"."+fp.field, "task %q: %s", t.Name, fp.message)
			}
		}
		if t.File != "" && (!filepath.IsLocal(t.File) || filepath.Clean(t.File) != t.File) {
			add(path+".file", "task %q: file %q must be a clean path inside the workflow directory", t.Name, t.File)
		}
		for _, m := range t.Preload {
			if msg := preloadProblem(m); msg != "" {
				add(path+".preload", "task %q: preload %q %s", t.Name, m, msg)
			}
		}
		if len(t.Preload) > 0 && t.Executor != ExecutorPython {
			add(path+".preload", "task %q: preload is for python tasks, not %s", t.Name, t.Executor)
		}
		if t.TimeoutSeconds < 0 {
			add(path+".timeout", "task %q: timeout must not be negative", t.Name)
		}
		if t.Retries < 0 {
			add(path+".retries", "task %q: retries must not be negative", t.Name)
		}
		if l := t.Limits; l != nil {
			if l.MemoryBytes < 0 || l.OpenFiles < 0 || l.Processes < 0 || l.CPUSeconds < 0 {
				add(path+".limits", "task %q: limits must not be negative", t.Name)
			}
			if t.Executor == ExecutorNoop || t.Executor == ExecutorSleep {
				add(path+".limits", "task %q: limits apply to tasks that run processes (python, process, shell), not %s", t.Name, t.Executor)
			}
		}
		for _, tt := range [...]struct {
			field string
			typ   *Type
			drop  func()
		}{{"input_type", t.InputType, func() { checked.InputType = nil }}, {"output_type", t.OutputType, func() { checked.OutputType = nil }}} {
			if tt.typ != nil {
				if msg := typeProblem(tt.typ, 0); msg != "" {
					add(path+"."+tt.field, "task %q: %s: %s", t.Name, tt.field, msg)
					tt.drop()
				}
			}
		}
		if checked.InputType != nil && checked.InputType.Kind != KindObject {
			add(path+".input_type", "task %q: input_type must be an object type ({name: type, ...}), not %s", t.Name, t.InputType)
			checked.InputType = nil
		}
		for _, k := range slices.Sorted(maps.Keys(t.Inputs)) {
			if msg := nameProblem(k); msg != "" {
				add(path+".inputs."+k, "task %q: input name %q %s", t.Name, k, msg)
			}
		}
	}
	// The rules across tasks, the same as for a workflow file (graph.go).
	deps := graphCheck{
		tasks:      tasks,
		params:     params,
		inputOrder: func(i int) []string { return slices.Sorted(maps.Keys(p.Tasks[i].Inputs)) },
		suggest:    func(string, []string) string { return "" },
		report:     func(_ site, path, format string, args ...any) { add(path, format, args...) },
	}.run()
	if len(errs) == 0 {
		for i, ds := range deps {
			for _, j := range ds {
				if j > i {
					add("tasks."+p.Tasks[i].Name+".depends_on", "task %q: depends_on %q: tasks are not in dependency order",
						p.Tasks[i].Name, p.Tasks[j].Name)
				}
			}
		}
	}
	return errs.err()
}

// sleepSecondsProblem checks the constant duration of a sleep task.
func sleepSecondsProblem(raw json.RawMessage) string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil || !isNumber(v) {
		return "must be a number of seconds"
	}
	if f, _ := v.(json.Number).Float64(); f < 0 {
		return "must not be negative"
	}
	return ""
}

// typeProblem checks that a type received from outside is well formed, or returns "".
func typeProblem(t *Type, depth int) string {
	if depth > maxCheckDepth {
		return "type nested too deeply"
	}
	if t == nil {
		return "missing type"
	}
	switch t.Kind {
	case KindStr, KindInt, KindFloat, KindBool, KindDate, KindDatetimeNoTZ, KindDatetimeTZ, KindDatetimeUTC:
		if len(t.Fields) > 0 || t.Elem != nil {
			return fmt.Sprintf("%s type with fields or element", t.Kind)
		}
	case KindArray:
		if t.Elem == nil {
			return "array type without element type"
		}
		return typeProblem(t.Elem, depth+1)
	case KindObject:
		seen := make(map[string]bool, len(t.Fields))
		for _, f := range t.Fields {
			if msg := nameProblem(f.Name); msg != "" {
				return fmt.Sprintf("field name %q %s", f.Name, msg)
			}
			if seen[f.Name] {
				return fmt.Sprintf("field %q defined twice", f.Name)
			}
			seen[f.Name] = true
			if msg := typeProblem(f.Type, depth+1); msg != "" {
				return msg
			}
		}
	default:
		return fmt.Sprintf("unknown kind %q", t.Kind)
	}
	return ""
}
