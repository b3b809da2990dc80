package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/schedule"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/workflow"
)

// Option adds optional cases to Run.
type Option func(*options)

type options struct {
	openShared func(t *testing.T) (first, second store.Store)
}

// WithSharedBackend lets Run open two handles on one fresh, empty backend, as two processes would
// (two pools on one schema, two stores on one file or directory), each closed in t.Cleanup. Run
// then checks that concurrent writers through both handles lose nothing and that both read the same.
func WithSharedBackend(open func(t *testing.T) (first, second store.Store)) Option {
	return func(o *options) { o.openShared = open }
}

// Run runs the conformance suite. open must return a fresh, empty store (already migrated) for the
// subtest it is given and close it in t.Cleanup. Every subtest runs in parallel with its own store.
func Run(t *testing.T, open func(t *testing.T) store.Store, opts ...Option) {
	t.Helper()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	cases := []struct {
		name string
		fn   func(t *testing.T, f *fixture)
	}{
		{"SubmitCreatesWorkflowVersionRunTasks", testSubmit},
		{"SubmitNewVersionUpdatesWorkflow", testSubmitNewVersion},
		{"SubmitTwiceSameRunID", testSubmitTwiceSameRunID},
		{"SubmitTwiceSameIdempotencyKey", testSubmitTwiceSameKey},
		{"SubmitRerun", testSubmitRerun},
		{"SubmitScheduled", testSubmitScheduled},
		{"ReplayBatchIsIdempotent", testReplayBatch},
		{"TaskLifecycle", testTaskLifecycle},
		{"TaskStatusNeverMovesBackwards", testTaskForwardOnly},
		{"RunStatusNeverMovesBackwards", testRunForwardOnly},
		{"AttemptFencing", testAttemptFencing},
		{"RetriesAdvanceAttempt", testRetries},
		{"SkippedAndCancelled", testSkippedCancelled},
		{"PauseResume", testPauseResume},
		{"ControlAfterFinish", testControlAfterFinish},
		{"ControlRequests", testControlRequests},
		{"CancelRun", testCancelRun},
		{"LostAttempt", testLostAttempt},
		{"LostAttemptAtTheCap", testLostAttemptAtTheCap},
		{"RunFinishedWithError", testRunFinishedError},
		{"FinishedRuns", testFinishedRuns},
		{"Orphans", testOrphans},
		{"LogsIdempotentAndOrdered", testLogs},
		{"LogsPaging", testLogsPaging},
		{"LogsBeforeRunExists", testLogsBeforeRun},
		{"DeadLetters", testDeadLetters},
		{"RunList", testRunList},
		{"RunListIDPrefix", testRunListIDPrefix},
		{"RunListPaging", testRunListPaging},
		{"RunListFilters", testRunListFilters},
		{"TaskListJoinsRunAndWorkflow", testTaskList},
		{"WorkflowList", testWorkflowList},
		{"WorkflowVersionGet", testWorkflowVersionGet},
		{"WorkflowListFilters", testWorkflowListFilters},
		{"WorkflowGetAndVersions", testWorkflowGetAndVersions},
		{"Registration", testRegistration},
		{"RegistrationReplayAndOrder", testRegistrationReplayAndOrder},
		{"RegistrationDelete", testRegistrationDelete},
		{"RegistrationAndSubmissions", testRegistrationAndSubmissions},
		{"NotFound", testNotFound},
		{"Tokens", testTokens},
		{"TokensNotFound", testTokensNotFound},
		{"EmptyBatch", testEmptyBatch},
		{"ConcurrentWriters", testConcurrentWriters},
		{"ConcurrentSubmissionsSameKey", testConcurrentSameKey},
		{"ConcurrentSubmissionRaceOrphans", testSubmissionRace},
		{"ConcurrentSubmissionsSameNominalTime", testConcurrentSameNominalTime},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := setup(t, open)
			c.fn(t, f)
		})
	}
	if o.openShared != nil {
		t.Run("TwoHandlesOneBackend", func(t *testing.T) {
			var second store.Store
			f := setup(t, func(t *testing.T) store.Store {
				first, s2 := o.openShared(t)
				second = s2
				return first
			})
			testTwoHandles(t, f, second)
		})
	}
}

func testSubmit(t *testing.T, f *fixture) {
	p := diamond("etl")
	p.Schedule = &schedule.Spec{Cron: "*/5 * * * *"}
	id := runID()
	sub := f.submit(id, p, "key-1")
	sub.Params = json.RawMessage(`{"day":"2024-07-14","window":{"hours":2},"tags":["a","b"]}`)
	res := f.events(sub)
	if len(res.Orphans) != 0 || len(res.FinishedRuns) != 0 {
		t.Fatalf("result = %+v, want no orphans and no finished runs", res)
	}

	r := f.run(id)
	wantEq(t, "run.ID", r.ID, id)
	wantEq(t, "run.Workflow", r.Workflow, "etl")
	wantEq(t, "run.WorkflowHash", r.WorkflowHash, p.Hash)
	wantEq(t, "run.Status", r.Status, event.RunPending)
	wantEq(t, "run.TriggeredBy", r.TriggeredBy, "storetest")
	wantEq(t, "run.IdempotencyKey", r.IdempotencyKey, "key-1")
	wantEq(t, "run.Error", r.Error, "")
	wantEq(t, "run.TaskCount", r.TaskCount, 4)
	wantJSON(t, "run.Params", r.Params, sub.Params)
	wantTime(t, "run.CreatedAt", &r.CreatedAt, &sub.Time)
	wantTime(t, "run.StartedAt", r.StartedAt, nil)
	wantTime(t, "run.FinishedAt", r.FinishedAt, nil)

	ts := f.tasks(id)
	if len(ts) != 4 {
		t.Fatalf("TaskList returned %d tasks, want 4", len(ts))
	}
	// Index (YAML) order, not the plan's topological order.
	for i, want := range []string{"report", "fetch", "left", "right"} {
		wantEq(t, fmt.Sprintf("tasks[%d].Name", i), ts[i].Name, want)
		wantEq(t, fmt.Sprintf("tasks[%d].Index", i), ts[i].Index, i)
	}
	byName := map[string]workflow.Task{}
	for _, pt := range p.Tasks {
		byName[pt.Name] = pt
	}
	for _, tk := range ts {
		pt := byName[tk.Name]
		wantEq(t, tk.Name+".RunID", tk.RunID, id)
		wantEq(t, tk.Name+".Workflow", tk.Workflow, "etl")
		wantEq(t, tk.Name+".RunStatus", tk.RunStatus, event.RunPending)
		wantEq(t, tk.Name+".Executor", tk.Executor, pt.Executor)
		wantDeep(t, tk.Name+".DependsOn", sorted(tk.DependsOn), sorted(pt.DependsOn))
		wantEq(t, tk.Name+".Status", tk.Status, event.TaskPending)
		wantEq(t, tk.Name+".Attempt", tk.Attempt, 0)
		wantEq(t, tk.Name+".MaxRetries", tk.MaxRetries, pt.Retries)
		wantEq(t, tk.Name+".TimeoutSeconds", tk.TimeoutSeconds, pt.TimeoutSeconds)
		wantJSON(t, tk.Name+".Output", tk.Output, nil)
		wantEq(t, tk.Name+".Error", tk.Error, "")
		wantTime(t, tk.Name+".StartedAt", tk.StartedAt, nil)
		wantTime(t, tk.Name+".FinishedAt", tk.FinishedAt, nil)
	}
	if as := f.attempts(id, ""); len(as) != 0 {
		t.Errorf("AttemptList after submit = %+v, want none", as)
	}

	ws := f.workflows(store.WorkflowListParams{})
	if len(ws) != 1 {
		t.Fatalf("WorkflowList returned %d workflows, want 1", len(ws))
	}
	w := ws[0]
	wantEq(t, "workflow.Name", w.Name, "etl")
	wantEq(t, "workflow.Description", w.Description, p.Description)
	wantEq(t, "workflow.CurrentHash", w.CurrentHash, p.Hash)
	wantEq(t, "workflow.Schedule", w.Schedule, p.ScheduleCron())
	wantEq(t, "workflow.RunCount", w.RunCount, 1)
	if w.CreatedAt.IsZero() || w.UpdatedAt.IsZero() {
		t.Errorf("workflow times = %v, %v, want both set", w.CreatedAt, w.UpdatedAt)
	}

	v, err := f.s.WorkflowVersionGet(f.ctx, store.WorkflowVersionGetParams{Hash: p.Hash})
	if err != nil {
		t.Fatalf("WorkflowVersionGet: %v", err)
	}
	wantEq(t, "version.Workflow", v.Workflow, "etl")
	wantEq(t, "version.Hash", v.Hash, p.Hash)
	var got workflow.Plan
	if err := json.Unmarshal(v.Plan, &got); err != nil {
		t.Fatalf("stored plan does not decode: %v", err)
	}
	wantDeep(t, "version.Plan", &got, p)
}

