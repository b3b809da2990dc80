package executor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/workflow"
)

// outcome is how an attempt ended.
type outcome struct {
	ok       bool
	output   json.RawMessage // nil is null
	err      string
	reason   string
	exitCode *int
	// aborted means the executor itself stopped the task (hard stop): no terminal event is published
	// and the dispatch is nak'ed so the attempt runs again elsewhere.
	aborted bool
}

func failed(reason, msg string, exitCode *int) outcome {
	return outcome{reason: reason, err: msg, exitCode: exitCode}
}

func timedOut(seconds int) outcome {
	return failed(event.ReasonTimeout, "timed out after "+strconv.Itoa(seconds)+"s", nil)
}

// succeeded checks an output against the task's output type.
func (s *Service) succeeded(t *workflow.Task, output json.RawMessage, exitCode *int) outcome {
	if len(output) == 0 {
		output = nil
	}
	if t.OutputType != nil {
		raw := output
		if raw == nil {
			raw = json.RawMessage("null")
		}
		if err := t.OutputType.CheckJSON(raw); err != nil {
			return failed(event.ReasonOutput, "the output does not match output_type: "+err.Error(), exitCode)
		}
	}
	return outcome{ok: true, output: output, exitCode: exitCode}
}

// execute runs one attempt of a task of the given executor type.
func (s *Service) execute(ctx context.Context, typ string, d *event.Dispatch) outcome {
	switch typ {
	case workflow.ExecutorProcess:
		return s.runProcess(ctx, d)
	case workflow.ExecutorPython:
		return s.runPython(ctx, d)
	case workflow.ExecutorNoop:
		return outcome{ok: true}
	case workflow.ExecutorSleep:
		return s.runSleep(ctx, d)
	}
	return failed(event.ReasonStart, "this executor cannot run tasks of type "+strconv.Quote(typ), nil)
}

// runSleep sleeps inputs.seconds, honouring the timeout and a hard stop.
func (s *Service) runSleep(ctx context.Context, d *event.Dispatch) outcome {
	var in struct {
		Seconds float64 `json:"seconds"`
	}
	if len(d.Inputs) > 0 {
		if err := json.Unmarshal(d.Inputs, &in); err != nil {
			return failed(event.ReasonInput, "the sleep task needs a number in inputs.seconds: "+err.Error(), nil)
		}
	}
	if in.Seconds < 0 {
		return failed(event.ReasonInput, "the sleep task needs a non-negative inputs.seconds", nil)
	}
	wait := time.NewTimer(time.Duration(in.Seconds * float64(time.Second)))
	defer wait.Stop()
	var timeout <-chan time.Time
	if d.Task.TimeoutSeconds > 0 {
		t := time.NewTimer(time.Duration(d.Task.TimeoutSeconds) * time.Second)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-wait.C:
		return s.succeeded(&d.Task, nil, nil)
	case <-timeout:
		return timedOut(d.Task.TimeoutSeconds)
	case <-ctx.Done():
		return outcome{aborted: true}
	}
}

// checkFolder makes sure a task that runs a child can run here: the workflow folder (the dispatch's
// Dir, where its child runs) exists on this executor, and the task's file, when it names one, is
// inside that folder, opened through an os.Root rooted there (Dir and File come from the network:
// a path that climbs out of the folder, or a symbolic link that leads out of it, is refused). It
// returns the file's path to run, or the outcome that explains what is wrong and what to do.
func (s *Service) checkFolder(ctx context.Context, d *event.Dispatch) (string, *outcome) {
	where := "executor " + s.cfg.Instance
	if d.Bundle != "" {
		// The bundle's folder is the executor's own copy: no root to check, the task's file is
		// still opened through an os.Root there.
		dir, o := s.bundleFolder(ctx, d.Bundle)
		if o != nil {
			return "", o
		}
		d.Dir = dir
		return s.taskFile(d, dir, where)
	}
	if !filepath.IsAbs(d.Dir) {
		o := failed(event.ReasonStart, fmt.Sprintf("the workflow folder %q is not an absolute path; submit the workflow with ork run or ork's client, which send the folder of the workflow file", d.Dir), nil)
		return "", &o
	}
	dir, o := s.allowedFolder(d.Dir)
	if o != nil {
		return "", o
	}
	d.Dir = dir // the task runs in the folder that was checked, not a link that may change
	return s.taskFile(d, dir, where)
}

