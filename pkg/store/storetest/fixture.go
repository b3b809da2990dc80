package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/workflow"
)

// fixture is one subtest's fresh store with helpers that build events and check results.
type fixture struct {
	t   *testing.T
	s   store.Store
	ctx context.Context

	mu    sync.Mutex
	clock time.Time
}

func setup(t *testing.T, open func(t *testing.T) store.Store) *fixture {
	t.Helper()
	t.Parallel()
	return &fixture{
		t:     t,
		s:     open(t),
		ctx:   t.Context(),
		clock: time.Now().UTC().Truncate(time.Millisecond),
	}
}

// now returns a strictly increasing time, one millisecond after the previous one, so that ordering
// by time is deterministic and every value survives microsecond storage.
func (f *fixture) now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clock = f.clock.Add(time.Millisecond)
	return f.clock
}

// task builds a plan task; deps name its dependencies.
func task(name string, index int, deps ...string) workflow.Task {
	return workflow.Task{
		Name:           name,
		Index:          index,
		Executor:       workflow.ExecutorProcess,
		Command:        []string{"echo", name},
		DependsOn:      deps,
		TimeoutSeconds: 30 + index,
		Retries:        index % 3,
	}
}

// plan builds a compiled plan whose hash is derived from its content (name, description, tasks).
func plan(name, description string, tasks ...workflow.Task) *workflow.Plan {
	p := &workflow.Plan{Name: name, Description: description, Dir: "/tmp/" + name, Tasks: tasks}
	canon, err := json.Marshal(struct {
		Name, Description string
		Tasks             []workflow.Task
	}{p.Name, p.Description, p.Tasks})
	if err != nil {
		panic(err)
	}
	sum := sha256.Sum256(canon)
	p.Hash = hex.EncodeToString(sum[:])
	return p
}

// diamond is a four-task plan whose topological order differs from its index (YAML) order:
// report(0) <- {left(2), right(3)} <- fetch(1).
func diamond(name string) *workflow.Plan {
	return plan(name, "a diamond named "+name,
		task("fetch", 1),
		task("left", 2, "fetch"),
		task("right", 3, "fetch"),
		task("report", 0, "left", "right"),
	)
}

// submit builds a run.submitted event.
func (f *fixture) submit(runID string, p *workflow.Plan, key string) event.Event {
	e := event.New(event.TypeRunSubmitted, runID, "", 0)
	e.Time = f.now()
	e.Workflow = p.Name
	e.Plan = p
	e.IdempotencyKey = key
	e.TriggeredBy = "storetest"
	return e
}

// ev builds a task or run event of the given type at the next clock tick, with the fields its type
// usually carries.
func (f *fixture) ev(typ, runID, taskName string, attempt int) event.Event {
	e := event.New(typ, runID, taskName, attempt)
	e.Time = f.now()
	switch typ {
	case event.TypeTaskDispatched:
		e.Executor = workflow.ExecutorProcess
	case event.TypeTaskStarted:
		e.Instance = "executor-" + fmt.Sprint(attempt)
	case event.TypeTaskSucceeded:
		e.Instance = "executor-" + fmt.Sprint(attempt)
		e.Output = json.RawMessage(fmt.Sprintf(`{"task":%q,"attempt":%d}`, taskName, attempt))
		e.ExitCode = intPtr(0)
		e.DurationMS = 12
	case event.TypeTaskFailed:
		e.Instance = "executor-" + fmt.Sprint(attempt)
		e.Error = "exit status 3"
		e.Reason = event.ReasonExit
		e.ExitCode = intPtr(3)
		e.DurationMS = 7
	case event.TypeTaskSkipped:
		e.Reason = event.ReasonUpstreamFailed
	case event.TypeRunFinished:
		e.Status = event.RunSuccess
	}
	return e
}

// finished builds a run.finished event with a status and an error.
func (f *fixture) finished(runID, status, errText string) event.Event {
	e := f.ev(event.TypeRunFinished, runID, "", 0)
	e.Status = status
	e.Error = errText
	return e
}

func intPtr(i int) *int { return &i }

// apply applies a batch and fails the test on error.
func (f *fixture) apply(p store.ApplyBatchParams) store.ApplyBatchResult {
	f.t.Helper()
	res, err := f.s.ApplyBatch(f.ctx, p)
	if err != nil {
		f.t.Fatalf("ApplyBatch: %v", err)
	}
	return res
}

// events applies a batch of events only.
func (f *fixture) events(evs ...event.Event) store.ApplyBatchResult {
	f.t.Helper()
	return f.apply(store.ApplyBatchParams{Events: evs})
}

func (f *fixture) run(id string) store.Run {
	f.t.Helper()
	r, err := f.s.RunGet(f.ctx, store.RunGetParams{ID: id})
	if err != nil {
		f.t.Fatalf("RunGet(%s): %v", id, err)
	}
	return r
}

func (f *fixture) tasks(runID string) []store.Task {
	f.t.Helper()
	ts, err := f.s.TaskList(f.ctx, store.TaskListParams{RunID: runID})
	if err != nil {
		f.t.Fatalf("TaskList(%s): %v", runID, err)
	}
	return ts
}

