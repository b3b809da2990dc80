package bench

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/workflow"
)

// Shapes of the benchmark workflows.
const (
	// ShapeWide is Tasks independent tasks.
	ShapeWide = "wide"
	// ShapeChain is a chain of Depth tasks, each depending on the one before.
	ShapeChain = "chain"
	// ShapeFanout is one task, then Tasks tasks depending on it, then one task depending on them all.
	ShapeFanout = "fanout"
	// ShapeRuns is Runs runs of a small diamond (a -> b, c -> d), submitted concurrently.
	ShapeRuns = "runs"
)

// Task types a scenario can run.
const (
	TaskNoop    = "noop"
	TaskSleep   = "sleep"
	TaskProcess = "process" // the `true` binary
	// TaskPython is a real Python function run by the executor: each task computes fibo(10) and
	// adds it to the value its upstream task returned (the shape of Windmill's cross-engine
	// benchmark), so a chain passes an int from task to task.
	TaskPython = "python"
)

// Modes of a benchmark.
const (
	// ModeEmbedded runs everything in this process with SQLite in a temporary directory.
	ModeEmbedded = "embedded"
	// ModeCluster submits to running services over NATS and PostgreSQL.
	ModeCluster = "cluster"
)

// Defaults of a Config and its Scenarios.
const (
	ModeDefault            = ModeEmbedded
	ConcurrencyDefault     = 64
	TaskTypeDefault        = TaskNoop
	SleepSecondsDefault    = 0.01
	SubmittersDefault      = 8
	ScenarioTimeoutDefault = 10 * time.Minute
	DevstackDirDefault     = ".ork/devstack"
	// RecorderMetricsURLDefault is the recorder's endpoint in the dev stack (deploy/devstack.sh).
	RecorderMetricsURLDefault = "http://127.0.0.1:9103/metrics"
	diamondTasks              = 4
)

// Scenario is one workflow shape run once (or Runs times for ShapeRuns).
type Scenario struct {
	// Name labels the scenario in the report; derived from the shape and size when empty.
	Name string `json:"name"`
	// Shape is one of the Shape* constants.
	Shape string `json:"shape"`
	// Tasks is the number of tasks of a wide run or the middle of a fan-out.
	Tasks int `json:"tasks,omitempty"`
	// Depth is the length of a chain.
	Depth int `json:"depth,omitempty"`
	// Runs is the number of runs of ShapeRuns; other shapes run once.
	Runs int `json:"runs,omitempty"`
	// TaskType is one of the Task* constants (default noop).
	TaskType string `json:"task_type"`
	// SleepSeconds is the duration of a sleep task.
	SleepSeconds float64 `json:"sleep_seconds,omitempty"`
}

// WithDefaults fills the zero fields of s.
func (s Scenario) WithDefaults() Scenario {
	if s.TaskType == "" {
		s.TaskType = TaskTypeDefault
	}
	if s.TaskType == TaskSleep && s.SleepSeconds == 0 {
		s.SleepSeconds = SleepSecondsDefault
	}
	if s.Shape == ShapeRuns && s.Runs == 0 {
		s.Runs = 1
	}
	if s.Name == "" {
		s.Name = s.defaultName()
	}
	return s
}

func (s Scenario) defaultName() string {
	var size string
	switch s.Shape {
	case ShapeWide, ShapeFanout:
		size = fmt.Sprint(s.Tasks)
	case ShapeChain:
		size = fmt.Sprint(s.Depth)
	case ShapeRuns:
		size = fmt.Sprintf("%dx%d", s.Runs, diamondTasks)
	}
	return s.Shape + "-" + size + "-" + s.TaskType
}