// taskFile opens the workflow folder dir through an os.Root and checks the task's file in it.
func (s *Service) taskFile(d *event.Dispatch, dir, where string) (string, *outcome) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		msg := fmt.Sprintf("the workflow folder %s does not exist on %s: tasks run in the folder of the workflow file, "+
			"so the executor must see the workflow's files at the same path as the machine that submitted it "+
			"(mount that folder there, e.g. a volume in docker-compose.yml, or submit the workflow from a path the executor has)", d.Dir, where)
		if !errors.Is(err, fs.ErrNotExist) {
			msg = fmt.Sprintf("the workflow folder %s cannot be opened on %s: %v", d.Dir, where, err)
		}
		o := failed(event.ReasonStart, msg, nil)
		return "", &o
	}
	defer func() { _ = root.Close() }()
	if d.Task.File == "" {
		return "", nil
	}
	info, err := root.Stat(d.Task.File)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		o := failed(event.ReasonStart, fmt.Sprintf("the task file %s does not exist in the workflow folder %s on %s", d.Task.File, d.Dir, where), nil)
		return "", &o
	case err != nil:
		o := failed(event.ReasonStart, fmt.Sprintf("the task file %s is refused: it must be inside the workflow folder %s (%v)", d.Task.File, d.Dir, err), nil)
		return "", &o
	case info.IsDir():
		o := failed(event.ReasonStart, fmt.Sprintf("the task file %s in %s is a folder", d.Task.File, d.Dir), nil)
		return "", &o
	}
	return filepath.Join(d.Dir, filepath.Clean(d.Task.File)), nil
}

// resolveRoots returns the workflow roots with their symbolic links resolved; each must exist.
func resolveRoots(roots []string) ([]string, error) {
	out := make([]string, 0, len(roots))
	for _, r := range roots {
		real, err := filepath.EvalSymlinks(r)
		if err != nil {
			return nil, fmt.Errorf("executor: workflow root: %w", err)
		}
		out = append(out, real)
	}
	return out, nil
}

// allowedFolder resolves a dispatch's workflow folder (its symbolic links followed) and checks it
// lies in one of the workflow roots, when the executor has any. It returns the resolved folder, or
// the outcome that refuses it.
func (s *Service) allowedFolder(dir string) (string, *outcome) {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return dir, nil // os.OpenRoot reports the missing folder with its advice
	}
	if len(s.roots) == 0 {
		return real, nil
	}
	for _, r := range s.roots {
		if rel, err := filepath.Rel(r, real); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
			return real, nil
		}
	}
	shown := real
	if real != dir {
		shown = dir + " (" + real + ")"
	}
	o := failed(event.ReasonStart, fmt.Sprintf("the workflow folder %s is outside the workflow roots of executor %s (%s): "+
		"start the executor with --workflow-roots (ORK_EXECUTOR_WORKFLOW_ROOTS) naming a folder that holds it", shown, s.cfg.Instance,
		strings.Join(s.roots, ", ")), nil)
	return "", &o
}

// runProcess runs a process task: its argv as given, never through a shell.
func (s *Service) runProcess(ctx context.Context, d *event.Dispatch) outcome {
	t := &d.Task
	file, bad := s.checkFolder(ctx, d)
	if bad != nil {
		return *bad
	}
	argv := t.Command
	if len(argv) == 0 {
		if t.File == "" {
			return failed(event.ReasonStart, "the process task has neither a command nor a file", nil)
		}
		argv = []string{file}
	}
	inputs := inputJSON(d)
	if len(inputs) > inputEnvMax {
		return failed(event.ReasonInput, "the inputs are "+formatBytes(int64(len(inputs)))+
			", more than ORK_INPUT_JSON can carry (128 KiB)", nil)
	}
	r := s.runChild(ctx, d, childSpec{argv: argv, env: s.taskEnv(d, inputs, true), capture: true})
	switch {
	case r.startErr != nil:
		return failed(event.ReasonStart, "could not start the command: "+r.startErr.Error()+s.runAs.permissionHint(r.startErr.Error()), nil)
	case r.aborted:
		return outcome{aborted: true}
	case r.timedOut:
		return timedOut(t.TimeoutSeconds)
	case r.exitCode == nil || *r.exitCode != 0:
		return failed(event.ReasonExit, "the command "+r.exitText()+r.stderrHint()+limitHint(s.limitsFor(&d.Task), r.signal, r.lastErr)+s.runAs.permissionHint(r.lastErr), r.exitCode)
	case !r.hasOutput:
		return s.succeeded(t, nil, r.exitCode)
	case r.outputCut:
		return failed(event.ReasonOutput, "the ORK_OUTPUT line is over the "+formatBytes(int64(s.cfg.OutputMaxBytes))+" output limit", r.exitCode)
	}
	out := bytes.TrimSpace(r.output)
	if !json.Valid(out) {
		return failed(event.ReasonOutput, "the ORK_OUTPUT line is not valid JSON: "+shorten(string(out), 200), r.exitCode)
	}
	return s.succeeded(t, out, r.exitCode)
}

