package workflow

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files of the parser tests")

// golden compares got with the golden file, or rewrites it under -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run with -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("output differs from %s (run with -update to accept):\n--- got\n%s--- want\n%s", path, got, want)
	}
}

func TestInvalidGolden(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/invalid/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 30 {
		t.Fatalf("found %d invalid cases, want at least 30", len(files))
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			plan, err := Load(file)
			if err == nil {
				t.Fatalf("Load(%s) succeeded with plan %q, want errors", file, plan.Name)
			}
			if plan != nil {
				t.Fatalf("Load(%s) returned a plan along with errors", file)
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("Load(%s) error %T is not an ErrorList: %v", file, err, err)
			}
			for _, e := range list {
				if e.File != file || e.Message == "" || e.Line < 1 || e.Col < 1 {
					t.Errorf("error without file, position or message: %+v", e)
				}
			}
			golden(t, strings.TrimSuffix(file, ".yaml")+".golden", []byte(err.Error()+"\n"))
		})
	}
}

func TestValidGolden(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/valid/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no valid cases found")
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			plan, err := Load(file)
			if err != nil {
				t.Fatalf("Load(%s): %v", file, err)
			}
			wantDir, _ := filepath.Abs(filepath.Dir(file))
			if plan.Dir != wantDir {
				t.Errorf("Dir = %q, want %q", plan.Dir, wantDir)
			}
			if err := plan.Validate(); err != nil {
				t.Errorf("a compiled plan must pass Validate: %v", err)
			}
			plan.Dir = ""
			got, err := json.MarshalIndent(plan, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden(t, strings.TrimSuffix(file, ".yaml")+".golden", append(got, '\n'))
		})
	}
}

func TestExamplesValidate(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("../../examples/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 6 {
		t.Fatalf("found %d examples, want at least 6", len(files))
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			if _, err := Load(file); err != nil {
				t.Fatalf("example does not validate:\n%v", err)
			}
		})
	}
}

func TestCompileOrderAndDefaults(t *testing.T) {
	t.Parallel()
	src := `
name: order
tasks:
  report: {executor: noop, depends_on: [load, audit]}
  load: {executor: noop, depends_on: [extract]}
  audit: {executor: noop}
  extract: {executor: process, command: "python3 -c 'print(1)' \"a b\" c\\ d", timeout: 0, retries: 2}
  py: {executor: python, module: pkg.mod}
`
	plan, err := Parse("order.yaml", []byte(src), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, task := range plan.Tasks {
		order = append(order, fmt.Sprintf("%s@%d", task.Name, task.Index))
	}
	if got, want := strings.Join(order, " "), "audit@2 extract@3 load@1 report@0 py@4"; got != want {
		t.Fatalf("order = %s, want %s", got, want)
	}
	ex := plan.Task("extract")
	if got, want := strings.Join(ex.Command, "|"), "python3|-c|print(1)|a b|c d"; got != want {
		t.Errorf("argv = %q, want %q", got, want)
	}
	if ex.TimeoutSeconds != 0 || ex.Retries != 2 {
		t.Errorf("extract timeout/retries = %d/%d, want 0/2", ex.TimeoutSeconds, ex.Retries)
	}
	if got := plan.Task("audit").TimeoutSeconds; got != DefaultTimeoutSeconds {
		t.Errorf("default timeout = %d, want %d", got, DefaultTimeoutSeconds)
	}
	if got := plan.Task("py").Function; got != "main" {
		t.Errorf("default function = %q, want main", got)
	}
	if len(plan.Hash) != 64 {
		t.Errorf("hash %q is not hex sha256", plan.Hash)
	}
}

func TestHashIgnoresDirAndFollowsContent(t *testing.T) {
	t.Parallel()
	src := []byte("name: h\ntasks:\n  a: {executor: noop}\n")
	p1, err1 := Parse("a.yaml", src, t.TempDir())
	p2, err2 := Parse("b.yaml", src, t.TempDir())
	p3, err3 := Parse("a.yaml", []byte("name: h\ntasks:\n  a: {executor: noop, retries: 1}\n"), t.TempDir())
	if err := errors.Join(err1, err2, err3); err != nil {
		t.Fatal(err)
	}
	if p1.Hash != p2.Hash {
		t.Errorf("same content in two directories hashes differently: %s vs %s", p1.Hash, p2.Hash)
	}
	if p1.Hash == p3.Hash {
		t.Errorf("different content hashes the same: %s", p1.Hash)
	}
}

func TestCaps(t *testing.T) {
	t.Parallel()
	t.Run("file size", func(t *testing.T) {
		t.Parallel()
		data := append([]byte("name: big\n#"), bytes.Repeat([]byte("x"), MaxFileBytes)...)
		_, err := Parse("big.yaml", data, t.TempDir())
		if err == nil || !strings.Contains(err.Error(), "more than the limit of 1048576 (1 MiB)") {
			t.Fatalf("err = %v, want size cap", err)
		}
	})
	t.Run("load file size", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "big.yaml")
		if err := os.WriteFile(path, bytes.Repeat([]byte("#"), MaxFileBytes+10), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path)
		if err == nil || !strings.Contains(err.Error(), "big.yaml:1:1: file is 1048577 bytes") {
			t.Fatalf("err = %v, want size cap", err)
		}
	})
	t.Run("task count", func(t *testing.T) {
		t.Parallel()
		var b strings.Builder
		b.WriteString("name: many\ntasks:\n")
		for i := range MaxTasks + 1 {
			fmt.Fprintf(&b, "  t%d: {executor: noop}\n", i)
		}
		_, err := Parse("many.yaml", []byte(b.String()), t.TempDir())
		if err == nil || !strings.Contains(err.Error(), "many.yaml:3:3: workflow has 10001 tasks, more than the limit of 10000") {
			t.Fatalf("err = %v, want task cap", err)
		}
	})
	t.Run("max tasks chain", func(t *testing.T) {
		t.Parallel()
		var b strings.Builder
		b.WriteString("name: chain\ntasks:\n  t0: {executor: noop}\n")
		for i := 1; i < MaxTasks; i++ {
			fmt.Fprintf(&b, "  t%d: {executor: noop, depends_on: [t%d]}\n", i, i-1)
		}
		plan, err := Parse("chain.yaml", []byte(b.String()), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if len(plan.Tasks) != MaxTasks || plan.Tasks[MaxTasks-1].Name != "t9999" {
			t.Fatalf("chain compiled to %d tasks", len(plan.Tasks))
		}
	})
	t.Run("self-containing alias", func(t *testing.T) {
		t.Parallel()
		src := "name: loop\nx: &x [*x]\ntasks:\n  a: {executor: python, module: m, inputs: {v: {const: *x}}}\n"
		_, err := Parse("loop.yaml", []byte(src), t.TempDir())
		if err == nil {
			t.Fatal("a self-containing alias was accepted")
		}
	})
}

