package filestore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ork-go/ork/pkg/store"
)

// readDir decodes every row file of dir (hidden and temporary files skipped) with decode.
func readDir(dir string, decode func(path string) error) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listing %s: %w", dir, err)
	}
	for _, de := range entries {
		if de.IsDir() || strings.HasPrefix(de.Name(), ".") {
			continue
		}
		if err := decode(filepath.Join(dir, de.Name())); err != nil {
			return err
		}
	}
	return nil
}

// readAll decodes every row file of dir into a slice of T.
func readAll[T any](dir string) ([]T, error) {
	var out []T
	err := readDir(dir, func(path string) error {
		var v T
		if _, err := readJSON(path, &v); err != nil {
			return err
		}
		out = append(out, v)
		return nil
	})
	return out, err
}

func (r *runRow) toRun() store.Run {
	return store.Run{
		ID: r.ID, Workflow: r.Workflow, WorkflowHash: r.WorkflowHash, Status: r.Status, TriggeredBy: r.TriggeredBy, Params: r.Params,
		RerunOf: r.RerunOf, ScheduledFor: r.ScheduledFor, IdempotencyKey: r.IdempotencyKey, Error: r.Error, TaskCount: r.TaskCount,
		CreatedAt: r.CreatedAt, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt,
	}
}

// RunGet returns one run.
func (s *Store) RunGet(ctx context.Context, p store.RunGetParams) (store.Run, error) {
	r, err := getRow[runRow](ctx, s, s.runPath(p.ID), "run "+p.ID)
	if err != nil {
		return store.Run{}, err
	}
	return r.toRun(), nil
}

