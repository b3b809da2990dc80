package executor

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/poll"
)

const zygoteTasks = `import builtins
import os
import subprocess
import sys
import time

counter = 0


def leak():
    # Module state and interpreter state: a task that sees either was not a fresh fork.
    global counter
    counter += 1
    seen = getattr(builtins, "ORK_LEAKED", False)
    builtins.ORK_LEAKED = True
    return {"counter": counter, "seen": seen}


def parent():
    return os.getppid()


def preloaded():
    return "decimal" in sys.modules


def hang(pidfile):
    # A grandchild in the task's process group, then wait for the timeout.
    child = subprocess.Popen(["sleep", "60"])
    with open(pidfile, "w") as f:
        f.write(str(child.pid))
    time.sleep(60)
`

func zygoteConfig(t *testing.T) Config {
	cfg := testConfig(t)
	cfg.Types = []string{"python"}
	return cfg
}

func runPy(t *testing.T, h *harness, name, function, inputs string) event.Event {
	t.Helper()
	tk := pythonTask(name, "ztasks.py", function)
	tk.TimeoutSeconds = 60
	return h.result(t, h.dispatch(t, event.Dispatch{Task: tk, Inputs: []byte(inputs)}))
}

// Every task is a fresh fork of a clean zygote: nothing one sets is seen by the next.
func TestZygoteIsolatesTasks(t *testing.T) {
	t.Parallel()
	h := setup(t)
	s, _ := h.start(t, zygoteConfig(t))
	writeFile(t, filepath.Join(h.dir, "ztasks.py"), zygoteTasks, 0o644)
	for i := range 3 {
		e := runPy(t, h, "leak"+strconv.Itoa(i), "leak", "")
		wantSuccess(t, e)
		jsonEqual(t, e.Output, `{"counter": 1, "seen": false}`)
	}
	// They were forks of one zygote, not cold interpreters.
	zs := s.liveZygotes()
	if len(zs) != 1 || zs[0].forks != 3 {
		t.Fatalf("zygotes %v, want one that forked the 3 tasks", zs)
	}
	z := zs[0]
	if z == nil {
		t.Fatalf("zygote %+v, want one that forked the 3 tasks", z)
	}
	e := runPy(t, h, "parent", "parent", "")
	wantSuccess(t, e)
	jsonEqual(t, e.Output, strconv.Itoa(z.cmd.Process.Pid))
}

// A changed task file is picked up by the next task: the child imports it after the fork.
func TestZygotePicksUpAChangedFile(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.start(t, zygoteConfig(t))
	path := filepath.Join(h.dir, "ztasks.py")
	writeFile(t, path, "def v():\n    return 1\n", 0o644)
	jsonEqual(t, runPy(t, h, "v1", "v", "").Output, "1")
	writeFile(t, path, "def v():\n    return 2\n", 0o644)
	// The same size and maybe the same mtime second: the import must not use a stale .pyc.
	jsonEqual(t, runPy(t, h, "v2", "v", "").Output, "2")
}

