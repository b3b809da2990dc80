package executor

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/workflow"
)

func pythonTask(name, file, function string) workflow.Task {
	return workflow.Task{Name: name, Executor: workflow.ExecutorPython, File: file, Function: function}
}

const pyTasks = `import os
import sys


def main(a, b=2):
    return {"sum": a + b, "cwd": os.getcwd(), "attempt": os.environ["ORK_ATTEMPT"]}


def noisy():
    print('ORK_OUTPUT:{"corrupt": true}')
    print("}{ not json")
    sys.stdout.write("no newline")
    sys.stdout.flush()
    os.write(1, b"\nraw fd write\n")
    print("to stderr", file=sys.stderr)
    return [1, 2]


def explode(**kwargs):
    raise ValueError("bad input: %s" % sorted(kwargs))


def unserializable():
    return {1, 2}


def nan():
    return float("nan")


def exits():
    sys.exit(4)


def big():
    return "x" * 200


def count(items):
    return len(items)


def nothing():
    pass
`

func TestPython(t *testing.T) {
	t.Parallel()
	h := setup(t)
	cfg := testConfig(t)
	cfg.OutputMaxBytes = 150
	h.start(t, cfg)
	writeFile(t, filepath.Join(h.dir, "tasks.py"), pyTasks, 0o644)
	if err := os.Mkdir(filepath.Join(h.dir, "pkg"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(h.dir, "pkg", "__init__.py"), "", 0o644)
	writeFile(t, filepath.Join(h.dir, "pkg", "mod.py"), "def go(word):\n    return word.upper()\n", 0o644)

	t.Run("kwargs", func(t *testing.T) {
		t.Parallel()
		d := h.dispatch(t, event.Dispatch{Task: pythonTask("kwargs", "tasks.py", ""), Attempt: 3, Inputs: []byte(`{"a": 40}`)})
		e := h.result(t, d)
		wantSuccess(t, e)
		dir, _ := filepath.EvalSymlinks(h.dir)
		var out struct {
			Sum     int    `json:"sum"`
			Cwd     string `json:"cwd"`
			Attempt string `json:"attempt"`
		}
		if err := jsonUnmarshal(e.Output, &out); err != nil {
			t.Fatal(err)
		}
		if out.Sum != 42 || (out.Cwd != dir && out.Cwd != h.dir) || out.Attempt != "3" {
			t.Errorf("output = %+v", out)
		}
	})
	t.Run("module", func(t *testing.T) {
		t.Parallel()
		tk := workflow.Task{Name: "module", Executor: workflow.ExecutorPython, Module: "pkg.mod", Function: "go"}
		e := h.result(t, h.dispatch(t, event.Dispatch{Task: tk, Inputs: []byte(`{"word": "hi"}`)}))
		wantSuccess(t, e)
		jsonEqual(t, e.Output, `"HI"`)
	})
	t.Run("prints do not corrupt the output", func(t *testing.T) {
		t.Parallel()
		d := h.dispatch(t, event.Dispatch{Task: pythonTask("noisy", "tasks.py", "noisy")})
		e := h.result(t, d)
		wantSuccess(t, e)
		jsonEqual(t, e.Output, `[1, 2]`)
		lines := texts(h.lines(t, d))
		for _, want := range []string{`ORK_OUTPUT:{"corrupt": true}`, "}{ not json", "no newline", "raw fd write", "to stderr"} {
			if !slices.Contains(lines, want) {
				t.Errorf("logs %q lack %q", lines, want)
			}
		}
	})
	t.Run("none", func(t *testing.T) {
		t.Parallel()
		e := h.result(t, h.dispatch(t, event.Dispatch{Task: pythonTask("nothing", "tasks.py", "nothing")}))
		wantSuccess(t, e)
		jsonEqual(t, e.Output, `null`)
	})
	t.Run("large inputs", func(t *testing.T) {
		t.Parallel()
		items := `["` + strings.Repeat("y", 200<<10) + `", 2, 3]`
		e := h.result(t, h.dispatch(t, event.Dispatch{Task: pythonTask("count", "tasks.py", "count"), Inputs: []byte(`{"items": ` + items + `}`)}))
		wantSuccess(t, e)
		jsonEqual(t, e.Output, `3`)
	})

	failures := []struct {
		name, function, reason, msg string
		inputs                      string
	}{
		{"exception", "explode", event.ReasonExit, "ValueError: bad input: ['k']", `{"k": 1}`},
		{"unserializable", "unserializable", event.ReasonOutput, "not JSON-serializable: Object of type set", ""},
		{"nan", "nan", event.ReasonOutput, "not JSON-serializable", ""},
		{"exit", "exits", event.ReasonExit, "sys.exit(4)", ""},
		{"missing function", "absent", event.ReasonExit, "has no function absent", ""},
		{"bad kwargs", "main", event.ReasonExit, "TypeError", `{"zzz": 1}`},
		{"output cap", "big", event.ReasonOutput, "over the 150 bytes limit", ""},
	}
	for _, c := range failures {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			d := h.dispatch(t, event.Dispatch{Task: pythonTask(strings.ReplaceAll(c.name, " ", "-"), "tasks.py", c.function), Inputs: []byte(c.inputs)})
			e := h.result(t, d)
			wantFailure(t, e, c.reason, c.msg)
			if c.name == "exception" {
				lines := strings.Join(texts(h.lines(t, d)), "\n")
				if !strings.Contains(lines, "Traceback") || !strings.Contains(lines, "in explode") {
					t.Errorf("the traceback is not in the logs:\n%s", lines)
				}
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		t.Parallel()
		e := h.result(t, h.dispatch(t, event.Dispatch{Task: pythonTask("nofile", "absent.py", "")}))
		wantFailure(t, e, event.ReasonStart, "the task file absent.py does not exist in the workflow folder "+h.dir+" on executor ")
	})
	t.Run("output type", func(t *testing.T) {
		t.Parallel()
		tk := pythonTask("typed", "tasks.py", "")
		tk.OutputType = &workflow.Type{Kind: workflow.KindObject, Fields: []workflow.Field{{Name: "sum", Type: &workflow.Type{Kind: workflow.KindStr}}}}
		e := h.result(t, h.dispatch(t, event.Dispatch{Task: tk, Inputs: []byte(`{"a": 1}`)}))
		wantFailure(t, e, event.ReasonOutput, "$.")
	})
}

func TestPythonInterpreterMissing(t *testing.T) {
	t.Parallel()
	h := setup(t)
	cfg := testConfig(t)
	cfg.Python = "/nonexistent/python"
	h.start(t, cfg)
	writeFile(t, filepath.Join(h.dir, "t.py"), "def main():\n    return 1\n", 0o644)
	e := h.result(t, h.dispatch(t, event.Dispatch{Task: pythonTask("t", "t.py", "")}))
	wantFailure(t, e, event.ReasonStart, "could not start python")
}

// TestPythonProbedOnFirstPythonTask: the interpreter is asked for its path on the first python task,
// once, not when the executor starts: a run without python tasks does not pay for a version
// manager's shim.
func TestPythonProbedOnFirstPythonTask(t *testing.T) {
	t.Parallel()
	h := setup(t)
	cfg := testConfig(t)
	real, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3: %v", err)
	}
	probes := filepath.Join(h.dir, "probes")
	shim := filepath.Join(h.dir, "python-shim")
	writeFile(t, shim, "#!/bin/sh\necho probe >> "+probes+"\nexec "+real+" \"$@\"\n", 0o755)
	cfg.Python = shim
	h.start(t, cfg)
	e := h.result(t, h.dispatch(t, event.Dispatch{Task: workflow.Task{Name: "n", Executor: workflow.ExecutorNoop}}))
	if e.Type != event.TypeTaskSucceeded {
		t.Fatalf("noop: %+v", e)
	}
	if _, err := os.Stat(probes); !os.IsNotExist(err) {
		t.Fatalf("the interpreter ran before any python task (%v)", err)
	}
	writeFile(t, filepath.Join(h.dir, "t.py"), "def main():\n    return 1\n", 0o644)
	for i := range 2 {
		e := h.result(t, h.dispatch(t, event.Dispatch{Task: pythonTask(fmt.Sprint("t", i), "t.py", "")}))
		if e.Type != event.TypeTaskSucceeded {
			t.Fatalf("python task %d: %+v", i, e)
		}
	}
	// One probe through the shim; the tasks then ran with the interpreter's real path.
	if got, _ := os.ReadFile(probes); string(got) != "probe\n" {
		t.Fatalf("the shim ran %q, want one probe", got)
	}
}

