package executor

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/ork-go/ork/pkg/event"
)

//go:embed runner.py
var runnerSource []byte

// inputEnvMax is the largest ORK_INPUT_JSON value passed in the environment: Linux refuses a single
// environment string over 128 KiB. Python tasks get larger inputs on stdin instead.
const inputEnvMax = 128<<10 - len("ORK_INPUT_JSON=") - 1

// installScript writes a python script (the runner, the zygote) into dir as NAME-<hash>.py, once
// per content version, atomically, and returns its path. A file already there is used only when it
// holds exactly source: it is read and compared on every call, and rewritten when it differs, so
// a script changed on disk is never run. dir must be private (privateDir).
func installScript(dir, name string, source []byte) (string, error) {
	sum := sha256.Sum256(source)
	path := filepath.Join(dir, name+"-"+hex.EncodeToString(sum[:6])+".py")
	if have, err := os.ReadFile(path); err == nil && bytes.Equal(have, source) {
		return path, nil
	}
	tmp, err := os.CreateTemp(dir, "."+name+"-*.py")
	if err != nil {
		return "", fmt.Errorf("writing python "+name+": %w", err)
	}
	_, werr := tmp.Write(source)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(tmp.Name())
		return "", fmt.Errorf("writing python "+name+": %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return "", fmt.Errorf("installing python "+name+": %w", err)
	}
	return path, nil
}

// privateDir returns dir, created with mode 0700 when missing, after checking that it is a real
// directory (not a symbolic link) owned by this user that no other user can read or write: the
// runner and the zygote are executed from it. An empty dir gets a fresh temporary one.
func privateDir(dir string) (string, error) {
	if dir == "" {
		d, err := os.MkdirTemp("", "ork-cache-")
		if err != nil {
			return "", fmt.Errorf("creating a cache directory: %w", err)
		}
		return d, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("creating cache directory: %w", err)
	}
	info, err := os.Lstat(dir)
	if err != nil {
		return "", fmt.Errorf("cache directory: %w", err)
	}
	switch st, _ := info.Sys().(*syscall.Stat_t); {
	case info.Mode()&fs.ModeSymlink != 0:
		return "", fmt.Errorf("cache directory %s is a symbolic link: refused, it must be a directory of its own", dir)
	case !info.IsDir():
		return "", fmt.Errorf("cache directory %s is not a directory", dir)
	case st != nil && int(st.Uid) != os.Getuid():
		return "", fmt.Errorf("cache directory %s is owned by uid %d, not by this user (uid %d): refused, another user could change the scripts run from it", dir, st.Uid, os.Getuid())
	case info.Mode().Perm()&0o077 != 0:
		return "", fmt.Errorf("cache directory %s has mode %o: other users can read or write it; run chmod 700 %s", dir, info.Mode().Perm(), dir)
	}
	return dir, nil
}

// pythonResult is the envelope the runner writes on fd 3.
type pythonResult struct {
	OK     bool            `json:"ok"`
	Output json.RawMessage `json:"output"`
	Error  string          `json:"error"`
	Reason string          `json:"reason"` // event.ReasonOutput when the value could not be encoded
}