func TestSplitCommand(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{`echo hi`, []string{"echo", "hi"}, ""},
		{`  a   b  `, []string{"a", "b"}, ""},
		{`a 'b c' "d e"`, []string{"a", "b c", "d e"}, ""},
		{`a "" ''`, []string{"a", "", ""}, ""},
		{`a\ b c`, []string{"a b", "c"}, ""},
		{`x"y"'z'`, []string{"xyz"}, ""},
		{`"a\"b" "c\\d" "e\f"`, []string{`a"b`, `c\d`, `e\f`}, ""},
		{`'a\b'`, []string{`a\b`}, ""},
		{"a \\\nb", []string{"a", "b"}, ""},
		{`'$HOME | x'`, []string{"$HOME | x"}, ""},
		{`"\$x"`, []string{"$x"}, ""},
		{`'open`, nil, "unterminated single quote"},
		{`"open`, nil, "unterminated double quote"},
		{`trailing\`, nil, "lone backslash"},
		{`a | b`, nil, `uses "|"`},
		{`a; b`, nil, `uses ";"`},
		{`a > f`, nil, `uses ">"`},
		{`echo $X`, nil, `uses "$"`},
		{`echo "$X"`, nil, `uses "$"`},
		{"echo `x`", nil, "uses \"`\""},
		{``, nil, ""},
	}
	for _, tc := range tests {
		got, err := splitCommand(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("splitCommand(%q) error = %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("splitCommand(%q): %v", tc.in, err)
			continue
		}
		if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tc.want) {
			t.Errorf("splitCommand(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSuggest(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"depend_on", `; did you mean "depends_on"?`},
		{"exectuor", `; did you mean "executor"?`},
		{"timeuot", `; did you mean "timeout"?`},
		{"colour", ""},
		{"id", ""},
	} {
		if got := suggest(tc.in, taskFields); got != tc.want {
			t.Errorf("suggest(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestErrorListFormat(t *testing.T) {
	t.Parallel()
	l := ErrorList{
		{File: "f.yaml", Line: 3, Col: 7, Message: "second"},
		{File: "f.yaml", Line: 1, Col: 2, Message: "first"},
		{File: "f.yaml", Message: "no position"},
	}.sort()
	if got, want := l.Error(), "f.yaml: no position\nf.yaml:1:2: first\nf.yaml:3:7: second"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
	var e *Error
	if !errors.As(error(l), &e) || e.Message != "no position" {
		t.Fatalf("errors.As did not reach the first error: %v", e)
	}
}

// A workflow's preload reaches its python tasks, and only them.
func TestPreloadCompiledIntoPythonTasks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "t.py"), []byte("def main():\n    return 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := "name: pre\npreload: [json, xml.dom]\ntasks:\n  py:\n    executor: python\n    file: t.py\n  other:\n    executor: noop\n"
	plan, err := Parse("pre.yaml", []byte(src), dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := plan.Task("py").Preload; len(got) != 2 || got[0] != "json" || got[1] != "xml.dom" {
		t.Errorf("python task preload %v", got)
	}
	if got := plan.Task("other").Preload; got != nil {
		t.Errorf("noop task preload %v, want none", got)
	}
	if err := plan.Validate(); err != nil {
		t.Errorf("the compiled plan does not validate: %v", err)
	}
	plan.Task("other").Preload = []string{"json"}
	if err := plan.Validate(); err == nil || !strings.Contains(err.Error(), "preload is for python tasks") {
		t.Errorf("preload on a noop task: %v", err)
	}
}
