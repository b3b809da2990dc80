package processes_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ork-go/ork/deploy/processes"
	"github.com/ork-go/ork/pkg/poll"
)

func startShell(t *testing.T, script string) (*processes.Process, string) {
	t.Helper()
	dir := t.TempDir()
	p, err := processes.StartProcess(processes.ProcessSpec{
		Name:    "sh",
		Path:    "/bin/sh",
		Args:    []string{"-c", script},
		Dir:     dir,
		LogPath: filepath.Join(dir, "sh.log"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Kill() })
	return p, dir
}

// gone reports whether pid no longer runs (absent, or a zombie waiting for its reaper).
func gone(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// The state follows the command name in parentheses.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z' || s[i+2] == 'X'
}

func TestProcessKillReachesTheGroup(t *testing.T) {
	t.Parallel()
	p, dir := startShell(t, `sleep 300 & echo $! > child.pid; echo started; wait`)
	pidFile := filepath.Join(dir, "child.pid")
	var child int
	poll.UntilWithin(t, 10*time.Second, "the child's pid file", func() bool {
		data, err := os.ReadFile(pidFile)
		if err != nil {
			return false
		}
		child, err = strconv.Atoi(strings.TrimSpace(string(data)))
		return err == nil
	})
	if gone(child) {
		t.Fatalf("child %d is not running before the kill", child)
	}
	// The shell writes "started" after the pid file: wait for it before the kill cuts it short.
	poll.UntilWithin(t, 10*time.Second, "the log", func() bool { return strings.Contains(p.LogTail(), "started") })
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if !p.Exited() {
		t.Fatal("Kill returned before the process exited")
	}
	poll.UntilWithin(t, 10*time.Second, "the child to die with its group", func() bool { return gone(child) })
	if !strings.Contains(p.LogTail(), "started") {
		t.Errorf("the log lost its line after the kill: %q", p.LogTail())
	}
}

func TestProcessStop(t *testing.T) {
	t.Parallel()
	p, _ := startShell(t, `exec sleep 300`)
	start := time.Now()
	err := p.Stop(30 * time.Second)
	var status syscall.WaitStatus
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		status, _ = ee.Sys().(syscall.WaitStatus)
	}
	if !status.Signaled() || status.Signal() != syscall.SIGTERM {
		t.Fatalf("Stop returned %v, want the process ended by SIGTERM", err)
	}
	if time.Since(start) > 20*time.Second {
		t.Fatal("Stop waited for its timeout although SIGTERM ends sleep")
	}
}

func TestProcessStopKillsAfterTimeout(t *testing.T) {
	t.Parallel()
	// An ignored signal stays ignored across exec, so sleep ignores SIGTERM.
	p, _ := startShell(t, `trap '' TERM; echo ready; exec sleep 300`)
	poll.UntilWithin(t, 10*time.Second, "the trap", func() bool { return strings.Contains(p.LogTail(), "ready") })
	err := p.Stop(200 * time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "was killed") {
		t.Fatalf("Stop returned %v, want the kill after the timeout", err)
	}
	if !p.Exited() {
		t.Fatal("process still running after Stop")
	}
}

func TestProcessSpecValidate(t *testing.T) {
	t.Parallel()
	for _, spec := range []processes.ProcessSpec{
		{Path: "/bin/true", LogPath: "x"},
		{Name: "a", LogPath: "x"},
		{Name: "a", Path: "/bin/true"},
	} {
		if _, err := processes.StartProcess(spec); err == nil {
			t.Errorf("StartProcess(%+v) succeeded", spec)
		}
	}
}
