package processes

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// StopTimeoutDefault is how long Stop waits after SIGTERM before it sends SIGKILL.
const StopTimeoutDefault = 10 * time.Second

// logTailBytes bounds the log excerpt put into error messages.
const logTailBytes = 4 << 10

// ProcessSpec describes one process to start.
type ProcessSpec struct {
	// Name identifies the process in errors ("executor-1").
	Name string
	// Path is the executable.
	Path string
	Args []string
	// Env is added to the current environment; later entries win.
	Env []string
	// Dir is the working directory; empty means the current one.
	Dir string
	// LogPath receives stdout and stderr, appended, so a restarted process continues the same file.
	LogPath string
}

// Validate names the first bad field.
func (s ProcessSpec) Validate() error {
	switch {
	case s.Name == "":
		return errors.New("process: Name is required")
	case s.Path == "":
		return fmt.Errorf("process %s: Path is required", s.Name)
	case s.LogPath == "":
		return fmt.Errorf("process %s: LogPath is required", s.Name)
	}
	return nil
}

// Process is a started process, leader of its own process group so that signals reach everything
// it started.
type Process struct {
	spec ProcessSpec
	cmd  *exec.Cmd
	done chan struct{}
	err  error // the result of Wait, valid once done is closed
	// logStart is the log's size when the process started: a restarted process appends to the log
	// of its previous run, and WaitLog must not find that run's lines.
	logStart int64
}

// StartProcess starts a process as described by spec.
func StartProcess(spec ProcessSpec) (*Process, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(spec.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening log of %s: %w", spec.Name, err)
	}
	defer logFile.Close()
	info, err := logFile.Stat()
	if err != nil {
		return nil, fmt.Errorf("opening log of %s: %w", spec.Name, err)
	}
	cmd := exec.Command(spec.Path, spec.Args...) //nolint:gosec // the harness runs binaries it built
	cmd.Env = append(os.Environ(), spec.Env...)
	cmd.Dir = spec.Dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", spec.Name, err)
	}
	p := &Process{spec: spec, cmd: cmd, done: make(chan struct{}), logStart: info.Size()}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Name returns the process's name.
func (p *Process) Name() string { return p.spec.Name }

// Spec returns the spec the process was started with, to start it again.
func (p *Process) Spec() ProcessSpec { return p.spec }

// Pid returns the process id, which is also its process group id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// LogPath returns the file holding the process's output.
func (p *Process) LogPath() string { return p.spec.LogPath }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err returns how the process exited; call it after Done is closed.
func (p *Process) Err() error {
	<-p.done
	return p.err
}

// Signal sends sig to the process's whole group. Signalling a group that is gone is not an error.
func (p *Process) Signal(sig syscall.Signal) error {
	if err := syscall.Kill(-p.Pid(), sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signalling %s (%s): %w", p.spec.Name, sig, err)
	}
	return nil
}

// Pause stops the process group with SIGSTOP; Resume continues it.
func (p *Process) Pause() error { return p.Signal(syscall.SIGSTOP) }

// Resume continues a paused process group with SIGCONT.
func (p *Process) Resume() error { return p.Signal(syscall.SIGCONT) }

// Kill sends SIGKILL to the process group and waits for the process to exit.
func (p *Process) Kill() error {
	if err := p.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-p.done
	return nil
}

// Stop asks the process group to stop with SIGTERM and waits up to timeout (StopTimeoutDefault when
// zero) before killing it. It returns the process's exit error when it stopped by itself.
func (p *Process) Stop(timeout time.Duration) error {
	if timeout <= 0 {
		timeout = StopTimeoutDefault
	}
	if p.Exited() {
		return nil
	}
	// A paused process cannot act on SIGTERM.
	if err := p.Resume(); err != nil {
		return err
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-p.done:
		return p.err
	case <-timer.C:
		if err := p.Kill(); err != nil {
			return err
		}
		return fmt.Errorf("%s did not stop within %s after SIGTERM and was killed", p.spec.Name, timeout)
	}
}

// Wait waits for the process to exit and returns how it exited, or ctx's error.
func (p *Process) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// WaitLog waits until the process's log (since this start) contains text (a readiness line such as "executor
// started"), failing when ctx ends or the process exits first.
func (p *Process) WaitLog(ctx context.Context, text string) error {
	want := []byte(text)
	err := waitFor(ctx, 20*time.Millisecond, p.done, func() (bool, error) {
		data, err := os.ReadFile(p.spec.LogPath)
		if err != nil || int64(len(data)) < p.logStart {
			return false, nil //nolint:nilerr // not written yet
		}
		return bytes.Contains(data[p.logStart:], want), nil
	})
	if err != nil {
		return fmt.Errorf("waiting for %q in the log of %s: %w\n%s", text, p.spec.Name, err, p.LogTail())
	}
	return nil
}

// LogTail returns the end of the process's log, for error messages.
func (p *Process) LogTail() string { return tailFile(p.spec.LogPath, logTailBytes) }

// tailFile returns up to n bytes from the end of a file, or a note saying why it cannot.
func tailFile(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	off := max(info.Size()-n, 0)
	data, err := io.ReadAll(io.NewSectionReader(f, off, info.Size()-off))
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	return string(data)
}

// waitFor calls check every interval until it returns true or an error, ctx ends, or exited (when
// not nil) is closed.
func waitFor(ctx context.Context, interval time.Duration, exited <-chan struct{}, check func() (bool, error)) error {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		ok, err := check()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-exited:
			return errors.New("process exited")
		case <-ticker.C:
		}
	}
}

// clockTicks is USER_HZ, the unit of the CPU times in /proc/<pid>/stat (100 on every Linux
// architecture Go supports).
const clockTicks = 100

// CPUTime returns the user plus system CPU time the process has used so far, read from
// /proc/<pid>/stat (Linux only).
func (p *Process) CPUTime() (time.Duration, error) { return ProcCPUTime(p.Pid()) }

// PeakRSS returns the process's peak resident set size (VmHWM in /proc/<pid>/status, Linux only).
func (p *Process) PeakRSS() (int64, error) { return ProcPeakRSS(p.Pid()) }

// ProcCPUTime returns the user plus system CPU time used by process pid.
func ProcCPUTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("reading cpu time of %d: %w", pid, err)
	}
	// The command name (field 2) may hold spaces; fields are counted after its closing parenthesis.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("reading cpu time of %d: malformed stat", pid)
	}
	fields := strings.Fields(string(data[i+1:]))
	// After ")": state is field 3, utime field 14, stime field 15.
	if len(fields) < 13 {
		return 0, fmt.Errorf("reading cpu time of %d: malformed stat", pid)
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("reading cpu time of %d: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// ProcPeakRSS returns the peak resident set size of process pid in bytes.
func ProcPeakRSS(pid int) (int64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("reading peak rss of %d: %w", pid, err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("reading peak rss of %d: %w", pid, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("reading peak rss of %d: no VmHWM", pid)
}

// ProcAlive reports whether a process with this pid exists and is not a zombie.
func ProcAlive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(data, ')')
	return i >= 0 && len(data) > i+2 && data[i+2] != 'Z'
}