func testSubmitNewVersion(t *testing.T, f *fixture) {
	v1 := plan("etl", "first", task("a", 0))
	v2 := plan("etl", "second", task("a", 0), task("b", 1, "a"))
	r1, r2 := runID(), runID()
	s1, s2 := f.submit(r1, v1, ""), f.submit(r2, v2, "")
	f.events(s1)
	f.events(s2)

	ws := f.workflows(store.WorkflowListParams{})
	if len(ws) != 1 {
		t.Fatalf("WorkflowList returned %d workflows, want 1", len(ws))
	}
	wantEq(t, "workflow.Description", ws[0].Description, "second")
	wantEq(t, "workflow.CurrentHash", ws[0].CurrentHash, v2.Hash)
	wantEq(t, "workflow.RunCount", ws[0].RunCount, 2)
	// Workflow times are those of the submissions, so replays are deterministic.
	wantTime(t, "workflow.CreatedAt", &ws[0].CreatedAt, &s1.Time)
	wantTime(t, "workflow.UpdatedAt", &ws[0].UpdatedAt, &s2.Time)
	for _, p := range []*workflow.Plan{v1, v2} {
		v, err := f.s.WorkflowVersionGet(f.ctx, store.WorkflowVersionGetParams{Hash: p.Hash})
		if err != nil {
			t.Fatalf("WorkflowVersionGet(%s): %v", p.Description, err)
		}
		var got workflow.Plan
		if err := json.Unmarshal(v.Plan, &got); err != nil {
			t.Fatalf("stored plan does not decode: %v", err)
		}
		wantDeep(t, "plan "+p.Description, &got, p)
	}
	wantEq(t, "run1.WorkflowHash", f.run(r1).WorkflowHash, v1.Hash)
	wantEq(t, "run2.WorkflowHash", f.run(r2).WorkflowHash, v2.Hash)
	wantEq(t, "len(tasks run1)", len(f.tasks(r1)), 1)
	wantEq(t, "len(tasks run2)", len(f.tasks(r2)), 2)
}

func testSubmitTwiceSameRunID(t *testing.T, f *fixture) {
	id := runID()
	first := f.submit(id, diamond("etl"), "")
	f.events(first)
	f.events(f.ev(event.TypeRunStarted, id, "", 0), f.ev(event.TypeTaskDispatched, id, "fetch", 1))
	before := f.snapshot(id)

	// The same run id again, with another plan and workflow: nothing changes.
	again := f.submit(id, plan("other", "other", task("x", 0)), "")
	res := f.events(again)
	if len(res.Orphans) != 0 {
		t.Errorf("orphans = %v, want none", eventIDs(res.Orphans))
	}
	f.equalSnapshots(before, f.snapshot(id))
}

func testSubmitTwiceSameKey(t *testing.T, f *fixture) {
	p := diamond("etl")
	a, b := runID(), runID()
	f.events(f.submit(a, p, "same-key"))
	// The second submission under the key, even of another workflow, changes nothing.
	f.events(f.submit(b, plan("other", "", task("x", 0)), "same-key"))
	// And both in one batch, for another key.
	c, d := runID(), runID()
	f.events(f.submit(c, p, "other-key"), f.submit(d, p, "other-key"))

	rs := f.runs(store.RunListParams{})
	ids := []string{}
	for _, r := range rs {
		ids = append(ids, r.ID)
	}
	wantDeep(t, "run ids", sorted(ids), sorted([]string{a, c}))
	if _, err := f.s.RunGet(f.ctx, store.RunGetParams{ID: b}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RunGet(second submission) error = %v, want ErrNotFound", err)
	}
	ws := f.workflows(store.WorkflowListParams{})
	if len(ws) != 1 || ws[0].Name != "etl" || ws[0].RunCount != 2 {
		t.Errorf("workflows = %+v, want only etl with 2 runs", ws)
	}
}

func testSubmitRerun(t *testing.T, f *fixture) {
	p := diamond("etl")
	first, rerun, orphanRerun := runID(), runID(), runID()
	f.events(f.submit(first, p, ""))
	sub := f.submit(rerun, p, "")
	sub.RerunOf = first
	// A rerun of a run the store does not know is recorded as the submission says.
	unknown := f.submit(orphanRerun, p, "")
	unknown.RerunOf = "gone-" + runID()
	f.events(sub, unknown)
	// Submitted again with another parent, the run keeps the first.
	again := sub
	again.RerunOf = orphanRerun
	f.events(again)

	want := map[string]string{first: "", rerun: first, orphanRerun: unknown.RerunOf}
	for id, parent := range want {
		wantEq(t, "RunGet("+id+").RerunOf", f.run(id).RerunOf, parent)
	}
	listed := f.runs(store.RunListParams{})
	wantEq(t, "listed runs", len(listed), len(want))
	for _, r := range listed {
		wantEq(t, "RunList: "+r.ID+".RerunOf", r.RerunOf, want[r.ID])
	}
}

