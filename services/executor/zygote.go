package executor

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// Warm Python: a zygote is a Python interpreter that has started, imported site, the runner and
// the preload modules once, and forks a fresh child per task (zygote.py). A fork costs a few
// milliseconds where a cold interpreter costs about a hundred. Every child is a fresh fork of a
// clean zygote, so nothing one task does is seen by the next; it imports the task's own file after
// the fork, so a changed file is always picked up. The child runs in a session (process group) of
// its own, which the executor signals on timeout and cancel exactly as it does a cold child.

//go:embed zygote.py
var zygoteSource []byte

// zygoteReadyTimeout bounds the start of a zygote, preloads included.
const zygoteReadyTimeout = 60 * time.Second

// zygoteRetryAfter is how long the executor uses the cold path after a zygote failed to start.
const zygoteRetryAfter = time.Minute

// zygote is one running zygote process.
type zygote struct {
	cmd     *exec.Cmd
	sock    *os.File // our end of the SOCK_SEQPACKET pair
	started time.Time
	log     *zap.Logger

	sendMu sync.Mutex
	mu     sync.Mutex
	nextID uint64
	forks  int
	waits  map[uint64]*zygoteChild
	dead   chan struct{} // closed when the zygote's socket ends
	exited chan struct{} // closed when the process has been waited for (its output is all in stderr)
	stderr lockedTail
}

// zygoteChild is one task forked by a zygote, as the executor sees it.
type zygoteChild struct {
	pid  chan zygoteReply // the fork's answer
	exit chan procExit    // the child's end
}

// zygoteReply is one message of the zygote.
type zygoteReply struct {
	Ready  bool    `json:"ready"`
	ID     *uint64 `json:"id"`
	PID    int     `json:"pid"`
	Error  string  `json:"error"`
	Exit   *int    `json:"exit"`
	Signal int     `json:"signal"`
}

// startZygote starts a zygote of python with the runner and preload modules, and waits until it
// is ready.
func startZygote(python, script, runner string, preload []string, log *zap.Logger) (*zygote, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "zygote"), os.NewFile(uintptr(fds[1]), "zygote-child")
	z := &zygote{sock: ours, started: time.Now(), log: log, waits: map[uint64]*zygoteChild{},
		dead: make(chan struct{}), exited: make(chan struct{})}
	z.cmd = exec.Command(python, append([]string{"-u", "-B", script, runner}, preload...)...)
	z.cmd.ExtraFiles = []*os.File{theirs}
	// Never the executor's own environment (its NATS credentials): every task is a fork of the
	// zygote, and a fork's memory holds the environment it was started with.
	z.cmd.Env = zygoteEnv()
	z.cmd.Stderr = &z.stderr
	z.cmd.Stdout = &z.stderr
	// Its own process group, so a terminal's signals do not reach it; it dies with the executor,
	// and its children with it (they set PR_SET_PDEATHSIG on the zygote).
	z.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	err = startChild(z.cmd)
	_ = theirs.Close()
	if err != nil {
		_ = ours.Close()
		return nil, err
	}
	go func() {
		_ = z.cmd.Wait()
		forgetChild(z.cmd.Process.Pid)
		close(z.exited)
	}()
	ready := make(chan error, 1)
	go z.read(ready)
	t := time.NewTimer(zygoteReadyTimeout)
	defer t.Stop()
	select {
	case err := <-ready:
		if err != nil {
			z.kill()
			return nil, err
		}
	case <-t.C:
		z.kill()
		return nil, fmt.Errorf("not ready within %s%s", zygoteReadyTimeout, z.stderr.hint())
	}
	return z, nil
}

// read routes the zygote's messages until its socket ends; the first one must say it is ready.
func (z *zygote) read(ready chan<- error) {
	defer z.end()
	buf := make([]byte, 64<<10)
	first := true
	for {
		n, err := z.sock.Read(buf)
		if err != nil || n == 0 {
			if first {
				// Its last words say why: wait until they are all read.
				select {
				case <-z.exited:
				case <-time.After(2 * time.Second):
				}
				ready <- fmt.Errorf("it exited before it was ready%s", z.stderr.hint())
			}
			return
		}
		var m zygoteReply
		if err := json.Unmarshal(buf[:n], &m); err != nil {
			z.log.Warn("unreadable message from the python zygote", zap.Error(err))
			continue
		}
		if first {
			first = false
			if !m.Ready {
				ready <- fmt.Errorf("its first message was not ready: %s", buf[:n])
				return
			}
			ready <- nil
			continue
		}
		if m.ID == nil {
			continue
		}
		z.mu.Lock()
		c := z.waits[*m.ID]
		if c != nil && (m.Exit != nil || m.Signal != 0 || m.Error != "") {
			delete(z.waits, *m.ID)
		}
		z.mu.Unlock()
		if c == nil {
			continue
		}
		switch {
		case m.Error != "":
			c.pid <- m
		case m.Exit != nil || m.Signal != 0:
			c.exit <- procExit{code: m.Exit, signal: syscall.Signal(m.Signal)}
		default:
			c.pid <- m
		}
	}
}

