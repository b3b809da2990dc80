package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/ork-go/ork/pkg/event"
)

// wantRun checks a run's status, and its start and finish times against those of the given events
// (nil means unset).
func (f *fixture) wantRun(what, id, status string, started, finished *event.Event) {
	f.t.Helper()
	r := f.run(id)
	wantEq(f.t, what+": run.Status", r.Status, status)
	wantTime(f.t, what+": run.StartedAt", r.StartedAt, eventTime(started))
	wantTime(f.t, what+": run.FinishedAt", r.FinishedAt, eventTime(finished))
}

// eventTime returns the time of e, nil for no event.
func eventTime(e *event.Event) *time.Time {
	if e == nil {
		return nil
	}
	return &e.Time
}

func testPauseResume(t *testing.T, f *fixture) {
	id := runID()
	f.events(f.submit(id, diamond("etl"), ""))

	// A pending run may be paused before it starts; resuming it starts it.
	p1 := f.ev(event.TypeRunPaused, id, "", 0)
	res := f.events(p1)
	if len(res.Orphans) != 0 || len(res.FinishedRuns) != 0 {
		t.Fatalf("result of run.paused = %+v, want no orphans and no finished runs", res)
	}
	f.wantRun("paused while pending", id, event.RunPaused, nil, nil)
	for _, tk := range f.tasks(id) {
		wantEq(t, tk.Name+".RunStatus", tk.RunStatus, event.RunPaused)
	}
	r1 := f.ev(event.TypeRunResumed, id, "", 0)
	f.events(r1)
	f.wantRun("resumed", id, event.RunRunning, &r1, nil)
	// A late run.started keeps the first start time.
	f.events(f.ev(event.TypeRunStarted, id, "", 0))
	f.wantRun("late start", id, event.RunRunning, &r1, nil)

	// Pause, resume, pause, one batch each.
	f.events(f.ev(event.TypeRunPaused, id, "", 0))
	f.wantRun("paused", id, event.RunPaused, &r1, nil)
	f.events(f.ev(event.TypeRunResumed, id, "", 0))
	f.wantRun("resumed again", id, event.RunRunning, &r1, nil)
	f.events(f.ev(event.TypeRunPaused, id, "", 0))
	f.wantRun("paused again", id, event.RunPaused, &r1, nil)

	// The same sequence in one batch ends where its last event says, and a replay of the batch, as a
	// whole or event by event, leaves the same state.
	id2 := runID()
	f.events(f.submit(id2, diamond("etl"), ""))
	st := f.ev(event.TypeRunStarted, id2, "", 0)
	seq := []event.Event{
		st, f.ev(event.TypeRunPaused, id2, "", 0), f.ev(event.TypeRunResumed, id2, "", 0),
		f.ev(event.TypeRunPaused, id2, "", 0), f.ev(event.TypeRunResumed, id2, "", 0), f.ev(event.TypeRunPaused, id2, "", 0),
	}
	f.events(seq...)
	f.wantRun("sequence in one batch", id2, event.RunPaused, &st, nil)
	before := f.snapshot(id, id2)
	f.events(seq...)
	f.equalSnapshots(before, f.snapshot(id, id2))
	for _, e := range seq {
		f.events(e)
	}
	f.equalSnapshots(before, f.snapshot(id, id2))

	// A paused run finishes like a running one.
	fin := f.finished(id2, event.RunFailed, "task fetch failed")
	res = f.events(fin)
	wantDeep(t, "FinishedRuns", res.FinishedRuns, []string{id2})
	f.wantRun("finished while paused", id2, event.RunFailed, &st, &fin)
	wantEq(t, "run.Error", f.run(id2).Error, fin.Error)
}

