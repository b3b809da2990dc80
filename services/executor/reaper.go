package executor

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync"
	"syscall"

	"go.uber.org/zap"
)

// Orphans: a killed task's grandchildren are adopted by PID 1. When the executor is PID 1 (a
// container started without an init), nobody would reap them and they would stay zombies forever.
// ReapOrphans reaps them without stealing the exit status of the executor's own children: every
// child is started and registered under startMu held for reading, and the reaper holds it for
// writing, so a zombie that is not registered is an adopted orphan.
var (
	startMu  sync.RWMutex
	childMu  sync.Mutex
	children = map[int]struct{}{}
)

// startChild starts cmd and registers its pid until forgetChild.
func startChild(cmd *exec.Cmd) error {
	startMu.RLock()
	defer startMu.RUnlock()
	if err := cmd.Start(); err != nil {
		return err
	}
	childMu.Lock()
	children[cmd.Process.Pid] = struct{}{}
	childMu.Unlock()
	return nil
}

// forgetChild unregisters a child once Wait has reaped it.
func forgetChild(pid int) {
	childMu.Lock()
	delete(children, pid)
	childMu.Unlock()
}

// ReapOrphans reaps zombie processes this process adopted, until ctx is done. It does nothing unless
// the process is PID 1. Call it only from a program that starts child processes solely through this
// package (the executor's own main), since it reaps any other zombie child.
func ReapOrphans(ctx context.Context, log *zap.Logger) {
	if os.Getpid() != 1 {
		return
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGCHLD)
	defer signal.Stop(sig)
	for {
		select {
		case <-sig:
			if n := reapOrphans(); n > 0 {
				log.Debug("reaped orphaned processes", zap.Int("count", n))
			}
		case <-ctx.Done():
			return
		}
	}
}

// reapOrphans reaps every zombie child that is not registered and returns how many it reaped.
func reapOrphans() int {
	startMu.Lock()
	defer startMu.Unlock()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	self := os.Getpid()
	n := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		state, ppid, ok := procState(pid)
		if !ok || state != 'Z' || ppid != self {
			continue
		}
		childMu.Lock()
		_, ours := children[pid]
		childMu.Unlock()
		if ours {
			continue
		}
		var ws syscall.WaitStatus
		if got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil); err == nil && got == pid {
			n++
		}
	}
	return n
}

// procState reads a process's state letter and parent pid from /proc/<pid>/stat.
func procState(pid int) (state byte, ppid int, ok bool) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// "pid (comm) state ppid ...": comm may hold spaces and parentheses, so cut at the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return 0, 0, false
	}
	fields := bytes.Fields(stat[i+2:])
	if len(fields) < 2 || len(fields[0]) != 1 {
		return 0, 0, false
	}
	ppid, err = strconv.Atoi(string(fields[1]))
	if err != nil {
		return 0, 0, false
	}
	return fields[0][0], ppid, true
}