// end marks the zygote dead: every child still waited for ends as killed (its PR_SET_PDEATHSIG
// killed it with the zygote).
func (z *zygote) end() {
	z.mu.Lock()
	waits := z.waits
	z.waits = map[uint64]*zygoteChild{}
	z.mu.Unlock()
	close(z.dead)
	for _, c := range waits {
		select {
		case c.pid <- zygoteReply{Error: "the python zygote ended" + z.stderr.hint()}:
		default:
		}
		c.exit <- procExit{signal: syscall.SIGKILL}
	}
	_ = z.sock.Close()
}

// alive tells whether the zygote still answers.
func (z *zygote) alive() bool {
	select {
	case <-z.dead:
		return false
	default:
		return true
	}
}

// zygoteRequest asks for one task.
type zygoteRequest struct {
	ID       uint64            `json:"id"`
	Kind     string            `json:"kind"`
	Target   string            `json:"target"`
	Function string            `json:"function"`
	Dir      string            `json:"dir"`
	Env      map[string]string `json:"env"`
	// Limits are rlimits (as, nofile, nproc, cpu) the child sets on itself before the task runs.
	Limits map[string]int64 `json:"limits,omitempty"`
	// User, when set, is the user the child switches to before the task runs (Config.RunAs).
	User *zygoteUser `json:"user,omitempty"`
}

// zygoteUser is a user to switch to: its uid, primary gid and groups.
type zygoteUser struct {
	UID    uint32   `json:"uid"`
	GID    uint32   `json:"gid"`
	Groups []uint32 `json:"groups"`
}

// spawn forks one task with stdin, stdout, stderr and result as its descriptors 0 to 3.
func (z *zygote) spawn(req zygoteRequest, files [4]*os.File) (proc, error) {
	c := &zygoteChild{pid: make(chan zygoteReply, 2), exit: make(chan procExit, 1)}
	var fds [4]int
	for i, f := range files {
		rc, err := f.SyscallConn()
		if err != nil {
			return proc{}, err
		}
		if err := rc.Control(func(fd uintptr) { fds[i] = int(fd) }); err != nil {
			return proc{}, err
		}
	}
	z.mu.Lock()
	z.nextID++
	req.ID = z.nextID
	z.forks++
	z.waits[req.ID] = c
	z.mu.Unlock()
	data, err := json.Marshal(req)
	if err == nil {
		// files stay open until spawn returns (the caller closes them), so their numbers stay theirs.
		err = z.send(data, syscall.UnixRights(fds[:]...))
	}
	if err != nil {
		z.mu.Lock()
		delete(z.waits, req.ID)
		z.mu.Unlock()
		return proc{}, fmt.Errorf("asking the python zygote: %w", err)
	}
	select {
	case m := <-c.pid:
		if m.Error != "" {
			return proc{}, errors.New(m.Error)
		}
		return proc{pgid: m.PID, done: c.exit}, nil
	case <-z.dead:
		return proc{}, fmt.Errorf("the python zygote ended%s", z.stderr.hint())
	}
}

// worn tells whether the zygote has served its forks or its time.
func (z *zygote) worn(maxForks int, maxAge time.Duration) bool {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.forks >= maxForks || time.Since(z.started) >= maxAge
}

// retire asks the zygote to take no new task and to exit once its children have ended.
func (z *zygote) retire() { _ = z.send([]byte(`{"retire": true}`), nil) }

// send writes one message, with file descriptors in oob, through the runtime's poller (so it
// never races the socket's Close).
func (z *zygote) send(data, oob []byte) error {
	z.sendMu.Lock()
	defer z.sendMu.Unlock()
	rc, err := z.sock.SyscallConn()
	if err != nil {
		return err
	}
	var sendErr error
	err = rc.Write(func(fd uintptr) bool {
		sendErr = syscall.Sendmsg(int(fd), data, oob, nil, 0)
		return sendErr != syscall.EAGAIN
	})
	return errors.Join(err, sendErr)
}

func (z *zygote) kill() {
	if z.cmd.Process != nil {
		_ = syscall.Kill(-z.cmd.Process.Pid, syscall.SIGKILL)
	}
}