// inputJSON returns the dispatch's inputs object, "{}" when there is none.
func inputJSON(d *event.Dispatch) []byte {
	in := bytes.TrimSpace(d.Inputs)
	if len(in) == 0 || bytes.Equal(in, []byte("null")) {
		return []byte("{}")
	}
	return in
}

// passedEnv are the only variables a task inherits from the executor.
var passedEnv = []string{"PATH", "HOME", "LANG", "TMPDIR"}

// taskEnv is a task's whole environment: a few inherited variables and the task contract.
func (s *Service) taskEnv(d *event.Dispatch, inputs []byte, withInputs bool) []string {
	env := make([]string, 0, len(passedEnv)+5)
	for _, k := range passedEnv {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	if withInputs {
		env = append(env, "ORK_INPUT_JSON="+string(inputs))
	}
	return s.runAs.env(append(env,
		"ORK_RUN_ID="+d.RunID,
		"ORK_TASK_NAME="+d.Task.Name,
		"ORK_WORKFLOW_NAME="+d.Workflow,
		"ORK_ATTEMPT="+strconv.Itoa(d.Attempt),
	))
}

// childSpec is a child process to run for a task.
type childSpec struct {
	argv    []string
	env     []string
	cred    *syscall.Credential // the user to run as; nil: the executor's
	stdin   []byte              // nil: /dev/null
	capture bool                // capture the last ORK_OUTPUT stdout line
	result  bool                // read a result from fd 3
	// zygote, when set, forks the child from the warm python interpreter instead of exec'ing argv.
	zygote        *zygote
	zygoteRequest zygoteRequest
	// limits are the task's resource limits (runChild sets them).
	limits workflow.Limits
}

// childResult is how a child ended.
type childResult struct {
	startErr  error
	aborted   bool
	timedOut  bool
	exitCode  *int // nil when killed by a signal
	signal    syscall.Signal
	lastErr   string // the last stderr line
	hasOutput bool   // an ORK_OUTPUT line was seen
	output    []byte
	outputCut bool
	result    []byte // fd 3, at most OutputMaxBytes plus room for the envelope
	resultCut bool
}

// resultSlack is room for the runner's envelope around an output of OutputMaxBytes.
const resultSlack = 4 << 10

// exitText says how the child ended, as the end of a sentence.
func (r *childResult) exitText() string {
	if r.exitCode != nil {
		return "exited with code " + strconv.Itoa(*r.exitCode)
	}
	if r.signal != 0 {
		return "was killed by signal " + strconv.Itoa(int(r.signal)) + " (" + r.signal.String() + ")"
	}
	return "ended abnormally"
}

// stderrHint quotes the last stderr line, which usually says what went wrong.
func (r *childResult) stderrHint() string {
	if r.lastErr == "" {
		return ""
	}
	return ": " + r.lastErr
}

// procExit is how a task's process ended: its exit code, or the signal that killed it.
type procExit struct {
	code   *int // nil when killed by a signal
	signal syscall.Signal
	err    error // from Wait, when it says more than the exit status
}

// proc is a started task process: its process group and its end.
type proc struct {
	pgid int
	done <-chan procExit
}

// startExec starts a cold child: one exec of spec.argv.
func startExec(d *event.Dispatch, spec childSpec, files [4]*os.File, killGrace time.Duration) (proc, error) {
	cmd := exec.Command(spec.argv[0], spec.argv[1:]...)
	cmd.Dir = d.Dir
	cmd.Env = spec.env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = files[0], files[1], files[2]
	if files[3] != nil {
		cmd.ExtraFiles = []*os.File{files[3]}
	}
	// Own process group, so the whole tree can be signalled; killed if the executor dies.
	// As the task's user, when it has one (Go sets the parent-death signal after switching, which
	// would clear it).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: spec.cred}
	// A leftover process holding a pipe cannot make Wait hang.
	cmd.WaitDelay = killGrace
	if err := startChild(cmd); err != nil {
		return proc{}, err
	}
	pid := cmd.Process.Pid
	done := make(chan procExit, 1)
	go func() {
		err := cmd.Wait()
		forgetChild(pid)
		var e procExit
		if st := cmd.ProcessState; st != nil {
			if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				e.signal = ws.Signal()
			} else if code := st.ExitCode(); code >= 0 {
				e.code = &code
			}
		}
		var exitErr *exec.ExitError
		if err != nil && !errors.As(err, &exitErr) && !errors.Is(err, exec.ErrWaitDelay) {
			e.err = err
		}
		done <- e
	}()
	return proc{pgid: pid, done: done}, nil
}

