package workflow

import (
	"strings"
	"testing"
)

func TestConstToJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		yaml    string
		want    string // compiled JSON, or the error message suffix when wantErr
		wantErr bool
	}{
		{`hello`, `"hello"`, false},
		{`"42"`, `"42"`, false},
		{`42`, `42`, false},
		{`-7`, `-7`, false},
		{`0x1F`, `31`, false},
		{`18446744073709551615`, `18446744073709551615`, false},
		{`1.5`, `1.5`, false},
		{`1e3`, `1000`, false},
		{`true`, `true`, false},
		{`null`, `null`, false},
		{`~`, `null`, false},
		{`2024-05-01`, `"2024-05-01"`, false},
		{`2024-05-01T10:00:00Z`, `"2024-05-01T10:00:00Z"`, false},
		{`[1, "a", [true]]`, `[1,"a",[true]]`, false},
		{`{b: 1, a: {c: [x]}}`, `{"a":{"c":["x"]},"b":1}`, false},
		{`{}`, `{}`, false},
		{`[]`, `[]`, false},
		{`99999999999999999999999`, `1e+23`, false}, // YAML resolves an int past 64 bits as a float
		{`!!int 99999999999999999999999`, "is out of the 64-bit integer range", true},
		{`.inf`, "const .inf has no JSON representation", true},
		{`.nan`, "const .nan has no JSON representation", true},
		{`!!binary aGVsbG8=`, "with YAML tag !!binary is not supported", true},
		{`{a: 1, a: 2}`, `duplicate key "a"`, true},
	}
	for _, tc := range tests {
		t.Run(tc.yaml, func(t *testing.T) {
			t.Parallel()
			src := "name: c\ntasks:\n  a:\n    executor: python\n    module: m\n    inputs:\n      v: {const: " + tc.yaml + "}\n"
			plan, err := Parse("c.yaml", []byte(src), t.TempDir())
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error = %v, want it to contain %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := string(plan.Tasks[0].Inputs["v"].Const); got != tc.want {
				t.Fatalf("const %s compiled to %s, want %s", tc.yaml, got, tc.want)
			}
		})
	}
}

func TestConstThroughAnchor(t *testing.T) {
	t.Parallel()
	src := `name: anchors
cities: &cities [Lyon, Paris]
tasks:
  a:
    executor: python
    module: m
    inputs:
      v: {const: *cities}
`
	_, err := Parse("a.yaml", []byte(src), t.TempDir())
	if err == nil || !strings.Contains(err.Error(), `a.yaml:2:1: unknown field "cities"`) {
		t.Fatalf("err = %v, want only the unknown top-level field", err)
	}
	src = strings.Replace(src, "cities: &cities [Lyon, Paris]\n", "", 1)
	src = strings.Replace(src, "    inputs:\n      v: {const: *cities}\n", "    inputs:\n      v: {const: &c [Lyon, Paris]}\n      w: {const: *c}\n", 1)
	plan, err := Parse("a.yaml", []byte(src), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if got := string(plan.Tasks[0].Inputs["w"].Const); got != `["Lyon","Paris"]` {
		t.Fatalf("aliased const = %s", got)
	}
}