// lifecycleBatch is a realistic batch: a submission, a whole successful run, logs and a dead letter.
func (f *fixture) lifecycleBatch(id string, p *workflow.Plan) store.ApplyBatchParams {
	evs := []event.Event{f.submit(id, p, "k-"+id), f.ev(event.TypeRunStarted, id, "", 0)}
	var logs []event.LogBatch
	for _, pt := range p.Tasks {
		evs = append(evs,
			f.ev(event.TypeTaskDispatched, id, pt.Name, 1),
			f.ev(event.TypeTaskStarted, id, pt.Name, 1),
			f.ev(event.TypeTaskSucceeded, id, pt.Name, 1))
		logs = append(logs, event.LogBatch{V: event.SchemaVersion, RunID: id, Task: pt.Name, Attempt: 1, Lines: []event.LogLine{
			{Seq: 1, Stream: event.Stdout, Line: "hello from " + pt.Name, Time: f.now()},
			{Seq: 2, Stream: event.Stderr, Line: "warning from " + pt.Name, Time: f.now()},
		}})
	}
	evs = append(evs, f.finished(id, event.RunSuccess, ""))
	return store.ApplyBatchParams{
		Events: evs,
		Logs:   logs,
		DeadLetters: []store.DeadLetter{{
			Stream: event.StreamEvents, Seq: 42, Subject: event.SubjectEvent("bogus", "run"), Reason: "undecodable",
			Data: []byte("not json"), CreatedAt: f.now(),
		}},
	}
}

func testReplayBatch(t *testing.T, f *fixture) {
	id := runID()
	batch := f.lifecycleBatch(id, diamond("etl"))
	res1 := f.apply(batch)
	first := f.snapshot(id)
	res2 := f.apply(batch)
	f.equalSnapshots(first, f.snapshot(id))
	wantDeep(t, "FinishedRuns (first)", res1.FinishedRuns, []string{id})
	wantDeep(t, "FinishedRuns (replay)", res2.FinishedRuns, []string{id})
	if len(res1.Orphans)+len(res2.Orphans) != 0 {
		t.Errorf("orphans = %v / %v, want none", eventIDs(res1.Orphans), eventIDs(res2.Orphans))
	}

	r := first.Runs[0]
	wantEq(t, "run.Status", r.Status, event.RunSuccess)
	for _, tk := range first.Tasks[0] {
		wantEq(t, tk.Name+".Status", tk.Status, event.TaskSuccess)
		wantEq(t, tk.Name+".Attempt", tk.Attempt, 1)
	}
	var attemptTasks []string
	for _, a := range first.Attempts[0] {
		attemptTasks = append(attemptTasks, a.Task)
	}
	wantDeep(t, "attempts in task index order", attemptTasks, []string{"report", "fetch", "left", "right"})
	wantEq(t, "log lines", len(first.Logs[0]), 8)
	wantEq(t, "dead letters", len(first.DeadLetters), 1)

	// Replaying the events one by one, in separate batches, changes nothing either.
	for _, e := range batch.Events {
		f.events(e)
	}
	f.equalSnapshots(first, f.snapshot(id))
}

func testTaskLifecycle(t *testing.T, f *fixture) {
	id := runID()
	f.events(f.submit(id, diamond("etl"), ""))

	d := f.ev(event.TypeTaskDispatched, id, "fetch", 1)
	f.events(d)
	tk := f.task(id, "fetch")
	wantEq(t, "status after dispatch", tk.Status, event.TaskDispatched)
	wantEq(t, "attempt after dispatch", tk.Attempt, 1)

	st := f.ev(event.TypeTaskStarted, id, "fetch", 1)
	f.events(st)
	tk = f.task(id, "fetch")
	wantEq(t, "status after start", tk.Status, event.TaskRunning)
	wantTime(t, "StartedAt", tk.StartedAt, &st.Time)
	wantTime(t, "FinishedAt while running", tk.FinishedAt, nil)

	ok := f.ev(event.TypeTaskSucceeded, id, "fetch", 1)
	f.events(ok)
	tk = f.task(id, "fetch")
	wantEq(t, "status after success", tk.Status, event.TaskSuccess)
	wantJSON(t, "Output", tk.Output, ok.Output)
	wantTime(t, "StartedAt after success", tk.StartedAt, &st.Time)
	wantTime(t, "FinishedAt", tk.FinishedAt, &ok.Time)

	as := f.attempts(id, "fetch")
	if len(as) != 1 {
		t.Fatalf("attempts = %+v, want 1", as)
	}
	a := as[0]
	wantEq(t, "attempt.RunID", a.RunID, id)
	wantEq(t, "attempt.Task", a.Task, "fetch")
	wantEq(t, "attempt.Attempt", a.Attempt, 1)
	wantEq(t, "attempt.Status", a.Status, event.TaskSuccess)
	wantEq(t, "attempt.Instance", a.Instance, ok.Instance)
	if a.ExitCode == nil || *a.ExitCode != 0 {
		t.Errorf("attempt.ExitCode = %v, want 0", a.ExitCode)
	}
	wantEq(t, "attempt.DurationMS", a.DurationMS, ok.DurationMS)
	wantTime(t, "attempt.DispatchedAt", a.DispatchedAt, &d.Time)
	wantTime(t, "attempt.StartedAt", a.StartedAt, &st.Time)
	wantTime(t, "attempt.FinishedAt", a.FinishedAt, &ok.Time)

	// The other tasks are untouched.
	for _, name := range []string{"report", "left", "right"} {
		wantEq(t, name+".Status", f.task(id, name).Status, event.TaskPending)
	}
}