// runPython runs a python task through the runner.
func (s *Service) runPython(ctx context.Context, d *event.Dispatch) outcome {
	t := &d.Task
	function := t.Function
	if function == "" {
		function = "main"
	}
	file, bad := s.checkFolder(ctx, d)
	if bad != nil {
		return *bad
	}
	var kind, target string
	switch {
	case t.File != "":
		kind, target = "file", file
	case t.Module != "":
		kind, target = "module", t.Module
	default:
		return failed(event.ReasonStart, "the python task names neither a file nor a module", nil)
	}
	inputs := inputJSON(d)
	python := s.pythonPath()
	spec := childSpec{result: true}
	if z := s.warmZygote(python, t.Preload); z != nil {
		// Warm: a fork of the zygote; the inputs always come on stdin, so the request stays small
		// whatever their size.
		spec.zygote, spec.stdin = z, inputs
		spec.zygoteRequest = zygoteRequest{Kind: kind, Target: target, Function: function, Dir: d.Dir,
			Env: envMap(s.taskEnv(d, inputs, false)), User: s.runAs.zygoteUser()}
	} else if s.runAs != nil {
		// As another user, who cannot read the executor's private cache: the runner's source is
		// the argument itself, straight from this binary.
		spec.argv = []string{python, "-u", "-B", "-c", string(runnerSource), kind, target, function}
		spec.env = s.taskEnv(d, inputs, len(inputs) <= inputEnvMax)
		if len(inputs) > inputEnvMax {
			spec.stdin = inputs
		}
	} else {
		runner, err := installScript(s.cfg.CacheDir, "runner", runnerSource)
		if err != nil {
			return failed(event.ReasonStart, "the python runner: "+err.Error(), nil)
		}
		spec.argv = []string{python, "-u", "-B", runner, kind, target, function}
		spec.env = s.taskEnv(d, inputs, len(inputs) <= inputEnvMax)
		if len(inputs) > inputEnvMax {
			spec.stdin = inputs
		}
	}
	r := s.runChild(ctx, d, spec)
	switch {
	case r.startErr != nil:
		return failed(event.ReasonStart, "could not start python ("+s.cfg.Python+"): "+r.startErr.Error()+s.runAs.permissionHint(r.startErr.Error()), nil)
	case r.aborted:
		return outcome{aborted: true}
	case r.timedOut:
		return timedOut(t.TimeoutSeconds)
	case r.resultCut:
		return failed(event.ReasonOutput, "the output is over the "+formatBytes(int64(s.cfg.OutputMaxBytes))+" limit", r.exitCode)
	}
	if len(r.result) == 0 {
		if code := r.exitCode; code != nil && *code == 0 {
			return failed(event.ReasonOutput, "python ended without returning a result from "+function, code)
		}
		return failed(event.ReasonExit, "python "+r.exitText()+" before "+function+" returned"+r.stderrHint()+
			limitHint(s.limitsFor(t), r.signal, r.lastErr)+s.runAs.permissionHint(r.lastErr), r.exitCode)
	}
	var res pythonResult
	if err := json.Unmarshal(r.result, &res); err != nil {
		return failed(event.ReasonOutput, "the python runner's result is unreadable: "+err.Error(), r.exitCode)
	}
	if !res.OK {
		if res.Reason == event.ReasonOutput {
			return failed(event.ReasonOutput, res.Error, r.exitCode)
		}
		return failed(event.ReasonExit, res.Error+limitHint(s.limitsFor(t), r.signal, res.Error)+s.runAs.permissionHint(res.Error), r.exitCode)
	}
	if len(res.Output) > s.cfg.OutputMaxBytes {
		return failed(event.ReasonOutput, "the output is "+formatBytes(int64(len(res.Output)))+", over the "+
			formatBytes(int64(s.cfg.OutputMaxBytes))+" limit", r.exitCode)
	}
	return s.succeeded(t, res.Output, r.exitCode)
}

// pythonPath returns the interpreter of python tasks, resolved once, on first use.
func (s *Service) pythonPath() string {
	s.pythonOnce.Do(func() { s.python = resolvePython(s.cfg.Python, s.log) })
	return s.python
}

// resolvePythonTimeout bounds asking the interpreter for its path.
const resolvePythonTimeout = 10 * time.Second

// resolvePython asks the configured interpreter for its real path (sys.executable), once. Version
// manager shims (pyenv) cost hundreds of milliseconds per start; a virtualenv's interpreter keeps its
// own path, so its packages stay in use. When the interpreter cannot run, the configured name is
// kept and python tasks fail to start with a clear error.
func resolvePython(python string, log *zap.Logger) string {
	// Its child is not registered: keep the orphan reaper away while it runs.
	startMu.RLock()
	defer startMu.RUnlock()
	ctx, cancel := context.WithTimeout(context.Background(), resolvePythonTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, "-c", "import sys; sys.stdout.write(sys.executable or '')").Output()
	path := string(bytes.TrimSpace(out))
	if err != nil || !filepath.IsAbs(path) {
		log.Warn("python interpreter not usable; python tasks will fail", zap.String("python", python), zap.Error(err))
		return python
	}
	return path
}

// envMap turns KEY=VALUE strings into a map (the last of a repeated key wins, as for exec).
func envMap(env []string) map[string]string {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}
