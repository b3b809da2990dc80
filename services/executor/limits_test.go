package executor

import (
	"path/filepath"
	"testing"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/workflow"
)

const limitTasks = `
def allocate():
    return len(bytearray(1 << 30))


def open_many():
    files = [open("/dev/null") for _ in range(200)]
    return len(files)
`

// A task over a resource limit fails with a message naming the limit; a task's own limits
// override the executor's defaults. Process tasks (through prlimit) and python tasks, warm and
// cold, alike.
func TestTaskLimits(t *testing.T) {
	t.Parallel()
	h := setup(t)
	cfg := testConfig(t)
	cfg.Limits = workflow.Limits{OpenFiles: 32}
	h.start(t, cfg)
	cold := setup(t)
	coldCfg := testConfig(t)
	coldCfg.PythonCold = true
	coldCfg.Limits = cfg.Limits
	cold.start(t, coldCfg)
	for _, hh := range []*harness{h, cold} {
		writeFile(t, filepath.Join(hh.dir, "limits.py"), limitTasks, 0o644)
	}
	withLimits := func(tk workflow.Task, l workflow.Limits) workflow.Task {
		tk.Limits, tk.TimeoutSeconds = &l, 60
		return tk
	}
	python := func(name, function string) workflow.Task { return pythonTask(name, "limits.py", function) }
	cases := []struct {
		name string
		h    *harness
		task workflow.Task
		msg  string // "" : it succeeds
	}{
		{"cpu, process", h, withLimits(processTask("spin", "sh", "-c", "while :; do :; done"), workflow.Limits{CPUSeconds: 1}),
			"it hit its CPU time limit of 1 s (limits: cpu_seconds)"},
		{"open files, executor default, process", h, processTask("files", "python3", "-c", "fs = [open('/dev/null') for _ in range(200)]"),
			"it hit its open files limit of 32 (limits: open_files)"},
		{"open files, task override", h, withLimits(processTask("more", "python3", "-c", "fs = [open('/dev/null') for _ in range(200)]"), workflow.Limits{OpenFiles: 1024}), ""},
		{"memory, python warm", h, withLimits(python("big", "allocate"), workflow.Limits{MemoryBytes: 512 << 20}),
			"it hit its memory limit of 512 MiB (limits: memory)"},
		{"memory, python cold", cold, withLimits(python("bigcold", "allocate"), workflow.Limits{MemoryBytes: 512 << 20}),
			"it hit its memory limit of 512 MiB (limits: memory)"},
		{"open files, python warm", h, python("pyfiles", "open_many"), "it hit its open files limit of 32"},
		{"open files, python cold", cold, python("pyfilescold", "open_many"), "it hit its open files limit of 32"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := c.h.result(t, c.h.dispatch(t, event.Dispatch{Task: c.task}))
			if c.msg == "" {
				wantSuccess(t, e)
				return
			}
			wantFailure(t, e, event.ReasonExit, c.msg)
		})
	}
}
