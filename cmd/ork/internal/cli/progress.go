package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/workflow"
)

// barThreshold is the task count from which a terminal shows a progress bar instead of a line per
// task event.
const barThreshold = 20

// progress follows a run's events: a line per task start and finish, or a bar for wide workflows on
// a terminal. It also accumulates what the final table shows when no database is at hand.
type progress struct {
	w     io.Writer
	bar   bool
	total int
	order []string
	tasks map[string]*taskResult
	ended int
	width int
}

func newProgress(w io.Writer, plan *workflow.Plan, terminal bool) *progress {
	p := &progress{w: w, bar: terminal && len(plan.Tasks) >= barThreshold, total: len(plan.Tasks), tasks: map[string]*taskResult{}}
	byIndex := make([]string, len(plan.Tasks))
	for _, t := range plan.Tasks {
		if t.Index >= 0 && t.Index < len(byIndex) {
			byIndex[t.Index] = t.Name
		}
		p.tasks[t.Name] = &taskResult{Status: event.TaskPending}
		p.width = max(p.width, len(t.Name))
	}
	p.order = byIndex
	return p
}

func (p *progress) event(e event.Event) {
	t := p.tasks[e.Task]
	if t == nil {
		return
	}
	switch e.Type {
	case event.TypeTaskDispatched:
		t.Attempts = max(t.Attempts, e.Attempt)
	case event.TypeTaskStarted:
		t.Attempts = max(t.Attempts, e.Attempt)
		t.Status = event.TaskRunning
		p.line("▶ %-*s started (attempt %d)", p.width, e.Task, e.Attempt)
	case event.TypeTaskSucceeded, event.TypeTaskFailed, event.TypeTaskSkipped, event.TypeTaskCancelled:
		status, _ := store.TaskStatusOf(&e)
		t.Status, t.Output, t.Error, t.durationMS = status, e.Output, e.Error, e.DurationMS
		if e.Attempt > 0 {
			t.Attempts = max(t.Attempts, e.Attempt)
		}
		p.ended++
		mark := map[string]string{event.TaskSuccess: "✓", event.TaskFailed: "✗", event.TaskSkipped: "–", event.TaskCancelled: "■", event.TaskLost: "↻"}[status]
		msg := fmt.Sprintf("%s %-*s %s", mark, p.width, e.Task, status)
		if e.Type == event.TypeTaskSucceeded || e.Type == event.TypeTaskFailed {
			msg += " in " + formatDuration(e.DurationMS)
		}
		if e.Error != "" {
			msg += ": " + firstLine(e.Error)
		}
		p.line("%s", msg)
	}
}

func (p *progress) line(format string, args ...any) {
	if p.bar {
		done := p.ended
		const width = 40
		filled := done * width / max(p.total, 1)
		fmt.Fprintf(p.w, "\r[%s%s] %d/%d tasks", strings.Repeat("█", filled), strings.Repeat("░", width-filled), done, p.total)
		return
	}
	fmt.Fprintf(p.w, format+"\n", args...)
}

func (p *progress) done() {
	if p.bar {
		fmt.Fprintln(p.w)
	}
}

// runResult is what `ork run` prints at the end, as a table or as JSON.
type runResult struct {
	RunID    string                 `json:"run_id"`
	Workflow string                 `json:"workflow"`
	Status   string                 `json:"status"`
	Error    string                 `json:"error,omitempty"`
	Tasks    map[string]*taskResult `json:"tasks"`
	order    []string
}

type taskResult struct {
	Status     string          `json:"status"`
	Attempts   int             `json:"attempts"`
	Output     json.RawMessage `json:"output"`
	Error      string          `json:"error,omitempty"`
	durationMS int64
}

func (p *progress) result(final event.Event) *runResult {
	return &runResult{RunID: final.RunID, Workflow: final.Workflow, Status: final.Status, Error: final.Error, Tasks: p.tasks, order: p.order}
}

// fromStore replaces what the events said with what the database holds, so the table shows the
// recorded truth.
func (r *runResult) fromStore(ctx context.Context, st store.Store) error {
	tasks, err := st.TaskList(ctx, store.TaskListParams{RunID: r.RunID})
	if err != nil {
		return fmt.Errorf("reading the run's tasks: %w", err)
	}
	for _, t := range tasks {
		res := &taskResult{Status: t.Status, Attempts: t.Attempt, Output: t.Output, Error: t.Error}
		if t.StartedAt != nil && t.FinishedAt != nil {
			res.durationMS = t.FinishedAt.Sub(*t.StartedAt).Milliseconds()
		}
		if t.Workflow != "" {
			r.Workflow = t.Workflow
		}
		r.Tasks[t.Name] = res
	}
	return nil
}

func (r *runResult) printTable(w io.Writer) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\tSTATUS\tDURATION\tATTEMPTS\tERROR")
	for _, name := range r.order {
		t := r.Tasks[name]
		if t == nil {
			continue
		}
		dur := "-"
		if t.Status == event.TaskSuccess || t.Status == event.TaskFailed {
			dur = formatDuration(t.durationMS)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", name, t.Status, dur, t.Attempts, firstLine(t.Error))
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "\nrun %s %s\n", r.RunID, r.Status)
}

func formatDuration(ms int64) string {
	d := time.Duration(ms) * time.Millisecond
	if d < time.Second {
		return fmt.Sprintf("%dms", ms)
	}
	return d.Round(10 * time.Millisecond).String()
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}