// runChild runs one child in its own process group (a cold exec, or a fork of the python zygote
// when spec.zygote is set), ships its output lines, and enforces the task timeout and hard stops
// on the whole group. It returns once the stream has stored every line (or the executor was
// hard-stopped), so the attempt's terminal event always follows its lines.
func (s *Service) runChild(ctx context.Context, d *event.Dispatch, spec childSpec) childResult {
	sink := newLogSink(s.hard, s.bus, s.cfg, s.log, d)
	stdout := newLineWriter(event.Stdout, sink, s.cfg, spec.capture)
	stderr := newLineWriter(event.Stderr, sink, s.cfg, false)

	// stdin, stdout, stderr and the result are pipes of our own, read by copies of our own:
	// exec.Cmd would close its pipes WaitDelay after the exit, throwing away what is still in them,
	// while log shipping holds the writers back (a NATS outage).
	var files []*os.File // every pipe end, closed on the way out
	closeAll := func() {
		for _, f := range files {
			_ = f.Close()
		}
	}
	pipe := func() (r, w *os.File, err error) {
		if r, w, err = os.Pipe(); err == nil {
			files = append(files, r, w)
		}
		return r, w, err
	}
	var child [4]*os.File // the child's 0, 1, 2 and 3
	var stdinW, outR, errR, resultR *os.File
	var err error
	if spec.stdin != nil {
		child[0], stdinW, err = pipe()
	} else if child[0], err = os.Open(os.DevNull); err == nil {
		files = append(files, child[0])
	}
	if err == nil {
		outR, child[1], err = pipe()
	}
	if err == nil {
		errR, child[2], err = pipe()
	}
	if err == nil && spec.result {
		resultR, child[3], err = pipe()
	}
	spec.limits = s.limitsFor(&d.Task)
	limits := rlimits(spec.limits)
	var p proc
	if err == nil {
		if spec.zygote != nil {
			spec.zygoteRequest.Limits = limits
			p, err = spec.zygote.spawn(spec.zygoteRequest, child)
		} else {
			if len(limits) > 0 {
				path, lerr := findPrlimit()
				if lerr != nil {
					err = fmt.Errorf("the task has resource limits, which need the prlimit program (util-linux) on this executor: %w", lerr)
				}
				spec.argv = prlimitArgs(path, spec.limits, spec.argv)
			}
			if err == nil {
				spec.cred = s.runAs.credential()
				p, err = startExec(d, spec, child, s.cfg.KillGrace)
			}
		}
	}
	if err != nil {
		closeAll()
		sink.close()
		return childResult{startErr: err}
	}
	defer closeAll()
	// The child has its own copies of its ends: EOF comes when it and its descendants are done.
	for _, f := range child {
		if f != nil {
			_ = f.Close()
		}
	}
	if stdinW != nil {
		go func() {
			_, _ = stdinW.Write(spec.stdin)
			_ = stdinW.Close()
		}()
	}
	copies := []*pipeCopy{startCopy(outR, stdout), startCopy(errR, stderr)}
	var resultCh chan resultRead
	if resultR != nil {
		resultCh = make(chan resultRead, 1)
		go readResult(resultR, s.cfg.OutputMaxBytes+resultSlack, resultCh)
	}
	pgid := p.pgid

	var timeout <-chan time.Time
	if d.Task.TimeoutSeconds > 0 {
		t := time.NewTimer(time.Duration(d.Task.TimeoutSeconds) * time.Second)
		defer t.Stop()
		timeout = t.C
	}
	var r childResult
	var end procExit
	select {
	case end = <-p.done:
	case <-timeout:
		r.timedOut = true
		end = s.terminate(pgid, p.done)
	case <-ctx.Done():
		r.aborted = true
		end = s.terminate(pgid, p.done)
	}
	// The task is over: nothing of its process group outlives it.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)

	s.drainPipes(copies)
	stdout.finish()
	stderr.finish()
	sink.close()
	if resultCh != nil {
		rr := s.awaitResult(resultR, resultCh)
		r.result, r.resultCut = rr.data, rr.cut
	}

	r.lastErr = stderr.last
	r.hasOutput, r.output, r.outputCut = stdout.hasOutput, stdout.output, stdout.outputCut
	r.exitCode, r.signal = end.code, end.signal
	if end.err != nil && r.exitCode == nil && r.signal == 0 {
		s.log.Warn("waiting for task process", zap.Error(end.err))
	}
	return r
}

