package filestore

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/workflow"
)

// batch is one ApplyBatch in memory: rows read once, changed in place, written at the end.
type batch struct {
	s     *Store
	rows  map[string]any  // path -> *row, nil when the file does not exist
	dirty map[string]bool // paths to write
}

func newBatch(s *Store) *batch {
	return &batch{s: s, rows: map[string]any{}, dirty: map[string]bool{}}
}

// get reads the row at path into a fresh *T, once per batch; it returns nil when there is none.
func get[T any](b *batch, path string) (*T, error) {
	if r, ok := b.rows[path]; ok {
		if r == nil {
			return nil, nil
		}
		return r.(*T), nil //nolint:forcetypeassert // one type per path
	}
	var v T
	found, err := readJSON(path, &v)
	if err != nil {
		return nil, err
	}
	if !found {
		b.rows[path] = nil
		return nil, nil
	}
	b.rows[path] = &v
	return &v, nil
}

// put stores row at path and marks it for writing.
func (b *batch) put(path string, row any) {
	b.rows[path] = row
	b.dirty[path] = true
}

// ApplyBatch applies a batch under the exclusive lock: every row is computed first, then written.
func (s *Store) ApplyBatch(ctx context.Context, p store.ApplyBatchParams) (store.ApplyBatchResult, error) {
	if err := ctx.Err(); err != nil {
		return store.ApplyBatchResult{}, fmt.Errorf("applying batch: %w", err)
	}
	if p.Empty() {
		return store.ApplyBatchResult{}, nil
	}
	unlock, err := s.lockWrite()
	if err != nil {
		return store.ApplyBatchResult{}, err
	}
	defer unlock()

	b := newBatch(s)
	var res store.ApplyBatchResult
	for i := range p.Registrations {
		if err := b.register(&p.Registrations[i]); err != nil {
			return store.ApplyBatchResult{}, err
		}
	}
	finished := map[string]bool{}
	for i := range p.Events {
		e := &p.Events[i]
		applied, err := b.apply(e)
		if err != nil {
			return store.ApplyBatchResult{}, err
		}
		if !applied {
			res.Orphans = append(res.Orphans, *e)
			continue
		}
		if status, _ := store.RunStatusOf(e); e.Type == event.TypeRunFinished && event.IsTerminalRun(status) && !finished[e.RunID] {
			finished[e.RunID] = true
			res.FinishedRuns = append(res.FinishedRuns, e.RunID)
		}
	}
	if err := b.deadLetters(p.DeadLetters); err != nil {
		return store.ApplyBatchResult{}, err
	}
	// Nothing is written before everything above succeeded; a cancelled context stops here too.
	if err := ctx.Err(); err != nil {
		return store.ApplyBatchResult{}, fmt.Errorf("applying batch: %w", err)
	}
	if err := b.write(p.Logs); err != nil {
		return store.ApplyBatchResult{}, err
	}
	return res, nil
}

// apply applies one event; it returns false for an orphan.
func (b *batch) apply(e *event.Event) (bool, error) {
	if e.Type == event.TypeRunSubmitted {
		return b.submit(e)
	}
	if status, ok := store.RunStatusOf(e); ok {
		return b.runEvent(e, status)
	}
	if store.IsRunRequest(e.Type) {
		// A request changes no row; it only needs its run.
		r, err := get[runRow](b, b.s.runPath(e.RunID))
		return r != nil, err
	}
	status, ok := store.TaskStatusOf(e)
	if !ok {
		return false, nil
	}
	return b.taskEvent(e, status)
}

func (b *batch) submit(e *event.Event) (bool, error) {
	if e.RunID == "" || e.Plan == nil {
		return false, nil
	}
	s, p := b.s, e.Plan
	run, err := get[runRow](b, s.runPath(e.RunID))
	if err != nil || run != nil {
		return err == nil, err // a duplicate run id changes nothing
	}
	if e.IdempotencyKey != "" {
		key, err := get[keyRow](b, s.keyPath(e.IdempotencyKey))
		if err != nil || key != nil {
			return err == nil, err // a duplicate key changes nothing
		}
	}
	scheduled := store.NominalTime(e)
	if scheduled != nil {
		slot, err := get[keyRow](b, s.slotPath(p.Name, *scheduled))
		if err != nil || slot != nil {
			return err == nil, err // another run of the workflow's nominal time: this one is not stored
		}
		b.put(s.slotPath(p.Name, *scheduled), &keyRow{RunID: e.RunID})
	}
	if e.IdempotencyKey != "" {
		b.put(s.keyPath(e.IdempotencyKey), &keyRow{RunID: e.RunID})
	}

	w, err := get[workflowRow](b, s.workflowPath(p.Name))
	if err != nil {
		return false, err
	}
	if w == nil {
		w = &workflowRow{Name: p.Name, CreatedAt: e.Time, UpdatedAt: e.Time}
	}
	if !w.Registered { // the registry says what a registered workflow's current version is
		w.Description, w.Schedule, w.CurrentHash = p.Description, p.ScheduleCron(), p.Hash
	}
	if e.Time.After(w.UpdatedAt) {
		w.UpdatedAt = e.Time
	}
	b.put(s.workflowPath(p.Name), w)
	if err := b.putVersion(p.Name, p, e.Time); err != nil {
		return false, err
	}

	b.put(s.runPath(e.RunID), &runRow{
		ID: e.RunID, Workflow: p.Name, WorkflowHash: p.Hash, Status: event.RunPending, TriggeredBy: e.TriggeredBy, Params: e.Params,
		RerunOf: e.RerunOf, ScheduledFor: scheduled, IdempotencyKey: e.IdempotencyKey, TaskCount: len(p.Tasks), CreatedAt: e.Time,
	})
	for _, t := range p.Tasks {
		b.put(s.taskPath(e.RunID, t.Name), &taskRow{
			RunID: e.RunID, Name: t.Name, Index: t.Index, Executor: t.Executor, DependsOn: t.DependsOn,
			Status: event.TaskPending, MaxRetries: t.Retries, TimeoutSeconds: t.TimeoutSeconds,
		})
	}
	return true, nil
}