func testTaskForwardOnly(t *testing.T, f *fixture) {
	id := runID()
	f.events(f.submit(id, diamond("etl"), ""))

	// Out of order within one batch: success, then the attempt's own dispatch and start.
	ok := f.ev(event.TypeTaskSucceeded, id, "fetch", 1)
	d := f.ev(event.TypeTaskDispatched, id, "fetch", 1)
	st := f.ev(event.TypeTaskStarted, id, "fetch", 1)
	f.events(ok, d, st)
	tk := f.task(id, "fetch")
	wantEq(t, "fetch.Status", tk.Status, event.TaskSuccess)
	wantEq(t, "fetch.Attempt", tk.Attempt, 1)
	wantJSON(t, "fetch.Output", tk.Output, ok.Output)
	wantTime(t, "fetch.FinishedAt", tk.FinishedAt, &ok.Time)
	as := f.attempts(id, "fetch")
	if len(as) != 1 || as[0].Status != event.TaskSuccess {
		t.Fatalf("fetch attempts = %+v, want one success", as)
	}
	// The late events still fill the attempt's times.
	wantTime(t, "fetch attempt DispatchedAt", as[0].DispatchedAt, &d.Time)
	wantTime(t, "fetch attempt StartedAt", as[0].StartedAt, &st.Time)
	wantTime(t, "fetch attempt FinishedAt", as[0].FinishedAt, &ok.Time)

	// Out of order across batches: running, then a late dispatched; then failed, then a late start.
	f.events(f.ev(event.TypeTaskStarted, id, "left", 1))
	f.events(f.ev(event.TypeTaskDispatched, id, "left", 1))
	wantEq(t, "left.Status after late dispatch", f.task(id, "left").Status, event.TaskRunning)
	fail := f.ev(event.TypeTaskFailed, id, "left", 1)
	f.events(fail)
	f.events(f.ev(event.TypeTaskStarted, id, "left", 1))
	f.events(f.ev(event.TypeTaskSucceeded, id, "left", 1))
	tk = f.task(id, "left")
	wantEq(t, "left.Status", tk.Status, event.TaskFailed)
	wantEq(t, "left.Error", tk.Error, fail.Error)
	wantEq(t, "left.Reason", tk.Reason, event.ReasonExit)
	as = f.attempts(id, "left")
	if len(as) != 1 {
		t.Fatalf("left attempts = %+v, want 1", as)
	}
	wantEq(t, "left attempt status", as[0].Status, event.TaskFailed)
	wantEq(t, "left attempt error", as[0].Error, fail.Error)
	if as[0].ExitCode == nil || *as[0].ExitCode != 3 {
		t.Errorf("left attempt exit code = %v, want 3", as[0].ExitCode)
	}
}

func testRunForwardOnly(t *testing.T, f *fixture) {
	id := runID()
	f.events(f.submit(id, diamond("etl"), ""))

	st := f.ev(event.TypeRunStarted, id, "", 0)
	f.events(st)
	r := f.run(id)
	wantEq(t, "status after start", r.Status, event.RunRunning)
	wantTime(t, "StartedAt", r.StartedAt, &st.Time)

	// A replayed start changes nothing.
	f.events(f.ev(event.TypeRunStarted, id, "", 0))
	wantTime(t, "StartedAt after a replayed start", f.run(id).StartedAt, &st.Time)

	fin := f.finished(id, event.RunSuccess, "")
	f.events(fin)
	// Late and contradicting events change nothing once the run is terminal.
	f.events(f.ev(event.TypeRunStarted, id, "", 0))
	f.events(f.finished(id, event.RunFailed, "too late"))
	r = f.run(id)
	wantEq(t, "status", r.Status, event.RunSuccess)
	wantEq(t, "error", r.Error, "")
	wantTime(t, "FinishedAt", r.FinishedAt, &fin.Time)

	// run.started after run.finished, in one batch, on a fresh run.
	id2 := runID()
	f.events(f.submit(id2, diamond("etl"), ""))
	fin2 := f.finished(id2, event.RunFailed, "boom")
	f.events(fin2, f.ev(event.TypeRunStarted, id2, "", 0))
	r = f.run(id2)
	wantEq(t, "run2.Status", r.Status, event.RunFailed)
	wantEq(t, "run2.Error", r.Error, "boom")
	wantTime(t, "run2.FinishedAt", r.FinishedAt, &fin2.Time)
}

func testAttemptFencing(t *testing.T, f *fixture) {
	id := runID()
	f.events(f.submit(id, diamond("etl"), ""))
	f.events(f.ev(event.TypeTaskDispatched, id, "fetch", 1), f.ev(event.TypeTaskStarted, id, "fetch", 1))
	// The reconciler gives up on attempt 1 and dispatches attempt 2.
	d2 := f.ev(event.TypeTaskDispatched, id, "fetch", 2)
	f.events(d2)
	// Attempt 1 succeeds late: recorded in its attempt row, not applied to the task.
	late := f.ev(event.TypeTaskSucceeded, id, "fetch", 1)
	res := f.events(late)
	if len(res.Orphans) != 0 {
		t.Errorf("a fenced event is not an orphan; orphans = %v", eventIDs(res.Orphans))
	}
	tk := f.task(id, "fetch")
	wantEq(t, "task.Attempt", tk.Attempt, 2)
	wantEq(t, "task.Status", tk.Status, event.TaskDispatched)
	wantJSON(t, "task.Output", tk.Output, nil)
	wantTime(t, "task.FinishedAt", tk.FinishedAt, nil)

	as := f.attempts(id, "fetch")
	if len(as) != 2 {
		t.Fatalf("attempts = %+v, want 2", as)
	}
	wantEq(t, "attempts[0].Attempt", as[0].Attempt, 1)
	wantEq(t, "attempts[0].Status", as[0].Status, event.TaskSuccess)
	wantTime(t, "attempts[0].FinishedAt", as[0].FinishedAt, &late.Time)
	wantEq(t, "attempts[1].Attempt", as[1].Attempt, 2)
	wantEq(t, "attempts[1].Status", as[1].Status, event.TaskDispatched)
	wantTime(t, "attempts[1].DispatchedAt", as[1].DispatchedAt, &d2.Time)

	// An older attempt never moves the task, whatever its status.
	f.events(f.ev(event.TypeTaskFailed, id, "fetch", 1), f.ev(event.TypeTaskDispatched, id, "fetch", 1))
	wantEq(t, "task.Attempt after more stale events", f.task(id, "fetch").Attempt, 2)
	wantEq(t, "task.Status after more stale events", f.task(id, "fetch").Status, event.TaskDispatched)
	wantEq(t, "attempt 1 after stale failure", f.attempts(id, "fetch")[0].Status, event.TaskSuccess)
}

