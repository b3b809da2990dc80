package storecheck_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/store/filestore"
	"github.com/ork-go/ork/pkg/store/schema"
	"github.com/ork-go/ork/pkg/store/sqlitestore"
	"github.com/ork-go/ork/pkg/store/storecheck"
	"github.com/ork-go/ork/pkg/workflow"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// world is a fresh store and helpers that write events to it through ApplyBatch.
type world struct {
	t  *testing.T
	st store.Store

	mu    sync.Mutex
	clock time.Time
}

// eachStore runs fn against a fresh SQLite store and a fresh file store: Check reads only through
// the Store interface, so it must find the same in both.
func eachStore(t *testing.T, fn func(t *testing.T, w *world)) {
	t.Helper()
	t.Parallel()
	open := map[string]func(t *testing.T) store.Store{
		"sqlite": func(t *testing.T) store.Store {
			path := filepath.Join(t.TempDir(), "ork.db")
			if err := schema.Up(t.Context(), "sqlite://"+path); err != nil {
				t.Fatal(err)
			}
			s, err := sqlitestore.Open(t.Context(), path)
			if err != nil {
				t.Fatalf("opening sqlite store: %v", err)
			}
			return s
		},
		"file": func(t *testing.T) store.Store {
			s, err := filestore.Open(t.TempDir())
			if err != nil {
				t.Fatalf("opening file store: %v", err)
			}
			return s
		},
	}
	for name, o := range open {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := o(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("closing store: %v", err)
				}
			})
			fn(t, &world{t: t, st: s, clock: time.Now().UTC().Truncate(time.Millisecond)})
		})
	}
}

func (w *world) now() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.clock = w.clock.Add(time.Millisecond)
	return w.clock
}

func (w *world) ev(typ, runID, task string, attempt int) event.Event {
	e := event.New(typ, runID, task, attempt)
	e.Time = w.now()
	switch typ {
	case event.TypeTaskStarted, event.TypeTaskSucceeded:
		e.Instance = "exec-1"
	case event.TypeTaskFailed:
		e.Instance, e.Reason, e.Error = "exec-1", event.ReasonExit, "exit status 1"
	case event.TypeTaskCancelled:
		e.Reason = event.ReasonCancelled
	case event.TypeTaskSkipped:
		e.Reason = event.ReasonUpstreamFailed
	}
	return e
}

func (w *world) apply(p store.ApplyBatchParams) {
	w.t.Helper()
	res, err := w.st.ApplyBatch(w.t.Context(), p)
	if err != nil {
		w.t.Fatalf("ApplyBatch: %v", err)
	}
	if len(res.Orphans) != 0 {
		w.t.Fatalf("orphans: %+v", res.Orphans)
	}
}

func (w *world) events(evs ...event.Event) { w.apply(store.ApplyBatchParams{Events: evs}) }

// submit submits and starts a run of a chain of the named tasks.
func (w *world) submit(tasks ...string) string {
	id := event.NewID()
	p := &workflow.Plan{Name: "wf", Hash: "wf-" + strings.Join(tasks, "-")}
	for i, name := range tasks {
		t := workflow.Task{Name: name, Index: i, Executor: workflow.ExecutorProcess, Command: []string{"true"}}
		if i > 0 {
			t.DependsOn = []string{tasks[i-1]}
		}
		p.Tasks = append(p.Tasks, t)
	}
	sub := event.New(event.TypeRunSubmitted, id, "", 0)
	sub.Time, sub.Plan, sub.Workflow = w.now(), p, p.Name
	w.events(sub, w.ev(event.TypeRunStarted, id, "", 0))
	return id
}

// attempt records a whole attempt ending with the terminal event type end.
func (w *world) attempt(runID, task string, n int, end string) {
	w.events(w.ev(event.TypeTaskDispatched, runID, task, n), w.ev(event.TypeTaskStarted, runID, task, n), w.ev(end, runID, task, n))
}

func (w *world) finish(runID, status string) {
	e := w.ev(event.TypeRunFinished, runID, "", 0)
	e.Status = status
	w.events(e)
}

