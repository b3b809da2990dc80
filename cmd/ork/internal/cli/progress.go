package cli

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/view"
	"github.com/ork-go/ork/pkg/workflow"
)

// barThreshold is the task count from which a terminal shows a progress bar instead of a line per
// task event.
const barThreshold = 20

// summaryThreshold is the task count above which the final table is summarised (counts by status,
// the failed tasks, the slowest few) unless --all.
const summaryThreshold = 50

// summaryFailedMax and summarySlowest bound the rows of a summarised table.
const (
	summaryFailedMax = 20
	summarySlowest   = 5
)

// progress shows a run's events as they come: a line per task start and end, or, for wide workflows
// on a terminal, one bar line (finished, running, failed, elapsed) with each failure printed above
// it as it happens.
type progress struct {
	w       io.Writer
	bar     bool
	total   int
	width   int
	start   time.Time
	ended   int
	failed  int
	running map[string]bool
	drawn   time.Time
}

func newProgress(w io.Writer, plan *workflow.Plan, terminal bool, start time.Time) *progress {
	p := &progress{w: w, bar: terminal && len(plan.Tasks) >= barThreshold, total: len(plan.Tasks), start: start,
		running: map[string]bool{}}
	for _, t := range plan.Tasks {
		p.width = max(p.width, len(t.Name))
	}
	return p
}

func (p *progress) event(e event.Event) {
	switch e.Type {
	case event.TypeTaskStarted:
		p.running[e.Task] = true
		if !p.bar {
			fmt.Fprintf(p.w, "▶ %-*s started (attempt %d)\n", p.width, e.Task, e.Attempt)
		}
	case event.TypeTaskSucceeded, event.TypeTaskFailed, event.TypeTaskSkipped, event.TypeTaskCancelled:
		status, _ := store.TaskStatusOf(&e)
		delete(p.running, e.Task)
		if status != event.TaskLost {
			p.ended++
		}
		if status == event.TaskFailed {
			p.failed++
		}
		msg := taskEndLine(e, status, p.width)
		switch {
		case !p.bar:
			fmt.Fprintln(p.w, msg)
		case status == event.TaskFailed || status == event.TaskLost:
			// A failure is printed as it happens, above the bar.
			fmt.Fprintf(p.w, "\r\033[K%s\n", msg)
			p.draw(true)
		}
	}
	if p.bar {
		p.draw(false)
	}
}

// taskEndLine is the line that says how a task's attempt ended.
func taskEndLine(e event.Event, status string, width int) string {
	mark := map[string]string{event.TaskSuccess: "✓", event.TaskFailed: "✗", event.TaskSkipped: "–", event.TaskCancelled: "■", event.TaskLost: "↻"}[status]
	msg := fmt.Sprintf("%s %-*s %s", mark, width, e.Task, status)
	if (e.Type == event.TypeTaskSucceeded || e.Type == event.TypeTaskFailed) && e.DurationMS > 0 {
		msg += " in " + formatDuration(time.Duration(e.DurationMS)*time.Millisecond)
	}
	if e.Error != "" {
		msg += ": " + firstLine(e.Error)
	}
	return msg
}

// draw redraws the bar, at most ten times a second unless forced.
func (p *progress) draw(force bool) {
	now := time.Now()
	if !force && now.Sub(p.drawn) < 100*time.Millisecond && p.ended < p.total {
		return
	}
	p.drawn = now
	const width = 30
	filled := p.ended * width / max(p.total, 1)
	fmt.Fprintf(p.w, "\r\033[K[%s%s] %d/%d finished · %d running · %d failed · %s",
		strings.Repeat("█", filled), strings.Repeat("░", width-filled), p.ended, p.total, len(p.running), p.failed,
		formatDuration(now.Sub(p.start)))
}

func (p *progress) done() {
	if p.bar {
		p.draw(true)
		fmt.Fprintln(p.w)
	}
}

// printResult prints the final table of a run: every task, in plan order, or for more than
// summaryThreshold tasks (unless all) the counts by status, the failed tasks and the slowest few.
func printResult(w io.Writer, plan *workflow.Plan, r *view.Run, all bool) {
	names := make([]string, 0, len(plan.Tasks))
	byIndex := slices.Clone(plan.Tasks)
	slices.SortStableFunc(byIndex, func(a, b workflow.Task) int { return cmp.Compare(a.Index, b.Index) })
	for _, t := range byIndex {
		names = append(names, t.Name)
	}
	fmt.Fprintln(w)
	if len(names) > summaryThreshold && !all {
		printSummary(w, names, r)
	} else {
		printTasks(w, names, r)
	}
	line := fmt.Sprintf("run %s %s", r.RunID, r.Status)
	if r.DurationMS != nil {
		line += " in " + formatDuration(time.Duration(*r.DurationMS)*time.Millisecond)
	}
	fmt.Fprintf(w, "\n%s\n", line)
}

func printTasks(w io.Writer, names []string, r *view.Run) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TASK\tSTATUS\tDURATION\tATTEMPTS\tERROR")
	for _, name := range names {
		t := r.Tasks[name]
		if t == nil {
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", name, t.Status, taskDuration(t), t.Attempts, firstLine(deref(t.Error)))
	}
	_ = tw.Flush()
}

func printSummary(w io.Writer, names []string, r *view.Run) {
	counts := map[string]int{}
	var failed, timed []string
	for _, name := range names {
		t := r.Tasks[name]
		if t == nil {
			continue
		}
		counts[t.Status]++
		if t.Status == event.TaskFailed || t.Status == event.TaskLost {
			failed = append(failed, name)
		}
		if t.DurationMS != nil {
			timed = append(timed, name)
		}
	}
	var parts []string
	for _, s := range []string{event.TaskSuccess, event.TaskFailed, event.TaskLost, event.TaskSkipped, event.TaskCancelled,
		event.TaskRunning, event.TaskDispatched, event.TaskPending, event.TaskPaused} {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	fmt.Fprintf(w, "%s: %s (--all lists every task)\n", plural(len(names), "task"), strings.Join(parts, ", "))
	if len(failed) > 0 {
		fmt.Fprintln(w, "\nfailed:")
		printTasks(w, failed[:min(len(failed), summaryFailedMax)], r)
		if len(failed) > summaryFailedMax {
			fmt.Fprintf(w, "... and %d more failed (ork tasks %s lists them)\n", len(failed)-summaryFailedMax, r.RunID)
		}
	}
	slices.SortStableFunc(timed, func(a, b string) int { return cmp.Compare(*r.Tasks[b].DurationMS, *r.Tasks[a].DurationMS) })
	if len(timed) > 0 {
		fmt.Fprintln(w, "\nslowest:")
		printTasks(w, timed[:min(len(timed), summarySlowest)], r)
	}
}

func taskDuration(t *view.Task) string {
	if t.DurationMS == nil {
		return "-"
	}
	return formatDuration(time.Duration(*t.DurationMS) * time.Millisecond)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// formatDuration is the one way the CLI writes a duration: 850ms, 1.25s, 2m5s, 1h2m3s.
func formatDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "0ms"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}
