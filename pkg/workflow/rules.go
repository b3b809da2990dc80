package workflow

import (
	"container/heap"
	"fmt"
	"strings"
)

// Caps that keep validation bounded in time and memory on any input.
const (
	MaxFileBytes  = 1 << 20 // size of a workflow file
	MaxTasks      = 10_000  // tasks in one workflow
	MaxNameLength = 128     // workflow, task, field and alias names
	// MaxAliasNodes bounds the YAML nodes reached through aliases, so a "billion laughs" document is
	// refused instead of expanded.
	MaxAliasNodes = 100_000
	// maxReportedCycles bounds the cycles printed for one workflow; one is enough to act on.
	maxReportedCycles = 10
)

// nameProblem says what is wrong with a task, field or alias name, or returns "".
func nameProblem(s string) string {
	if s == "" {
		return "must not be empty"
	}
	if len(s) > MaxNameLength {
		return fmt.Sprintf("is longer than %d characters", MaxNameLength)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if !letter && (i == 0 || c < '0' || c > '9') {
			return "must match [A-Za-z_][A-Za-z0-9_]*"
		}
	}
	return ""
}

// workflowNameProblem is nameProblem for the workflow itself, which may also contain '-' after the
// first character (daily-etl is a common workflow name).
func workflowNameProblem(s string) string {
	if s != "" && s[0] == '-' {
		return "must match [A-Za-z_][A-Za-z0-9_-]*"
	}
	return strings.ReplaceAll(nameProblem(strings.ReplaceAll(s, "-", "_")), "0-9_]", "0-9_-]")
}

// normalizeExecutor maps YAML executor names to the Executor* constants; ok is false for unknown ones.
func normalizeExecutor(s string) (string, bool) {
	switch s {
	case ExecutorPython, ExecutorProcess, ExecutorNoop, ExecutorSleep:
		return s, true
	case "shell":
		return ExecutorProcess, true
	}
	return "", false
}

// executorNames lists what a task's executor may be, for messages and suggestions.
var executorNames = []string{ExecutorPython, ExecutorProcess, "shell", ExecutorNoop, ExecutorSleep}

// taskShape is what the executor rules look at in a task.
type taskShape struct {
	executor                        string // normalized
	file, module, function, command bool
	shell                           bool // the shell field is present
	shellTask                       bool // executor shell, or shell: true
}

// fieldProblem is a rule violation about one field of a task ("" field = the task as a whole).
type fieldProblem struct {
	field, message string
}

// executorProblems applies the per-executor rules: what is required and what is meaningless.
func executorProblems(s taskShape) []fieldProblem {
	var out []fieldProblem
	notUsed := func(present bool, field string) {
		if present {
			out = append(out, fieldProblem{field, fmt.Sprintf("%s is not used by %s tasks", field, s.executor)})
		}
	}
	switch s.executor {
	case ExecutorPython:
		switch {
		case !s.file && !s.module:
			out = append(out, fieldProblem{"executor", "python tasks need file or module"})
		case s.file && s.module:
			out = append(out, fieldProblem{"module", "give file or module, not both"})
		}
		notUsed(s.command, "command")
	case ExecutorProcess:
		switch {
		case s.shellTask && !s.command:
			out = append(out, fieldProblem{"executor", "shell tasks need command, a string run with " + ShellPath + " -c"})
		case s.shellTask && s.file:
			out = append(out, fieldProblem{"file", "file is not used by shell tasks: run it from the command (command: ./" + "script.sh args)"})
		case !s.file && !s.command:
			out = append(out, fieldProblem{"executor", "process tasks need command or file"})
		}
		notUsed(s.module, "module")
		notUsed(s.function, "function")
	case ExecutorNoop, ExecutorSleep:
		notUsed(s.file, "file")
		notUsed(s.module, "module")
		notUsed(s.function, "function")
		notUsed(s.command, "command")
	}
	if s.executor != ExecutorProcess {
		notUsed(s.shell, "shell")
	}
	return out
}

// findCycles returns dependency cycles as index paths a, b, ..., a where each task depends on the
// next. It reports one cycle per back edge met by a depth-first walk in index order, at most
// maxReportedCycles.
func findCycles(deps [][]int) [][]int {
	const (
		white = iota
		grey
		black
	)
	color := make([]uint8, len(deps))
	var stack []int
	var found [][]int
	var visit func(int)
	visit = func(u int) {
		color[u] = grey
		stack = append(stack, u)
		for _, v := range deps[u] {
			if len(found) >= maxReportedCycles {
				break
			}
			switch color[v] {
			case white:
				visit(v)
			case grey:
				start := len(stack) - 1
				for stack[start] != v {
					start--
				}
				c := append([]int(nil), stack[start:]...)
				found = append(found, append(c, v))
			}
		}
		stack = stack[:len(stack)-1]
		color[u] = black
	}
	for u := range deps {
		if color[u] == white && len(found) < maxReportedCycles {
			visit(u)
		}
	}
	return found
}

// cycleString renders a cycle of indexes with names: a -> b -> a.
func cycleString(c []int, name func(int) string) string {
	parts := make([]string, len(c))
	for i, u := range c {
		parts[i] = name(u)
	}
	return strings.Join(parts, " -> ")
}

// topoOrder returns the task indexes in dependency order, taking the lowest index among the ready
// tasks at each step, so the order is stable and follows the YAML where it can. deps must be acyclic.
func topoOrder(deps [][]int) []int {
	n := len(deps)
	waiting := make([]int, n)
	dependents := make([][]int, n)
	for u, ds := range deps {
		waiting[u] = len(ds)
		for _, d := range ds {
			dependents[d] = append(dependents[d], u)
		}
	}
	ready := &intHeap{}
	for u := range n {
		if waiting[u] == 0 {
			*ready = append(*ready, u)
		}
	}
	heap.Init(ready)
	order := make([]int, 0, n)
	for ready.Len() > 0 {
		u := heap.Pop(ready).(int)
		order = append(order, u)
		for _, v := range dependents[u] {
			waiting[v]--
			if waiting[v] == 0 {
				heap.Push(ready, v)
			}
		}
	}
	return order
}

type intHeap []int

func (h intHeap) Len() int           { return len(h) }
func (h intHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h intHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *intHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *intHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// preloadProblem says what is wrong with a module name to preload, or returns "".
func preloadProblem(s string) string {
	if !moduleRE.MatchString(s) || len(s) > 256 {
		return "is not a dotted Python module name"
	}
	return ""
}