func testControlAfterFinish(t *testing.T, f *fixture) {
	id := runID()
	f.events(f.submit(id, diamond("etl"), ""))
	st := f.ev(event.TypeRunStarted, id, "", 0)
	fin := f.finished(id, event.RunSuccess, "")
	f.events(st, fin)
	before := f.snapshot(id)

	// Answers and requests that arrive after the run finished change nothing and are not orphans.
	late := []event.Event{
		f.ev(event.TypeRunPaused, id, "", 0), f.ev(event.TypeRunResumed, id, "", 0),
		f.ev(event.TypeRunCancelRequested, id, "", 0), f.ev(event.TypeRunPauseRequested, id, "", 0),
		f.ev(event.TypeRunResumeRequested, id, "", 0), f.ev(event.TypeRunPaused, id, "", 0),
	}
	for _, e := range late {
		res := f.events(e)
		if len(res.Orphans) != 0 || len(res.FinishedRuns) != 0 {
			t.Errorf("result of a late %s = %+v, want nothing", e.Type, res)
		}
	}
	f.events(late...)
	f.equalSnapshots(before, f.snapshot(id))

	// In one batch: a finish then a pause and a resume.
	id2 := runID()
	f.events(f.submit(id2, diamond("etl"), ""))
	fin2 := f.finished(id2, event.RunFailed, "boom")
	res := f.events(fin2, f.ev(event.TypeRunPaused, id2, "", 0), f.ev(event.TypeRunResumed, id2, "", 0))
	wantDeep(t, "FinishedRuns", res.FinishedRuns, []string{id2})
	f.wantRun("paused after finish in one batch", id2, event.RunFailed, nil, &fin2)
	wantEq(t, "run2.Error", f.run(id2).Error, "boom")
}

func testControlRequests(t *testing.T, f *fixture) {
	id := runID()
	f.events(f.submit(id, diamond("etl"), ""), f.ev(event.TypeRunStarted, id, "", 0),
		f.ev(event.TypeTaskDispatched, id, "fetch", 1))
	before := f.snapshot(id)
	reqs := []event.Event{
		f.ev(event.TypeRunPauseRequested, id, "", 0), f.ev(event.TypeRunResumeRequested, id, "", 0),
		f.ev(event.TypeRunCancelRequested, id, "", 0),
	}
	res := f.events(reqs...)
	if len(res.Orphans) != 0 || len(res.FinishedRuns) != 0 {
		t.Errorf("result of requests = %+v, want nothing", res)
	}
	f.equalSnapshots(before, f.snapshot(id))

	// Requests for a run the store does not know are orphans, also when the submission comes later
	// in the batch; after it, they are accepted.
	ghost := runID()
	unknown := []event.Event{
		f.ev(event.TypeRunPauseRequested, ghost, "", 0), f.ev(event.TypeRunResumeRequested, ghost, "", 0),
		f.ev(event.TypeRunCancelRequested, ghost, "", 0),
	}
	res = f.events(unknown...)
	wantDeep(t, "orphans of an unknown run", eventIDs(res.Orphans), eventIDs(unknown))
	later := runID()
	early := f.ev(event.TypeRunCancelRequested, later, "", 0)
	res = f.events(early, f.submit(later, diamond("etl"), ""), f.ev(event.TypeRunPauseRequested, later, "", 0))
	wantDeep(t, "orphans before the submission", eventIDs(res.Orphans), eventIDs([]event.Event{early}))
	f.wantRun("requested", later, event.RunPending, nil, nil)

	// Answers for an unknown run are orphans too.
	answers := []event.Event{f.ev(event.TypeRunPaused, ghost, "", 0), f.ev(event.TypeRunResumed, ghost, "", 0)}
	res = f.events(answers...)
	wantDeep(t, "orphan answers", eventIDs(res.Orphans), eventIDs(answers))
}