func testRetries(t *testing.T, f *fixture) {
	id := runID()
	f.events(f.submit(id, diamond("etl"), ""))
	fail := f.ev(event.TypeTaskFailed, id, "fetch", 1)
	f.events(f.ev(event.TypeTaskDispatched, id, "fetch", 1), f.ev(event.TypeTaskStarted, id, "fetch", 1), fail)
	tk := f.task(id, "fetch")
	wantEq(t, "status after attempt 1", tk.Status, event.TaskFailed)
	wantEq(t, "error after attempt 1", tk.Error, fail.Error)

	d2 := f.ev(event.TypeTaskDispatched, id, "fetch", 2)
	f.events(d2)
	tk = f.task(id, "fetch")
	wantEq(t, "status after retry dispatch", tk.Status, event.TaskDispatched)
	wantEq(t, "attempt after retry dispatch", tk.Attempt, 2)
	wantEq(t, "error cleared by the new attempt", tk.Error, "")
	wantEq(t, "reason cleared by the new attempt", tk.Reason, "")
	wantTime(t, "FinishedAt cleared by the new attempt", tk.FinishedAt, nil)
	wantTime(t, "StartedAt cleared by the new attempt", tk.StartedAt, nil)

	st2 := f.ev(event.TypeTaskStarted, id, "fetch", 2)
	ok2 := f.ev(event.TypeTaskSucceeded, id, "fetch", 2)
	f.events(st2, ok2)
	tk = f.task(id, "fetch")
	wantEq(t, "final status", tk.Status, event.TaskSuccess)
	wantEq(t, "final attempt", tk.Attempt, 2)
	wantJSON(t, "final output", tk.Output, ok2.Output)
	wantTime(t, "final StartedAt", tk.StartedAt, &st2.Time)
	wantTime(t, "final FinishedAt", tk.FinishedAt, &ok2.Time)

	as := f.attempts(id, "fetch")
	if len(as) != 2 {
		t.Fatalf("attempts = %+v, want 2", as)
	}
	wantEq(t, "attempt 1 status", as[0].Status, event.TaskFailed)
	wantEq(t, "attempt 1 reason", as[0].Reason, event.ReasonExit)
	wantEq(t, "attempt 1 duration", as[0].DurationMS, fail.DurationMS)
	wantEq(t, "attempt 2 status", as[1].Status, event.TaskSuccess)
	wantEq(t, "attempt 2 error", as[1].Error, "")

	// A retry may also skip straight to a terminal event of a newer attempt (its dispatch lost).
	ok3 := f.ev(event.TypeTaskSucceeded, id, "left", 3)
	f.events(ok3)
	tk = f.task(id, "left")
	wantEq(t, "left.Attempt", tk.Attempt, 3)
	wantEq(t, "left.Status", tk.Status, event.TaskSuccess)
}

func testSkippedCancelled(t *testing.T, f *fixture) {
	id := runID()
	f.events(f.submit(id, diamond("etl"), ""))
	f.events(
		f.ev(event.TypeTaskDispatched, id, "fetch", 1), f.ev(event.TypeTaskStarted, id, "fetch", 1),
		f.ev(event.TypeTaskFailed, id, "fetch", 1),
	)
	sk := f.ev(event.TypeTaskSkipped, id, "left", 0)
	f.events(sk)
	tk := f.task(id, "left")
	wantEq(t, "left.Status", tk.Status, event.TaskSkipped)
	wantEq(t, "left.Attempt", tk.Attempt, 0)
	wantEq(t, "left.Reason", tk.Reason, event.ReasonUpstreamFailed)
	if as := f.attempts(id, "left"); len(as) != 0 {
		t.Errorf("a skipped task that never ran has no attempts; got %+v", as)
	}
	// Replaying the skip changes nothing.
	f.events(f.ev(event.TypeTaskSkipped, id, "left", 0))
	wantEq(t, "left.Status after replay", f.task(id, "left").Status, event.TaskSkipped)

	f.events(f.ev(event.TypeTaskDispatched, id, "right", 1), f.ev(event.TypeTaskStarted, id, "right", 1))
	cancel := f.ev(event.TypeTaskCancelled, id, "right", 1)
	cancel.Reason = "cancelled by user"
	f.events(cancel)
	tk = f.task(id, "right")
	wantEq(t, "right.Status", tk.Status, event.TaskCancelled)
	wantTime(t, "right.FinishedAt", tk.FinishedAt, &cancel.Time)
	as := f.attempts(id, "right")
	if len(as) != 1 || as[0].Status != event.TaskCancelled {
		t.Errorf("right attempts = %+v, want one cancelled", as)
	}
	// A success arriving after the cancel of the same attempt does not replace it.
	f.events(f.ev(event.TypeTaskSucceeded, id, "right", 1))
	wantEq(t, "right.Status after late success", f.task(id, "right").Status, event.TaskCancelled)

	// A pending task cancelled before dispatch (attempt 0).
	f.events(f.ev(event.TypeTaskCancelled, id, "report", 0))
	tk = f.task(id, "report")
	wantEq(t, "report.Status", tk.Status, event.TaskCancelled)
	wantEq(t, "report.Attempt", tk.Attempt, 0)
}

func testRunFinishedError(t *testing.T, f *fixture) {
	id := runID()
	f.events(f.submit(id, diamond("etl"), ""))
	st := f.ev(event.TypeRunStarted, id, "", 0)
	fin := f.finished(id, event.RunFailed, "task fetch failed: exit status 3")
	res := f.events(st, fin)
	wantDeep(t, "FinishedRuns", res.FinishedRuns, []string{id})
	r := f.run(id)
	wantEq(t, "Status", r.Status, event.RunFailed)
	wantEq(t, "Error", r.Error, fin.Error)
	wantTime(t, "StartedAt", r.StartedAt, &st.Time)
	wantTime(t, "FinishedAt", r.FinishedAt, &fin.Time)
	for _, tk := range f.tasks(id) {
		wantEq(t, tk.Name+".RunStatus", tk.RunStatus, event.RunFailed)
	}
	cancelled := f.finished(id, event.RunCancelled, "")
	f.events(cancelled)
	wantEq(t, "Status after a second finish", f.run(id).Status, event.RunFailed)
}

func testFinishedRuns(t *testing.T, f *fixture) {
	a, b, c := runID(), runID(), runID()
	p := diamond("etl")
	f.events(f.submit(a, p, ""), f.submit(b, p, ""), f.submit(c, p, ""))
	unknown := runID()
	res := f.events(
		f.finished(a, event.RunSuccess, ""),
		f.ev(event.TypeRunStarted, c, "", 0),
		f.finished(b, event.RunCancelled, ""),
		f.finished(unknown, event.RunSuccess, ""),
	)
	wantDeep(t, "FinishedRuns", sorted(res.FinishedRuns), sorted([]string{a, b}))
	if len(res.Orphans) != 1 || res.Orphans[0].RunID != unknown {
		t.Errorf("orphans = %+v, want the unknown run's finish", res.Orphans)
	}
	// A replayed run.finished is reported again, so a recorder that crashed before announcing it
	// announces it on redelivery. Twice in one batch is reported once.
	res = f.events(f.finished(a, event.RunSuccess, ""), f.finished(a, event.RunSuccess, ""))
	wantDeep(t, "FinishedRuns on replay", res.FinishedRuns, []string{a})
	res = f.events(f.ev(event.TypeRunStarted, c, "", 0))
	if len(res.FinishedRuns) != 0 {
		t.Errorf("FinishedRuns without a finish = %v, want none", res.FinishedRuns)
	}
}