// zygotes keeps the executor's warm interpreters, one per interpreter and set of preloaded modules
// (the executor's --python-preload plus a workflow's preload): started on the first python task
// that needs it, replaced when it died or after ZygoteMaxForks forks or ZygoteMaxAge; at most
// maxZygotes live at once (the least recently used is retired). After a failed start, tasks that
// need it run cold for zygoteRetryAfter, with the reason logged.
type zygotes struct {
	mu          sync.Mutex
	byKey       map[string]*zygoteEntry
	failedUntil map[string]time.Time
}

type zygoteEntry struct {
	z        *zygote
	lastUsed time.Time
}

// maxZygotes bounds the warm interpreters of one executor.
const maxZygotes = 4

// zygoteKey names the zygote of an interpreter and a set of preloads.
func zygoteKey(python string, preload []string) string {
	return python + "\x00" + strings.Join(preload, ",")
}

// warmZygote returns a live zygote of python with preload imported, or nil when the task runs
// cold (PythonCold, or the zygote could not start).
func (s *Service) warmZygote(python string, taskPreload []string) *zygote {
	if s.cfg.PythonCold {
		return nil
	}
	preload := slices.Concat(s.cfg.PythonPreload, taskPreload)
	slices.Sort(preload)
	preload = slices.Compact(preload)
	key := zygoteKey(python, preload)
	zs := &s.zygotes
	zs.mu.Lock()
	defer zs.mu.Unlock()
	if zs.byKey == nil {
		zs.byKey, zs.failedUntil = map[string]*zygoteEntry{}, map[string]time.Time{}
	}
	if e := zs.byKey[key]; e != nil {
		if e.z.alive() && !e.z.worn(s.cfg.ZygoteMaxForks, s.cfg.ZygoteMaxAge) {
			e.lastUsed = time.Now()
			return e.z
		}
		if e.z.alive() {
			e.z.retire()
		} else {
			s.log.Warn("the python zygote ended; starting another", zap.String("output", e.z.stderr.String()))
		}
		delete(zs.byKey, key)
	}
	if time.Now().Before(zs.failedUntil[key]) {
		return nil
	}
	if len(zs.byKey) >= maxZygotes {
		var oldest string
		for k, e := range zs.byKey {
			if oldest == "" || e.lastUsed.Before(zs.byKey[oldest].lastUsed) {
				oldest = k
			}
		}
		zs.byKey[oldest].z.retire()
		delete(zs.byKey, oldest)
	}
	// The scripts are verified (read and compared, rewritten if changed) before each zygote starts.
	runner, err := installScript(s.cfg.CacheDir, "runner", runnerSource)
	var script string
	if err == nil {
		script, err = installScript(s.cfg.CacheDir, "zygote", zygoteSource)
	}
	var z *zygote
	if err == nil {
		z, err = startZygote(python, script, runner, preload, s.log)
	}
	if err != nil {
		zs.failedUntil[key] = time.Now().Add(zygoteRetryAfter)
		s.log.Warn("the python zygote did not start; python tasks run with one interpreter each",
			zap.String("python", python), zap.Strings("preload", preload), zap.Error(err), zap.Duration("retry_after", zygoteRetryAfter))
		return nil
	}
	zs.byKey[key] = &zygoteEntry{z: z, lastUsed: time.Now()}
	return z
}

// closeZygotes retires every zygote (Run's end).
func (s *Service) closeZygotes() {
	s.zygotes.mu.Lock()
	defer s.zygotes.mu.Unlock()
	for k, e := range s.zygotes.byKey {
		e.z.retire()
		delete(s.zygotes.byKey, k)
	}
}

// lockedTail keeps the last few KiB of a process's output, for messages.
type lockedTail struct {
	mu  sync.Mutex
	buf []byte
}

const tailMax = 4 << 10

func (t *lockedTail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > tailMax {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-tailMax:]...)
	}
	return len(p), nil
}

func (t *lockedTail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.TrimSpace(t.buf))
}

// hint is the output's last line, as the end of a message.
func (t *lockedTail) hint() string {
	s := t.String()
	if s == "" {
		return ""
	}
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return ": " + s
}

// zygoteEnvPassed are the variables the zygote gets from the executor: what a task gets
// (passedEnv), and what locates the interpreter's modules.
var zygoteEnvPassed = append([]string{"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "LC_ALL"}, passedEnv...)

// zygoteEnv is the zygote's whole environment.
func zygoteEnv() []string {
	env := make([]string, 0, len(zygoteEnvPassed))
	for _, k := range zygoteEnvPassed {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}
