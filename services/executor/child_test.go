package executor

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/ork-go/ork/pkg/bus"
)

// An executor in a process of its own, so that tests can kill it for real and read its memory use.
// The test binary runs itself with these variables set; TestMain then serves as an executor.
const (
	childNATSEnv   = "ORK_EXECUTOR_TEST_CHILD_NATS"
	childConfigEnv = "ORK_EXECUTOR_TEST_CHILD_CONFIG"
	childReady     = "executor ready"
)

// runChild serves as an executor until SIGTERM and returns the exit code.
func runChild(url, config string) int {
	var cfg Config
	if err := json.Unmarshal([]byte(config), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "child config:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	// Warnings and errors only: the parent test's output stays readable.
	lc := zap.NewDevelopmentConfig()
	lc.Level = zap.NewAtomicLevelAt(zap.WarnLevel)
	log, err := lc.Build()
	if err != nil {
		fmt.Fprintln(os.Stderr, "child logger:", err)
		return 2
	}
	b, err := bus.Connect(bus.Config{URL: url}, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child connect:", err)
		return 1
	}
	defer b.Close()
	s, err := New(b, cfg, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child executor:", err)
		return 1
	}
	go func() {
		<-s.Ready()
		fmt.Println(childReady)
	}()
	if err := s.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "child run:", err)
		return 1
	}
	return 0
}

// startChild runs an executor with cfg in a new process, connected to the harness's server, and
// returns once it serves. The process is killed when the test ends.
func (h *harness) startChild(t *testing.T, cfg Config) *exec.Cmd {
	t.Helper()
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childNATSEnv+"="+h.bus.NC.ConnectedUrl(), childConfigEnv+"="+string(raw))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting child executor: %v", err)
	}
	exited := make(chan struct{})
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	ready := make(chan bool, 1)
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(out)
		seen := false
		for sc.Scan() {
			if !seen && sc.Text() == childReady {
				seen = true
				ready <- true
			}
		}
		if !seen {
			ready <- false
		}
		_ = cmd.Wait()
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("child executor exited before it was ready")
		}
	case <-time.After(waitDeadline):
		t.Fatal("child executor not ready")
	}
	return cmd
}

// killChild kills an executor process with SIGKILL and waits until it is gone.
func killChild(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("killing child executor: %v", err)
	}
	waitGone(t, cmd.Process.Pid)
}

// peakRSS returns a live process's peak resident set size (VmHWM) in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatalf("reading the process status: %v", err)
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("parsing VmHWM %q: %v", line, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in the process status")
	return 0
}
