package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/ork-go/ork/pkg/envflag"
	"github.com/ork-go/ork/pkg/workflow"
	"github.com/ork-go/ork/services/executor"
)

// options are the executor's own flags.
type options struct {
	types   string // comma-separated, into cfg.Types by check
	preload string // comma-separated, into cfg.PythonPreload by check
	roots   string // comma-separated, into cfg.WorkflowRoots by check; empty: the working directory
	memory  string // into cfg.Limits.MemoryBytes by check
	cfg     executor.Config
}

// flags defines the executor's own flags, each defaulting to its ORK_EXECUTOR_* variable.
func (o *options) flags(s *envflag.Set) {
	s.StringVar(&o.types, "types", "ORK_EXECUTOR_TYPES", strings.Join(executor.TypesDefault(), ","),
		"comma-separated executor types to serve: process, python, noop, sleep")
	s.StringVar(&o.cfg.Python, "python", executor.PythonEnv, executor.PythonDefault,
		"the interpreter of python tasks (a path, or a name on PATH); asked for its real path on the first python task")
	s.BoolVar(&o.cfg.PythonCold, "python-cold", "ORK_PYTHON_COLD", false,
		"run every python task in an interpreter of its own instead of forking it from a warm one")
	s.StringVar(&o.preload, "python-preload", "ORK_PYTHON_PRELOAD", "",
		"comma-separated modules the warm interpreter imports once at start (pandas,numpy)")
	s.IntVar(&o.cfg.ZygoteMaxForks, "python-max-forks", "ORK_PYTHON_MAX_FORKS", executor.ZygoteMaxForksDefault,
		"tasks forked from one warm interpreter before it is replaced by a fresh one")
	s.DurationVar(&o.cfg.ZygoteMaxAge, "python-max-age", "ORK_PYTHON_MAX_AGE", executor.ZygoteMaxAgeDefault,
		"how long one warm interpreter serves before it is replaced by a fresh one")
	s.IntVar(&o.cfg.Concurrency, "concurrency", "ORK_EXECUTOR_CONCURRENCY", executor.ConcurrencyDefault,
		"tasks run at once by this instance")
	s.StringVar(&o.roots, "workflow-roots", "ORK_EXECUTOR_WORKFLOW_ROOTS", "",
		"comma-separated absolute folders a task's workflow folder must lie in (it comes from the network); default the working directory")
	s.StringVar(&o.memory, "limit-memory", "ORK_EXECUTOR_LIMIT_MEMORY", "",
		"default address-space limit of each task process (512MiB, 2GiB; a task's limits: memory overrides it); empty: none")
	s.IntVar(&o.cfg.Limits.OpenFiles, "limit-open-files", "ORK_EXECUTOR_LIMIT_OPEN_FILES", 0,
		"default open-files limit of each task process; 0: none")
	s.IntVar(&o.cfg.Limits.Processes, "limit-processes", "ORK_EXECUTOR_LIMIT_PROCESSES", 0,
		"default process limit while a task runs (RLIMIT_NPROC: counts every process of the executor's user); 0: none")
	s.IntVar(&o.cfg.Limits.CPUSeconds, "limit-cpu-seconds", "ORK_EXECUTOR_LIMIT_CPU_SECONDS", 0,
		"default CPU-time limit of each task process, in seconds; 0: none")
	s.StringVar(&o.cfg.RunAs, "run-as", "ORK_EXECUTOR_RUN_AS", "",
		"run every task process as this user (a name, a uid, or uid:gid); the executor must run as root; empty: the executor's own user")
	s.StringVar(&o.cfg.Instance, "instance", "ORK_EXECUTOR_INSTANCE", "", "instance name; default hostname-pid-random")
	s.DurationVar(&o.cfg.AckWait, "ack-wait", "ORK_EXECUTOR_ACK_WAIT", executor.AckWaitDefault,
		"redelivery delay of an unacknowledged task; heartbeats every third of it")
	s.DurationVar(&o.cfg.DrainGrace, "drain-grace", "ORK_EXECUTOR_DRAIN_GRACE", executor.DrainGraceDefault,
		"on stop, how long running tasks may finish before they are killed and reported lost")
	s.DurationVar(&o.cfg.KillGrace, "kill-grace", "ORK_EXECUTOR_KILL_GRACE", executor.KillGraceDefault,
		"time between SIGTERM and SIGKILL of a task's process group")
	s.Int64Var(&o.cfg.LogMaxBytes, "log-max-bytes", "ORK_EXECUTOR_LOG_MAX_BYTES", executor.LogMaxBytesDefault,
		"log bytes shipped per attempt; later lines are dropped but for a marker and the last lines")
}

// check completes the configuration and validates it.
func (o *options) check() error {
	o.cfg.Types, o.cfg.PythonPreload, o.cfg.WorkflowRoots = splitList(o.types), splitList(o.preload), splitList(o.roots)
	if o.memory != "" {
		v, ok := workflow.ParseMemory(o.memory)
		if !ok {
			return fmt.Errorf("--limit-memory %q: want a size in bytes or with KiB, MiB or GiB (512MiB)", o.memory)
		}
		o.cfg.Limits.MemoryBytes = v
	}
	if len(o.cfg.WorkflowRoots) == 0 {
		wd, err := os.Getwd()
		if err != nil {
			return fmt.Errorf("--workflow-roots: the working directory: %w", err)
		}
		o.cfg.WorkflowRoots = []string{wd}
	}
	o.cfg = o.cfg.WithDefaults()
	return o.cfg.Validate()
}

// splitList splits a comma-separated flag, dropping empty entries.
func splitList(s string) []string {
	var out []string
	for v := range strings.SplitSeq(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
