package scheduler

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/workflow"
)

// A rerun of a -> b -> c (and a lone d) whose a and d are reused: a and d succeed at attempt 0 with
// the reused outputs at once, b starts (it only depends on a), c waits for b; a replay of the
// submission publishes the same; a late success of a reused task changes nothing.
func TestRerunReusesOutputs(t *testing.T) {
	p := spec(t, "a", "b:a", "c:b", "d")
	p.Tasks[1].Inputs = map[string]workflow.Binding{"x": {Ref: &workflow.Ref{Task: "a"}}}
	g, err := NewGraph(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.bindReuse(map[string]json.RawMessage{"a": json.RawMessage(`{"n":1}`), "d": nil}); err != nil {
		t.Fatal(err)
	}
	st := NewRunState(g)
	c, err := Apply(g, st, ev(t, "submit"), t0, testPolicy)
	if err != nil || c.Outcome != Applied {
		t.Fatalf("submit: %+v %v", c, err)
	}
	disp, evs, outs := describe(g, c)
	if !slices.Equal(disp, []string{"b/1"}) {
		t.Errorf("dispatches %v, want b/1", disp)
	}
	if !slices.Contains(evs, "task.succeeded a/0") || !slices.Contains(evs, "task.succeeded d/0") {
		t.Errorf("events %v, want the reused successes at attempt 0", evs)
	}
	for _, e := range c.Events {
		if e.Type == event.TypeTaskSucceeded && (e.Reason != event.ReasonReused || (e.Task == "a" && string(e.Output) != `{"n":1}`)) {
			t.Errorf("reused event %+v", e)
		}
	}
	if !slices.Equal(outs, []string{`a={"n":1}`}) {
		t.Errorf("outputs %v, want a's for b's ref", outs)
	}
	if got := stateString(g, st); got != "running a=success/0 b=dispatched/1 c=pending/0 d=success/0" {
		t.Errorf("state %s", got)
	}
	r := Replay(g, st, ev(t, "submit"), t0, testPolicy)
	rdisp, revs, _ := describe(g, r)
	if !slices.Equal(rdisp, disp) || !slices.Contains(revs, "task.succeeded a/0") || !slices.Contains(revs, "task.succeeded d/0") {
		t.Errorf("replay: %v %v", rdisp, revs)
	}
	late := ev(t, "ok a 0")
	if c, err := Apply(g, st, late, t0, testPolicy); err != nil || c.Outcome == Applied {
		t.Errorf("a success of a reused task: %+v %v", c, err)
	}
	for _, step := range []string{"ok b 1", "ok c 1"} {
		if _, err := Apply(g, st, ev(t, step), t0, testPolicy); err != nil {
			t.Fatal(err)
		}
	}
	if st.Status != RunSucceeded {
		t.Errorf("after b and c: %s", stateString(g, st))
	}
}

// A rerun that reuses every task ends at once; reuse that does not fit the plan is refused.
func TestRerunReuseChecked(t *testing.T) {
	p := spec(t, "a", "b:a")
	g, err := NewGraph(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.bindReuse(map[string]json.RawMessage{"a": json.RawMessage(`1`), "b": json.RawMessage(`2`)}); err != nil {
		t.Fatal(err)
	}
	st := NewRunState(g)
	c, err := Apply(g, st, ev(t, "submit"), t0, testPolicy)
	if err != nil || !c.Finished || st.Status != RunSucceeded || len(c.Dispatches) != 0 {
		t.Fatalf("everything reused: %+v %v %s", c, err, stateString(g, st))
	}
	for reuse, msg := range map[string]string{
		`{"zz": 1}`: `"zz", which is not a task`,
		`{"b": 1}`:  `reuses the output of "b", but it depends on "a", which runs again`,
	} {
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(reuse), &m); err != nil {
			t.Fatal(err)
		}
		if err := g.bindReuse(m); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("reuse %s: %v, want %q", reuse, err, msg)
		}
	}
}