// putVersion adds a plan's version of a workflow unless its hash is stored already.
func (b *batch) putVersion(name string, p *workflow.Plan, at time.Time) error {
	v, err := get[versionRow](b, b.s.versionPath(p.Hash))
	if err != nil || v != nil {
		return err
	}
	planJSON, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encoding plan of workflow %s: %w", name, err)
	}
	b.put(b.s.versionPath(p.Hash), &versionRow{Hash: p.Hash, Workflow: name, Plan: planJSON, CreatedAt: at})
	return nil
}

// register applies one registration when its revision is newer than the workflow's (see
// store.ApplyBatchParams.Registrations).
func (b *batch) register(r *store.Registration) error {
	path := b.s.workflowPath(r.Name)
	w, err := get[workflowRow](b, path)
	if err != nil {
		return err
	}
	var stored uint64
	if w != nil {
		stored = w.RegisteredRev
	}
	if r.Revision <= stored {
		return nil // replayed or superseded
	}
	at := store.TimeOrNow(r.AppliedAt)
	if w == nil {
		w = &workflowRow{Name: r.Name, CreatedAt: at, UpdatedAt: at}
	}
	if p := r.Plan; p != nil {
		w.Description, w.Schedule, w.CurrentHash = p.Description, p.ScheduleCron(), p.Hash
		if at.After(w.UpdatedAt) {
			w.UpdatedAt = at
		}
		if err := b.putVersion(r.Name, p, at); err != nil {
			return err
		}
	}
	w.Registered, w.RegisteredRev, w.RegisteredAt, w.RegisteredBy = r.Plan != nil, r.Revision, &at, r.AppliedBy
	b.put(path, w)
	return nil
}

func (b *batch) runEvent(e *event.Event, status string) (bool, error) {
	r, err := get[runRow](b, b.s.runPath(e.RunID))
	if err != nil || r == nil {
		return false, err
	}
	if !store.RunAdvances(r.Status, status) {
		return true, nil
	}
	r.Status = status
	if status == event.RunRunning && r.StartedAt == nil {
		r.StartedAt = timePtr(e.Time)
	}
	if store.RunRank(status) == 2 {
		r.FinishedAt, r.Error = timePtr(e.Time), e.Error
	}
	b.put(b.s.runPath(e.RunID), r)
	return true, nil
}

// taskEvent applies a task event to its task row (forward only in (attempt, rank) order) and, for
// attempts from 1, records it in the attempt row (forward only in rank; times and instance keep
// their first value).
func (b *batch) taskEvent(e *event.Event, status string) (bool, error) {
	s := b.s
	t, err := get[taskRow](b, s.taskPath(e.RunID, e.Task))
	if err != nil || t == nil {
		return false, err
	}
	if store.TaskAdvances(t.Attempt, store.TaskRank(t.Status, t.Reason), e.Attempt, store.TaskRank(status, e.Reason)) {
		if e.Attempt > t.Attempt {
			t.StartedAt = nil
		}
		t.Attempt, t.Status = e.Attempt, status
		if status == event.TaskRunning {
			t.StartedAt = timePtr(e.Time)
		}
		t.FinishedAt, t.Output, t.Error, t.Reason = nil, nil, "", ""
		if event.IsTerminalTask(status) {
			t.FinishedAt, t.Error, t.Reason = timePtr(e.Time), e.Error, e.Reason
			t.Output = jsonValue(e.Output)
		}
		b.put(s.taskPath(e.RunID, e.Task), t)
	}
	if e.Attempt < 1 {
		return true, nil
	}

	path := s.attemptPath(e.RunID, e.Task, e.Attempt)
	a, err := get[attemptRow](b, path)
	if err != nil {
		return false, err
	}
	if a == nil {
		a = &attemptRow{RunID: e.RunID, Task: e.Task, Attempt: e.Attempt}
	}
	if a.Status == "" || store.TaskRank(status, e.Reason) > store.TaskRank(a.Status, a.Reason) {
		a.Status = status
		if event.IsTerminalTask(status) {
			a.ExitCode, a.Error, a.Reason, a.DurationMS, a.FinishedAt = e.ExitCode, e.Error, e.Reason, e.DurationMS, timePtr(e.Time)
		}
	}
	switch {
	case status == event.TaskDispatched && a.DispatchedAt == nil:
		a.DispatchedAt = timePtr(e.Time)
	case status == event.TaskRunning && a.StartedAt == nil:
		a.StartedAt = timePtr(e.Time)
	}
	if a.Instance == "" {
		a.Instance = e.Instance
	}
	b.put(path, a)
	return true, nil
}

