package executor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/workflow"
)

const runAsTasks = `import os


def who():
    return {"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(), "home": os.environ.get("HOME")}


def steal():
    with open("secret.txt") as f:
        return f.read()
`

// openUp makes a test folder (and the test's temporary parent) reachable by another user.
func openUp(t *testing.T, dir string) {
	t.Helper()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// With --run-as, every task process (a command, a cold python, a fork of the warm python) runs as
// that user, with its home; a file of the executor's user that the task's user may not read is
// refused, and the failure says why.
func TestRunAs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("switching users needs root; TestRunAsNeedsRoot covers the refusal")
	}
	t.Parallel()
	warm, cold := setup(t), setup(t)
	cfg := testConfig(t)
	cfg.RunAs = "nobody"
	warm.start(t, cfg)
	coldCfg := testConfig(t)
	coldCfg.RunAs, coldCfg.PythonCold = "nobody", true
	// A cold python is exec'ed as nobody: the interpreter must be one nobody may run (the one on
	// PATH may live in root's home).
	coldCfg.Python = "/usr/bin/python3"
	if _, err := os.Stat(coldCfg.Python); err != nil {
		t.Fatalf("the system python: %v", err)
	}
	cold.start(t, coldCfg)
	for _, h := range []*harness{warm, cold} {
		openUp(t, h.dir)
		writeFile(t, filepath.Join(h.dir, "who.py"), runAsTasks, 0o644)
		writeFile(t, filepath.Join(h.dir, "secret.txt"), "the executor's own", 0o600)
	}
	const want = `{"uid": 65534, "gid": 65534, "groups": [65534], "home": "/nonexistent"}`
	shell := `printf 'ORK_OUTPUT:{"uid": %s, "gid": %s, "groups": [%s], "home": "%s"}\n' "$(id -u)" "$(id -g)" "$(id -G)" "$HOME"`
	for _, c := range []struct {
		name string
		h    *harness
		task workflow.Task
	}{
		{"process", warm, processTask("who", "sh", "-c", shell)},
		{"python warm", warm, pythonTask("who", "who.py", "who")},
		{"python cold", cold, pythonTask("who", "who.py", "who")},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := c.h.result(t, c.h.dispatch(t, event.Dispatch{Task: c.task}))
			wantSuccess(t, e)
			jsonEqual(t, e.Output, want)
		})
	}
	const hint = "the task runs as nobody (uid 65534, --run-as)"
	for _, c := range []struct {
		name string
		h    *harness
		task workflow.Task
	}{
		{"process", warm, processTask("steal", "cat", "secret.txt")},
		{"python warm", warm, pythonTask("steal", "who.py", "steal")},
		{"python cold", cold, pythonTask("steal", "who.py", "steal")},
	} {
		t.Run("refused "+c.name, func(t *testing.T) {
			e := c.h.result(t, c.h.dispatch(t, event.Dispatch{Task: c.task}))
			wantFailure(t, e, event.ReasonExit, "Permission denied")
			if !strings.Contains(e.Error, hint) {
				t.Errorf("error = %q, want the hint %q", e.Error, hint)
			}
		})
	}
}

// --run-as is resolved at start: an unknown user, an unknown bare uid, and a switch the executor
// has not the right to make are refused with what to do; a known user gets its groups.
func TestRunAsResolved(t *testing.T) {
	t.Parallel()
	r, err := resolveRunAs("nobody", 0)
	if err != nil {
		t.Fatal(err)
	}
	if c := r.credential(); c.Uid != 65534 || c.Gid != 65534 || len(c.Groups) != 1 || c.Groups[0] != 65534 || r.home != "/nonexistent" {
		t.Errorf("nobody = %+v, home %q", c, r.home)
	}
	if r, err = resolveRunAs("4242:4343", 0); err != nil {
		t.Fatal(err)
	} else if c := r.credential(); c.Uid != 4242 || c.Gid != 4343 || len(c.Groups) != 1 || c.Groups[0] != 4343 {
		t.Errorf("4242:4343 = %+v", c)
	}
	for spec, msg := range map[string]string{
		"no-such-user-here": `RunAs "no-such-user-here": no such user on this machine`,
		"4242":              "uid 4242 is not in the user database; give its group as well (4242:GID)",
		"nobody:nosuchgrp":  `no such group "nosuchgrp"`,
	} {
		if _, err := resolveRunAs(spec, 0); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("resolveRunAs(%q) = %v, want %q", spec, err, msg)
		}
	}
}

// An executor that is not root cannot switch users, and says so at start instead of failing every task.
func TestRunAsNeedsRoot(t *testing.T) {
	t.Parallel()
	_, err := resolveRunAs("nobody", 1000)
	if err == nil || !strings.Contains(err.Error(), "needs the executor to run as root (it runs as uid 1000)") {
		t.Errorf("err = %v", err)
	}
	if r, err := resolveRunAs("1000", 1000); err != nil || r != nil {
		t.Errorf("running as one's own user needs no switch: %v %v", r, err)
	}
	if _, err := resolveRunAs("1000:1000", 1000); err == nil {
		t.Error("switching groups as an unprivileged executor was taken")
	}
}

// A program the task's user may not run is refused at start, and the failure says it ran as that user.
func TestRunAsProgramRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("switching users needs root; TestRunAsNeedsRoot covers the refusal")
	}
	t.Parallel()
	h := setup(t)
	cfg := testConfig(t)
	cfg.RunAs = "nobody"
	h.start(t, cfg)
	openUp(t, h.dir)
	writeFile(t, filepath.Join(h.dir, "mine.sh"), "#!/bin/sh\necho hi\n", 0o700)
	e := h.result(t, h.dispatch(t, event.Dispatch{Task: processTask("mine", "./mine.sh")}))
	wantFailure(t, e, event.ReasonStart, "permission denied (the task runs as nobody (uid 65534, --run-as)")
}
