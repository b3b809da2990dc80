package scheduler

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/workflow"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

var testPolicy = Policy{Backoff: Backoff{Base: time.Second, Max: time.Minute}, MaxLostAttempts: 2}

// spec builds a plan from "name:dep,dep" entries; "name*2" gives the task 2 retries.
func spec(t *testing.T, tasks ...string) *workflow.Plan {
	t.Helper()
	p := &workflow.Plan{Name: "wf", Dir: "/tmp"}
	for i, s := range tasks {
		name, deps, _ := strings.Cut(s, ":")
		retries := 0
		if n, r, ok := strings.Cut(name, "*"); ok {
			name = n
			if _, err := fmt.Sscan(r, &retries); err != nil {
				t.Fatalf("retries in %q: %v", s, err)
			}
		}
		task := workflow.Task{Name: name, Index: i, Executor: workflow.ExecutorNoop, Retries: retries}
		if deps != "" {
			task.DependsOn = strings.Split(deps, ",")
		}
		p.Tasks = append(p.Tasks, task)
	}
	return p
}

// ev parses "submit", "ok <task> <attempt> [output]", "fail <task> <attempt>", "lost <task> <attempt>",
// "start <task> <attempt>" and the control requests "cancel@<seq>", "pause@<seq>", "resume@<seq>".
func ev(t *testing.T, s string) *event.Event {
	t.Helper()
	f := strings.Fields(s)
	e := &event.Event{V: event.SchemaVersion, ID: "id-" + s, RunID: "r1", Time: t0}
	if f[0] == "submit" {
		e.Type = event.TypeRunSubmitted
		return e
	}
	if name, seq, ok := strings.Cut(f[0], "@"); ok {
		if _, err := fmt.Sscan(seq, &e.Seq); err != nil {
			t.Fatalf("seq in %q: %v", s, err)
		}
		e.Type = map[string]string{"cancel": event.TypeRunCancelRequested, "pause": event.TypeRunPauseRequested,
			"resume": event.TypeRunResumeRequested}[name]
		if e.Type == "" {
			t.Fatalf("bad control event %q", s)
		}
		return e
	}
	e.Task = f[1]
	if _, err := fmt.Sscan(f[2], &e.Attempt); err != nil {
		t.Fatalf("attempt in %q: %v", s, err)
	}
	switch f[0] {
	case "ok":
		e.Type = event.TypeTaskSucceeded
		if len(f) > 3 {
			e.Output = json.RawMessage(f[3])
		}
	case "fail":
		e.Type = event.TypeTaskFailed
		e.Error = "boom"
		e.Reason = event.ReasonExit
	case "lost":
		e.Type = event.TypeTaskFailed
		e.Error = "executor gone"
		e.Reason = event.ReasonLost
	case "start":
		e.Type = event.TypeTaskStarted
	default:
		t.Fatalf("bad event %q", s)
	}
	return e
}

// describe renders commands as comparable strings.
func describe(g *Graph, c Commands) (disp, evs, outs []string) {
	for _, d := range c.Dispatches {
		s := fmt.Sprintf("%s/%d", g.Task(d.Task).Name, d.Attempt)
		if d.NotBefore != nil {
			s += "+" + d.NotBefore.Sub(t0).String()
		}
		disp = append(disp, s)
	}
	for _, e := range c.Events {
		s := e.Type
		switch e.Type {
		case event.TypeRunFinished:
			s += ":" + e.Status
			if e.Error != "" {
				s += ":" + e.Error
			}
		case event.TypeRunStarted, event.TypeRunPaused, event.TypeRunResumed:
		case event.TypeTaskFailed:
			s += " " + e.Task + "/" + fmt.Sprint(e.Attempt) + ":" + e.Reason
		default:
			s += " " + e.Task + "/" + fmt.Sprint(e.Attempt)
		}
		evs = append(evs, s)
	}
	for _, o := range c.Outputs {
		outs = append(outs, g.Task(o.Task).Name+"="+string(o.Value))
	}
	return disp, evs, outs
}

