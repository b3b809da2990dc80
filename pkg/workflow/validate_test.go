package workflow

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func validPlan() *Plan {
	return &Plan{
		Name: "demo",
		Tasks: []Task{
			{Name: "a", Executor: ExecutorProcess, Command: []string{"echo"}, TimeoutSeconds: 300,
				OutputType: &Type{Kind: KindInt}},
			{Name: "b", Executor: ExecutorPython, File: "tasks/b.py", Function: "main", DependsOn: []string{"a"},
				InputType: &Type{Kind: KindObject, Fields: []Field{{Name: "n", Type: &Type{Kind: KindInt}}, {Name: "s", Type: &Type{Kind: KindStr}}}},
				Inputs: map[string]Binding{
					"n": {Ref: &Ref{Task: "a"}},
					"s": {Const: json.RawMessage(`"x"`)},
				}},
			{Name: "c", Executor: ExecutorSleep, DependsOn: []string{"b"}, Inputs: map[string]Binding{"seconds": {Const: json.RawMessage(`0.01`)}}},
		},
	}
}

func TestPlanValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(p *Plan)
		want   []string // substrings, one per expected error, in order
	}{
		{"valid", func(*Plan) {}, nil},
		{"nil-ish empty", func(p *Plan) { p.Tasks = nil }, []string{"workflow has no tasks"}},
		{"bad workflow name", func(p *Plan) { p.Name = "a b" }, []string{`workflow name "a b" must match`}},
		{"bad task name", func(p *Plan) {
			p.Tasks[0].Name = "1a"
			p.Tasks[1].DependsOn = nil
			p.Tasks[1].Inputs["n"] = Binding{Const: json.RawMessage("1")}
		},
			[]string{`task name "1a" must match`}},
		{"duplicate task", func(p *Plan) { p.Tasks[2].Name = "a"; p.Tasks[2].DependsOn = nil }, []string{`task "a" is defined twice`}},
		{"unknown executor", func(p *Plan) { p.Tasks[0].Executor = "shell" }, []string{`task "a": unknown executor "shell"`}},
		{"python needs file", func(p *Plan) { p.Tasks[1].File = "" }, []string{`task "b": python tasks need file or module`}},
		{"escaping file", func(p *Plan) { p.Tasks[1].File = "../x.py" }, []string{`task "b": file "../x.py" must be a clean path`}},
		{"absolute file", func(p *Plan) { p.Tasks[1].File = "/x.py" }, []string{`file "/x.py" must be a clean path`}},
		{"negative timeout", func(p *Plan) { p.Tasks[0].TimeoutSeconds = -1 }, []string{`task "a": timeout must not be negative`}},
		{"negative retries", func(p *Plan) { p.Tasks[0].Retries = -1 }, []string{`task "a": retries must not be negative`}},
		{"unknown dep", func(p *Plan) { p.Tasks[2].DependsOn = []string{"b", "zz"} }, []string{`task "c": depends_on "zz": no such task`}},
		{"self dep", func(p *Plan) { p.Tasks[2].DependsOn = []string{"c"} }, []string{`task "c": depends_on "c": a task cannot depend on itself`}},
		{"duplicate dep", func(p *Plan) { p.Tasks[2].DependsOn = []string{"b", "b"} }, []string{`task "c": depends_on "b": listed twice`}},
		{"cycle", func(p *Plan) { p.Tasks[0].DependsOn = []string{"c"} }, []string{`task "a": dependency cycle a -> c -> b -> a`}},
		{"order", func(p *Plan) { p.Tasks[0], p.Tasks[2] = p.Tasks[2], p.Tasks[0] }, []string{`task "c": depends_on "b": tasks are not in dependency order`, `task "b": depends_on "a": tasks are not in dependency order`}},
		{"ref to non-dep", func(p *Plan) { p.Tasks[1].Inputs["n"] = Binding{Ref: &Ref{Task: "c"}} }, []string{`task "b": inputs.n: ref "tasks.c.output": task "c" is not in depends_on`}},
		{"binding both", func(p *Plan) { p.Tasks[1].Inputs["s"] = Binding{Const: json.RawMessage(`"x"`), Ref: &Ref{Task: "a"}} }, []string{`task "b": inputs.s: give exactly one of const or ref`}},
		{"const misfit", func(p *Plan) { p.Tasks[1].Inputs["s"] = Binding{Const: json.RawMessage(`5`)} }, []string{`task "b": inputs.s: const does not fit str: want str, got 5`}},
		{"const invalid json", func(p *Plan) { p.Tasks[1].Inputs["s"] = Binding{Const: json.RawMessage(`{`)} }, []string{`inputs.s: const is not valid JSON`}},
		{"missing input", func(p *Plan) { delete(p.Tasks[1].Inputs, "s") }, []string{`task "b": inputs: missing "s" required by input_type`}},
		{"extra input", func(p *Plan) { p.Tasks[1].Inputs["z"] = Binding{Const: json.RawMessage(`1`)} }, []string{`task "b": inputs.z: not a field of input_type`}},
		{"bad type", func(p *Plan) { p.Tasks[0].OutputType = &Type{Kind: KindArray} }, []string{`task "a": output_type: array type without element type`}},
		{"sleep without seconds", func(p *Plan) { p.Tasks[2].Inputs = nil }, []string{`task "c": sleep tasks need input "seconds"`}},
		{"sleep negative", func(p *Plan) { p.Tasks[2].Inputs["seconds"] = Binding{Const: json.RawMessage(`-1`)} }, []string{`inputs.seconds: must not be negative`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := validPlan()
			tc.mutate(p)
			err := p.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("Validate() = %v, want an ErrorList", err)
			}
			if len(list) != len(tc.want) {
				t.Fatalf("Validate() gave %d errors, want %d:\n%v", len(list), len(tc.want), err)
			}
			for i, w := range tc.want {
				if !strings.Contains(list[i].Message, w) {
					t.Errorf("error %d = %q, want it to contain %q", i, list[i].Message, w)
				}
			}
		})
	}
}

func TestPlanTask(t *testing.T) {
	t.Parallel()
	p := validPlan()
	if got := p.Task("b"); got == nil || got.Name != "b" {
		t.Fatalf("Task(b) = %v", got)
	}
	if got := p.Task("nope"); got != nil {
		t.Fatalf("Task(nope) = %v, want nil", got)
	}
}