func testOrphans(t *testing.T, f *fixture) {
	id := runID()
	f.events(f.submit(id, diamond("etl"), ""))
	ghost := runID()
	o1 := f.ev(event.TypeRunStarted, ghost, "", 0)
	o2 := f.ev(event.TypeTaskStarted, ghost, "fetch", 1)
	o3 := f.ev(event.TypeTaskSucceeded, id, "no-such-task", 1)
	good := f.ev(event.TypeTaskDispatched, id, "fetch", 1)
	res := f.events(o1, good, o2, o3)
	wantDeep(t, "orphans", eventIDs(res.Orphans), eventIDs([]event.Event{o1, o2, o3}))
	wantEq(t, "known task applied", f.task(id, "fetch").Status, event.TaskDispatched)
	if _, err := f.s.RunGet(f.ctx, store.RunGetParams{ID: ghost}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RunGet(orphan run) error = %v, want ErrNotFound", err)
	}
	if as := f.attempts(id, "no-such-task"); len(as) != 0 {
		t.Errorf("attempts of an unknown task = %+v, want none", as)
	}
	if as := f.attempts(ghost, ""); len(as) != 0 {
		t.Errorf("attempts of an unknown run = %+v, want none", as)
	}

	// Events before their run's submission in the same batch are orphans; after it they apply.
	late := runID()
	early := f.ev(event.TypeTaskDispatched, late, "fetch", 1)
	sub := f.submit(late, diamond("etl"), "")
	after := f.ev(event.TypeTaskStarted, late, "fetch", 1)
	res = f.events(early, sub, after)
	wantDeep(t, "orphans before submission", eventIDs(res.Orphans), eventIDs([]event.Event{early}))
	wantEq(t, "event after submission applied", f.task(late, "fetch").Status, event.TaskRunning)
}

// logBatch builds a log batch with the given sequence numbers.
func (f *fixture) logBatch(id, taskName string, attempt int, seqs ...int64) event.LogBatch {
	b := event.LogBatch{V: event.SchemaVersion, RunID: id, Task: taskName, Attempt: attempt}
	for _, s := range seqs {
		stream := event.Stdout
		if s%2 == 0 {
			stream = event.Stderr
		}
		b.Lines = append(b.Lines, event.LogLine{
			Seq: s, Stream: stream, Line: fmt.Sprintf("%s/%d line %d", taskName, attempt, s), Time: f.now(),
		})
	}
	return b
}

func testLogs(t *testing.T, f *fixture) {
	id := runID()
	f.events(f.submit(id, diamond("etl"), ""))
	// Out of order: a later task first, attempt 2 before attempt 1, seqs reversed; overlaps replayed.
	first := f.logBatch(id, "left", 1, 3, 1, 2)
	f.apply(store.ApplyBatchParams{Logs: []event.LogBatch{
		first,
		f.logBatch(id, "fetch", 2, 1, 2),
		f.logBatch(id, "fetch", 1, 2, 3),
	}})
	replay := first
	replay.Lines = append([]event.LogLine(nil), first.Lines...)
	replay.Lines[0].Line = "a replay never overwrites"
	f.apply(store.ApplyBatchParams{Logs: []event.LogBatch{
		replay,
		f.logBatch(id, "fetch", 1, 1, 2),
		f.logBatch(id, "report", 1, 1),
	}})

	got := f.logs(store.LogListParams{RunID: id})
	type key struct {
		task    string
		attempt int
		seq     int64
	}
	want := []key{
		{"report", 1, 1},
		{"fetch", 1, 1}, {"fetch", 1, 2}, {"fetch", 1, 3},
		{"fetch", 2, 1}, {"fetch", 2, 2},
		{"left", 1, 1}, {"left", 1, 2}, {"left", 1, 3},
	}
	var keys []key
	for _, l := range got {
		keys = append(keys, key{l.Task, l.Attempt, l.Seq})
		wantEq(t, "line.RunID", l.RunID, id)
		wantEq(t, "line.Line", l.Line, fmt.Sprintf("%s/%d line %d", l.Task, l.Attempt, l.Seq))
		wantStream := event.Stdout
		if l.Seq%2 == 0 {
			wantStream = event.Stderr
		}
		wantEq(t, "line.Stream", l.Stream, wantStream)
	}
	wantDeep(t, "log order", keys, want)
	// The stored time of the first left line is the one of its first write.
	for _, l := range got {
		if l.Task == "left" && l.Seq == 3 {
			wantTime(t, "line.Time", &l.Time, &first.Lines[0].Time)
		}
	}

	one := f.logs(store.LogListParams{RunID: id, Task: "fetch"})
	wantEq(t, "lines of fetch", len(one), 5)
	for _, l := range one {
		wantEq(t, "task filter", l.Task, "fetch")
	}
	// One attempt: seqs restart with each attempt, so paging is per (task, attempt).
	second := f.logs(store.LogListParams{RunID: id, Task: "fetch", Attempt: 2})
	wantEq(t, "lines of fetch#2", len(second), 2)
	for _, l := range second {
		wantEq(t, "attempt filter", l.Attempt, 2)
	}
	after := f.logs(store.LogListParams{RunID: id, Task: "fetch", Attempt: 1, AfterSeq: 1})
	wantEq(t, "lines of fetch#1 after seq 1", len(after), 2)
}

func testLogsPaging(t *testing.T, f *fixture) {
	id := runID()
	f.events(f.submit(id, diamond("etl"), ""))
	seqs := make([]int64, 0, 25)
	for i := int64(25); i >= 1; i-- {
		seqs = append(seqs, i)
	}
	f.apply(store.ApplyBatchParams{Logs: []event.LogBatch{f.logBatch(id, "fetch", 1, seqs...), f.logBatch(id, "left", 1, 1, 2)}})

	var got []int64
	after := int64(0)
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		page := f.logs(store.LogListParams{RunID: id, Task: "fetch", AfterSeq: after, Limit: 10})
		if len(page) > 10 {
			t.Fatalf("page of %d lines, limit 10", len(page))
		}
		if len(page) == 0 {
			break
		}
		for _, l := range page {
			got = append(got, l.Seq)
		}
		after = page[len(page)-1].Seq
	}
	want := make([]int64, 0, 25)
	for i := int64(1); i <= 25; i++ {
		want = append(want, i)
	}
	wantDeep(t, "paged seqs", got, want)
	wantEq(t, "lines after 20", len(f.logs(store.LogListParams{RunID: id, Task: "fetch", AfterSeq: 20})), 5)

	// AfterSeq 0 filters nothing, not even a misnumbered line of seq 0 (storecheck looks for those).
	f.apply(store.ApplyBatchParams{Logs: []event.LogBatch{f.logBatch(id, "right", 1, 0, 1)}})
	wantEq(t, "lines of right with a seq 0", len(f.logs(store.LogListParams{RunID: id, Task: "right"})), 2)
}