// taskByName returns one task of a run.
func (f *fixture) task(runID, name string) store.Task {
	f.t.Helper()
	for _, tk := range f.tasks(runID) {
		if tk.Name == name {
			return tk
		}
	}
	f.t.Fatalf("run %s has no task %s", runID, name)
	return store.Task{}
}

func (f *fixture) attempts(runID, taskName string) []store.Attempt {
	f.t.Helper()
	as, err := f.s.AttemptList(f.ctx, store.AttemptListParams{RunID: runID, Task: taskName})
	if err != nil {
		f.t.Fatalf("AttemptList(%s, %s): %v", runID, taskName, err)
	}
	return as
}

func (f *fixture) logs(p store.LogListParams) []store.LogLine {
	f.t.Helper()
	ls, err := f.s.LogList(f.ctx, p)
	if err != nil {
		f.t.Fatalf("LogList(%+v): %v", p, err)
	}
	return ls
}

func (f *fixture) runs(p store.RunListParams) []store.Run {
	f.t.Helper()
	rs, err := f.s.RunList(f.ctx, p)
	if err != nil {
		f.t.Fatalf("RunList(%+v): %v", p, err)
	}
	return rs
}

func (f *fixture) workflows(p store.WorkflowListParams) []store.Workflow {
	f.t.Helper()
	ws, err := f.s.WorkflowList(f.ctx, p)
	if err != nil {
		f.t.Fatalf("WorkflowList(%+v): %v", p, err)
	}
	return ws
}

func (f *fixture) deadLetters(limit int) []store.DeadLetter {
	f.t.Helper()
	ds, err := f.s.DeadLetterList(f.ctx, store.DeadLetterListParams{Limit: limit})
	if err != nil {
		f.t.Fatalf("DeadLetterList: %v", err)
	}
	return ds
}

// snapshot is everything the read methods return about a set of runs, for comparing states.
type snapshot struct {
	Runs        []store.Run
	Tasks       [][]store.Task
	Attempts    [][]store.Attempt
	Logs        [][]store.LogLine
	Workflows   []store.Workflow
	DeadLetters []store.DeadLetter
}

func (f *fixture) snapshot(runIDs ...string) snapshot {
	f.t.Helper()
	var s snapshot
	for _, id := range runIDs {
		s.Runs = append(s.Runs, f.run(id))
		s.Tasks = append(s.Tasks, f.tasks(id))
		s.Attempts = append(s.Attempts, f.attempts(id, ""))
		s.Logs = append(s.Logs, f.logs(store.LogListParams{RunID: id}))
	}
	s.Workflows = f.workflows(store.WorkflowListParams{})
	s.DeadLetters = f.deadLetters(0)
	return s
}

// equalSnapshots compares two snapshots, JSON fields by meaning.
func (f *fixture) equalSnapshots(a, b snapshot) {
	f.t.Helper()
	norm := func(s snapshot) string {
		for i := range s.Tasks {
			for j := range s.Tasks[i] {
				s.Tasks[i][j].Output = canonJSON(f.t, s.Tasks[i][j].Output)
			}
		}
		out, err := json.Marshal(s)
		if err != nil {
			f.t.Fatalf("encoding snapshot: %v", err)
		}
		return string(out)
	}
	if na, nb := norm(a), norm(b); na != nb {
		f.t.Fatalf("states differ:\n first: %s\nsecond: %s", na, nb)
	}
}

// canonJSON re-encodes a JSON value so that two encodings of the same value compare equal.
func canonJSON(t *testing.T, raw json.RawMessage) json.RawMessage {
	t.Helper()
	if len(raw) == 0 {
		return nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("stored JSON %q does not decode: %v", raw, err)
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("re-encoding JSON: %v", err)
	}
	return out
}

// wantJSON checks that got and want are the same JSON value (or both empty).
func wantJSON(t *testing.T, what string, got, want json.RawMessage) {
	t.Helper()
	if !bytes.Equal(canonJSON(t, got), canonJSON(t, want)) {
		t.Errorf("%s = %s, want %s", what, got, want)
	}
}

// wantTime checks an optional time against an expected one (nil means unset).
func wantTime(t *testing.T, what string, got, want *time.Time) {
	t.Helper()
	switch {
	case got == nil && want == nil:
	case got == nil || want == nil:
		t.Errorf("%s = %v, want %v", what, fmtTime(got), fmtTime(want))
	case !got.Equal(*want):
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func fmtTime(tp *time.Time) string {
	if tp == nil {
		return "<nil>"
	}
	return tp.String()
}

// wantEq checks a comparable value.
func wantEq[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// wantDeep checks a value with reflect.DeepEqual.
func wantDeep(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

// eventIDs returns the ids of events, sorted.
func eventIDs(evs []event.Event) []string {
	ids := make([]string, 0, len(evs))
	for _, e := range evs {
		ids = append(ids, e.ID)
	}
	sort.Strings(ids)
	return ids
}

// sorted returns a sorted copy of ss (nil for an empty list).
func sorted(ss []string) []string {
	if len(ss) == 0 {
		return nil
	}
	out := append([]string(nil), ss...)
	sort.Strings(out)
	return out
}

// runID returns a fresh run id.
func runID() string { return event.NewID() }