// Validate reports the first bad field of s.
func (s Scenario) Validate() error {
	switch s.Shape {
	case ShapeWide, ShapeFanout:
		if s.Tasks < 1 {
			return fmt.Errorf("scenario %s: Tasks must be at least 1, got %d", s.Name, s.Tasks)
		}
	case ShapeChain:
		if s.Depth < 1 {
			return fmt.Errorf("scenario %s: Depth must be at least 1, got %d", s.Name, s.Depth)
		}
	case ShapeRuns:
		if s.Runs < 1 {
			return fmt.Errorf("scenario %s: Runs must be at least 1, got %d", s.Name, s.Runs)
		}
	default:
		return fmt.Errorf("scenario %s: Shape must be one of %s, got %q", s.Name, strings.Join(Shapes(), ", "), s.Shape)
	}
	if n := s.TasksPerRun(); n > workflow.MaxTasks {
		return fmt.Errorf("scenario %s: %d tasks in one run, more than the limit of %d", s.Name, n, workflow.MaxTasks)
	}
	if !slices.Contains(TaskTypes(), s.TaskType) {
		return fmt.Errorf("scenario %s: TaskType must be one of %s, got %q", s.Name, strings.Join(TaskTypes(), ", "), s.TaskType)
	}
	if s.SleepSeconds < 0 {
		return fmt.Errorf("scenario %s: SleepSeconds must not be negative", s.Name)
	}
	return nil
}

// RunCount is the number of runs the scenario submits.
func (s Scenario) RunCount() int {
	if s.Shape == ShapeRuns {
		return s.Runs
	}
	return 1
}

// TasksPerRun is the number of tasks in one run of s.
func (s Scenario) TasksPerRun() int {
	switch s.Shape {
	case ShapeWide:
		return s.Tasks
	case ShapeChain:
		return s.Depth
	case ShapeFanout:
		return s.Tasks + 2
	case ShapeRuns:
		return diamondTasks
	}
	return 0
}

// Shapes lists the shapes a Scenario accepts.
func Shapes() []string { return []string{ShapeWide, ShapeChain, ShapeFanout, ShapeRuns} }

// TaskTypes lists the task types a Scenario accepts.
func TaskTypes() []string { return []string{TaskNoop, TaskSleep, TaskProcess, TaskPython} }

// Config is a benchmark: where to run and what.
type Config struct {
	// Name labels the configuration in the report.
	Name string `json:"name"`
	// Mode is ModeEmbedded or ModeCluster.
	Mode string `json:"mode"`
	// NATSURL is the cluster's NATS (cluster mode).
	NATSURL string `json:"-"`
	// NATSAuth holds the credentials and TLS settings of the connection to NATSURL.
	NATSAuth bus.Auth `json:"-"`
	// DBURL is the cluster's database (cluster mode, optional, for the report only); embedded mode
	// uses SQLite in a temporary directory unless set.
	DBURL string `json:"-"`
	// DevstackDir holds the dev stack's <service>.pid files (cluster mode).
	DevstackDir string `json:"-"`
	// RecorderMetricsURL is a recorder's Prometheus endpoint (cluster mode), where its batches are
	// counted.
	RecorderMetricsURL string `json:"-"`
	// Memory keeps the embedded JetStream streams in memory instead of on disk (embedded mode).
	Memory bool `json:"memory_streams"`
	// Concurrency is the number of tasks in flight in the embedded executor. In cluster mode the
	// executors' own settings apply.
	Concurrency int `json:"concurrency"`
	// Submitters is the number of goroutines submitting the runs of ShapeRuns.
	Submitters int `json:"submitters"`
	// Idle is how long the idle CPU and memory are sampled, before the scenarios (fresh services)
	// and again after them; 0 skips both samples.
	Idle time.Duration `json:"idle"`
	// HeapProfile, when set, is where a heap profile of this process is written at the end of the
	// idle sample after the load (embedded mode: what the idle services still hold).
	HeapProfile string `json:"-"`
	// ScenarioTimeout bounds each scenario.
	ScenarioTimeout time.Duration `json:"-"`
	// Scenarios run in order.
	Scenarios []Scenario `json:"scenarios"`
}