func TestRunnerInstalledOnceAtomically(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p1, err := installScript(dir, "runner", runnerSource)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := installScript(dir, "runner", runnerSource)
	if err != nil || p1 != p2 {
		t.Fatalf("second install: %q, %v (first %q)", p2, err, p1)
	}
	got, err := os.ReadFile(p1)
	if err != nil || string(got) != string(runnerSource) {
		t.Fatalf("runner content differs: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("cache holds %d files, want only the runner", len(entries))
	}
}

// The cache directory the runner and the zygote run from must be private: a directory of its own,
// owned by this user, mode 0700. Anything else is refused at start, naming the problem.
func TestCacheDirPrivate(t *testing.T) {
	t.Parallel()
	fresh := filepath.Join(t.TempDir(), "cache")
	if dir, err := privateDir(fresh); err != nil || dir != fresh {
		t.Fatalf("a missing directory: %q, %v; want it created", dir, err)
	}
	if info, err := os.Stat(fresh); err != nil || info.Mode().Perm() != 0o700 {
		t.Fatalf("created with %v (%v), want mode 0700", info.Mode().Perm(), err)
	}
	open := filepath.Join(t.TempDir(), "open")
	if err := os.Mkdir(open, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(fresh, link); err != nil {
		t.Fatal(err)
	}
	for dir, want := range map[string]string{open: "has mode 755: other users can read or write it", link: "is a symbolic link"} {
		if _, err := privateDir(dir); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error saying it %s", dir, err, want)
		}
	}
	tmp, err := privateDir("")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	if info, err := os.Stat(tmp); err != nil || info.Mode().Perm() != 0o700 || !strings.Contains(filepath.Base(tmp), "ork-cache-") {
		t.Errorf("no cache directory: got %s (%v), want a fresh private temporary one", tmp, err)
	}
	cfg := testConfig(t)
	cfg.CacheDir = open
	if _, err := New(setup(t).bus, cfg, nil); err == nil || !strings.Contains(err.Error(), "chmod 700") {
		t.Errorf("New with an open cache directory: %v, want it refused", err)
	}
}

// A runner script changed on disk is never run: it is verified before each use and rewritten.
func TestRunnerVerifiedBeforeUse(t *testing.T) {
	t.Parallel()
	h := setup(t)
	cfg := testConfig(t)
	cfg.PythonCold = true
	s, _ := h.start(t, cfg)
	writeFile(t, filepath.Join(h.dir, "tasks.py"), pyTasks, 0o644)
	if err := os.WriteFile(s.runner, []byte("import sys\nprint('tampered')\nsys.exit(0)\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := h.dispatch(t, event.Dispatch{Task: pythonTask("verified", "tasks.py", ""), Inputs: []byte(`{"a": 1}`)})
	e := h.result(t, d)
	wantSuccess(t, e)
	if have, err := os.ReadFile(s.runner); err != nil || string(have) != string(runnerSource) {
		t.Errorf("the runner on disk was not restored (%v)", err)
	}
}
