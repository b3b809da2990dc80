package workflow

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// The rules across tasks (dependencies, cycles, bindings and their types) have one home: this
// file. Both front ends run them: Parse, on a workflow read from YAML, places each error at the
// YAML node it is about; Plan.Validate, on a plan that arrived without YAML (a submission event),
// reports the same errors with their path only. The front end says where a part of a task was
// written through a site.

// siteKind is which part of a task an error is about.
type siteKind int

const (
	siteDep         siteKind = iota // one depends_on entry (site.dep)
	siteInputKey                    // an input's name (site.input)
	siteInputValue                  // an input's const or ref value (site.input)
	siteInputs                      // the inputs as a whole: a field input_type requires is missing
	siteSleepInputs                 // the inputs of a sleep task, or the task itself when it has none
)

// site locates an error within task tasks[task].
type site struct {
	task  int
	kind  siteKind
	dep   int
	input string
}

// graphCheck is one run of the rules across tasks.
type graphCheck struct {
	tasks  []*Task
	params []Param // the declared run parameters
	// inputOrder returns the names of task i's inputs in the order they are checked.
	inputOrder func(i int) []string
	// suggest returns a " (did you mean ...?)" hint for s among candidates, or "".
	suggest func(s string, candidates []string) string
	// report records one error.
	report func(at site, path, format string, args ...any)
}

// run checks every task and returns the dependency graph (task index to the indexes of the tasks
// it depends on, those that exist).
func (g graphCheck) run() [][]int {
	names := make([]string, len(g.tasks))
	index := make(map[string]int, len(g.tasks))
	for i, t := range g.tasks {
		names[i] = t.Name
		if _, dup := index[t.Name]; !dup {
			index[t.Name] = i
		}
	}
	deps := make([][]int, len(g.tasks))
	edgeDep := make(map[[2]int]int) // (task, upstream) -> its depends_on entry
	for i, t := range g.tasks {
		path := "tasks." + t.Name + ".depends_on"
		who := fmt.Sprintf("task %q: ", t.Name)
		seen := make(map[string]bool, len(t.DependsOn))
		for k, d := range t.DependsOn {
			at := site{task: i, kind: siteDep, dep: k}
			up, ok := index[d]
			switch {
			case seen[d]:
				g.report(at, path, "%sdepends_on %q: listed twice", who, truncate(d))
			case d == t.Name:
				g.report(at, path, "%sdepends_on %q: a task cannot depend on itself", who, truncate(d))
			case !ok:
				g.report(at, path, "%sdepends_on %q: no such task%s", who, truncate(d), g.suggest(d, names))
			default:
				deps[i] = append(deps[i], up)
				edgeDep[[2]int{i, up}] = k
			}
			seen[d] = true
		}
		g.checkInputs(i, seen, index)
	}
	for _, c := range findCycles(deps) {
		first := g.tasks[c[0]]
		g.report(site{task: c[0], kind: siteDep, dep: edgeDep[[2]int{c[0], c[1]}]}, "tasks."+first.Name+".depends_on",
			"task %q: dependency cycle %s", first.Name, cycleString(c, func(u int) string { return g.tasks[u].Name }))
	}
	return deps
}

// checkInputs checks task i's bindings: each is one of const or ref, refs name dependencies and
// fit, consts fit, and the inputs bind exactly the fields of input_type.
func (g graphCheck) checkInputs(i int, deps map[string]bool, index map[string]int) {
	t := g.tasks[i]
	who := fmt.Sprintf("task %q: ", t.Name)
	for _, name := range g.inputOrder(i) {
		b := t.Inputs[name]
		path := "tasks." + t.Name + ".inputs." + name
		iwho := fmt.Sprintf("%sinputs.%s: ", who, name)
		key := site{task: i, kind: siteInputKey, input: name}
		value := site{task: i, kind: siteInputValue, input: name}
		want := t.InputType.Field(name)
		if t.InputType != nil && want == nil {
			g.report(key, path, "%snot a field of input_type %s%s", iwho, t.InputType, g.suggest(name, fieldNames(t.InputType)))
			continue
		}
		if (b.Const == nil) == (b.Ref == nil) {
			g.report(key, path, "%sgive exactly one of const or ref", iwho)
			continue
		}
		if c := b.Const; c != nil {
			if !json.Valid(c) {
				g.report(value, path+".const", "%sconst is not valid JSON", iwho)
				continue
			}
			if want != nil {
				if err := want.CheckJSON(c); err != nil {
					g.report(value, path+".const", "%sconst does not fit %s: %s", iwho, want, strings.TrimPrefix(err.Error(), "$: "))
				}
			}
			if t.Executor == ExecutorSleep && name == "seconds" {
				if msg := sleepSecondsProblem(c); msg != "" {
					g.report(value, path+".const", "%s%s", iwho, msg)
				}
			}
			continue
		}
		ref := b.Ref
		fullText := ref.String()
		var typ *Type
		var refText, of string // the ref up to the path, and what its type is ("output_type of \"t\"")
		if ref.Param != "" {
			refText, of = "params."+ref.Param, "type of param "+strconv.Quote(ref.Param)
			i := slices.IndexFunc(g.params, func(p Param) bool { return p.Name == ref.Param })
			if i < 0 || ref.Task != "" {
				names := make([]string, len(g.params))
				for k, p := range g.params {
					names[k] = p.Name
				}
				g.report(value, path+".ref", "%sref %q: no such param %q (declare it under params)%s", iwho, fullText, ref.Param, g.suggest(ref.Param, names))
				continue
			}
			typ = g.params[i].Type
		} else {
			refText, of = "tasks."+ref.Task+".output", "output_type of "+strconv.Quote(ref.Task)
			up, ok := index[ref.Task]
			switch {
			case !ok:
				g.report(value, path+".ref", "%sref %q: no such task %q", iwho, fullText, ref.Task)
				continue
			case !deps[ref.Task]:
				g.report(value, path+".ref", "%sref %q: task %q is not in depends_on", iwho, fullText, ref.Task)
				continue
			}
			typ = g.tasks[up].OutputType
		}
		if typ == nil {
			continue
		}
		for _, field := range ref.Path {
			next := typ.Field(field)
			if next == nil {
				if typ.Kind == KindObject {
					g.report(value, path+".ref", "%sref %q: %s (%s) has no field %q%s",
						iwho, fullText, typ, of, field, g.suggest(field, fieldNames(typ)))
				} else {
					g.report(value, path+".ref", "%sref %q: %s (at %s) is not an object, it has no field %q",
						iwho, fullText, typ, refText, field)
				}
				typ = nil
				break
			}
			refText += "." + field
			typ = next
		}
		if typ != nil && want != nil && !assignable(typ, want) {
			g.report(value, path+".ref", "%sref %q has type %s, which does not fit %s", iwho, refText, typ, want)
		}
	}
	if t.InputType != nil {
		for _, f := range t.InputType.Fields {
			if _, ok := t.Inputs[f.Name]; !ok {
				g.report(site{task: i, kind: siteInputs}, "tasks."+t.Name+".inputs", "%sinputs: missing %q required by input_type", who, f.Name)
			}
		}
	}
	if t.Executor == ExecutorSleep {
		if _, ok := t.Inputs["seconds"]; !ok {
			g.report(site{task: i, kind: siteSleepInputs}, "tasks."+t.Name+".inputs", "%ssleep tasks need input \"seconds\"", who)
		}
	}
}

func fieldNames(t *Type) []string {
	if t == nil {
		return nil
	}
	out := make([]string, len(t.Fields))
	for i, f := range t.Fields {
		out[i] = f.Name
	}
	return out
}
