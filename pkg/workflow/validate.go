package workflow

import (
	"bytes"
	"encoding/json"
	"fmt"
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

	index := make(map[string]int, len(p.Tasks))
	for i := range p.Tasks {
		name := p.Tasks[i].Name
		if _, dup := index[name]; dup {
			add("tasks."+name, "task %q is defined twice", name)
			continue
		}
		index[name] = i
	}
	deps := make([][]int, len(p.Tasks))
	for i := range p.Tasks {
		t := &p.Tasks[i]
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
		if t.TimeoutSeconds < 0 {
			add(path+".timeout", "task %q: timeout must not be negative", t.Name)
		}
		if t.Retries < 0 {
			add(path+".retries", "task %q: retries must not be negative", t.Name)
		}
		seen := make(map[string]bool, len(t.DependsOn))
		for _, d := range t.DependsOn {
			j, ok := index[d]
			switch {
			case seen[d]:
				add(path+".depends_on", "task %q: depends_on %q: listed twice", t.Name, d)
			case d == t.Name:
				add(path+".depends_on", "task %q: depends_on %q: a task cannot depend on itself", t.Name, d)
			case !ok:
				add(path+".depends_on", "task %q: depends_on %q: no such task", t.Name, d)
			default:
				deps[i] = append(deps[i], j)
			}
			seen[d] = true
		}
		for _, tt := range [...]struct {
			field string
			typ   *Type
		}{{"input_type", t.InputType}, {"output_type", t.OutputType}} {
			if tt.typ != nil {
				if msg := typeProblem(tt.typ, 0); msg != "" {
					add(path+"."+tt.field, "task %q: %s: %s", t.Name, tt.field, msg)
				}
			}
		}
		validateBindings(t, seen, add)
	}
	for _, c := range findCycles(deps) {
		first := p.Tasks[c[0]].Name
		add("tasks."+first+".depends_on", "task %q: dependency cycle %s", first,
			cycleString(c, func(u int) string { return p.Tasks[u].Name }))
	}
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

// validateBindings checks a compiled task's inputs against its dependencies and input type.
func validateBindings(t *Task, deps map[string]bool, add func(path, format string, args ...any)) {
	path := "tasks." + t.Name + ".inputs"
	names := make([]string, 0, len(t.Inputs))
	for k := range t.Inputs {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		b := t.Inputs[k]
		if msg := nameProblem(k); msg != "" {
			add(path+"."+k, "task %q: input name %q %s", t.Name, k, msg)
		}
		switch {
		case (b.Const == nil) == (b.Ref == nil):
			add(path+"."+k, "task %q: inputs.%s: needs exactly one of const or ref", t.Name, k)
		case b.Ref != nil:
			if !deps[b.Ref.Task] {
				add(path+"."+k, "task %q: inputs.%s: ref to task %q, which is not in depends_on", t.Name, k, b.Ref.Task)
			}
		default:
			if !json.Valid(b.Const) {
				add(path+"."+k, "task %q: inputs.%s: const is not valid JSON", t.Name, k)
				continue
			}
			if ft := t.InputType.Field(k); ft != nil {
				if err := ft.CheckJSON(b.Const); err != nil {
					add(path+"."+k, "task %q: inputs.%s: const does not fit %s: %v", t.Name, k, ft, err)
				}
			}
		}
	}
	if t.InputType != nil {
		if t.InputType.Kind != KindObject {
			add(path, "task %q: input_type must be an object type, not %s", t.Name, t.InputType)
			return
		}
		for _, f := range t.InputType.Fields {
			if _, ok := t.Inputs[f.Name]; !ok {
				add(path, "task %q: inputs: missing %q required by input_type", t.Name, f.Name)
			}
		}
		for _, k := range names {
			if t.InputType.Field(k) == nil {
				add(path+"."+k, "task %q: inputs.%s: not a field of input_type %s", t.Name, k, t.InputType)
			}
		}
	}
	if t.Executor == ExecutorSleep {
		if _, ok := t.Inputs["seconds"]; !ok {
			add(path, "task %q: sleep tasks need input \"seconds\"", t.Name)
		} else if c := t.Inputs["seconds"].Const; c != nil && sleepSecondsProblem(c) != "" {
			add(path+".seconds", "task %q: inputs.seconds: %s", t.Name, sleepSecondsProblem(c))
		}
	}
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