// deadLetters adds the dead letters not yet stored, numbered in arrival order.
func (b *batch) deadLetters(dls []store.DeadLetter) error {
	if len(dls) == 0 {
		return nil
	}
	nextPath := filepath.Join(b.s.base, dirDeadLetters, nextFile)
	next := int64(1)
	if _, err := readJSON(nextPath, &next); err != nil {
		return err
	}
	now := time.Now().UTC()
	for _, d := range dls {
		path := b.s.deadLetterPath(d.Stream, d.Seq)
		have, err := get[deadLetterRow](b, path)
		if err != nil {
			return err
		}
		if have != nil {
			continue
		}
		row := &deadLetterRow{ID: next, Stream: d.Stream, Seq: d.Seq, Subject: d.Subject, Reason: d.Reason, Data: d.Data, CreatedAt: d.CreatedAt}
		if row.CreatedAt.IsZero() {
			row.CreatedAt = now
		}
		b.put(path, row)
		next++
	}
	n := next
	b.put(nextPath, &n)
	return nil
}

// write makes the batch durable in three steps: every changed row goes to a temporary file and log
// lines are appended; one flush makes all of that durable; then the renames put the rows in place and
// a second flush makes the renames durable. Two flushes per batch instead of one fsync per file.
func (b *batch) write(logs []event.LogBatch) error {
	paths := slices.Sorted(maps.Keys(b.dirty))
	temps := make([]string, 0, len(paths))
	defer func() {
		for _, tmp := range temps {
			_ = os.Remove(tmp) // left only when a step failed
		}
	}()
	for _, path := range paths {
		data, err := json.Marshal(b.rows[path])
		if err != nil {
			return fmt.Errorf("encoding %s: %w", path, err)
		}
		tmp, err := writeTemp(path, data)
		if err != nil {
			return err
		}
		temps = append(temps, tmp)
	}
	logPaths, err := b.s.appendLogs(logs)
	if err != nil {
		return err
	}
	if err := flush(b.s.base, append(slices.Clone(temps), logPaths...)); err != nil {
		return err
	}
	dirs := map[string]bool{}
	for i, path := range paths {
		if err := os.Rename(temps[i], path); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
		temps[i] = ""
		dirs[filepath.Dir(path)] = true
	}
	temps = nil
	for _, p := range logPaths {
		dirs[filepath.Dir(p)] = true
	}
	return flush(b.s.base, slices.Sorted(maps.Keys(dirs)))
}

// appendLogs appends each attempt's lines to its log file, in one write per file, and returns the
// files it wrote.
func (s *Store) appendLogs(logs []event.LogBatch) ([]string, error) {
	byPath := map[string][]byte{}
	var order []string
	for _, lb := range logs {
		path := s.logPath(lb.RunID, lb.Task, lb.Attempt)
		buf, ok := byPath[path]
		if !ok {
			order = append(order, path)
		}
		for _, l := range lb.Lines {
			line, err := json.Marshal(logRow{Seq: l.Seq, Stream: l.Stream, Line: l.Line, Time: l.Time})
			if err != nil {
				return nil, fmt.Errorf("encoding log line %s/%s/%d/%d: %w", lb.RunID, lb.Task, lb.Attempt, l.Seq, err)
			}
			buf = append(append(buf, line...), '\n')
		}
		byPath[path] = buf
	}
	var written []string
	for _, path := range order {
		if len(byPath[path]) == 0 {
			continue
		}
		if err := appendLines(path, byPath[path]); err != nil {
			return nil, err
		}
		written = append(written, path)
	}
	return written, nil
}

func timePtr(t time.Time) *time.Time { return &t }

// jsonValue returns raw (nil when empty), or raw's text as a JSON string when it is not JSON, so that
// one malformed output cannot fail a batch (pgstore does the same).
func jsonValue(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return nil
	}
	if json.Valid(raw) {
		return raw
	}
	out, _ := json.Marshal(string(raw)) //nolint:errchkjson // a string always encodes
	return out
}
