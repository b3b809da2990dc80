package workflow

import (
	"errors"
	"strings"
	"testing"
)

// Every rule across tasks, reached from a file, is placed at the line of the part it is about: the
// one validator (graph.go) reports sites, the parser turns them into positions.
func TestGraphErrorsCarryPositions(t *testing.T) {
	t.Parallel()
	src := `name: graph
tasks:
  a:
    executor: noop
    output_type: {n: int}
  b:
    executor: noop
    depends_on:
      - a
      - a
      - b
      - zz
      - c
    input_type: {n: int, s: str, m: int}
    inputs:
      n: {ref: tasks.a.output.n}
      s: {const: 5}
      x: {const: 1}
      m: {ref: tasks.c.output}
  c:
    executor: sleep
    depends_on: [b]
    inputs:
      other: {ref: tasks.zz.output}
  d:
    executor: sleep
`
	want := map[string]int{ // message fragment -> line
		`depends_on "a": listed twice`:                      10,
		`depends_on "b": a task cannot depend on itself`:    11,
		`depends_on "zz": no such task`:                     12,
		`dependency cycle`:                                  13,
		`inputs.s: const does not fit str`:                  17,
		`inputs.x: not a field of input_type`:               18,
		`inputs.m: ref "tasks.c.output" has type`:           0, // c has no output_type: no error
		`inputs.other: ref "tasks.zz.output": no such task`: 24,
		`task "c": sleep tasks need input "seconds"`:        23,
		`task "d": sleep tasks need input "seconds"`:        25,
		`task "b": inputs: missing`:                         0,
	}
	_, err := Parse("graph.yaml", []byte(src), t.TempDir())
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("Parse: %v, want an ErrorList", err)
	}
	for frag, line := range want {
		var found *Error
		for _, e := range list {
			if strings.Contains(e.Message, frag) {
				found = e
			}
		}
		switch {
		case line == 0 && found != nil:
			t.Errorf("%q reported (%s), want none", frag, found)
		case line != 0 && found == nil:
			t.Errorf("%q not reported; got:\n%v", frag, err)
		case line != 0 && (found.Line != line || found.Col < 1 || found.File != "graph.yaml"):
			t.Errorf("%q at %s:%d:%d, want line %d", frag, found.File, found.Line, found.Col, line)
		}
	}
}
