package workflow

import (
	"encoding/json"
	"github.com/ork-go/ork/pkg/schedule"
	"strings"
)

// DefaultTimeoutSeconds is the timeout of a task that does not declare one.
const DefaultTimeoutSeconds = 300

// Executor types a task may name. "shell" in YAML is a process task whose command string runs with
// ShellPath -c (Task.Shell).
const (
	ExecutorPython  = "python"
	ExecutorProcess = "process"
	ExecutorNoop    = "noop"
	ExecutorSleep   = "sleep"
)

// ShellPath is the shell a shell task's command runs with: ShellPath -c COMMAND.
const ShellPath = "/bin/sh"

// ScheduleCron is the schedule's cron expression, "" without a schedule.
func (p *Plan) ScheduleCron() string {
	if p.Schedule == nil {
		return ""
	}
	return p.Schedule.Cron
}

// Plan is a validated, compiled workflow: what gets stored and submitted. It is self-contained, so a
// scheduler or executor never re-reads the YAML.
type Plan struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Schedule, when set, fires runs of the registered workflow (package schedule). A plain cron
	// schedule encodes as its string.
	Schedule *schedule.Spec `json:"schedule,omitempty"`
	// Params are the run parameters the workflow declares, in YAML order; a run binds each (its
	// own value or the default) and tasks refer to them as params.NAME.
	Params []Param `json:"params,omitempty"`
	// Dir is the absolute directory of the workflow file. Task files and process working directories
	// are resolved against it. It is not part of Hash: the same content in two places is one version.
	Dir string `json:"dir"`
	// Hash is the hex sha256 of the plan's canonical encoding (everything but Dir and Hash).
	Hash string `json:"hash"`
	// Bundle, when set, names the bundle (pkg/bundle) of the workflow's folder: executors run the
	// tasks from their copy of it instead of from Dir, which then only says where it was packed.
	Bundle string `json:"bundle,omitempty"`
	// Tasks are in topological order: every task comes after all of its dependencies.
	Tasks []Task `json:"tasks"`
}

// Task is one compiled task.
type Task struct {
	Name string `json:"name"`
	// Index is the task's position in the YAML file (0-based), kept for display order.
	Index    int    `json:"index"`
	Executor string `json:"executor"` // one of the Executor* constants; "shell" is compiled to process
	// File is relative to Plan.Dir, cleaned, and known to stay inside it.
	File     string `json:"file,omitempty"`
	Module   string `json:"module,omitempty"`
	Function string `json:"function,omitempty"` // python only; "main" when not given
	// Command is the argv of a process task. A YAML string is split into words without a shell;
	// a shell task's string becomes [ShellPath, "-c", string]. When only File is given for a
	// process task, Command is empty and the executor runs the file.
	Command []string `json:"command,omitempty"`
	// Shell marks a shell task (executor shell, or shell: true): Command runs its string with
	// ShellPath -c. It is there for display; the argv already says it.
	Shell          bool               `json:"shell,omitempty"`
	DependsOn      []string           `json:"depends_on,omitempty"`
	TimeoutSeconds int                `json:"timeout_s"` // 0 means no timeout
	Retries        int                `json:"retries"`
	InputType      *Type              `json:"input_type,omitempty"`
	OutputType     *Type              `json:"output_type,omitempty"`
	Inputs         map[string]Binding `json:"inputs,omitempty"`
	// Preload are the modules the executor's warm interpreter imports once, before it forks this
	// python task (the workflow's preload), so heavy imports are not paid per task.
	Preload []string `json:"preload,omitempty"`
	// Limits override the executor's resource limits for this task's processes.
	Limits *Limits `json:"limits,omitempty"`
}

// Limits are resource limits of a task's processes, applied as rlimits on the child (0: the
// executor's default, which may be none).
type Limits struct {
	// MemoryBytes bounds the address space of each process (RLIMIT_AS).
	MemoryBytes int64 `json:"memory_bytes,omitempty"`
	// OpenFiles bounds the open file descriptors of each process (RLIMIT_NOFILE).
	OpenFiles int `json:"open_files,omitempty"`
	// Processes bounds the processes of the executor's user while the task runs (RLIMIT_NPROC:
	// the kernel counts every process of that user, not only the task's).
	Processes int `json:"processes,omitempty"`
	// CPUSeconds bounds the CPU time of each process (RLIMIT_CPU).
	CPUSeconds int `json:"cpu_seconds,omitempty"`
}

// Binding is the value of one input: either a constant or a reference to an upstream output.
type Binding struct {
	Const json.RawMessage `json:"const,omitempty"`
	Ref   *Ref            `json:"ref,omitempty"`
}

// Ref points at an upstream task's output, or at a run parameter, or at a field path inside either.
type Ref struct {
	Task  string   `json:"task,omitempty"`  // the upstream task; "" for a parameter
	Param string   `json:"param,omitempty"` // the run parameter (params.NAME); "" for a task output
	Path  []string `json:"path,omitempty"`  // object field names below the value, outermost first
}

// String is the ref as written in YAML: tasks.T.output[.f...] or params.P[.f...].
func (r *Ref) String() string {
	s := "tasks." + r.Task + ".output"
	if r.Param != "" {
		s = "params." + r.Param
	}
	if len(r.Path) > 0 {
		s += "." + strings.Join(r.Path, ".")
	}
	return s
}

// Param is one declared run parameter.
type Param struct {
	Name string `json:"name"`
	Type *Type  `json:"type"`
	// Default is the value a run gets when it gives none; nil: every run must give one.
	Default     json.RawMessage `json:"default,omitempty"`
	Description string          `json:"description,omitempty"`
}

// Kind is the kind of a Type.
type Kind string

// Builtin and structural kinds.
const (
	KindStr          Kind = "str"
	KindInt          Kind = "int"
	KindFloat        Kind = "float"
	KindBool         Kind = "bool"
	KindDate         Kind = "date"
	KindDatetimeNoTZ Kind = "datetime_notz"
	KindDatetimeTZ   Kind = "datetime_tz"
	KindDatetimeUTC  Kind = "datetime_utc"
	KindObject       Kind = "object"
	KindArray        Kind = "array"
)

// Type is a resolved type: aliases are expanded, Alias only remembers the name for messages.
type Type struct {
	Kind   Kind    `json:"kind"`
	Fields []Field `json:"fields,omitempty"` // KindObject, in declaration order
	Elem   *Type   `json:"elem,omitempty"`   // KindArray
	Alias  string  `json:"alias,omitempty"`
}

// Field is one field of an object type.
type Field struct {
	Name string `json:"name"`
	Type *Type  `json:"type"`
}
