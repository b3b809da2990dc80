package executor

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestReapOrphansReapsOnlyUnregisteredZombies(t *testing.T) {
	t.Parallel()
	orphan := exec.Command("true")
	if err := orphan.Start(); err != nil {
		t.Fatal(err)
	}
	ours := exec.Command("true")
	if err := startChild(ours); err != nil {
		t.Fatal(err)
	}
	for _, pid := range []int{orphan.Process.Pid, ours.Process.Pid} {
		waitState(t, pid, 'Z')
	}
	if n := reapOrphans(); n < 1 {
		t.Errorf("reaped %d processes, want at least the orphan", n)
	}
	if _, _, ok := procState(orphan.Process.Pid); ok {
		t.Error("the unregistered zombie is still there")
	}
	// The registered child keeps its exit status for its own Wait.
	if err := ours.Wait(); err != nil {
		t.Errorf("registered child: %v", err)
	}
	forgetChild(ours.Process.Pid)
}

// waitState waits until a process is in the given state.
func waitState(t *testing.T, pid int, want byte) {
	t.Helper()
	deadline := time.NewTimer(waitDeadline)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		state, ppid, ok := procState(pid)
		if ok && state == want {
			if ppid != os.Getpid() {
				t.Fatalf("process %d has parent %d", pid, ppid)
			}
			return
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("process %d never reached state %c (now %c)", pid, want, state)
		}
	}
}

func TestCancelledSetForgetsTheOldest(t *testing.T) {
	t.Parallel()
	var c cancelledSet
	c.add(attemptKey{run: "r0"})
	c.add(attemptKey{"r1", "t", 0})
	c.add(attemptKey{"r2", "t", 2})
	if !c.has(attemptKey{"r0", "x", 3}) || !c.has(attemptKey{"r1", "t", 5}) || !c.has(attemptKey{"r2", "t", 2}) || c.has(attemptKey{"r2", "t", 1}) {
		t.Fatal("run, task and attempt cancellations do not match as documented")
	}
	for i := range cancelledMemory - 2 {
		c.add(attemptKey{run: "fill", attempt: i})
	}
	if c.has(attemptKey{run: "r0"}) || !c.has(attemptKey{"r1", "t", 1}) || len(c.keys) != cancelledMemory {
		t.Errorf("after %d more: r0 %v, r1 %v, %d keys", cancelledMemory-2, c.has(attemptKey{run: "r0"}), c.has(attemptKey{"r1", "t", 1}), len(c.keys))
	}
}
