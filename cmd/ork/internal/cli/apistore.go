package cli

import (
	"context"
	"slices"
	"strings"

	"github.com/ork-go/ork/pkg/httpapi"
	"github.com/ork-go/ork/pkg/store"
)

// apiStore reads runs, tasks and log lines through a server's API, for the read commands (ork
// status, tasks, logs) given --api: they call only the methods below, the embedded nil Store
// stands for the rest (the database writes and the registry reads they never make).
type apiStore struct {
	store.Store
	api *httpapi.Client
}

func (a apiStore) Close() error { return nil }

func (a apiStore) RunGet(ctx context.Context, p store.RunGetParams) (store.Run, error) {
	d, err := a.api.Run(ctx, p.ID)
	if httpapi.IsProblem(err, "not-found") {
		return store.Run{}, store.ErrNotFound
	}
	if err != nil {
		return store.Run{}, err
	}
	r := store.Run{ID: d.RunID, Workflow: d.Workflow, WorkflowHash: d.Version, Status: d.Status, TriggeredBy: d.TriggeredBy,
		IdempotencyKey: d.IdempotencyKey, ScheduledFor: d.ScheduledFor, TaskCount: len(d.Tasks), Params: d.Params,
		StartedAt: d.StartedAt, FinishedAt: d.FinishedAt}
	if d.Error != nil {
		r.Error = *d.Error
	}
	if d.CreatedAt != nil {
		r.CreatedAt = *d.CreatedAt
	}
	return r, nil
}

func (a apiStore) RunList(ctx context.Context, p store.RunListParams) ([]store.Run, error) {
	limit := p.Limit
	if limit == 0 {
		limit = 50
	}
	page, err := a.api.Runs(ctx, httpapi.RunsQuery{Workflow: p.Workflow, Status: p.Status, IDPrefix: p.IDPrefix,
		TriggeredBy: p.TriggeredBy, Since: p.Since, Until: p.Until, PageSize: limit})
	if err != nil {
		return nil, err
	}
	out := make([]store.Run, len(page.Runs))
	for i, s := range page.Runs {
		out[i] = store.Run{ID: s.RunID, Workflow: s.Workflow, WorkflowHash: s.Version, Status: s.Status, TriggeredBy: s.TriggeredBy,
			IdempotencyKey: s.IdempotencyKey, ScheduledFor: s.ScheduledFor, TaskCount: s.TaskCount, Params: s.Params,
			CreatedAt: s.CreatedAt, StartedAt: s.StartedAt, FinishedAt: s.FinishedAt}
		if s.Error != nil {
			out[i].Error = *s.Error
		}
	}
	return out, nil
}

// TaskList returns the run's tasks, in the order they started (then by name: the API's run
// carries no plan order).
func (a apiStore) TaskList(ctx context.Context, p store.TaskListParams) ([]store.Task, error) {
	d, err := a.api.Run(ctx, p.RunID)
	if httpapi.IsProblem(err, "not-found") {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	out := make([]store.Task, 0, len(d.Tasks))
	for name, t := range d.Tasks {
		st := store.Task{RunID: d.RunID, Workflow: d.Workflow, RunStatus: d.Status, Name: name, Executor: t.Executor,
			Status: t.Status, Attempt: t.Attempts, Output: t.Output, StartedAt: t.StartedAt, FinishedAt: t.FinishedAt}
		if t.Error != nil {
			st.Error = *t.Error
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(x, y store.Task) int {
		switch {
		case x.StartedAt == nil && y.StartedAt != nil:
			return 1
		case x.StartedAt != nil && y.StartedAt == nil:
			return -1
		case x.StartedAt != nil && !x.StartedAt.Equal(*y.StartedAt):
			return x.StartedAt.Compare(*y.StartedAt)
		}
		return strings.Compare(x.Name, y.Name)
	})
	for i := range out {
		out[i].Index = i
	}
	return out, nil
}

// LogList reads the run's lines (of one task when named), paging through each task's attempts:
// their seq numbers restart with each attempt.
func (a apiStore) LogList(ctx context.Context, p store.LogListParams) ([]store.LogLine, error) {
	d, err := a.api.Run(ctx, p.RunID)
	if httpapi.IsProblem(err, "not-found") {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	tasks, err := a.TaskList(ctx, store.TaskListParams{RunID: p.RunID}) // in the order the commands print
	if err != nil {
		return nil, err
	}
	attempts := map[string]int{}
	for _, at := range d.Attempts {
		attempts[at.Task] = max(attempts[at.Task], at.Attempt)
	}
	var out []store.LogLine
	for _, t := range tasks {
		if p.Task != "" && t.Name != p.Task {
			continue
		}
		for n := 1; n <= attempts[t.Name]; n++ {
			if p.Attempt > 0 && n != p.Attempt {
				continue
			}
			var offset int64
			for {
				page, err := a.api.Logs(ctx, p.RunID, t.Name, n, offset, 0)
				if err != nil {
					return nil, err
				}
				for _, l := range page.Lines {
					out = append(out, store.LogLine{RunID: p.RunID, Task: l.Task, Attempt: l.Attempt, Seq: l.Seq, Stream: l.Stream, Line: l.Line, Time: l.Time})
				}
				if page.NextOffset == nil {
					break
				}
				offset = *page.NextOffset
			}
		}
	}
	return out, nil
}