// terminate stops a process group: SIGTERM, then SIGKILL after KillGrace. It returns how the
// process ended.
func (s *Service) terminate(pgid int, done <-chan procExit) procExit {
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	grace := time.NewTimer(s.cfg.KillGrace)
	defer grace.Stop()
	select {
	case e := <-done:
		return e
	case <-grace.C:
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	return <-done
}

// pipeCopy copies one output pipe of a child into a lineWriter, from a goroutine of its own.
type pipeCopy struct {
	r    *os.File
	done chan struct{}
	// Time spent in Write, held back by log shipping rather than waiting for the child: the time
	// of the Writes that returned, and the start of the one in progress (0 when none is).
	written atomic.Int64
	writing atomic.Int64
}

func startCopy(r *os.File, w io.Writer) *pipeCopy {
	c := &pipeCopy{r: r, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				begin := time.Now()
				c.writing.Store(begin.UnixNano())
				_, _ = w.Write(buf[:n])
				c.written.Add(int64(time.Since(begin)))
				c.writing.Store(0)
			}
			if err != nil {
				return
			}
		}
	}()
	return c
}

// held returns how long the copy has been held back by its writer.
func (c *pipeCopy) held() time.Duration {
	d := time.Duration(c.written.Load())
	if since := c.writing.Load(); since != 0 {
		d += time.Since(time.Unix(0, since))
	}
	return d
}

// drainPipes waits until the copies have read their pipes to the end. A process that left the task's
// group and still holds a pipe gets KillGrace, plus however long log shipping held the copy back (a
// NATS outage must not throw away what the task wrote), then the pipe is closed under it.
func (s *Service) drainPipes(copies []*pipeCopy) {
	begin := time.Now()
	t := time.NewTimer(s.cfg.KillGrace)
	defer t.Stop()
	for _, c := range copies {
		for open := true; open; {
			left := s.cfg.KillGrace + c.held() - time.Since(begin)
			if left <= 0 {
				_ = c.r.Close()
				<-c.done
				break
			}
			t.Reset(left)
			select {
			case <-c.done:
				open = false
			case <-t.C:
			}
		}
	}
}

type resultRead struct {
	data []byte
	cut  bool
}

// readResult reads at most limit bytes of the result pipe and drains the rest.
func readResult(r *os.File, limit int, out chan<- resultRead) {
	data, _ := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	cut := len(data) > limit
	if cut {
		_, _ = io.Copy(io.Discard, r)
		data = nil
	}
	out <- resultRead{data: data, cut: cut}
}

// awaitResult waits for the result reader; a process that escaped the group and holds the pipe gets
// KillGrace, then the pipe is closed under it.
func (s *Service) awaitResult(r *os.File, ch <-chan resultRead) resultRead {
	t := time.NewTimer(s.cfg.KillGrace)
	defer t.Stop()
	var rr resultRead
	select {
	case rr = <-ch:
	case <-t.C:
		_ = r.Close()
		rr = <-ch
	}
	_ = r.Close()
	return rr
}