// stateString renders "running a=success/1 b=dispatched/2~1 ..." (~ the lost attempts).
func stateString(g *Graph, st *RunState) string {
	parts := []string{st.Status.String()}
	for i, ts := range st.Tasks {
		s := fmt.Sprintf("%s=%s/%d", g.Task(i).Name, ts.Status, ts.Attempt)
		if ts.Lost > 0 {
			s += fmt.Sprintf("~%d", ts.Lost)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

type step struct {
	ev    string
	out   Outcome
	disp  []string
	evs   []string // nil: only run.started and the dispatches' task.dispatched are allowed
	outs  []string
	state string // checked when not empty
}

func TestApply(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		plan  []string
		refs  map[string]string // task -> ref'd task (adds an input binding)
		steps []step
	}{
		{
			name: "chain",
			plan: []string{"a", "b:a", "c:b"},
			steps: []step{
				{ev: "submit", out: Applied, disp: []string{"a/1"}, evs: []string{"run.started", "task.dispatched a/1"},
					state: "running a=dispatched/1 b=pending/0 c=pending/0"},
				{ev: "ok a 1", out: Applied, disp: []string{"b/1"}, evs: []string{"task.dispatched b/1"}},
				{ev: "ok b 1", out: Applied, disp: []string{"c/1"}, evs: []string{"task.dispatched c/1"}},
				{ev: "ok c 1", out: Applied, evs: []string{"run.finished:success"},
					state: "success a=success/1 b=success/1 c=success/1"},
			},
		},
		{
			name: "diamond",
			plan: []string{"a", "b:a", "c:a", "d:b,c"},
			steps: []step{
				{ev: "submit", out: Applied, disp: []string{"a/1"}, evs: []string{"run.started", "task.dispatched a/1"}},
				{ev: "ok a 1", out: Applied, disp: []string{"b/1", "c/1"}, evs: []string{"task.dispatched b/1", "task.dispatched c/1"}},
				{ev: "ok c 1", out: Applied, state: "running a=success/1 b=dispatched/1 c=success/1 d=pending/0"},
				{ev: "ok b 1", out: Applied, disp: []string{"d/1"}, evs: []string{"task.dispatched d/1"}},
				{ev: "ok d 1", out: Applied, evs: []string{"run.finished:success"}},
			},
		},
		{
			name: "wide",
			plan: []string{"a", "b", "c", "d:a,b,c"},
			steps: []step{
				{ev: "submit", out: Applied, disp: []string{"a/1", "b/1", "c/1"},
					evs: []string{"run.started", "task.dispatched a/1", "task.dispatched b/1", "task.dispatched c/1"}},
				{ev: "ok c 1", out: Applied},
				{ev: "ok a 1", out: Applied},
				{ev: "ok b 1", out: Applied, disp: []string{"d/1"}, evs: []string{"task.dispatched d/1"}},
				{ev: "ok d 1", out: Applied, evs: []string{"run.finished:success"}},
			},
		},
		{
			name: "retries with exponential backoff",
			plan: []string{"a*3", "b:a"},
			steps: []step{
				{ev: "submit", out: Applied, disp: []string{"a/1"}, evs: []string{"run.started", "task.dispatched a/1"}},
				{ev: "fail a 1", out: Applied, disp: []string{"a/2+1s"}, evs: []string{"task.dispatched a/2"},
					state: "running a=dispatched/2 b=pending/0"},
				{ev: "fail a 2", out: Applied, disp: []string{"a/3+2s"}, evs: []string{"task.dispatched a/3"}},
				{ev: "fail a 3", out: Applied, disp: []string{"a/4+4s"}, evs: []string{"task.dispatched a/4"}},
				{ev: "ok a 4", out: Applied, disp: []string{"b/1"}, evs: []string{"task.dispatched b/1"}},
				{ev: "ok b 1", out: Applied, evs: []string{"run.finished:success"}},
			},
		},
		{
			name: "retries exhausted",
			plan: []string{"a*1"},
			steps: []step{
				{ev: "submit", out: Applied, disp: []string{"a/1"}, evs: []string{"run.started", "task.dispatched a/1"}},
				{ev: "fail a 1", out: Applied, disp: []string{"a/2+1s"}, evs: []string{"task.dispatched a/2"}},
				{ev: "fail a 2", out: Applied, evs: []string{`run.finished:failed:task "a" failed: boom`},
					state: "failed a=failed/2"},
			},
		},
		{
			name: "failure skips downstream transitively, other branch goes on",
			plan: []string{"a", "b:a", "c:b", "e:c", "d:a", "x"},
			steps: []step{
				{ev: "submit", out: Applied, disp: []string{"a/1", "x/1"}, evs: []string{"run.started", "task.dispatched a/1", "task.dispatched x/1"}},
				{ev: "ok a 1", out: Applied, disp: []string{"b/1", "d/1"}, evs: []string{"task.dispatched b/1", "task.dispatched d/1"}},
				{ev: "fail b 1", out: Applied, evs: []string{"task.skipped c/0", "task.skipped e/0"},
					state: "running a=success/1 b=failed/1 c=skipped/0 e=skipped/0 d=dispatched/1 x=dispatched/1"},
				{ev: "ok d 1", out: Applied},
				{ev: "ok x 1", out: Applied, evs: []string{`run.finished:failed:task "b" failed: boom`}},
			},
		},
		{
			name: "failure of a root skips a diamond and ends the run",
			plan: []string{"a", "b:a", "c:a", "d:b,c"},
			steps: []step{
				{ev: "submit", out: Applied, disp: []string{"a/1"}, evs: []string{"run.started", "task.dispatched a/1"}},
				{ev: "fail a 1", out: Applied, evs: []string{"task.skipped b/0", "task.skipped c/0", "task.skipped d/0",
					`run.finished:failed:task "a" failed: boom`}, state: "failed a=failed/1 b=skipped/0 c=skipped/0 d=skipped/0"},
				{ev: "ok b 1", out: Stale},
			},
		},
		{
			name: "a skip reached from two failures is published once",
			plan: []string{"a", "b", "c:a,b"},
			steps: []step{
				{ev: "submit", out: Applied, disp: []string{"a/1", "b/1"}, evs: []string{"run.started", "task.dispatched a/1", "task.dispatched b/1"}},
				{ev: "fail a 1", out: Applied, evs: []string{"task.skipped c/0"}},
				{ev: "fail b 1", out: Applied, evs: []string{`run.finished:failed:task "a" failed: boom`}},
			},
		},
		{
			name: "replays change nothing",
			plan: []string{"a*1", "b:a"},
			steps: []step{
				{ev: "submit", out: Applied, disp: []string{"a/1"}, evs: []string{"run.started", "task.dispatched a/1"}},
				{ev: "submit", out: Duplicate, state: "running a=dispatched/1 b=pending/0"},
				{ev: "fail a 1", out: Applied, disp: []string{"a/2+1s"}, evs: []string{"task.dispatched a/2"}},
				{ev: "fail a 1", out: Duplicate, state: "running a=dispatched/2 b=pending/0"},
				{ev: "ok a 2", out: Applied, disp: []string{"b/1"}, evs: []string{"task.dispatched b/1"}},
				{ev: "ok a 2", out: Duplicate},
				{ev: "ok b 1", out: Applied, evs: []string{"run.finished:success"}},
				{ev: "ok b 1", out: Stale},
				{ev: "submit", out: Duplicate, state: "success a=success/2 b=success/1"},
			},
		},
		{
			name: "out of order events",
			plan: []string{"a", "b:a"},
			steps: []step{
				{ev: "ok a 1", out: Stale, state: "pending a=pending/0 b=pending/0"},
				{ev: "submit", out: Applied, disp: []string{"a/1"}, evs: []string{"run.started", "task.dispatched a/1"}},
				{ev: "ok b 1", out: Stale, state: "running a=dispatched/1 b=pending/0"},
				{ev: "fail b 1", out: Stale},
				{ev: "ok a 1", out: Applied, disp: []string{"b/1"}, evs: []string{"task.dispatched b/1"}},
			},
		},
		{
			name: "stale attempts are fenced",
			plan: []string{"a*2"},
			steps: []step{
				{ev: "submit", out: Applied, disp: []string{"a/1"}, evs: []string{"run.started", "task.dispatched a/1"}},
				{ev: "fail a 1", out: Applied, disp: []string{"a/2+1s"}, evs: []string{"task.dispatched a/2"}},
				{ev: "ok a 1", out: Stale, state: "running a=dispatched/2"},
				{ev: "fail a 3", out: Stale},
				{ev: "ok a 3", out: Stale},
				{ev: "fail a 2", out: Applied, disp: []string{"a/3+2s"}, evs: []string{"task.dispatched a/3"}},
				{ev: "ok a 2", out: Stale},
				{ev: "ok a 3", out: Applied, evs: []string{"run.finished:success"}},
				{ev: "fail a 3", out: Stale, state: "success a=success/3"},
			},
		},
		{
			name: "a terminal task ignores other attempts",
			plan: []string{"a", "b"},
			steps: []step{
				{ev: "submit", out: Applied, disp: []string{"a/1", "b/1"}, evs: []string{"run.started", "task.dispatched a/1", "task.dispatched b/1"}},
				{ev: "ok a 1", out: Applied},
				{ev: "fail a 1", out: Duplicate, state: "running a=success/1 b=dispatched/1"},
				{ev: "ok a 2", out: Stale},
			},
		},
		{
			name: "other types and unknown tasks are ignored",
			plan: []string{"a"},
			steps: []step{
				{ev: "submit", out: Applied, disp: []string{"a/1"}, evs: []string{"run.started", "task.dispatched a/1"}},
				{ev: "start a 1", out: Ignored},
				{ev: "ok zz 1", out: Ignored, state: "running a=dispatched/1"},
			},
		},
		{
			name: "only referenced outputs are kept",
			plan: []string{"a", "b", "c:a,b"},
			refs: map[string]string{"c": "a"},
			steps: []step{
				{ev: "submit", out: Applied, disp: []string{"a/1", "b/1"}, evs: []string{"run.started", "task.dispatched a/1", "task.dispatched b/1"}},
				{ev: "ok a 1 {\"n\":1}", out: Applied, outs: []string{`a={"n":1}`}},
				{ev: "ok b 1 {\"n\":2}", out: Applied, disp: []string{"c/1"}, evs: []string{"task.dispatched c/1"}},
				{ev: "ok c 1 3", out: Applied, evs: []string{"run.finished:success"}},
			},
		},
		{
			name: "cancel cancels every unfinished task and ends the run",
			plan: []string{"a", "b:a", "c", "d"},
			steps: []step{
				{ev: "submit", out: Applied, disp: []string{"a/1", "c/1", "d/1"}},
				{ev: "ok c 1", out: Applied},
				{ev: "cancel@7", out: Applied, evs: []string{"task.cancelled a/1", "task.cancelled b/0", "task.cancelled d/1",
					"run.finished:cancelled:run cancelled"},
					state: "cancelled a=cancelled/1 b=cancelled/0 c=success/1 d=cancelled/1"},
				{ev: "ok a 1", out: Stale},
				{ev: "fail d 1", out: Stale},
				{ev: "cancel@7", out: Stale},
				{ev: "resume@8", out: Stale, state: "cancelled a=cancelled/1 b=cancelled/0 c=success/1 d=cancelled/1"},
			},
		},
		{
			name: "cancel before the submission is stale",
			plan: []string{"a"},
			steps: []step{
				{ev: "cancel@1", out: Stale, state: "pending a=pending/0"},
				{ev: "pause@2", out: Stale},
				{ev: "submit", out: Applied, disp: []string{"a/1"}},
			},
		},
		{
			name: "pause holds new dispatches, running tasks finish, resume dispatches them",
			plan: []string{"a", "b:a", "c:a", "x"},
			steps: []step{
				{ev: "submit", out: Applied, disp: []string{"a/1", "x/1"}},
				{ev: "pause@3", out: Applied, evs: []string{"run.paused"}, state: "paused a=dispatched/1 b=pending/0 c=pending/0 x=dispatched/1"},
				{ev: "ok a 1", out: Applied, state: "paused a=success/1 b=paused/1 c=paused/1 x=dispatched/1"},
				{ev: "ok x 1", out: Applied, state: "paused a=success/1 b=paused/1 c=paused/1 x=success/1"},
				{ev: "pause@4", out: Duplicate, evs: []string{"run.paused"}},
				{ev: "resume@5", out: Applied, disp: []string{"b/1", "c/1"},
					evs:   []string{"run.resumed", "task.dispatched b/1", "task.dispatched c/1"},
					state: "running a=success/1 b=dispatched/1 c=dispatched/1 x=success/1"},
				{ev: "resume@6", out: Duplicate, evs: []string{"run.resumed"}},
				{ev: "pause@4", out: Duplicate, state: "running a=success/1 b=dispatched/1 c=dispatched/1 x=success/1"},
				{ev: "ok b 1", out: Applied},
				{ev: "ok c 1", out: Applied, evs: []string{"run.finished:success"}},
			},
		},
		{
			name: "a retry due while paused is held and dispatched at once on resume",
			plan: []string{"a*1"},
			steps: []step{
				{ev: "submit", out: Applied, disp: []string{"a/1"}},
				{ev: "pause@2", out: Applied, evs: []string{"run.paused"}},
				{ev: "fail a 1", out: Applied, state: "paused a=paused/2"},
				{ev: "fail a 1", out: Stale},
				{ev: "resume@3", out: Applied, disp: []string{"a/2"}, evs: []string{"run.resumed", "task.dispatched a/2"}},
				{ev: "fail a 2", out: Applied, evs: []string{`run.finished:failed:task "a" failed: boom`}},
			},
		},
		{
			name: "a paused run with nothing running stays paused",
			plan: []string{"a", "b:a"},
			steps: []step{
				{ev: "submit", out: Applied, disp: []string{"a/1"}},
				{ev: "pause@2", out: Applied, evs: []string{"run.paused"}},
				{ev: "ok a 1", out: Applied, state: "paused a=success/1 b=paused/1"},
			},
		},
		{
			name: "a paused run whose last task ends finishes",
			plan: []string{"a"},
			steps: []step{
				{ev: "submit", out: Applied, disp: []string{"a/1"}},
				{ev: "pause@2", out: Applied, evs: []string{"run.paused"}},
				{ev: "ok a 1", out: Applied, evs: []string{"run.finished:success"}, state: "success a=success/1"},
			},
		},
		{
			name: "cancel while paused cancels held tasks at their last attempt",
			plan: []string{"a*2", "b:a", "c"},
			steps: []step{
				{ev: "submit", out: Applied, disp: []string{"a/1", "c/1"}},
				{ev: "pause@2", out: Applied, evs: []string{"run.paused"}},
				{ev: "fail a 1", out: Applied, state: "paused a=paused/2 b=pending/0 c=dispatched/1"},
				{ev: "cancel@3", out: Applied, evs: []string{"task.cancelled a/1", "task.cancelled b/0", "task.cancelled c/1",
					"run.finished:cancelled:run cancelled"}, state: "cancelled a=cancelled/1 b=cancelled/0 c=cancelled/1"},
				{ev: "resume@4", out: Stale},
				{ev: "ok c 1", out: Stale},
			},
		},
		{
			name: "a redelivered pause does not undo a later resume",
			plan: []string{"a", "b:a"},
			steps: []step{
				{ev: "submit", out: Applied, disp: []string{"a/1"}},
				{ev: "pause@2", out: Applied, evs: []string{"run.paused"}},
				{ev: "resume@3", out: Applied, evs: []string{"run.resumed"}},
				{ev: "pause@2", out: Duplicate, state: "running a=dispatched/1 b=pending/0"},
				{ev: "ok a 1", out: Applied, disp: []string{"b/1"}},
			},
		},
		{
			name: "a lost attempt runs again at once without using up retries",
			plan: []string{"a", "b:a"},
			steps: []step{
				{ev: "submit", out: Applied, disp: []string{"a/1"}},
				{ev: "lost a 1", out: Applied, disp: []string{"a/2"}, evs: []string{"task.dispatched a/2"},
					state: "running a=dispatched/2~1 b=pending/0"},
				{ev: "lost a 1", out: Duplicate},
				{ev: "ok a 1", out: Stale, state: "running a=dispatched/2~1 b=pending/0"},
				{ev: "ok a 2", out: Applied, disp: []string{"b/1"}, evs: []string{"task.dispatched b/1"},
					state: "running a=success/2~1 b=dispatched/1"},
				{ev: "ok a 1", out: Stale},
				{ev: "ok b 1", out: Applied, evs: []string{"run.finished:success"}},
			},
		},
		{
			name: "lost attempts keep the retries and their backoff",
			plan: []string{"a*1"},
			steps: []step{
				{ev: "submit", out: Applied, disp: []string{"a/1"}},
				{ev: "lost a 1", out: Applied, disp: []string{"a/2"}},
				{ev: "fail a 2", out: Applied, disp: []string{"a/3+1s"}, state: "running a=dispatched/3~1"},
				{ev: "lost a 3", out: Applied, disp: []string{"a/4"}, state: "running a=dispatched/4~2"},
				{ev: "fail a 4", out: Applied, evs: []string{`run.finished:failed:task "a" failed: boom`}, state: "failed a=failed/4~2"},
			},
		},
		{
			name: "lost attempts are capped, then the task fails for good",
			plan: []string{"a*5", "b:a"},
			steps: []step{
				{ev: "submit", out: Applied, disp: []string{"a/1"}},
				{ev: "lost a 1", out: Applied, disp: []string{"a/2"}},
				{ev: "lost a 2", out: Applied, disp: []string{"a/3"}},
				{ev: "lost a 3", out: Applied, evs: []string{"task.failed a/3:max_lost", "task.skipped b/0", `run.finished:failed:task "a" failed: ` + gaveUp},
					state: "failed a=failed/3~3 b=skipped/0"},
			},
		},
		{
			// The one rule for a lost attempt's late result, whichever comes first (the stores rank
			// the max_lost verdict above any result of its attempt, storetest LostAttemptAtTheCap).
			name: "at the cap, the loss then the attempt's real result: the task stays failed",
			plan: []string{"a", "b:a"},
			steps: []step{
				{ev: "submit", out: Applied, disp: []string{"a/1"}},
				{ev: "lost a 1", out: Applied, disp: []string{"a/2"}},
				{ev: "lost a 2", out: Applied, disp: []string{"a/3"}},
				{ev: "lost a 3", out: Applied, evs: []string{"task.failed a/3:max_lost", "task.skipped b/0", `run.finished:failed:task "a" failed: ` + gaveUp}},
				{ev: "ok a 3", out: Stale, state: "failed a=failed/3~3 b=skipped/0"},
			},
		},
		{
			name: "at the cap, the attempt's real result then the loss: the task succeeds",
			plan: []string{"a", "b:a"},
			steps: []step{
				{ev: "submit", out: Applied, disp: []string{"a/1"}},
				{ev: "lost a 1", out: Applied, disp: []string{"a/2"}},
				{ev: "lost a 2", out: Applied, disp: []string{"a/3"}},
				{ev: "ok a 3", out: Applied, disp: []string{"b/1"}, evs: []string{"task.dispatched b/1"}},
				{ev: "lost a 3", out: Duplicate, state: "running a=success/3~2 b=dispatched/1"},
			},
		},
		{
			name: "a real failure after lost attempts is no verdict",
			plan: []string{"a"},
			steps: []step{
				{ev: "submit", out: Applied, disp: []string{"a/1"}},
				{ev: "lost a 1", out: Applied, disp: []string{"a/2"}},
				{ev: "lost a 2", out: Applied, disp: []string{"a/3"}},
				{ev: "fail a 3", out: Applied, evs: []string{`run.finished:failed:task "a" failed: boom`}, state: "failed a=failed/3~2"},
			},
		},
		{
			name: "a lost attempt while paused is held",
			plan: []string{"a"},
			steps: []step{
				{ev: "submit", out: Applied, disp: []string{"a/1"}},
				{ev: "pause@2", out: Applied, evs: []string{"run.paused"}},
				{ev: "lost a 1", out: Applied, state: "paused a=paused/2~1"},
				{ev: "resume@3", out: Applied, disp: []string{"a/2"}, evs: []string{"run.resumed", "task.dispatched a/2"}},
			},
		},
		{
			name: "a referenced output that is missing is kept as null",
			plan: []string{"a", "b:a"},
			refs: map[string]string{"b": "a"},
			steps: []step{
				{ev: "submit", out: Applied, disp: []string{"a/1"}, evs: []string{"run.started", "task.dispatched a/1"}},
				{ev: "ok a 1", out: Applied, disp: []string{"b/1"}, evs: []string{"task.dispatched b/1"}, outs: []string{"a=null"}},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := spec(t, tc.plan...)
			for i := range p.Tasks {
				if ref, ok := tc.refs[p.Tasks[i].Name]; ok {
					p.Tasks[i].Inputs = map[string]workflow.Binding{"x": {Ref: &workflow.Ref{Task: ref}}}
				}
			}
			g, err := NewGraph(p)
			if err != nil {
				t.Fatal(err)
			}
			st := NewRunState(g)
			for n, s := range tc.steps {
				before, _ := st.MarshalBinary()
				c, err := Apply(g, st, ev(t, s.ev), t0, testPolicy)
				if err != nil {
					t.Fatalf("step %d %q: %v", n, s.ev, err)
				}
				if c.Outcome != s.out {
					t.Fatalf("step %d %q: outcome %s (%s), want %s", n, s.ev, c.Outcome, c.Reason, s.out)
				}
				after, _ := st.MarshalBinary()
				if c.Outcome != Applied && string(before) != string(after) {
					t.Fatalf("step %d %q: %s event changed the state", n, s.ev, c.Outcome)
				}
				disp, evs, outs := describe(g, c)
				if !slices.Equal(disp, s.disp) {
					t.Errorf("step %d %q: dispatches %q, want %q", n, s.ev, disp, s.disp)
				}
				if s.evs == nil {
					// Unlisted: only the events that the dispatches imply may be there.
					evs = slices.DeleteFunc(evs, func(e string) bool {
						return e == event.TypeRunStarted || strings.HasPrefix(e, event.TypeTaskDispatched+" ")
					})
				}
				if !slices.Equal(evs, s.evs) {
					t.Errorf("step %d %q: events %q, want %q", n, s.ev, evs, s.evs)
				}
				if !slices.Equal(outs, s.outs) {
					t.Errorf("step %d %q: outputs %q, want %q", n, s.ev, outs, s.outs)
				}
				if s.state != "" {
					if got := stateString(g, st); got != s.state {
						t.Errorf("step %d %q: state %q, want %q", n, s.ev, got, s.state)
					}
				}
				checkRemaining(t, st)
				fresh := &RunState{Status: st.Status, Tasks: slices.Clone(st.Tasks), FailedTask: st.FailedTask, Error: st.Error,
					ControlSeq: st.ControlSeq}
				if enc, _ := fresh.MarshalBinary(); string(enc) != string(after) {
					t.Fatalf("step %d %q: incremental encoding %x, full scan %x", n, s.ev, after, enc)
				}
			}
		})
	}
}

// gaveUp is the error of the verdict on a task whose third attempt was lost (testPolicy's cap is 2).
const gaveUp = "attempt 3 was lost (executor gone) after 2 lost attempts were run again, the most allowed: giving up"

// TestVerdictIsReplayed: a scheduler that died after giving up on a task, before publishing the
// verdict, publishes the same verdict (same id) when the loss is delivered again; a real failure
// delivered again publishes none.
func TestVerdictIsReplayed(t *testing.T) {
	t.Parallel()
	g, err := NewGraph(spec(t, "a", "b:a"))
	if err != nil {
		t.Fatal(err)
	}
	st := NewRunState(g)
	var last Commands
	var loss *event.Event
	for _, s := range []string{"submit", "lost a 1", "lost a 2", "lost a 3"} {
		loss = ev(t, s)
		if last, err = Apply(g, st, loss, t0, testPolicy); err != nil || last.Outcome != Applied {
			t.Fatalf("%s: %v %+v", s, err, last)
		}
	}
	replayed := Replay(g, st, loss, t0, testPolicy)
	verdict := func(c Commands) *event.Event {
		for i := range c.Events {
			if c.Events[i].Reason == event.ReasonMaxLost {
				return &c.Events[i]
			}
		}
		return nil
	}
	a, b := verdict(last), verdict(replayed)
	if a == nil || b == nil || a.ID != b.ID || a.ID == loss.ID || a.Attempt != 3 {
		t.Fatalf("verdict %+v, replayed %+v: want one id, derived from the loss's, at attempt 3", a, b)
	}

	st = NewRunState(g)
	var failure *event.Event
	for _, s := range []string{"submit", "lost a 1", "lost a 2", "fail a 3"} {
		failure = ev(t, s)
		if _, err := Apply(g, st, failure, t0, testPolicy); err != nil {
			t.Fatal(err)
		}
	}
	if v := verdict(Replay(g, st, failure, t0, testPolicy)); v != nil {
		t.Fatalf("a real failure replayed publishes a verdict: %+v", v)
	}
	if v := verdict(Replay(g, st, ev(t, "lost a 3"), t0, testPolicy)); v != nil {
		t.Fatalf("a loss after a real failure replayed publishes a verdict: %+v", v)
	}
}

func checkRemaining(t *testing.T, st *RunState) {
	t.Helper()
	n := 0
	for _, ts := range st.Tasks {
		if !ts.Status.Terminal() {
			n++
		}
	}
	if n != st.Remaining {
		t.Fatalf("Remaining = %d, %d tasks are not terminal", st.Remaining, n)
	}
}

func TestAnswerIsDeterministic(t *testing.T) {
	t.Parallel()
	g, err := NewGraph(spec(t, "a"))
	if err != nil {
		t.Fatal(err)
	}
	st := NewRunState(g)
	if _, err := Apply(g, st, ev(t, "submit"), t0, testPolicy); err != nil {
		t.Fatal(err)
	}
	pause := ev(t, "pause@2")
	c, err := Apply(g, st, pause, t0, testPolicy)
	if err != nil || len(c.Events) != 1 {
		t.Fatalf("pause: %v %+v", err, c)
	}
	replayed := Replay(g, st, pause, t0, testPolicy)
	if len(replayed.Events) != 1 {
		t.Fatalf("replay: %+v", replayed)
	}
	a, b := c.Events[0], replayed.Events[0]
	if a.ID == "" || a.ID != b.ID || a.MsgID() != b.MsgID() || a.ID == pause.ID {
		t.Fatalf("answer ids %q and %q (request %q): want one id, derived from the request", a.ID, b.ID, pause.ID)
	}
	if other := event.AnswerID(pause.ID, event.TypeRunResumed); other == a.ID {
		t.Fatal("answers of different types share an id")
	}
}

func TestRunStateDecodesVersion1(t *testing.T) {
	t.Parallel()
	var st RunState
	if err := st.UnmarshalBinary([]byte{1, byte(RunActive), 0, 3, 0, 0, 3, byte(TaskDispatched), 1}); err != nil {
		t.Fatal(err)
	}
	if st.Status != RunActive || st.Remaining != 3 || len(st.Tasks) != 3 || st.Tasks[2] != (TaskState{Status: TaskDispatched, Attempt: 1}) {
		t.Fatalf("decoded %+v", st)
	}
	// A lost count is not part of version 1.
	if err := st.UnmarshalBinary([]byte{1, byte(RunActive), 0, 1, 0, 0, 1, byte(TaskDispatched) | statusHasLost, 2, 1}); err == nil {
		t.Fatal("version 1 with a lost count decoded")
	}
}