func testCancelRun(t *testing.T, f *fixture) {
	id := runID()
	f.events(f.submit(id, diamond("etl"), ""))
	st := f.ev(event.TypeRunStarted, id, "", 0)
	fetchDispatch := f.ev(event.TypeTaskDispatched, id, "fetch", 1)
	fetchStart := f.ev(event.TypeTaskStarted, id, "fetch", 1)
	f.events(st, fetchDispatch, fetchStart)
	// left failed its first attempt; its retry is dispatched, waiting for its delay.
	f.events(f.ev(event.TypeTaskDispatched, id, "left", 1), f.ev(event.TypeTaskStarted, id, "left", 1),
		f.ev(event.TypeTaskFailed, id, "left", 1), f.ev(event.TypeTaskDispatched, id, "left", 2))

	cancelled := func(task string, attempt int) event.Event {
		e := f.ev(event.TypeTaskCancelled, id, task, attempt)
		e.Reason, e.Error = event.ReasonCancelled, "run cancelled"
		return e
	}
	fetchCancel := cancelled("fetch", 1) // was running
	leftCancel := cancelled("left", 2)   // was dispatched
	fin := f.finished(id, event.RunCancelled, "cancelled by alice")
	batch := []event.Event{
		f.ev(event.TypeRunCancelRequested, id, "", 0),
		fetchCancel, leftCancel, cancelled("right", 0), cancelled("report", 0), // right and report never ran
		fin,
	}
	res := f.events(batch...)
	if len(res.Orphans) != 0 {
		t.Errorf("orphans = %v, want none", eventIDs(res.Orphans))
	}
	wantDeep(t, "FinishedRuns", res.FinishedRuns, []string{id})
	f.wantRun("cancelled", id, event.RunCancelled, &st, &fin)
	wantEq(t, "run.Error", f.run(id).Error, fin.Error)

	wantAttempt := map[string]int{"fetch": 1, "left": 2, "right": 0, "report": 0}
	for _, tk := range f.tasks(id) {
		wantEq(t, tk.Name+".Status", tk.Status, event.TaskCancelled)
		wantEq(t, tk.Name+".Attempt", tk.Attempt, wantAttempt[tk.Name])
		wantEq(t, tk.Name+".Reason", tk.Reason, event.ReasonCancelled)
		wantEq(t, tk.Name+".Error", tk.Error, "run cancelled")
		wantEq(t, tk.Name+".RunStatus", tk.RunStatus, event.RunCancelled)
		if tk.FinishedAt == nil {
			t.Errorf("%s.FinishedAt unset", tk.Name)
		}
	}
	wantTime(t, "fetch.StartedAt", f.task(id, "fetch").StartedAt, &fetchStart.Time)
	as := f.attempts(id, "fetch")
	if len(as) != 1 {
		t.Fatalf("fetch attempts = %+v, want 1", as)
	}
	wantEq(t, "fetch attempt status", as[0].Status, event.TaskCancelled)
	wantEq(t, "fetch attempt reason", as[0].Reason, event.ReasonCancelled)
	wantEq(t, "fetch attempt instance", as[0].Instance, fetchStart.Instance)
	wantTime(t, "fetch attempt StartedAt", as[0].StartedAt, &fetchStart.Time)
	wantTime(t, "fetch attempt DispatchedAt", as[0].DispatchedAt, &fetchDispatch.Time)
	wantTime(t, "fetch attempt FinishedAt", as[0].FinishedAt, &fetchCancel.Time)
	as = f.attempts(id, "left")
	if len(as) != 2 || as[0].Status != event.TaskFailed || as[1].Status != event.TaskCancelled {
		t.Fatalf("left attempts = %+v, want failed then cancelled", as)
	}
	wantTime(t, "left attempt 2 FinishedAt", as[1].FinishedAt, &leftCancel.Time)
	for _, name := range []string{"right", "report"} {
		if as := f.attempts(id, name); len(as) != 0 {
			t.Errorf("%s never ran but has attempts %+v", name, as)
		}
	}

	// Late events change no status: the killed attempt's own failure, a success, a resume. The late
	// success only fills the instance the cancelled attempt had not recorded.
	before := f.snapshot(id)
	killed := f.ev(event.TypeTaskFailed, id, "fetch", 1)
	killed.Reason = event.ReasonCancelled
	lateOK := f.ev(event.TypeTaskSucceeded, id, "left", 2)
	f.events(killed, lateOK, f.ev(event.TypeRunResumed, id, "", 0), f.ev(event.TypeRunStarted, id, "", 0))
	before.Attempts[0][2].Instance = lateOK.Instance
	f.equalSnapshots(before, f.snapshot(id))
	// So does a replay of the cancellation.
	res = f.events(batch...)
	wantDeep(t, "FinishedRuns on replay", res.FinishedRuns, []string{id})
	f.equalSnapshots(before, f.snapshot(id))
}

