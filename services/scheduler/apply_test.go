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

// ev parses "submit", "ok <task> <attempt> [output]", "fail <task> <attempt>", "start <task> <attempt>".
func ev(t *testing.T, s string) *event.Event {
	t.Helper()
	f := strings.Fields(s)
	e := &event.Event{V: event.SchemaVersion, ID: "id-" + s, RunID: "r1", Time: t0}
	if f[0] == "submit" {
		e.Type = event.TypeRunSubmitted
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
		case event.TypeRunStarted:
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

// stateString renders "running a=success/1 b=dispatched/1 ...".
func stateString(g *Graph, st *RunState) string {
	parts := []string{st.Status.String()}
	for i, ts := range st.Tasks {
		parts = append(parts, fmt.Sprintf("%s=%s/%d", g.Task(i).Name, ts.Status, ts.Attempt))
	}
	return strings.Join(parts, " ")
}

type step struct {
	ev    string
	out   Outcome
	disp  []string
	evs   []string
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
				fresh := &RunState{Status: st.Status, Tasks: slices.Clone(st.Tasks), FailedTask: st.FailedTask, Error: st.Error}
				if enc, _ := fresh.MarshalBinary(); string(enc) != string(after) {
					t.Fatalf("step %d %q: incremental encoding %x, full scan %x", n, s.ev, after, enc)
				}
			}
		})
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