func testLogsBeforeRun(t *testing.T, f *fixture) {
	id := runID()
	// Log lines may be recorded before the run's submission is.
	f.apply(store.ApplyBatchParams{Logs: []event.LogBatch{f.logBatch(id, "fetch", 1, 1, 2)}})
	wantEq(t, "lines before the run exists", len(f.logs(store.LogListParams{RunID: id})), 2)
	f.events(f.submit(id, diamond("etl"), ""))
	f.apply(store.ApplyBatchParams{Logs: []event.LogBatch{f.logBatch(id, "report", 1, 1)}})
	got := f.logs(store.LogListParams{RunID: id})
	if len(got) != 3 || got[0].Task != "report" {
		t.Errorf("lines = %+v, want 3 with report first", got)
	}
}

func testDeadLetters(t *testing.T, f *fixture) {
	dl := func(stream string, seq uint64) store.DeadLetter {
		return store.DeadLetter{
			Stream: stream, Seq: seq, Subject: event.SubjectEvent("x", fmt.Sprint(seq)), Reason: "bad " + fmt.Sprint(seq),
			Data: []byte{0, 1, 2, 0xff, byte(seq)}, CreatedAt: f.now(),
		}
	}
	a, b, c := dl(event.StreamEvents, 1), dl(event.StreamEvents, 2), dl(event.StreamLogs, 1)
	f.apply(store.ApplyBatchParams{DeadLetters: []store.DeadLetter{a, b}})
	replayed := a
	replayed.Reason = "a replay never overwrites"
	f.apply(store.ApplyBatchParams{DeadLetters: []store.DeadLetter{replayed, c, b}})

	got := f.deadLetters(0)
	if len(got) != 3 {
		t.Fatalf("dead letters = %+v, want 3", got)
	}
	for i, want := range []store.DeadLetter{a, b, c} {
		g := got[i]
		wantEq(t, fmt.Sprintf("[%d].Stream", i), g.Stream, want.Stream)
		wantEq(t, fmt.Sprintf("[%d].Seq", i), g.Seq, want.Seq)
		wantEq(t, fmt.Sprintf("[%d].Subject", i), g.Subject, want.Subject)
		wantEq(t, fmt.Sprintf("[%d].Reason", i), g.Reason, want.Reason)
		wantDeep(t, fmt.Sprintf("[%d].Data", i), g.Data, want.Data)
		wantTime(t, fmt.Sprintf("[%d].CreatedAt", i), &g.CreatedAt, &want.CreatedAt)
	}
	wantEq(t, "limited", len(f.deadLetters(2)), 2)
	wantEq(t, "limited first", f.deadLetters(2)[0].Seq, uint64(1))

	// A dead letter without a time gets one.
	f.apply(store.ApplyBatchParams{DeadLetters: []store.DeadLetter{{Stream: event.StreamTasks, Seq: 9, Reason: "x"}}})
	got = f.deadLetters(0)
	if len(got) != 4 || got[3].CreatedAt.IsZero() {
		t.Errorf("dead letters = %+v, want a fourth with a time", got)
	}

	// The default limit is 100.
	var many []store.DeadLetter
	for i := range 110 {
		many = append(many, dl(event.StreamLogs, uint64(100+i)))
	}
	f.apply(store.ApplyBatchParams{DeadLetters: many})
	wantEq(t, "default limit", len(f.deadLetters(0)), 100)
	wantEq(t, "larger limit", len(f.deadLetters(500)), 114)
}

func testRunList(t *testing.T, f *fixture) {
	etl, ml := diamond("etl"), plan("ml", "train", task("train", 0))
	ids := []string{runID(), runID(), runID(), runID()}
	// Submitted in time order: etl, ml, etl, ml; the last etl one is finished.
	f.events(f.submit(ids[0], etl, ""))
	withParams := f.submit(ids[1], ml, "")
	withParams.Params = json.RawMessage(`{"epochs":3}`)
	f.events(withParams)
	f.events(f.submit(ids[2], etl, ""))
	f.events(f.submit(ids[3], ml, ""))
	f.events(f.ev(event.TypeRunStarted, ids[2], "", 0), f.finished(ids[2], event.RunSuccess, ""))

	list := func(p store.RunListParams) []string {
		var out []string
		for _, r := range f.runs(p) {
			out = append(out, r.ID)
		}
		return out
	}
	wantDeep(t, "all", list(store.RunListParams{}), []string{ids[3], ids[2], ids[1], ids[0]})
	for _, r := range f.runs(store.RunListParams{}) {
		if r.ID == ids[1] {
			wantJSON(t, "listed run.Params", r.Params, withParams.Params)
		} else if r.Params != nil {
			t.Errorf("run %s without params lists params %s", r.ID, r.Params)
		}
	}
	wantDeep(t, "etl", list(store.RunListParams{Workflow: "etl"}), []string{ids[2], ids[0]})
	wantDeep(t, "pending", list(store.RunListParams{Status: event.RunPending}), []string{ids[3], ids[1], ids[0]})
	wantDeep(t, "etl success", list(store.RunListParams{Workflow: "etl", Status: event.RunSuccess}), []string{ids[2]})
	wantDeep(t, "limit 2", list(store.RunListParams{Limit: 2}), []string{ids[3], ids[2]})
	wantDeep(t, "unknown workflow", list(store.RunListParams{Workflow: "nope"}), []string(nil))

	for _, r := range f.runs(store.RunListParams{}) {
		want := "etl"
		if r.ID == ids[1] || r.ID == ids[3] {
			want = "ml"
		}
		wantEq(t, "Workflow of "+r.ID, r.Workflow, want)
		if r.ID == ids[2] {
			wantEq(t, "Status", r.Status, event.RunSuccess)
			if r.FinishedAt == nil || r.StartedAt == nil {
				t.Errorf("finished run in list lacks times: %+v", r)
			}
		}
	}

	// The default limit is 50.
	var evs []event.Event
	for i := 0; i < 55; i++ {
		evs = append(evs, f.submit(runID(), ml, ""))
	}
	f.events(evs...)
	wantEq(t, "default limit", len(f.runs(store.RunListParams{})), 50)
}

