package executor

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/poll"
	"github.com/ork-go/ork/pkg/workflow"
)

func TestProcessEnvironmentContract(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.start(t, testConfig(t))
	d := h.dispatch(t, event.Dispatch{Workflow: "flow", Task: processTask("envtask", "env"), Attempt: 2,
		Inputs: []byte(`{"x": [1, "two"]}`)})
	e := h.result(t, d)
	wantSuccess(t, e)
	if e.Output != nil {
		t.Errorf("output = %s, want none", e.Output)
	}
	want := []string{
		"ORK_INPUT_JSON={\"x\":[1,\"two\"]}", // the dispatch encoding compacts it
		"ORK_RUN_ID=" + d.RunID,
		"ORK_TASK_NAME=envtask",
		"ORK_WORKFLOW_NAME=flow",
		"ORK_ATTEMPT=2",
	}
	for _, k := range []string{"PATH", "HOME", "LANG", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			want = append(want, k+"="+v)
		}
	}
	got := texts(h.lines(t, d))
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("environment:\n got %q\nwant %q", got, want)
	}
}

func TestProcessInputsDefaultToEmptyObject(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.start(t, testConfig(t))
	d := h.dispatch(t, event.Dispatch{Task: processTask("t", "sh", "-c", `echo "ORK_OUTPUT:{\"in\": $ORK_INPUT_JSON}"`)})
	e := h.result(t, d)
	wantSuccess(t, e)
	jsonEqual(t, e.Output, `{"in": {}}`)
}

func TestProcessOutputIsTheLastOutputLine(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.start(t, testConfig(t))
	script := `echo first; echo 'ORK_OUTPUT:{"n": 1}'; echo 'ORK_OUTPUT: {"n": 2, "s": "x"}'; echo after; pwd`
	d := h.dispatch(t, event.Dispatch{Task: processTask("t", "sh", "-c", script)})
	e := h.result(t, d)
	wantSuccess(t, e)
	jsonEqual(t, e.Output, `{"n": 2, "s": "x"}`)
	if e.ExitCode == nil || *e.ExitCode != 0 {
		t.Errorf("exit code = %v, want 0", e.ExitCode)
	}
	if e.Instance == "" {
		t.Error("no instance on the terminal event")
	}
	lines := texts(h.lines(t, d))
	if len(lines) != 5 || lines[0] != "first" || lines[3] != "after" {
		t.Errorf("logs = %q", lines)
	}
	if dir, _ := filepath.EvalSymlinks(h.dir); lines[len(lines)-1] != dir && lines[len(lines)-1] != h.dir {
		t.Errorf("working directory = %q, want %q", lines[len(lines)-1], h.dir)
	}
	started := h.events.wait(t, "task.started", func(evs []event.Event) bool {
		return slices.ContainsFunc(evs, func(e event.Event) bool { return e.Type == event.TypeTaskStarted && e.RunID == d.RunID })
	})
	i := slices.IndexFunc(started, func(e event.Event) bool { return e.Type == event.TypeTaskStarted && e.RunID == d.RunID })
	j := slices.IndexFunc(started, func(e event.Event) bool { return isTerminal(e, d) })
	if j < i || started[i].Instance == "" {
		t.Errorf("task.started at %d (instance %q), terminal at %d", i, started[i].Instance, j)
	}
}

func TestProcessArgvIsLiteral(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.start(t, testConfig(t))
	args := []string{"; rm -rf / #", "$(id)", "`id`", "--flag", "a b", "", "'quoted'", "*"}
	argv := append([]string{"python3", "-c", "import json, sys; print('ORK_OUTPUT:' + json.dumps(sys.argv[1:]))"}, args...)
	d := h.dispatch(t, event.Dispatch{Task: processTask("t", argv...)})
	e := h.result(t, d)
	wantSuccess(t, e)
	var got []string
	if err := jsonUnmarshal(e.Output, &got); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, args) {
		t.Errorf("argv = %q, want %q", got, args)
	}
}

func TestProcessRunsFileInDir(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.start(t, testConfig(t))
	writeFile(t, filepath.Join(h.dir, "job.sh"), "#!/bin/sh\necho 'ORK_OUTPUT:\"from file\"'\n", 0o755)
	d := h.dispatch(t, event.Dispatch{Task: workflow.Task{Name: "t", Executor: workflow.ExecutorProcess, File: "job.sh"}})
	e := h.result(t, d)
	wantSuccess(t, e)
	jsonEqual(t, e.Output, `"from file"`)
	// A relative command path is relative to the workflow directory too.
	e = h.result(t, h.dispatch(t, event.Dispatch{Task: processTask("rel", "./job.sh")}))
	wantSuccess(t, e)
	jsonEqual(t, e.Output, `"from file"`)
}