func (w *world) logs(runID, task string, attempt int, lines ...string) {
	b := event.LogBatch{V: event.SchemaVersion, RunID: runID, Task: task, Attempt: attempt}
	for _, l := range lines {
		var seq int64
		text := l
		if i := strings.IndexByte(l, ':'); i > 0 {
			if _, err := fmt.Sscan(l[:i], &seq); err == nil {
				text = l[i+1:]
			}
		}
		b.Lines = append(b.Lines, event.LogLine{Seq: seq, Stream: event.Stdout, Line: text, Time: w.now()})
	}
	w.apply(store.ApplyBatchParams{Logs: []event.LogBatch{b}})
}

func (w *world) check(p storecheck.Params) storecheck.Report {
	w.t.Helper()
	rep, err := storecheck.Check(w.t.Context(), w.st, p)
	if err != nil {
		w.t.Fatalf("Check: %v", err)
	}
	return rep
}

// wantOnly checks that the report holds exactly n violations, all of rule, each naming the run.
func wantOnly(t *testing.T, rep storecheck.Report, rule storecheck.Rule, n int, runID string) {
	t.Helper()
	if len(rep.Violations) != n || rep.Count(rule) != n {
		t.Fatalf("violations = %+v, want %d of %s", rep.Violations, n, rule)
	}
	for _, v := range rep.Violations {
		if v.RunID != runID || !strings.Contains(v.Message, runID) {
			t.Errorf("violation %+v does not name run %s", v, runID)
		}
	}
	err := rep.Err()
	if !errors.Is(err, storecheck.ErrViolations) || !strings.Contains(err.Error(), rep.Violations[0].Message) {
		t.Errorf("Err() = %v, want ErrViolations listing %q", err, rep.Violations[0].Message)
	}
}

// clean writes a successful run, a failed run with a retry and a skip, and a cancelled run.
func (w *world) clean() []string {
	ok := w.submit("a", "b")
	w.attempt(ok, "a", 1, event.TypeTaskSucceeded)
	w.attempt(ok, "b", 1, event.TypeTaskSucceeded)
	w.logs(ok, "a", 1, "1:one", "2:two", "3:three")
	w.logs(ok, "b", 1, "2:two", "1:one")
	w.finish(ok, event.RunSuccess)

	failed := w.submit("a", "b")
	w.attempt(failed, "a", 1, event.TypeTaskFailed)
	w.attempt(failed, "a", 2, event.TypeTaskFailed)
	w.events(w.ev(event.TypeTaskSkipped, failed, "b", 0))
	w.logs(failed, "a", 2, "1:again")
	w.finish(failed, event.RunFailed)

	cancelled := w.submit("a", "b")
	w.events(w.ev(event.TypeTaskDispatched, cancelled, "a", 1), w.ev(event.TypeTaskStarted, cancelled, "a", 1))
	w.events(w.ev(event.TypeTaskCancelled, cancelled, "a", 1), w.ev(event.TypeTaskCancelled, cancelled, "b", 0))
	w.finish(cancelled, event.RunCancelled)
	return []string{ok, failed, cancelled}
}

func TestCleanStore(t *testing.T) {
	eachStore(t, func(t *testing.T, w *world) {
		ids := w.clean()
		for _, p := range []storecheck.Params{{LogSeqs: true}, {RunIDs: ids, LogSeqs: true}, {}} {
			rep := w.check(p)
			if !rep.OK() || rep.Err() != nil || rep.String() != "" {
				t.Fatalf("Check(%+v) = %+v, want no violations", p, rep)
			}
			if rep.Runs != 3 || rep.Tasks != 6 || rep.Attempts != 5 || rep.LogLines != 6 || rep.Truncated {
				t.Errorf("Check(%+v) counts = %+v, want 3 runs, 6 tasks, 5 attempts, 6 lines", p, rep)
			}
		}
	})
}

func TestRunMissing(t *testing.T) {
	eachStore(t, func(t *testing.T, w *world) {
		ids := w.clean()
		ghost := event.NewID()
		rep := w.check(storecheck.Params{RunIDs: append(ids, ghost)})
		wantOnly(t, rep, storecheck.RuleRunMissing, 1, ghost)
		if rep.Runs != 3 {
			t.Errorf("Runs = %d, want 3", rep.Runs)
		}
	})
}