// A timeout kills the task's whole process group, grandchildren included, as on the cold path.
func TestZygoteTimeoutKillsTheGroup(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.start(t, zygoteConfig(t))
	writeFile(t, filepath.Join(h.dir, "ztasks.py"), zygoteTasks, 0o644)
	pidfile := filepath.Join(t.TempDir(), "grandchild")
	tk := pythonTask("hang", "ztasks.py", "hang")
	tk.TimeoutSeconds = 1
	e := h.result(t, h.dispatch(t, event.Dispatch{Task: tk, Inputs: []byte(`{"pidfile": "` + pidfile + `"}`)}))
	wantFailure(t, e, event.ReasonTimeout, "")
	data, err := os.ReadFile(pidfile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	waitGone(t, pid)
}

// A zygote that dies is replaced: the next task runs on a new one.
func TestZygoteRestartedWhenItDies(t *testing.T) {
	t.Parallel()
	h := setup(t)
	s, _ := h.start(t, zygoteConfig(t))
	writeFile(t, filepath.Join(h.dir, "ztasks.py"), zygoteTasks, 0o644)
	first := runPy(t, h, "p1", "parent", "")
	wantSuccess(t, first)
	old := s.liveZygotes()[0]
	_ = syscall.Kill(old.cmd.Process.Pid, syscall.SIGKILL)
	if !poll.Within(waitDeadline, func() bool { return !old.alive() }) {
		t.Fatal("the killed zygote still looks alive")
	}
	second := runPy(t, h, "p2", "parent", "")
	wantSuccess(t, second)
	if string(second.Output) == string(first.Output) {
		t.Fatalf("both tasks ran on zygote %s", first.Output)
	}
}

// After ZygoteMaxForks forks the zygote is replaced by a fresh one.
func TestZygoteReplacedAfterMaxForks(t *testing.T) {
	t.Parallel()
	h := setup(t)
	cfg := zygoteConfig(t)
	cfg.ZygoteMaxForks = 2
	h.start(t, cfg)
	writeFile(t, filepath.Join(h.dir, "ztasks.py"), zygoteTasks, 0o644)
	var parents []string
	for i := range 3 {
		e := runPy(t, h, "p"+strconv.Itoa(i), "parent", "")
		wantSuccess(t, e)
		parents = append(parents, string(e.Output))
	}
	if parents[0] != parents[1] || parents[1] == parents[2] {
		t.Fatalf("zygotes of the three tasks %v, want the first two on one, the third on another", parents)
	}
}

// Preloaded modules (the executor's, or a workflow's) are imported once, in the zygote, before
// any task; a workflow's preload gets a zygote of its own.
func TestZygotePreloads(t *testing.T) {
	t.Parallel()
	for _, where := range []string{"none", "executor", "workflow"} {
		h := setup(t)
		cfg := zygoteConfig(t)
		if where == "executor" {
			cfg.PythonPreload = []string{"decimal"}
		}
		s, _ := h.start(t, cfg)
		writeFile(t, filepath.Join(h.dir, "ztasks.py"), zygoteTasks, 0o644)
		tk := pythonTask("pre", "ztasks.py", "preloaded")
		if where == "workflow" {
			tk.Preload = []string{"decimal"}
		}
		e := h.result(t, h.dispatch(t, event.Dispatch{Task: tk}))
		wantSuccess(t, e)
		jsonEqual(t, e.Output, strconv.FormatBool(where != "none"))
		if where == "workflow" {
			// A task without the preload runs on another zygote, which has not imported it.
			jsonEqual(t, runPy(t, h, "plain", "preloaded", "").Output, "false")
			if n := len(s.liveZygotes()); n != 2 {
				t.Errorf("%d zygotes, want one per preload set", n)
			}
		}
	}
}

// When the zygote cannot start, python tasks run cold, and the log says why.
func TestZygoteFallsBackToCold(t *testing.T) {
	t.Parallel()
	h := setup(t)
	// An interpreter that refuses to be a zygote but runs the runner.
	wrapper := filepath.Join(t.TempDir(), "python")
	writeFile(t, wrapper, "#!/bin/sh\n"+
		"case \"$1\" in -c) printf %s \"$0\"; exit 0;; esac\n"+ // asked for its real path: itself
		"case \"$*\" in */zygote-*.py*) echo 'no zygote here' >&2; exit 3;; esac\n"+
		"exec python3 \"$@\"\n", 0o755)
	cfg := zygoteConfig(t)
	cfg.Python = wrapper
	core, logs := observer.New(zap.WarnLevel)
	h.startLogged(t, cfg, zap.New(core))
	writeFile(t, filepath.Join(h.dir, "ztasks.py"), zygoteTasks, 0o644)
	e := runPy(t, h, "cold", "leak", "")
	wantSuccess(t, e)
	found := logs.FilterMessageSnippet("zygote did not start").All()
	if len(found) == 0 || !strings.Contains(found[0].ContextMap()["error"].(string), "no zygote here") {
		t.Fatalf("no warning naming why the zygote did not start: %v", logs.All())
	}
}

// PythonCold runs every task in an interpreter of its own: no zygote is started.
func TestPythonColdFlag(t *testing.T) {
	t.Parallel()
	h := setup(t)
	cfg := zygoteConfig(t)
	cfg.PythonCold = true
	s, _ := h.start(t, cfg)
	writeFile(t, filepath.Join(h.dir, "ztasks.py"), zygoteTasks, 0o644)
	wantSuccess(t, runPy(t, h, "cold", "leak", ""))
	if len(s.liveZygotes()) != 0 {
		t.Fatal("a zygote was started with PythonCold")
	}
}

// liveZygotes returns the zygotes in use .
func (s *Service) liveZygotes() []*zygote {
	s.zygotes.mu.Lock()
	defer s.zygotes.mu.Unlock()
	var out []*zygote
	for _, e := range s.zygotes.byKey {
		out = append(out, e.z)
	}
	return out
}

// The zygote, whose memory every task shares by fork, never gets the executor's environment: a
// secret of the executor's is not in a task's reach, not even in the memory it was forked with.
func TestZygoteHasNoExecutorSecrets(t *testing.T) {
	t.Setenv("ORK_NATS_PASSWORD", "hunter2-executor-secret")
	env := zygoteEnv()
	for _, kv := range env {
		if strings.Contains(kv, "hunter2") {
			t.Fatalf("the zygote's environment holds %q", kv)
		}
	}
	h := setup(t)
	h.start(t, testConfig(t))
	writeFile(t, filepath.Join(h.dir, "peek.py"), `def main():
    import ctypes
    maps = open("/proc/self/maps").read().splitlines()
    for line in maps:
        if line.endswith("[stack]"):
            lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
            return b"hunter2" in ctypes.string_at(lo, hi - lo)
    return None
`, 0o644)
	e := h.result(t, h.dispatch(t, event.Dispatch{Task: pythonTask("peek", "peek.py", "main")}))
	wantSuccess(t, e)
	jsonEqual(t, e.Output, `false`)
}