func testRunListIDPrefix(t *testing.T, f *fixture) {
	etl, ml := diamond("etl"), plan("ml", "train", task("train", 0))
	// Ids that a LIKE pattern would confuse: % and _ are wildcards, \ the escape character, and
	// SQLite's LIKE ignores case.
	ids := []string{"pre1-a", "pre1-b", "pre2-a", "PRE1-c", "p%e-1", "p_e-1", "pxe-1", `p\e-1`, "pe-1"}
	for i, id := range ids {
		p := etl
		if i%2 == 1 {
			p = ml
		}
		f.events(f.submit(id, p, ""))
	}
	f.events(f.ev(event.TypeRunStarted, "pre1-a", "", 0), f.finished("pre1-a", event.RunFailed, "boom"))

	list := func(p store.RunListParams) []string {
		var out []string
		for _, r := range f.runs(p) {
			out = append(out, r.ID)
		}
		return out
	}
	wantDeep(t, "pre1", list(store.RunListParams{IDPrefix: "pre1"}), []string{"pre1-b", "pre1-a"})
	wantDeep(t, "pre", list(store.RunListParams{IDPrefix: "pre"}), []string{"pre2-a", "pre1-b", "pre1-a"})
	wantDeep(t, "whole id", list(store.RunListParams{IDPrefix: "pre1-a"}), []string{"pre1-a"})
	wantDeep(t, "case-sensitive", list(store.RunListParams{IDPrefix: "PRE"}), []string{"PRE1-c"})
	wantDeep(t, "% is literal", list(store.RunListParams{IDPrefix: "p%"}), []string{"p%e-1"})
	wantDeep(t, "_ is literal", list(store.RunListParams{IDPrefix: "p_"}), []string{"p_e-1"})
	wantDeep(t, `\ is literal`, list(store.RunListParams{IDPrefix: `p\e`}), []string{`p\e-1`})
	wantDeep(t, "no match", list(store.RunListParams{IDPrefix: "zzz"}), []string(nil))
	wantDeep(t, "longer than every id", list(store.RunListParams{IDPrefix: "pre1-a-"}), []string(nil))
	wantDeep(t, "with limit", list(store.RunListParams{IDPrefix: "pre", Limit: 2}), []string{"pre2-a", "pre1-b"})
	wantDeep(t, "with workflow", list(store.RunListParams{IDPrefix: "pre", Workflow: "etl"}), []string{"pre2-a", "pre1-a"})
	wantDeep(t, "with status", list(store.RunListParams{IDPrefix: "pre", Status: event.RunFailed}), []string{"pre1-a"})
}

func testTaskList(t *testing.T, f *fixture) {
	a, b := runID(), runID()
	f.events(f.submit(a, diamond("etl"), ""), f.submit(b, plan("ml", "", task("train", 0)), ""))
	f.events(f.ev(event.TypeRunStarted, a, "", 0))
	ts := f.tasks(a)
	wantEq(t, "tasks of a", len(ts), 4)
	for _, tk := range ts {
		wantEq(t, "Workflow", tk.Workflow, "etl")
		wantEq(t, "RunStatus", tk.RunStatus, event.RunRunning)
		wantEq(t, "RunID", tk.RunID, a)
	}
	ts = f.tasks(b)
	if len(ts) != 1 || ts[0].Workflow != "ml" || ts[0].RunStatus != event.RunPending {
		t.Errorf("tasks of b = %+v", ts)
	}
	if ts := f.tasks(runID()); len(ts) != 0 {
		t.Errorf("tasks of an unknown run = %+v, want none", ts)
	}
}

func testWorkflowList(t *testing.T, f *fixture) {
	if ws := f.workflows(store.WorkflowListParams{}); len(ws) != 0 {
		t.Fatalf("workflows of an empty store = %+v", ws)
	}
	var evs []event.Event
	for _, name := range []string{"zeta", "alpha", "mid"} {
		evs = append(evs, f.submit(runID(), diamond(name), ""))
	}
	evs = append(evs, f.submit(runID(), diamond("alpha"), ""), f.submit(runID(), diamond("alpha"), ""))
	f.events(evs...)
	ws := f.workflows(store.WorkflowListParams{})
	var names []string
	counts := map[string]int{}
	for _, w := range ws {
		names = append(names, w.Name)
		counts[w.Name] = w.RunCount
	}
	wantDeep(t, "names", names, []string{"alpha", "mid", "zeta"})
	wantDeep(t, "counts", counts, map[string]int{"alpha": 3, "mid": 1, "zeta": 1})
	wantEq(t, "limit", len(f.workflows(store.WorkflowListParams{Limit: 2})), 2)
}

func testWorkflowVersionGet(t *testing.T, f *fixture) {
	p := diamond("etl")
	f.events(f.submit(runID(), p, ""))
	v, err := f.s.WorkflowVersionGet(f.ctx, store.WorkflowVersionGetParams{Hash: p.Hash})
	if err != nil {
		t.Fatalf("WorkflowVersionGet: %v", err)
	}
	wantEq(t, "Workflow", v.Workflow, "etl")
	if v.CreatedAt.IsZero() {
		t.Error("version CreatedAt is zero")
	}
	var got workflow.Plan
	if err := json.Unmarshal(v.Plan, &got); err != nil {
		t.Fatalf("plan does not decode: %v", err)
	}
	wantDeep(t, "plan", &got, p)
	_, err = f.s.WorkflowVersionGet(f.ctx, store.WorkflowVersionGetParams{Hash: "feedbeef"})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown hash error = %v, want ErrNotFound", err)
	}
}

func testNotFound(t *testing.T, f *fixture) {
	_, err := f.s.RunGet(f.ctx, store.RunGetParams{ID: runID()})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RunGet(unknown) error = %v, want ErrNotFound", err)
	}
	if err == nil || err.Error() == store.ErrNotFound.Error() {
		t.Errorf("RunGet(unknown) error %v should name what was not found", err)
	}
	if as := f.attempts(runID(), ""); len(as) != 0 {
		t.Errorf("attempts of an unknown run = %+v", as)
	}
	if ls := f.logs(store.LogListParams{RunID: runID()}); len(ls) != 0 {
		t.Errorf("logs of an unknown run = %+v", ls)
	}
}

func testEmptyBatch(t *testing.T, f *fixture) {
	res := f.apply(store.ApplyBatchParams{})
	if len(res.Orphans) != 0 || len(res.FinishedRuns) != 0 {
		t.Errorf("empty batch result = %+v", res)
	}
	// A cancelled context fails the batch and writes nothing.
	ctx, cancel := contextCancelled(f)
	defer cancel()
	id := runID()
	if _, err := f.s.ApplyBatch(ctx, store.ApplyBatchParams{Events: []event.Event{f.submit(id, diamond("etl"), "")}}); err == nil {
		t.Error("ApplyBatch with a cancelled context succeeded")
	}
	if _, err := f.s.RunGet(f.ctx, store.RunGetParams{ID: id}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("run of a failed batch: error = %v, want ErrNotFound", err)
	}
}
