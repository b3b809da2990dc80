package executor

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/workflow"
)

// Defaults of Config.
const (
	ConcurrencyDefault      = 8
	KillGraceDefault        = 5 * time.Second
	AckWaitDefault          = 30 * time.Second
	DrainGraceDefault       = 30 * time.Second
	OutputMaxBytesDefault   = 1 << 20 // 1 MiB
	LogMaxBytesDefault      = 8 << 20 // 8 MiB per attempt
	LogLineMaxBytesDefault  = 64 << 10
	LogFlushIntervalDefault = 100 * time.Millisecond
	LogBatchLinesDefault    = 256
	PythonDefault           = "python3"
	ZygoteMaxForksDefault   = 10_000
	ZygoteMaxAgeDefault     = time.Hour
	// MaxAckPendingDefault bounds unacknowledged dispatches of one type across all its instances.
	MaxAckPendingDefault = 10_000
)

// PythonEnv names the environment variable that overrides PythonDefault.
const PythonEnv = "ORK_PYTHON"

// TypesDefault are the executor types an instance serves when Config.Types is empty.
func TypesDefault() []string { return []string{workflow.ExecutorProcess, workflow.ExecutorPython} }

// KnownTypes are every executor type this package can run.
func KnownTypes() []string {
	return []string{workflow.ExecutorProcess, workflow.ExecutorPython, workflow.ExecutorNoop, workflow.ExecutorSleep}
}

// Config configures a Service.
type Config struct {
	// Types are the executor types this instance serves.
	Types []string
	// Concurrency is the number of tasks this instance runs at once, across all its types.
	Concurrency int
	// Instance names this executor instance in events; default hostname-pid-random.
	Instance string
	// CacheDir holds the python runner script: a private directory (mode 0700, owned by this
	// user), checked at start; default os.UserCacheDir()/ork, or a fresh temporary directory when
	// the user has no cache directory.
	CacheDir string
	// BundleDir holds the bundles of the workflows that run from one (unpacked, by hash): a
	// directory of this user that other users may read but not write; default CacheDir + "-bundles".
	BundleDir string
	// WorkflowRoots, when set, are the only folders (with their subfolders) a dispatch's workflow
	// folder may lie in, checked after symbolic links are resolved: the folder comes from the
	// network. Empty: any folder (the embedded `ork run`, whose only submitter is itself);
	// ork-executor defaults it to its working directory.
	WorkflowRoots []string
	// Limits are the default resource limits of every task's processes (a task's own limits
	// override them field by field); zero fields: no limit.
	Limits workflow.Limits
	// RunAs, when set, is the user every task process runs as: a user name, a uid, or uid:gid
	// (the executor itself keeps its own user, which must be root to switch).
	RunAs string
	// Python is the interpreter of python tasks; default $ORK_PYTHON or python3.
	Python string
	// PythonCold runs every python task in an interpreter of its own instead of forking it from
	// the warm zygote (zygote.go).
	PythonCold bool
	// PythonPreload are modules the zygote imports once at start (pandas, numpy), so tasks do not
	// pay for them.
	PythonPreload []string
	// ZygoteMaxForks and ZygoteMaxAge bound one zygote's life: past either it is replaced by a
	// fresh one (tasks running on the old one finish first).
	ZygoteMaxForks int
	ZygoteMaxAge   time.Duration
	// KillGrace is how long a process group has between SIGTERM and SIGKILL. It also bounds how long
	// the executor waits for the pipes of an exited task that a leftover process still holds.
	KillGrace time.Duration
	// AckWait is the consumers' ack wait; running tasks send a heartbeat every AckWait/3.
	AckWait time.Duration
	// DrainGrace is how long running tasks may go on after Run's context is done before they are
	// killed.
	DrainGrace time.Duration
	// MaxAckPending bounds unacknowledged dispatches of a type across every instance serving it.
	MaxAckPending int
	// OutputMaxBytes caps a task's JSON output.
	OutputMaxBytes int
	// LogMaxBytes caps the log bytes shipped per attempt; later lines are dropped but for a marker
	// and the last few lines.
	LogMaxBytes int64
	// LogLineMaxBytes cuts longer lines, with a marker.
	LogLineMaxBytes int
	// LogFlushInterval is the longest a log line waits before it is shipped.
	LogFlushInterval time.Duration
	// LogBatchLines ships a batch as soon as it holds this many lines.
	LogBatchLines int
	// Metrics, when set, records the executor's metrics (NewMetrics); nil records nothing.
	Metrics *Metrics
}