func testLostAttempt(t *testing.T, f *fixture) {
	id := runID()
	f.events(f.submit(id, diamond("etl"), ""))
	// The reconciler finds fetch's executor gone: a new attempt is dispatched, and the lost one
	// is failed after it (the task row is already at attempt 2).
	start1 := f.ev(event.TypeTaskStarted, id, "fetch", 1)
	f.events(f.ev(event.TypeTaskDispatched, id, "fetch", 1), start1)
	d2 := f.ev(event.TypeTaskDispatched, id, "fetch", 2)
	f.events(d2)
	lost := func(task string, attempt int) event.Event {
		e := f.ev(event.TypeTaskFailed, id, task, attempt)
		e.Reason, e.Error, e.ExitCode, e.Instance, e.DurationMS = event.ReasonLost, "executor stopped responding", nil, "", 0
		return e
	}
	l1 := lost("fetch", 1)
	res := f.events(l1)
	if len(res.Orphans) != 0 {
		t.Errorf("orphans = %v, want none", eventIDs(res.Orphans))
	}
	tk := f.task(id, "fetch")
	wantEq(t, "fetch.Attempt", tk.Attempt, 2)
	wantEq(t, "fetch.Status", tk.Status, event.TaskDispatched)
	wantEq(t, "fetch.Error", tk.Error, "")
	wantEq(t, "fetch.Reason", tk.Reason, "")
	as := f.attempts(id, "fetch")
	if len(as) != 2 {
		t.Fatalf("fetch attempts = %+v, want 2", as)
	}
	wantEq(t, "attempt 1 status", as[0].Status, event.TaskLost)
	wantEq(t, "attempt 1 reason", as[0].Reason, event.ReasonLost)
	wantEq(t, "attempt 1 error", as[0].Error, l1.Error)
	wantEq(t, "attempt 1 instance (from its start)", as[0].Instance, start1.Instance)
	if as[0].ExitCode != nil {
		t.Errorf("attempt 1 exit code = %d, want none", *as[0].ExitCode)
	}
	wantTime(t, "attempt 1 FinishedAt", as[0].FinishedAt, &l1.Time)
	wantEq(t, "attempt 2 status", as[1].Status, event.TaskDispatched)
	wantTime(t, "attempt 2 DispatchedAt", as[1].DispatchedAt, &d2.Time)

	// The lost attempt's executor comes back and reports success: its attempt row records what really
	// happened, but the task row, already at attempt 2, is fenced.
	f.events(f.ev(event.TypeTaskSucceeded, id, "fetch", 1))
	wantEq(t, "attempt 1 after a late success", f.attempts(id, "fetch")[0].Status, event.TaskSuccess)
	wantEq(t, "fetch.Status after a late success", f.task(id, "fetch").Status, event.TaskDispatched)
	wantEq(t, "fetch.Attempt after a late success", f.task(id, "fetch").Attempt, 2)

	// The loss and the new dispatch in one batch, in either order.
	for _, name := range []string{"left", "right"} {
		f.events(f.ev(event.TypeTaskDispatched, id, name, 1), f.ev(event.TypeTaskStarted, id, name, 1))
		l, d := lost(name, 1), f.ev(event.TypeTaskDispatched, id, name, 2)
		if name == "left" {
			f.events(l, d)
		} else {
			f.events(d, l)
		}
		tk := f.task(id, name)
		wantEq(t, name+".Attempt", tk.Attempt, 2)
		wantEq(t, name+".Status", tk.Status, event.TaskDispatched)
		wantEq(t, name+".Reason", tk.Reason, "")
		as := f.attempts(id, name)
		if len(as) != 2 || as[0].Reason != event.ReasonLost || as[0].Status != event.TaskLost {
			t.Errorf("%s attempts = %+v, want a lost first attempt", name, as)
		}
	}

	// A loss and the same attempt's own result, in either order (redeliveries after a server restart
	// do not keep stream order): the result wins, as it does in the scheduler, so both agree.
	for _, lossFirst := range []bool{true, false} {
		name := "loss first"
		if !lossFirst {
			name = "result first"
		}
		rid := runID()
		f.events(f.submit(rid, diamond("etl"), ""))
		f.events(f.ev(event.TypeTaskDispatched, rid, "fetch", 1), f.ev(event.TypeTaskStarted, rid, "fetch", 1))
		l, ok := lost("fetch", 1), f.ev(event.TypeTaskSucceeded, rid, "fetch", 1)
		l.RunID = rid
		if lossFirst {
			f.events(l)
			wantEq(t, name+": fetch.Status after the loss", f.task(rid, "fetch").Status, event.TaskLost)
			f.events(ok)
		} else {
			f.events(ok)
			f.events(l)
		}
		tk := f.task(rid, "fetch")
		wantEq(t, name+": fetch.Status", tk.Status, event.TaskSuccess)
		wantEq(t, name+": fetch.Attempt", tk.Attempt, 1)
		wantEq(t, name+": fetch.Reason", tk.Reason, "")
		wantEq(t, name+": attempt 1 status", f.attempts(rid, "fetch")[0].Status, event.TaskSuccess)
	}

	// A task no executor took fails for good without having started.
	nx := f.ev(event.TypeTaskFailed, id, "report", 1)
	nx.Reason, nx.Error, nx.ExitCode, nx.Instance, nx.DurationMS = event.ReasonNoExecutor, "no process executor came online", nil, "", 0
	f.events(f.ev(event.TypeTaskDispatched, id, "report", 1), nx)
	tk = f.task(id, "report")
	wantEq(t, "report.Status", tk.Status, event.TaskFailed)
	wantEq(t, "report.Reason", tk.Reason, event.ReasonNoExecutor)
	as = f.attempts(id, "report")
	if len(as) != 1 {
		t.Fatalf("report attempts = %+v, want 1", as)
	}
	wantEq(t, "report attempt reason", as[0].Reason, event.ReasonNoExecutor)
	wantEq(t, "report attempt instance", as[0].Instance, "")
	wantTime(t, "report attempt StartedAt", as[0].StartedAt, nil)
}