// WithDefaults fills the zero fields of c and of its scenarios.
func (c Config) WithDefaults() Config {
	if c.Name == "" {
		c.Name = "custom"
	}
	if c.Mode == "" {
		c.Mode = ModeDefault
	}
	if c.Concurrency == 0 {
		c.Concurrency = ConcurrencyDefault
	}
	if c.Submitters == 0 {
		c.Submitters = SubmittersDefault
	}
	if c.ScenarioTimeout == 0 {
		c.ScenarioTimeout = ScenarioTimeoutDefault
	}
	if c.DevstackDir == "" {
		c.DevstackDir = DevstackDirDefault
	}
	if c.RecorderMetricsURL == "" {
		c.RecorderMetricsURL = RecorderMetricsURLDefault
	}
	c.Scenarios = slices.Clone(c.Scenarios)
	for i := range c.Scenarios {
		c.Scenarios[i] = c.Scenarios[i].WithDefaults()
	}
	return c
}

// Validate reports the first bad field of c.
func (c Config) Validate() error {
	switch c.Mode {
	case ModeEmbedded:
	case ModeCluster:
		if c.NATSURL == "" {
			return errors.New("bench: cluster mode needs a NATS URL")
		}
	default:
		return fmt.Errorf("bench: Mode must be %s or %s, got %q", ModeEmbedded, ModeCluster, c.Mode)
	}
	if c.Concurrency < 1 {
		return fmt.Errorf("bench: Concurrency must be at least 1, got %d", c.Concurrency)
	}
	if c.Submitters < 1 {
		return fmt.Errorf("bench: Submitters must be at least 1, got %d", c.Submitters)
	}
	if c.Memory && c.Mode != ModeEmbedded {
		return errors.New("bench: memory streams apply to embedded mode only")
	}
	if c.Idle < 0 || c.ScenarioTimeout < 0 {
		return errors.New("bench: Idle and ScenarioTimeout must not be negative")
	}
	if len(c.Scenarios) == 0 {
		return errors.New("bench: no scenarios")
	}
	for _, s := range c.Scenarios {
		if err := s.Validate(); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
	}
	return nil
}

// Names lists the predefined configurations.
func Names() []string { return []string{"quick", "standard", "heavy", "latency", "python"} }

// Named returns a predefined configuration: quick (well under a minute on 2 cores, 3 s idle
// sample), standard, heavy (large runs, process tasks) and latency (long chains and a fan-out, for
// the dependency-to-start percentiles) and python (real Python tasks: a chain of 40 passing a value,
// Windmill's shape, and 1,000 independent ones).
func Named(name string) (Config, error) {
	idle := 10 * time.Second
	var sc []Scenario
	switch name {
	case "quick":
		idle = 3 * time.Second
		sc = []Scenario{
			{Shape: ShapeWide, Tasks: 5000},
			{Shape: ShapeChain, Depth: 500},
			{Shape: ShapeFanout, Tasks: 1000},
			{Shape: ShapeRuns, Runs: 500},
		}
	case "standard":
		sc = []Scenario{
			{Shape: ShapeWide, Tasks: 10000},
			{Shape: ShapeChain, Depth: 1000},
			{Shape: ShapeFanout, Tasks: 2000},
			{Shape: ShapeRuns, Runs: 1000},
			{Shape: ShapeWide, Tasks: 500, TaskType: TaskProcess},
		}
	case "heavy":
		sc = []Scenario{
			{Shape: ShapeWide, Tasks: workflow.MaxTasks},
			{Shape: ShapeChain, Depth: 5000},
			{Shape: ShapeFanout, Tasks: workflow.MaxTasks - 2},
			{Shape: ShapeRuns, Runs: 5000},
			{Shape: ShapeWide, Tasks: 2000, TaskType: TaskProcess},
			{Shape: ShapeWide, Tasks: 2000, TaskType: TaskSleep, SleepSeconds: 0.1},
		}
	case "latency":
		sc = []Scenario{
			{Shape: ShapeChain, Depth: 1000},
			{Shape: ShapeFanout, Tasks: 1000},
			{Shape: ShapeChain, Depth: 200, TaskType: TaskProcess},
		}
	case "python":
		sc = []Scenario{
			{Shape: ShapeChain, Depth: 40, TaskType: TaskPython},
			{Shape: ShapeWide, Tasks: 1000, TaskType: TaskPython},
		}
	default:
		return Config{}, fmt.Errorf("no benchmark configuration named %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	return Config{Name: name, Idle: idle, Scenarios: sc}, nil
}
