package executor

import (
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/ork-go/ork/pkg/workflow"
)

// limitsFor returns a task's resource limits: its own, field by field over the executor's defaults.
func (s *Service) limitsFor(t *workflow.Task) workflow.Limits {
	l := s.cfg.Limits
	if o := t.Limits; o != nil {
		if o.MemoryBytes > 0 {
			l.MemoryBytes = o.MemoryBytes
		}
		if o.OpenFiles > 0 {
			l.OpenFiles = o.OpenFiles
		}
		if o.Processes > 0 {
			l.Processes = o.Processes
		}
		if o.CPUSeconds > 0 {
			l.CPUSeconds = o.CPUSeconds
		}
	}
	return l
}

// rlimits returns the limits as rlimit names and values (both soft and hard, except the CPU time,
// whose hard limit is a second later so that the soft one's SIGXCPU says what happened).
func rlimits(l workflow.Limits) map[string]int64 {
	m := map[string]int64{}
	if l.MemoryBytes > 0 {
		m["as"] = l.MemoryBytes
	}
	if l.OpenFiles > 0 {
		m["nofile"] = int64(l.OpenFiles)
	}
	if l.Processes > 0 {
		m["nproc"] = int64(l.Processes)
	}
	if l.CPUSeconds > 0 {
		m["cpu"] = int64(l.CPUSeconds)
	}
	return m
}

// prlimitArgs returns the prlimit(1) command line that applies l, then runs argv in the same
// process (prlimit execs it).
func prlimitArgs(path string, l workflow.Limits, argv []string) []string {
	out := []string{path}
	for _, name := range []string{"as", "nofile", "nproc", "cpu"} {
		v, ok := rlimits(l)[name]
		if !ok {
			continue
		}
		hard := v
		if name == "cpu" {
			hard = v + 1
		}
		out = append(out, "--"+name+"="+strconv.FormatInt(v, 10)+":"+strconv.FormatInt(hard, 10))
	}
	return append(append(out, "--"), argv...)
}

var (
	prlimitOnce sync.Once
	prlimitPath string
	prlimitErr  error
)

// findPrlimit looks prlimit up once.
func findPrlimit() (string, error) {
	prlimitOnce.Do(func() { prlimitPath, prlimitErr = exec.LookPath("prlimit") })
	return prlimitPath, prlimitErr
}

// limitHint names the limit a failed task most likely hit, from how it ended and its last error
// text, as the end of a sentence ("" when no limit explains it).
func limitHint(l workflow.Limits, sig syscall.Signal, text string) string {
	has := func(subs ...string) bool {
		for _, s := range subs {
			if strings.Contains(text, s) {
				return true
			}
		}
		return false
	}
	switch {
	case l.CPUSeconds > 0 && (sig == syscall.SIGXCPU || sig == syscall.SIGKILL):
		return "; it hit its CPU time limit of " + strconv.Itoa(l.CPUSeconds) + " s (limits: cpu_seconds)"
	case l.MemoryBytes > 0 && has("MemoryError", "Cannot allocate memory", "out of memory", "bad_alloc", "memory exhausted"):
		return "; it hit its memory limit of " + formatBytes(l.MemoryBytes) + " (limits: memory)"
	case l.OpenFiles > 0 && has("Too many open files"):
		return "; it hit its open files limit of " + strconv.Itoa(l.OpenFiles) + " (limits: open_files)"
	case l.Processes > 0 && has("Resource temporarily unavailable", "fork", "BlockingIOError"):
		return "; it hit its process limit of " + strconv.Itoa(l.Processes) + " (limits: processes, counted over the executor's user)"
	}
	return ""
}
