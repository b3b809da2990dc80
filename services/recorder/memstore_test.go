package recorder_test

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/store"
)

// memStore is a small in-memory store.Store with the write semantics of pkg/store, for tests of the
// recorder that need a store to misbehave (see failingStore) or to count writes.
type memStore struct {
	mu    sync.Mutex
	runs  map[string]*store.Run
	tasks map[string][]*store.Task
	keys  map[string]string
	logs  map[[4]any]store.LogLine
	dead  map[[2]any]store.DeadLetter
	order []store.DeadLetter
}

func newMemStore() *memStore {
	return &memStore{
		runs: map[string]*store.Run{}, tasks: map[string][]*store.Task{}, keys: map[string]string{},
		logs: map[[4]any]store.LogLine{}, dead: map[[2]any]store.DeadLetter{},
	}
}

func (m *memStore) task(run, name string) *store.Task {
	for _, t := range m.tasks[run] {
		if t.Name == name {
			return t
		}
	}
	return nil
}

func (m *memStore) ApplyBatch(ctx context.Context, p store.ApplyBatchParams) (store.ApplyBatchResult, error) {
	if err := ctx.Err(); err != nil {
		return store.ApplyBatchResult{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var res store.ApplyBatchResult
	for _, e := range p.Events {
		if e.Type == event.TypeRunSubmitted {
			if _, ok := m.runs[e.RunID]; ok {
				continue
			}
			if _, ok := m.keys[e.IdempotencyKey]; ok && e.IdempotencyKey != "" {
				continue
			}
			m.keys[e.IdempotencyKey] = e.RunID
			m.runs[e.RunID] = &store.Run{ID: e.RunID, Workflow: e.Workflow, Status: event.RunPending,
				IdempotencyKey: e.IdempotencyKey, TriggeredBy: e.TriggeredBy, TaskCount: len(e.Plan.Tasks), CreatedAt: e.Time}
			for _, t := range e.Plan.Tasks {
				m.tasks[e.RunID] = append(m.tasks[e.RunID], &store.Task{RunID: e.RunID, Name: t.Name, Index: t.Index, Status: event.TaskPending})
			}
			continue
		}
		run, ok := m.runs[e.RunID]
		if !ok {
			res.Orphans = append(res.Orphans, e)
			continue
		}
		switch e.Type {
		case event.TypeRunStarted:
			if store.RunAdvances(run.Status, event.RunRunning) {
				run.Status = event.RunRunning
			}
		case event.TypeRunFinished:
			if store.RunAdvances(run.Status, e.Status) {
				run.Status = e.Status
			}
			res.FinishedRuns = append(res.FinishedRuns, e.RunID)
		default:
			t := m.task(e.RunID, e.Task)
			if t == nil {
				res.Orphans = append(res.Orphans, e)
				continue
			}
			if st, ok := store.TaskStatusOf(&e); ok && store.TaskAdvances(t.Attempt, t.Status, e.Attempt, st) {
				t.Attempt, t.Status = e.Attempt, st
			}
		}
	}
	for _, lb := range p.Logs {
		for _, l := range lb.Lines {
			k := [4]any{lb.RunID, lb.Task, lb.Attempt, l.Seq}
			if _, ok := m.logs[k]; !ok {
				m.logs[k] = store.LogLine{RunID: lb.RunID, Task: lb.Task, Attempt: lb.Attempt, Seq: l.Seq, Stream: l.Stream, Line: l.Line, Time: l.Time}
			}
		}
	}
	for _, d := range p.DeadLetters {
		k := [2]any{d.Stream, d.Seq}
		if _, ok := m.dead[k]; !ok {
			m.dead[k] = d
			m.order = append(m.order, d)
		}
	}
	return res, nil
}

func (m *memStore) RunGet(_ context.Context, p store.RunGetParams) (store.Run, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.runs[p.ID]
	if !ok {
		return store.Run{}, store.ErrNotFound
	}
	return *r, nil
}

func (m *memStore) RunList(context.Context, store.RunListParams) ([]store.Run, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]store.Run, 0, len(m.runs))
	for _, r := range m.runs {
		out = append(out, *r)
	}
	return out, nil
}

func (m *memStore) TaskList(_ context.Context, p store.TaskListParams) ([]store.Task, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]store.Task, 0, len(m.tasks[p.RunID]))
	for _, t := range m.tasks[p.RunID] {
		out = append(out, *t)
	}
	return out, nil
}

func (m *memStore) LogList(_ context.Context, p store.LogListParams) ([]store.LogLine, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.LogLine
	for _, l := range m.logs {
		if l.RunID == p.RunID {
			out = append(out, l)
		}
	}
	slices.SortFunc(out, func(a, b store.LogLine) int { return int(a.Seq - b.Seq) })
	return out, nil
}

func (m *memStore) DeadLetterList(context.Context, store.DeadLetterListParams) ([]store.DeadLetter, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.order), nil
}

var errUnused = errors.New("not used by the recorder tests")

func (m *memStore) AttemptList(context.Context, store.AttemptListParams) ([]store.Attempt, error) {
	return nil, errUnused
}

func (m *memStore) WorkflowList(context.Context, store.WorkflowListParams) ([]store.Workflow, error) {
	return nil, errUnused
}

func (m *memStore) WorkflowVersionGet(context.Context, store.WorkflowVersionGetParams) (store.WorkflowVersion, error) {
	return store.WorkflowVersion{}, errUnused
}

func (m *memStore) Close() error { return nil }

var _ store.Store = (*memStore)(nil)