// getRow reads one row file under the read lock; a missing file is store.ErrNotFound for what.
func getRow[T any](ctx context.Context, s *Store, path, what string) (T, error) {
	var row T
	unlock, err := s.lockRead(ctx)
	if err != nil {
		return row, err
	}
	defer unlock()
	found, err := readJSON(path, &row)
	if err != nil {
		return row, err
	}
	if !found {
		return row, fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return row, nil
}

// RunList reads every run file and returns the newest first.
func (s *Store) RunList(ctx context.Context, p store.RunListParams) ([]store.Run, error) {
	unlock, err := s.lockRead(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	rows, err := readAll[runRow](filepath.Join(s.base, dirRuns))
	if err != nil {
		return nil, err
	}
	limit := p.Limit
	if limit <= 0 {
		limit = RunListLimitDefault
	}
	runs := []store.Run{}
	for i := range rows {
		r := &rows[i]
		if (p.Workflow == "" || r.Workflow == p.Workflow) && (p.Status == "" || r.Status == p.Status) &&
			strings.HasPrefix(r.ID, p.IDPrefix) && (p.TriggeredBy == "" || r.TriggeredBy == p.TriggeredBy) &&
			(p.Since.IsZero() || !r.CreatedAt.Before(p.Since)) && (p.Until.IsZero() || r.CreatedAt.Before(p.Until)) &&
			(p.Before == nil || store.RunOrder(r.CreatedAt, r.ID, p.Before.CreatedAt, p.Before.ID) > 0) {
			runs = append(runs, r.toRun())
		}
	}
	slices.SortFunc(runs, func(a, b store.Run) int { return store.RunOrder(a.CreatedAt, a.ID, b.CreatedAt, b.ID) })
	if len(runs) > limit {
		runs = runs[:limit]
	}
	return runs, nil
}

// taskRows returns the task rows of a run in index order.
func (s *Store) taskRows(runID string) ([]taskRow, error) {
	rows, err := readAll[taskRow](s.tasksDir(runID))
	if err != nil {
		return nil, err
	}
	slices.SortFunc(rows, func(a, b taskRow) int { return cmp.Or(cmp.Compare(a.Index, b.Index), cmp.Compare(a.Name, b.Name)) })
	return rows, nil
}

// TaskList returns the tasks of a run in index order, with its workflow and status.
func (s *Store) TaskList(ctx context.Context, p store.TaskListParams) ([]store.Task, error) {
	unlock, err := s.lockRead(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	var r runRow
	found, err := readJSON(s.runPath(p.RunID), &r)
	if err != nil {
		return nil, err
	}
	if !found {
		return []store.Task{}, nil
	}
	rows, err := s.taskRows(p.RunID)
	if err != nil {
		return nil, err
	}
	tasks := make([]store.Task, 0, len(rows))
	for _, t := range rows {
		deps := t.DependsOn
		if len(deps) == 0 {
			deps = nil
		}
		tasks = append(tasks, store.Task{
			RunID: t.RunID, Workflow: r.Workflow, RunStatus: r.Status, Name: t.Name, Index: t.Index,
			Executor: t.Executor, DependsOn: deps, Status: t.Status, Attempt: t.Attempt, MaxRetries: t.MaxRetries,
			TimeoutSeconds: t.TimeoutSeconds, Output: t.Output, Error: t.Error, Reason: t.Reason,
			StartedAt: t.StartedAt, FinishedAt: t.FinishedAt,
		})
	}
	return tasks, nil
}

// AttemptList returns the attempts of a run's tasks (or one task) by task index and attempt.
func (s *Store) AttemptList(ctx context.Context, p store.AttemptListParams) ([]store.Attempt, error) {
	unlock, err := s.lockRead(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	tasks, err := s.taskRows(p.RunID)
	if err != nil {
		return nil, err
	}
	out := []store.Attempt{}
	for _, t := range tasks {
		if p.Task != "" && t.Name != p.Task {
			continue
		}
		rows, err := readAll[attemptRow](s.attemptsDir(p.RunID, t.Name))
		if err != nil {
			return nil, err
		}
		slices.SortFunc(rows, func(a, b attemptRow) int { return cmp.Compare(a.Attempt, b.Attempt) })
		for _, a := range rows {
			out = append(out, store.Attempt{
				RunID: a.RunID, Task: a.Task, Attempt: a.Attempt, Status: a.Status, Instance: a.Instance,
				ExitCode: a.ExitCode, Error: a.Error, Reason: a.Reason, DurationMS: a.DurationMS,
				DispatchedAt: a.DispatchedAt, StartedAt: a.StartedAt, FinishedAt: a.FinishedAt,
			})
		}
	}
	return out, nil
}

// LogList returns log lines by task index (tasks not known yet last, by name), attempt and seq.
func (s *Store) LogList(ctx context.Context, p store.LogListParams) ([]store.LogLine, error) {
	unlock, err := s.lockRead(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	tasks, err := s.taskRows(p.RunID)
	if err != nil {
		return nil, err
	}
	index := map[string]int{}
	for _, t := range tasks {
		index[t.Name] = t.Index
	}
	// The log directory of the run has one directory per task; their rows name the task.
	runDir := filepath.Join(s.base, dirLogs, escape(p.RunID))
	entries, err := os.ReadDir(runDir)
	if errors.Is(err, fs.ErrNotExist) {
		return []store.LogLine{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", runDir, err)
	}
	lines := []store.LogLine{}
	for _, taskDir := range entries {
		if !taskDir.IsDir() {
			continue
		}
		files, err := os.ReadDir(filepath.Join(runDir, taskDir.Name()))
		if err != nil {
			return nil, fmt.Errorf("listing logs: %w", err)
		}
		for _, f := range files {
			var task string
			var attempt int
			if _, err := fmt.Sscanf(f.Name(), "%d.jsonl", &attempt); err != nil {
				continue
			}
			task = unescapeName(taskDir.Name())
			if (p.Task != "" && task != p.Task) || (p.Attempt > 0 && attempt != p.Attempt) {
				continue
			}
			rows, err := readLogs(filepath.Join(runDir, taskDir.Name(), f.Name()))
			if err != nil {
				return nil, err
			}
			for _, l := range rows {
				if p.AfterSeq <= 0 || l.Seq > p.AfterSeq {
					lines = append(lines, store.LogLine{RunID: p.RunID, Task: task, Attempt: attempt, Seq: l.Seq, Stream: l.Stream, Line: l.Line, Time: l.Time})
				}
			}
		}
	}
	rank := func(task string) (int, bool) {
		i, ok := index[task]
		return i, !ok
	}
	slices.SortFunc(lines, func(a, b store.LogLine) int {
		ia, ua := rank(a.Task)
		ib, ub := rank(b.Task)
		return cmp.Or(compareBool(ua, ub), cmp.Compare(ia, ib), cmp.Compare(a.Task, b.Task),
			cmp.Compare(a.Attempt, b.Attempt), cmp.Compare(a.Seq, b.Seq))
	})
	if p.Limit > 0 && len(lines) > p.Limit {
		lines = lines[:p.Limit]
	}
	return lines, nil
}

// compareBool orders false before true.
func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	default:
		return 1
	}
}

func (w *workflowRow) toWorkflow(runCount int) store.Workflow {
	return store.Workflow{
		Name: w.Name, Description: w.Description, CurrentHash: w.CurrentHash, Schedule: w.Schedule,
		RunCount: runCount, CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt,
		Registered: w.Registered, Revision: w.RegisteredRev, AppliedAt: w.RegisteredAt, AppliedBy: w.RegisteredBy,
	}
}

// runCounts reads every run file and counts the runs of each workflow.
func (s *Store) runCounts() (map[string]int, error) {
	runs, err := readAll[runRow](filepath.Join(s.base, dirRuns))
	if err != nil {
		return nil, err
	}
	counts := map[string]int{}
	for _, r := range runs {
		counts[r.Workflow]++
	}
	return counts, nil
}

// WorkflowList reads every workflow and run file and returns workflows by name with run counts.
func (s *Store) WorkflowList(ctx context.Context, p store.WorkflowListParams) ([]store.Workflow, error) {
	unlock, err := s.lockRead(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	rows, err := readAll[workflowRow](filepath.Join(s.base, dirWorkflows))
	if err != nil {
		return nil, err
	}
	rows = slices.DeleteFunc(rows, func(w workflowRow) bool {
		return (p.Registered && !w.Registered) || !store.ContainsFoldASCII(w.Name, p.NameContains) ||
			(p.After != "" && w.Name <= p.After)
	})
	slices.SortFunc(rows, func(a, b workflowRow) int { return cmp.Compare(a.Name, b.Name) })
	if p.Limit > 0 && len(rows) > p.Limit {
		rows = rows[:p.Limit]
	}
	counts, err := s.runCounts()
	if err != nil {
		return nil, err
	}
	out := make([]store.Workflow, 0, len(rows))
	for i := range rows {
		out = append(out, rows[i].toWorkflow(counts[rows[i].Name]))
	}
	return out, nil
}

// WorkflowGet reads one workflow file, and every run file for its run count.
func (s *Store) WorkflowGet(ctx context.Context, p store.WorkflowGetParams) (store.Workflow, error) {
	unlock, err := s.lockRead(ctx)
	if err != nil {
		return store.Workflow{}, err
	}
	defer unlock()
	var w workflowRow
	found, err := readJSON(s.workflowPath(p.Name), &w)
	if err != nil {
		return store.Workflow{}, err
	}
	if !found {
		return store.Workflow{}, fmt.Errorf("workflow %s: %w", p.Name, store.ErrNotFound)
	}
	counts, err := s.runCounts()
	if err != nil {
		return store.Workflow{}, err
	}
	return w.toWorkflow(counts[w.Name]), nil
}

func (v *versionRow) toVersion() store.WorkflowVersion {
	return store.WorkflowVersion{Workflow: v.Workflow, Hash: v.Hash, Plan: v.Plan, CreatedAt: v.CreatedAt}
}

// WorkflowVersionGet returns a stored version by content hash.
func (s *Store) WorkflowVersionGet(ctx context.Context, p store.WorkflowVersionGetParams) (store.WorkflowVersion, error) {
	v, err := getRow[versionRow](ctx, s, s.versionPath(p.Hash), "workflow version "+p.Hash)
	if err != nil {
		return store.WorkflowVersion{}, err
	}
	return v.toVersion(), nil
}

// WorkflowVersionList reads every version file and returns a workflow's, newest first.
func (s *Store) WorkflowVersionList(ctx context.Context, p store.WorkflowVersionListParams) ([]store.WorkflowVersion, error) {
	unlock, err := s.lockRead(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	rows, err := readAll[versionRow](filepath.Join(s.base, dirVersions))
	if err != nil {
		return nil, err
	}
	rows = slices.DeleteFunc(rows, func(v versionRow) bool { return v.Workflow != p.Workflow })
	slices.SortFunc(rows, func(a, b versionRow) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(a.Hash, b.Hash))
	})
	if p.Limit > 0 && len(rows) > p.Limit {
		rows = rows[:p.Limit]
	}
	out := make([]store.WorkflowVersion, 0, len(rows))
	for i := range rows {
		out = append(out, rows[i].toVersion())
	}
	return out, nil
}

// DeadLetterList returns dead letters in the order they were recorded.
func (s *Store) DeadLetterList(ctx context.Context, p store.DeadLetterListParams) ([]store.DeadLetter, error) {
	unlock, err := s.lockRead(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	rows, err := readAll[deadLetterRow](filepath.Join(s.base, dirDeadLetters))
	if err != nil {
		return nil, err
	}
	slices.SortFunc(rows, func(a, b deadLetterRow) int {
		return cmp.Or(cmp.Compare(a.ID, b.ID), cmp.Compare(a.Stream, b.Stream), cmp.Compare(a.Seq, b.Seq))
	})
	limit := p.Limit
	if limit <= 0 {
		limit = DeadLetterListLimitDefault
	}
	if len(rows) > limit {
		rows = rows[:limit]
	}
	out := make([]store.DeadLetter, 0, len(rows))
	for _, d := range rows {
		out = append(out, store.DeadLetter{Stream: d.Stream, Seq: d.Seq, Subject: d.Subject, Reason: d.Reason, Data: d.Data, CreatedAt: d.CreatedAt})
	}
	return out, nil
}