// TestWorkflowFolderChecked: a task whose workflow folder is not on this executor (a compose user
// who submits from the host) is told which folder is missing where, and a task file that leads out
// of the folder (a path that climbs out, a symbolic link to elsewhere) is refused, for process and
// python tasks alike. Dir and File come from the network.
func TestWorkflowFolderChecked(t *testing.T) {
	t.Parallel()
	h := setup(t)
	cfg := testConfig(t)
	cfg.WorkflowRoots = []string{h.dir}
	h.start(t, cfg)
	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "evil.sh"), "#!/bin/sh\necho pwned\n", 0o755)
	if err := os.Symlink(outside, filepath.Join(h.dir, "elsewhere")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(outside, "evil.py"), "def main():\n    return 'pwned'\n", 0o644)
	if err := os.Symlink(filepath.Join(outside, "evil.sh"), filepath.Join(h.dir, "link.sh")); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(h.dir, "not", "here")
	cases := []struct {
		name string
		d    event.Dispatch
		msg  string
	}{
		{"missing folder, command", event.Dispatch{Dir: missing, Task: processTask("echo", "echo", "hi")},
			"the workflow folder " + missing + " does not exist on executor " + cfg.Instance},
		{"missing folder, python", event.Dispatch{Dir: missing, Task: pythonTask("py", "t.py", "")},
			"the workflow folder " + missing + " does not exist on executor " + cfg.Instance},
		{"relative folder", event.Dispatch{Dir: "work", Task: processTask("rel", "echo", "hi")}, `the workflow folder "work" is not an absolute path`},
		{"file climbs out", event.Dispatch{Task: workflow.Task{Name: "up", Executor: workflow.ExecutorProcess,
			File: "../" + filepath.Base(outside) + "/evil.sh"}}, "must be inside the workflow folder"},
		{"python file climbs out", event.Dispatch{Task: pythonTask("pyup", "../"+filepath.Base(outside)+"/evil.py", "")},
			"must be inside the workflow folder"},
		{"symlink leads out", event.Dispatch{Task: workflow.Task{Name: "link", Executor: workflow.ExecutorProcess, File: "link.sh"}},
			"must be inside the workflow folder"},
		{"folder outside the roots", event.Dispatch{Dir: outside, Task: processTask("out", "echo", "hi")},
			"the workflow folder " + outside + " is outside the workflow roots of executor "},
		{"folder outside the roots, python", event.Dispatch{Dir: outside, Task: pythonTask("pyout", "evil.py", "")},
			" (" + h.dir + "): start the executor with --workflow-roots (ORK_EXECUTOR_WORKFLOW_ROOTS)"},
		{"folder inside the roots by a link leading out", event.Dispatch{Dir: filepath.Join(h.dir, "elsewhere"), Task: processTask("via", "echo", "hi")},
			"the workflow folder " + filepath.Join(h.dir, "elsewhere") + " (" + outside + ") is outside the workflow roots"},
		{"missing file", event.Dispatch{Task: workflow.Task{Name: "nofile", Executor: workflow.ExecutorProcess, File: "absent.sh"}},
			"the task file absent.sh does not exist in the workflow folder " + h.dir},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			d := h.dispatch(t, c.d)
			e := h.result(t, d)
			wantFailure(t, e, event.ReasonStart, c.msg)
			if lines := texts(h.lines(t, d)); len(lines) != 0 {
				t.Errorf("the refused task ran: %q", lines)
			}
		})
	}
}

func TestProcessFailures(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.start(t, testConfig(t))
	intType := &workflow.Type{Kind: workflow.KindObject, Fields: []workflow.Field{{Name: "n", Type: &workflow.Type{Kind: workflow.KindInt}}}}
	cases := []struct {
		name, reason, msg string
		task              workflow.Task
		exit              int // -1: none
	}{
		{"exit", event.ReasonExit, "exited with code 3: boom", processTask("exit", "sh", "-c", "echo boom >&2; exit 3"), 3},
		{"start", event.ReasonStart, "could not start", processTask("start", "/nonexistent/program"), -1},
		{"nothing", event.ReasonStart, "neither a command nor a file", processTask("nothing"), -1},
		{"badjson", event.ReasonOutput, "not valid JSON", processTask("badjson", "echo", "ORK_OUTPUT:{bad"), 0},
		{"signal", event.ReasonExit, "killed by signal 9", processTask("signal", "sh", "-c", "kill -9 $$"), -1},
		{"type", event.ReasonOutput, "$.n", func() workflow.Task {
			tk := processTask("type", "echo", `ORK_OUTPUT:{"n": "seven"}`)
			tk.OutputType = intType
			return tk
		}(), 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			d := h.dispatch(t, event.Dispatch{Task: c.task})
			e := h.result(t, d)
			wantFailure(t, e, c.reason, c.msg)
			switch {
			case c.exit < 0 && e.ExitCode != nil:
				t.Errorf("exit code = %d, want none", *e.ExitCode)
			case c.exit >= 0 && (e.ExitCode == nil || *e.ExitCode != c.exit):
				t.Errorf("exit code = %v, want %d", e.ExitCode, c.exit)
			}
		})
	}
}