func TestRunNotTerminal(t *testing.T) {
	eachStore(t, func(t *testing.T, w *world) {
		w.clean()
		id := w.submit("a", "b")
		w.attempt(id, "a", 1, event.TypeTaskSucceeded)
		w.events(w.ev(event.TypeRunPaused, id, "", 0))
		rep := w.check(storecheck.Params{})
		// The pending task of a run that has not ended is not a violation of its own.
		wantOnly(t, rep, storecheck.RuleRunNotTerminal, 1, id)
		if !strings.Contains(rep.Violations[0].Message, event.RunPaused) {
			t.Errorf("message %q does not say the run is paused", rep.Violations[0].Message)
		}
	})
}

func TestTaskNotTerminal(t *testing.T) {
	eachStore(t, func(t *testing.T, w *world) {
		w.clean()
		id := w.submit("a", "b")
		w.attempt(id, "a", 1, event.TypeTaskFailed)
		w.finish(id, event.RunFailed) // b was never skipped
		rep := w.check(storecheck.Params{})
		wantOnly(t, rep, storecheck.RuleTaskNotTerminal, 1, id)
		if v := rep.Violations[0]; v.Task != "b" || !strings.Contains(v.Message, "pending") {
			t.Errorf("violation = %+v, want task b pending", v)
		}
	})
}

func TestAttemptNotTerminal(t *testing.T) {
	eachStore(t, func(t *testing.T, w *world) {
		w.clean()
		id := w.submit("a")
		// Attempt 1 was re-dispatched after its executor vanished, but its loss was never recorded.
		w.events(w.ev(event.TypeTaskDispatched, id, "a", 1), w.ev(event.TypeTaskStarted, id, "a", 1))
		w.attempt(id, "a", 2, event.TypeTaskSucceeded)
		w.finish(id, event.RunSuccess)
		rep := w.check(storecheck.Params{})
		wantOnly(t, rep, storecheck.RuleAttemptNotTerminal, 1, id)
		if v := rep.Violations[0]; v.Task != "a" || v.Attempt != 1 || !strings.Contains(v.Message, "running") {
			t.Errorf("violation = %+v, want attempt 1 of a running", v)
		}
	})
}

func TestTaskNotSuccess(t *testing.T) {
	eachStore(t, func(t *testing.T, w *world) {
		w.clean()
		id := w.submit("a", "b")
		w.attempt(id, "a", 1, event.TypeTaskSucceeded)
		w.attempt(id, "b", 1, event.TypeTaskFailed)
		w.finish(id, event.RunSuccess)
		rep := w.check(storecheck.Params{})
		wantOnly(t, rep, storecheck.RuleTaskNotSuccess, 1, id)
		if v := rep.Violations[0]; v.Task != "b" || !strings.Contains(v.Message, "failed") {
			t.Errorf("violation = %+v, want task b failed", v)
		}
	})
}

func TestRunFailedNoTask(t *testing.T) {
	eachStore(t, func(t *testing.T, w *world) {
		w.clean()
		// The defect this rule was written for: the scheduler failed a after its third attempt was
		// lost, skipped b and failed the run; a late success of that attempt then moved a's row to
		// success, which no store does any more (the max_lost verdict outranks it).
		id := w.submit("a", "b")
		w.attempt(id, "a", 1, event.TypeTaskSucceeded)
		w.events(w.ev(event.TypeTaskSkipped, id, "b", 0))
		w.finish(id, event.RunFailed)
		rep := w.check(storecheck.Params{})
		if rep.Count(storecheck.RuleRunFailedNoTask) != 1 || rep.Count(storecheck.RuleTaskSkippedNoCause) != 1 || len(rep.Violations) != 2 {
			t.Fatalf("violations = %+v, want one %s and one %s", rep.Violations, storecheck.RuleRunFailedNoTask, storecheck.RuleTaskSkippedNoCause)
		}
		if v := rep.Violations[0]; v.RunID != id || !strings.Contains(v.Message, "none of its 2 tasks failed") {
			t.Errorf("violation = %+v", v)
		}

		// The same sequence with the verdict: a clean store.
		ok := w.submit("a", "b")
		w.attempt(ok, "a", 1, event.TypeTaskSucceeded)
		v := w.ev(event.TypeTaskFailed, ok, "a", 1)
		v.Reason, v.Error = event.ReasonMaxLost, "lost too often"
		w.events(v, w.ev(event.TypeTaskSkipped, ok, "b", 0))
		w.finish(ok, event.RunFailed)
		if rep := w.check(storecheck.Params{RunIDs: []string{ok}}); !rep.OK() {
			t.Fatalf("violations with the verdict: %s", rep.String())
		}
	})
}