// testLostAttemptAtTheCap: the scheduler gave up on fetch when its third attempt was lost too (its
// cap re-runs two lost attempts) and published its verdict (task.failed, reason max_lost), failing
// the run; the third attempt's executor then reported success anyway. The scheduler ignores that
// result; the store must end the same way in every order of the loss, the late result and the
// verdict, applied one batch each or in a single batch.
func testLostAttemptAtTheCap(t *testing.T, f *fixture) {
	lost := func(id string, attempt int) event.Event {
		e := f.ev(event.TypeTaskFailed, id, "fetch", attempt)
		e.Reason, e.Error, e.ExitCode, e.Instance, e.DurationMS = event.ReasonLost, "executor stopped responding", nil, "", 0
		return e
	}
	orders := [][3]int{{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}}
	names := [3]string{"loss", "result", "verdict"}
	for _, oneBatch := range []bool{false, true} {
		for _, order := range orders {
			name := fmt.Sprintf("%s, %s, %s", names[order[0]], names[order[1]], names[order[2]])
			if oneBatch {
				name += " (one batch)"
			}
			id := runID()
			f.events(f.submit(id, diamond("etl"), ""))
			for a := 1; a <= 2; a++ {
				f.events(f.ev(event.TypeTaskDispatched, id, "fetch", a), f.ev(event.TypeTaskStarted, id, "fetch", a), lost(id, a))
			}
			f.events(f.ev(event.TypeTaskDispatched, id, "fetch", 3), f.ev(event.TypeTaskStarted, id, "fetch", 3))
			verdict := f.ev(event.TypeTaskFailed, id, "fetch", 3)
			verdict.Reason, verdict.Error, verdict.ExitCode, verdict.Instance, verdict.DurationMS = event.ReasonMaxLost,
				"attempt 3 was lost after 2 lost attempts were run again: giving up", nil, "", 0
			three := [3]event.Event{lost(id, 3), f.ev(event.TypeTaskSucceeded, id, "fetch", 3), verdict}
			var batch []event.Event
			for _, k := range order {
				if oneBatch {
					batch = append(batch, three[k])
				} else {
					f.events(three[k])
				}
			}
			if oneBatch {
				f.events(batch...)
			}
			tk := f.task(id, "fetch")
			wantEq(t, name+": fetch.Status", tk.Status, event.TaskFailed)
			wantEq(t, name+": fetch.Reason", tk.Reason, event.ReasonMaxLost)
			wantEq(t, name+": fetch.Error", tk.Error, verdict.Error)
			wantEq(t, name+": fetch.Attempt", tk.Attempt, 3)
			if tk.Output != nil {
				t.Errorf("%s: fetch.Output = %s, want none (the late result is not the task's)", name, tk.Output)
			}
			as := f.attempts(id, "fetch")
			if len(as) != 3 {
				t.Fatalf("%s: fetch attempts = %+v, want 3", name, as)
			}
			wantEq(t, name+": attempt 3 status", as[2].Status, event.TaskFailed)
			wantEq(t, name+": attempt 3 reason", as[2].Reason, event.ReasonMaxLost)
			wantEq(t, name+": attempt 2 status", as[1].Status, event.TaskLost)
		}
	}
}