// WithDefaults returns the config with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if len(c.Types) == 0 {
		c.Types = TypesDefault()
	}
	if c.Concurrency == 0 {
		c.Concurrency = ConcurrencyDefault
	}
	if c.Instance == "" {
		c.Instance = defaultInstance()
	}
	if c.CacheDir == "" {
		// Without a user cache directory New makes a fresh private one: never a predictable
		// shared path in /tmp, which another user could create first.
		if dir, err := os.UserCacheDir(); err == nil {
			c.CacheDir = filepath.Join(dir, "ork")
		}
	}
	if c.BundleDir == "" && c.CacheDir != "" {
		c.BundleDir = c.CacheDir + "-bundles"
	}
	if c.Python == "" {
		c.Python = os.Getenv(PythonEnv)
	}
	if c.ZygoteMaxForks == 0 {
		c.ZygoteMaxForks = ZygoteMaxForksDefault
	}
	if c.ZygoteMaxAge == 0 {
		c.ZygoteMaxAge = ZygoteMaxAgeDefault
	}
	if c.Python == "" {
		c.Python = PythonDefault
	}
	if c.KillGrace == 0 {
		c.KillGrace = KillGraceDefault
	}
	if c.AckWait == 0 {
		c.AckWait = AckWaitDefault
	}
	if c.DrainGrace == 0 {
		c.DrainGrace = DrainGraceDefault
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = MaxAckPendingDefault
	}
	if c.OutputMaxBytes == 0 {
		c.OutputMaxBytes = OutputMaxBytesDefault
	}
	if c.LogMaxBytes == 0 {
		c.LogMaxBytes = LogMaxBytesDefault
	}
	if c.LogLineMaxBytes == 0 {
		c.LogLineMaxBytes = LogLineMaxBytesDefault
	}
	if c.LogFlushInterval == 0 {
		c.LogFlushInterval = LogFlushIntervalDefault
	}
	if c.LogBatchLines == 0 {
		c.LogBatchLines = LogBatchLinesDefault
	}
	return c
}

// Validate names the first bad field.
func (c Config) Validate() error {
	if len(c.Types) == 0 {
		return fmt.Errorf("executor: Types must name at least one of %v", KnownTypes())
	}
	if l := c.Limits; l.MemoryBytes < 0 || l.OpenFiles < 0 || l.Processes < 0 || l.CPUSeconds < 0 {
		return fmt.Errorf("executor: Limits must not be negative, got %+v", l)
	}
	for _, r := range c.WorkflowRoots {
		if !filepath.IsAbs(r) {
			return fmt.Errorf("executor: WorkflowRoots: %q is not an absolute path", r)
		}
	}
	for i, t := range c.Types {
		if !slices.Contains(KnownTypes(), t) {
			return fmt.Errorf("executor: Types: unknown executor type %q (known: %v)", t, KnownTypes())
		}
		if slices.Contains(c.Types[:i], t) {
			return fmt.Errorf("executor: Types: %q is listed twice", t)
		}
	}
	switch {
	case c.Concurrency < 1:
		return fmt.Errorf("executor: Concurrency must be positive, got %d", c.Concurrency)
	case c.Instance == "":
		return fmt.Errorf("executor: Instance is required")
	case c.BundleDir != "" && !filepath.IsAbs(c.BundleDir):
		return fmt.Errorf("executor: BundleDir must be an absolute path, got %q", c.BundleDir)
	case c.CacheDir != "" && !filepath.IsAbs(c.CacheDir):
		return fmt.Errorf("executor: CacheDir must be an absolute path, got %q", c.CacheDir)
	case c.Python == "":
		return fmt.Errorf("executor: Python is required")
	case c.ZygoteMaxForks < 1:
		return fmt.Errorf("executor: ZygoteMaxForks must be at least 1, got %d", c.ZygoteMaxForks)
	case c.ZygoteMaxAge <= 0:
		return fmt.Errorf("executor: ZygoteMaxAge must be positive, got %s", c.ZygoteMaxAge)
	case c.KillGrace <= 0:
		return fmt.Errorf("executor: KillGrace must be positive, got %s", c.KillGrace)
	case c.AckWait < time.Second:
		return fmt.Errorf("executor: AckWait must be at least 1s, got %s", c.AckWait)
	case c.DrainGrace < 0:
		return fmt.Errorf("executor: DrainGrace must not be negative, got %s", c.DrainGrace)
	case c.MaxAckPending < c.Concurrency:
		return fmt.Errorf("executor: MaxAckPending must be at least Concurrency (%d), got %d", c.Concurrency, c.MaxAckPending)
	case c.OutputMaxBytes < 1 || c.OutputMaxBytes > event.MaxOutputBytes:
		return fmt.Errorf("executor: OutputMaxBytes must be 1..%d (event.MaxOutputBytes), got %d", event.MaxOutputBytes, c.OutputMaxBytes)
	case c.LogMaxBytes < 1:
		return fmt.Errorf("executor: LogMaxBytes must be positive, got %d", c.LogMaxBytes)
	case c.LogLineMaxBytes < 64:
		return fmt.Errorf("executor: LogLineMaxBytes must be at least 64, got %d", c.LogLineMaxBytes)
	case c.LogFlushInterval <= 0:
		return fmt.Errorf("executor: LogFlushInterval must be positive, got %s", c.LogFlushInterval)
	case c.LogBatchLines < 1:
		return fmt.Errorf("executor: LogBatchLines must be positive, got %d", c.LogBatchLines)
	}
	return nil
}

func defaultInstance() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "executor"
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	return host + "-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:])
}