func TestTaskSkippedNoCause(t *testing.T) {
	eachStore(t, func(t *testing.T, w *world) {
		w.clean()
		id := w.submit("a", "b", "c")
		w.attempt(id, "a", 1, event.TypeTaskSucceeded)
		w.attempt(id, "b", 1, event.TypeTaskFailed)
		w.events(w.ev(event.TypeTaskSkipped, id, "c", 0))
		w.finish(id, event.RunFailed)
		if rep := w.check(storecheck.Params{}); !rep.OK() {
			t.Fatalf("violations: %s", rep.String())
		}
		bad := w.submit("a", "b", "c")
		w.attempt(bad, "a", 1, event.TypeTaskFailed)
		w.attempt(bad, "b", 1, event.TypeTaskSucceeded)
		w.events(w.ev(event.TypeTaskSkipped, bad, "c", 0))
		w.finish(bad, event.RunFailed)
		rep := w.check(storecheck.Params{})
		wantOnly(t, rep, storecheck.RuleTaskSkippedNoCause, 1, bad)
		if v := rep.Violations[0]; v.Task != "c" || !strings.Contains(v.Message, "(b) succeeded") {
			t.Errorf("violation = %+v, want task c", v)
		}
	})
}

// lying wraps a store and alters what it reads, for the invariants no store lets ApplyBatch break.
type lying struct {
	store.Store
	tasks func([]store.Task) []store.Task
	logs  func([]store.LogLine) []store.LogLine
	err   error
}

func (l *lying) TaskList(ctx context.Context, p store.TaskListParams) ([]store.Task, error) {
	ts, err := l.Store.TaskList(ctx, p)
	if l.err != nil {
		return nil, l.err
	}
	if err == nil && l.tasks != nil {
		ts = l.tasks(ts)
	}
	return ts, err
}

func (l *lying) LogList(ctx context.Context, p store.LogListParams) ([]store.LogLine, error) {
	ls, err := l.Store.LogList(ctx, p)
	if err == nil && l.logs != nil {
		ls = l.logs(ls)
	}
	return ls, err
}

func TestTaskAttempt(t *testing.T) {
	eachStore(t, func(t *testing.T, w *world) {
		id := w.submit("a", "b")
		w.attempt(id, "a", 1, event.TypeTaskFailed)
		w.attempt(id, "a", 2, event.TypeTaskSucceeded)
		w.attempt(id, "b", 1, event.TypeTaskSucceeded)
		w.finish(id, event.RunSuccess)
		if rep := w.check(storecheck.Params{}); !rep.OK() {
			t.Fatalf("violations before lying: %s", rep.String())
		}
		// Every task event of attempt >= 1 writes its attempt row and moves the task forward, so the
		// stores cannot be made to hold this through ApplyBatch: the reads are altered instead.
		w.st = &lying{Store: w.st, tasks: func(ts []store.Task) []store.Task {
			for i := range ts {
				switch ts[i].Name {
				case "a":
					ts[i].Attempt = 1 // rows 1 and 2 exist
				case "b":
					ts[i].Attempt = 0 // row 1 exists
				}
			}
			return ts
		}}
		rep := w.check(storecheck.Params{})
		wantOnly(t, rep, storecheck.RuleTaskAttempt, 2, id)
		if !strings.Contains(rep.Violations[0].Message, "attempt 1 but its highest attempt row is 2") {
			t.Errorf("message = %q", rep.Violations[0].Message)
		}
	})
}

func TestLogDuplicate(t *testing.T) {
	eachStore(t, func(t *testing.T, w *world) {
		id := w.submit("a")
		w.attempt(id, "a", 1, event.TypeTaskSucceeded)
		w.logs(id, "a", 1, "1:one", "2:two", "3:three")
		// A replayed line is ignored by every store.
		w.logs(id, "a", 1, "2:two again")
		w.finish(id, event.RunSuccess)
		if rep := w.check(storecheck.Params{LogSeqs: true}); !rep.OK() {
			t.Fatalf("violations after a replayed line: %s", rep.String())
		}
		// The unique key makes duplicates impossible through ApplyBatch: the reads are altered.
		w.st = &lying{Store: w.st, logs: func(ls []store.LogLine) []store.LogLine {
			return append(ls, ls[1], ls[1], ls[2])
		}}
		rep := w.check(storecheck.Params{LogSeqs: true})
		wantOnly(t, rep, storecheck.RuleLogDuplicate, 2, id)
		if v := rep.Violations[0]; v.Task != "a" || v.Attempt != 1 || !strings.Contains(v.Message, "log line 2 ") {
			t.Errorf("violation = %+v, want line 2 of a/1", v)
		}
	})
}