func TestProcessOutputTypeAccepted(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.start(t, testConfig(t))
	tk := processTask("t", "echo", `ORK_OUTPUT:[1, 2]`)
	tk.OutputType = &workflow.Type{Kind: workflow.KindArray, Elem: &workflow.Type{Kind: workflow.KindInt}}
	e := h.result(t, h.dispatch(t, event.Dispatch{Task: tk}))
	wantSuccess(t, e)
	jsonEqual(t, e.Output, `[1, 2]`)
}

func TestProcessOutputCap(t *testing.T) {
	t.Parallel()
	h := setup(t)
	cfg := testConfig(t)
	cfg.OutputMaxBytes = 100
	h.start(t, cfg)
	big := `ORK_OUTPUT:"` + strings.Repeat("x", 200) + `"`
	e := h.result(t, h.dispatch(t, event.Dispatch{Task: processTask("big", "echo", big)}))
	wantFailure(t, e, event.ReasonOutput, "100 bytes output limit")
	fits := `ORK_OUTPUT:"` + strings.Repeat("x", 90) + `"`
	e = h.result(t, h.dispatch(t, event.Dispatch{Task: processTask("fits", "echo", fits)}))
	wantSuccess(t, e)
}

// alive reports whether pid is a process that has not exited (a zombie has exited).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func TestTimeoutKillsTheWholeProcessGroup(t *testing.T) {
	t.Parallel()
	h := setup(t)
	cfg := testConfig(t)
	cfg.KillGrace = 300 * time.Millisecond
	h.start(t, cfg)
	pids := filepath.Join(h.dir, "pids")
	// The shell and its children ignore SIGTERM, so only the SIGKILL after the grace ends them.
	script := `trap '' TERM
sleep 1000 & echo $! >> pids
sh -c 'sleep 1000 & echo $! >> pids; wait' &
echo $! >> pids
echo $$ >> pids
echo ready
wait`
	tk := processTask("slow", "sh", "-c", script)
	tk.TimeoutSeconds = 1
	d := h.dispatch(t, event.Dispatch{Task: tk})
	e := h.result(t, d)
	wantFailure(t, e, event.ReasonTimeout, "timed out after 1s")
	f, err := os.Open(pids)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var list []int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pid, err := strconv.Atoi(strings.TrimSpace(sc.Text()))
		if err != nil {
			t.Fatalf("pid file: %v", err)
		}
		list = append(list, pid)
	}
	if len(list) != 4 {
		t.Fatalf("pids = %v, want 4", list)
	}
	for _, pid := range list {
		waitGone(t, pid)
	}
}

// waitGone waits until a process has exited, failing the test (and killing it) after waitDeadline.
// Signals are delivered asynchronously, so a killed process may take a moment to go.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	if !poll.Within(waitDeadline, func() bool { return !alive(pid) }) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		t.Fatalf("process %d survived", pid)
	}
}

func TestLeftoverProcessesAreKilledAfterANormalExit(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.start(t, testConfig(t))
	// The background sleep does not hold the pipes, so the task ends at once; its group is then killed.
	d := h.dispatch(t, event.Dispatch{Task: processTask("t", "sh", "-c", "sleep 1000 >/dev/null 2>&1 & echo ORK_OUTPUT:$!")})
	e := h.result(t, d)
	wantSuccess(t, e)
	pid, err := strconv.Atoi(string(e.Output))
	if err != nil {
		t.Fatalf("output %s: %v", e.Output, err)
	}
	waitGone(t, pid)
}

func TestProcessThatLeftTheGroupCannotHoldTheTask(t *testing.T) {
	t.Parallel()
	h := setup(t)
	h.start(t, testConfig(t))
	// The setsid'ed sleep escapes the group kill and holds stdout and stderr open: the task still ends,
	// KillGrace after its exit, with what it wrote before.
	d := h.dispatch(t, event.Dispatch{Task: processTask("t", "sh", "-c", "setsid sleep 1000 & echo before; echo ORK_OUTPUT:$!")})
	e := h.result(t, d)
	pid, err := strconv.Atoi(string(e.Output))
	if err == nil {
		t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	}
	wantSuccess(t, e)
	if err != nil {
		t.Fatalf("output %s: %v", e.Output, err)
	}
	if got := texts(h.lines(t, d)); len(got) != 2 || got[0] != "before" {
		t.Errorf("lines = %q, want before and the output line", got)
	}
}
