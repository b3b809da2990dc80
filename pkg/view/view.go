// Package view is the one JSON shape of a run and of its tasks, as `ork run --json`, `ork status
// RUN --json` and `ork tasks RUN --json` print it. docs/run.schema.json is its JSON Schema; the CLI's
// tests hold every command's output to it.
//
// Every key is always present; a value that is not known (yet) is null, never a missing key or an
// empty string. Durations are whole milliseconds from the start to the end recorded for the run or
// the task's latest attempt, so a run read back from the database and one followed on the bus give
// the same numbers for the same times.
//
// A Run is built either from the database (FromStore, Read) or from the run's events as they pass
// (Follower), for a client that has no database at hand (`ork run --nats` without --db).
package view

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/workflow"
)

// Run is one run.
type Run struct {
	RunID      string           `json:"run_id"`
	Workflow   string           `json:"workflow"`
	Params     json.RawMessage  `json:"params"` // the run's parameters; null when its workflow declares none
	Status     string           `json:"status"`
	Error      *string          `json:"error"`
	CreatedAt  *time.Time       `json:"created_at"`
	StartedAt  *time.Time       `json:"started_at"`
	FinishedAt *time.Time       `json:"finished_at"`
	DurationMS *int64           `json:"duration_ms"`
	Tasks      map[string]*Task `json:"tasks"`
}

// Task is one task of a run, at its latest attempt.
type Task struct {
	Status     string          `json:"status"`
	Attempts   int             `json:"attempts"`
	Output     json.RawMessage `json:"output"`
	Error      *string         `json:"error"`
	StartedAt  *time.Time      `json:"started_at"`
	FinishedAt *time.Time      `json:"finished_at"`
	DurationMS *int64          `json:"duration_ms"`
	Executor   string          `json:"executor"`
}

// FromStore builds the view of a run from its database rows.
func FromStore(r store.Run, tasks []store.Task) *Run {
	v := &Run{
		RunID: r.ID, Workflow: r.Workflow, Params: r.Params, Status: r.Status, Error: text(r.Error),
		CreatedAt: timeOf(r.CreatedAt), StartedAt: utc(r.StartedAt), FinishedAt: utc(r.FinishedAt),
		Tasks: make(map[string]*Task, len(tasks)),
	}
	v.DurationMS = between(v.StartedAt, v.FinishedAt)
	for _, t := range tasks {
		v.Tasks[t.Name] = &Task{
			Status: t.Status, Attempts: t.Attempt, Output: output(t.Output), Error: text(t.Error),
			StartedAt: utc(t.StartedAt), FinishedAt: utc(t.FinishedAt),
			DurationMS: between(t.StartedAt, t.FinishedAt), Executor: t.Executor,
		}
	}
	return v
}

// Follower builds the view of one run from its events, in stream order, the way the recorder
// writes them: a task moves forward in (attempt, rank) order only, so an old attempt's late event
// changes nothing.
type Follower struct {
	run   Run
	ranks map[string]int
}

// NewFollower starts the view of run runID of plan, submitted at created.
func NewFollower(plan *workflow.Plan, runID string, created time.Time, params json.RawMessage) *Follower {
	f := &Follower{
		run: Run{RunID: runID, Workflow: plan.Name, Params: params, Status: event.RunPending, CreatedAt: timeOf(created),
			Tasks: make(map[string]*Task, len(plan.Tasks))},
		ranks: make(map[string]int, len(plan.Tasks)),
	}
	for _, t := range plan.Tasks {
		f.run.Tasks[t.Name] = &Task{Status: event.TaskPending, Executor: t.Executor}
	}
	return f
}

// Event applies one event of the run.
func (f *Follower) Event(e *event.Event) {
	if status, ok := store.RunStatusOf(e); ok {
		if store.RunRank(status) < store.RunRank(f.run.Status) || event.IsTerminalRun(f.run.Status) {
			return
		}
		f.run.Status = status
		if status == event.RunRunning && f.run.StartedAt == nil {
			f.run.StartedAt = timeOf(e.Time)
		}
		if event.IsTerminalRun(status) {
			f.run.Error, f.run.FinishedAt = text(e.Error), timeOf(e.Time)
			f.run.DurationMS = between(f.run.StartedAt, f.run.FinishedAt)
		}
		return
	}
	t := f.run.Tasks[e.Task]
	status, ok := store.TaskStatusOf(e)
	if t == nil || !ok {
		return
	}
	rank := store.TaskRank(status, e.Reason)
	if !store.TaskAdvances(t.Attempts, f.ranks[e.Task], e.Attempt, rank) {
		return
	}
	if e.Attempt > t.Attempts {
		t.StartedAt = nil
	}
	f.ranks[e.Task] = rank
	t.Status, t.Attempts = status, max(t.Attempts, e.Attempt)
	if status == event.TaskRunning {
		t.StartedAt = timeOf(e.Time)
	}
	t.Output, t.Error, t.FinishedAt, t.DurationMS = nil, nil, nil, nil
	if event.IsTerminalTask(status) {
		t.Error, t.FinishedAt = text(e.Error), timeOf(e.Time)
		t.Output = output(e.Output)
		t.DurationMS = between(t.StartedAt, t.FinishedAt)
	}
}

// Run returns the view so far. It shares memory with the follower.
func (f *Follower) Run() *Run { return &f.run }

func text(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func output(o json.RawMessage) json.RawMessage {
	if len(o) == 0 {
		return nil
	}
	return o
}

func timeOf(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	return timeOf(*t)
}

func between(start, end *time.Time) *int64 {
	if start == nil || end == nil {
		return nil
	}
	ms := end.Sub(*start).Milliseconds()
	return &ms
}

// Read reads one run and its tasks from st. A run st does not hold is an error wrapping
// store.ErrNotFound.
func Read(ctx context.Context, st store.Store, runID string) (*Run, error) {
	run, err := st.RunGet(ctx, store.RunGetParams{ID: runID})
	if err != nil {
		return nil, fmt.Errorf("reading run %s: %w", runID, err)
	}
	tasks, err := st.TaskList(ctx, store.TaskListParams{RunID: runID})
	if err != nil {
		return nil, fmt.Errorf("reading the tasks of run %s: %w", runID, err)
	}
	return FromStore(run, tasks), nil
}