func TestLogSeqs(t *testing.T) {
	eachStore(t, func(t *testing.T, w *world) {
		id := w.submit("a", "b", "c")
		w.attempt(id, "a", 1, event.TypeTaskFailed)
		w.attempt(id, "a", 2, event.TypeTaskSucceeded)
		w.attempt(id, "b", 1, event.TypeTaskSucceeded)
		w.attempt(id, "c", 1, event.TypeTaskSucceeded)
		w.logs(id, "a", 1, "1:one", "2:two")
		w.logs(id, "a", 2, "1:one", "3:three", "7:seven") // 2, 4, 5, 6 lost
		// Truncation leaves no hole in the seqs, but lines lost before the marker might: allowed.
		w.logs(id, "b", 1, "1:one", "4:"+storecheck.TruncationMarkerPrefix+": over 1 MiB per attempt]", "5:tail")
		w.finish(id, event.RunSuccess)

		if rep := w.check(storecheck.Params{}); !rep.OK() {
			t.Fatalf("violations without LogSeqs: %s", rep.String())
		}
		rep := w.check(storecheck.Params{LogSeqs: true})
		wantOnly(t, rep, storecheck.RuleLogSeq, 1, id)
		v := rep.Violations[0]
		if v.Task != "a" || v.Attempt != 2 || !strings.Contains(v.Message, "misses 4 lines of seqs 1..7, the first seq 2") {
			t.Errorf("violation = %+v, want 4 lines of a/2 missing from 2", v)
		}

		// A zero seq is misnumbered.
		w.logs(id, "c", 1, "0:zero", "1:one")
		rep = w.check(storecheck.Params{LogSeqs: true})
		if rep.Count(storecheck.RuleLogSeq) != 2 || !strings.Contains(rep.String(), "has seq 0, but seqs start at 1") {
			t.Errorf("report = %s, want the zero seq of c reported", rep.String())
		}
	})
}

func TestListsRuns(t *testing.T) {
	eachStore(t, func(t *testing.T, w *world) {
		bad := w.submit("a")
		w.clean()
		rep := w.check(storecheck.Params{})
		wantOnly(t, rep, storecheck.RuleRunNotTerminal, 1, bad)
		if rep.Runs != 4 || rep.Truncated {
			t.Errorf("Runs = %d, Truncated = %v, want 4 and false", rep.Runs, rep.Truncated)
		}
		// The oldest run is the bad one: with room for three, it is not read.
		rep = w.check(storecheck.Params{RunsMax: 3})
		if !rep.OK() || rep.Runs != 3 || !rep.Truncated {
			t.Errorf("Check(RunsMax 3) = %+v, want 3 clean runs, truncated", rep)
		}
	})
}

func TestParams(t *testing.T) {
	t.Parallel()
	if got := (storecheck.Params{}).WithDefaults().RunsMax; got != storecheck.RunsMaxDefault {
		t.Errorf("default RunsMax = %d", got)
	}
	for _, p := range []storecheck.Params{{RunsMax: -1}, {RunIDs: []string{"x", ""}}} {
		if err := p.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want an error", p)
		}
		if _, err := storecheck.Check(t.Context(), nil, p); err == nil {
			t.Errorf("Check(%+v) = nil error, want the validation error", p)
		}
	}
	if err := (storecheck.Params{RunIDs: []string{"x"}}).Validate(); err != nil {
		t.Errorf("Validate = %v", err)
	}
}

func TestReadError(t *testing.T) {
	eachStore(t, func(t *testing.T, w *world) {
		w.clean()
		boom := errors.New("disk on fire")
		w.st = &lying{Store: w.st, err: boom}
		if _, err := storecheck.Check(t.Context(), w.st, storecheck.Params{}); !errors.Is(err, boom) {
			t.Errorf("Check error = %v, want the read error", err)
		}
	})
}
