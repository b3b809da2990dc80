package scheduler

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ork-go/ork/pkg/workflow"
)

func TestReplay(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		plan    []string
		applied []string // events applied first
		replay  string
		disp    []string
		evs     []string
	}{
		{
			name: "submission re-dispatches the roots still outstanding", plan: []string{"a", "b", "c:a"},
			applied: []string{"submit", "ok a 1"}, replay: "submit",
			disp: []string{"b/1"}, evs: []string{"run.started", "task.dispatched b/1"},
		},
		{
			name: "success re-dispatches its outstanding successors", plan: []string{"a", "b:a", "c:a", "d:a"},
			applied: []string{"submit", "ok a 1", "ok c 1"}, replay: "ok a 1",
			disp: []string{"b/1", "d/1"}, evs: []string{"task.dispatched b/1", "task.dispatched d/1"},
		},
		{
			name: "failure re-dispatches its retry", plan: []string{"a*2"},
			applied: []string{"submit", "fail a 1"}, replay: "fail a 1",
			disp: []string{"a/2+1s"}, evs: []string{"task.dispatched a/2"},
		},
		{
			name: "a retry that already failed again is not re-dispatched", plan: []string{"a*2"},
			applied: []string{"submit", "fail a 1", "fail a 2"}, replay: "fail a 1",
		},
		{
			name: "final failure re-publishes skips and run.finished", plan: []string{"a", "b:a", "c:b"},
			applied: []string{"submit", "fail a 1"}, replay: "fail a 1",
			evs: []string{"task.skipped b/0", "task.skipped c/0", `run.finished:failed:task "a" failed: boom`},
		},
		{
			name: "last success re-publishes run.finished", plan: []string{"a"},
			applied: []string{"submit", "ok a 1"}, replay: "ok a 1",
			evs: []string{"run.finished:success"},
		},
		{
			name: "a lost attempt re-dispatches its successor at once", plan: []string{"a*2"},
			applied: []string{"submit", "fail a 1", "lost a 2"}, replay: "lost a 2",
			disp: []string{"a/3"}, evs: []string{"task.dispatched a/3"},
		},
		{
			name: "a retry after a lost attempt keeps its backoff", plan: []string{"a*2"},
			applied: []string{"submit", "lost a 1", "fail a 2"}, replay: "fail a 2",
			disp: []string{"a/3+1s"}, evs: []string{"task.dispatched a/3"},
		},
		{
			name: "cancel re-publishes the cancellations and run.finished", plan: []string{"a", "b:a", "c"},
			applied: []string{"submit", "ok c 1", "cancel@4"}, replay: "cancel@4",
			evs: []string{"task.cancelled a/1", "task.cancelled b/0", "run.finished:cancelled:run cancelled"},
		},
		{
			name: "pause re-publishes its answer while paused", plan: []string{"a"},
			applied: []string{"submit", "pause@2"}, replay: "pause@2", evs: []string{"run.paused"},
		},
		{
			name: "pause answers nothing once resumed", plan: []string{"a"},
			applied: []string{"submit", "pause@2", "resume@3"}, replay: "pause@2",
		},
		{
			name: "resume re-publishes its answer", plan: []string{"a"},
			applied: []string{"submit", "pause@2", "resume@3"}, replay: "resume@3", evs: []string{"run.resumed"},
		},
		{
			name: "an unapplied event replays nothing", plan: []string{"a", "b:a"},
			applied: []string{"submit"}, replay: "ok b 1",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g, err := NewGraph(spec(t, tc.plan...))
			if err != nil {
				t.Fatal(err)
			}
			st := NewRunState(g)
			for _, s := range tc.applied {
				if c, err := Apply(g, st, ev(t, s), t0, testPolicy); err != nil || c.Outcome != Applied {
					t.Fatalf("applying %q: %v %v", s, c.Outcome, err)
				}
			}
			before, _ := st.MarshalBinary()
			c := Replay(g, st, ev(t, tc.replay), t0, testPolicy)
			after, _ := st.MarshalBinary()
			if string(before) != string(after) {
				t.Fatal("Replay changed the state")
			}
			disp, evs, _ := describe(g, c)
			if !slices.Equal(disp, tc.disp) {
				t.Errorf("dispatches %q, want %q", disp, tc.disp)
			}
			if !slices.Equal(evs, tc.evs) {
				t.Errorf("events %q, want %q", evs, tc.evs)
			}
		})
	}
}

func TestReplayCompacted(t *testing.T) {
	t.Parallel()
	g, err := NewGraph(spec(t, "a"))
	if err != nil {
		t.Fatal(err)
	}
	st := NewRunState(g)
	for _, s := range []string{"submit", "fail a 1"} {
		if _, err := Apply(g, st, ev(t, s), t0, testPolicy); err != nil {
			t.Fatal(err)
		}
	}
	tomb := st.Tombstone()
	for _, s := range []string{"submit", "ok a 1"} {
		c, err := Apply(g, tomb, ev(t, s), t0, testPolicy)
		if err != nil || c.Outcome == Applied {
			t.Fatalf("%q on a tombstone: %v %v", s, c.Outcome, err)
		}
	}
	c := Replay(nil, tomb, ev(t, "submit"), t0, testPolicy)
	_, evs, _ := describe(g, c)
	if want := []string{`run.finished:failed:task "a" failed: boom`}; !slices.Equal(evs, want) {
		t.Fatalf("events %q, want %q", evs, want)
	}
}

func TestBackoffDelay(t *testing.T) {
	t.Parallel()
	b := Backoff{Base: time.Second, Max: time.Minute}
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 6: 32 * time.Second,
		7: time.Minute, 8: time.Minute, 100: time.Minute} {
		if got := b.Delay(n, 12345); got != want {
			t.Errorf("Delay(%d) = %s, want %s", n, got, want)
		}
	}
	b.Jitter = 0.5
	seen := map[time.Duration]bool{}
	for seed := range uint64(64) {
		d := b.Delay(3, seed*0x9e3779b97f4a7c15)
		if d > 4*time.Second || d < 2*time.Second {
			t.Fatalf("jittered delay %s outside [2s, 4s]", d)
		}
		if d != b.Delay(3, seed*0x9e3779b97f4a7c15) {
			t.Fatal("same seed gave another delay")
		}
		seen[d] = true
	}
	if len(seen) < 32 {
		t.Fatalf("jitter gave only %d distinct delays out of 64 seeds", len(seen))
	}
	if err := (Backoff{Base: time.Second, Max: time.Millisecond}).Validate(); err == nil {
		t.Fatal("Max < Base validated")
	}
}

func TestNewGraphRejects(t *testing.T) {
	t.Parallel()
	cases := map[string]*workflow.Plan{
		"no plan":              nil,
		"twice":                spec(t, "a", "a"),
		"unknown dependency":   spec(t, "a:zz"),
		"dependency after":     spec(t, "b:a", "a"),
		"self dependency":      spec(t, "a:a"),
		"duplicate dependency": spec(t, "a", "b:a,a"),
	}
	ref := spec(t, "a", "b", "c:a")
	ref.Tasks[2].Inputs = map[string]workflow.Binding{"x": {Ref: &workflow.Ref{Task: "b"}}}
	cases["ref to a non-dependency"] = ref
	noExec := spec(t, "a")
	noExec.Tasks[0].Executor = ""
	cases["no executor"] = noExec
	for name, p := range cases {
		if _, err := NewGraph(p); err == nil {
			t.Errorf("%s: NewGraph accepted it", name)
		}
	}
}

func TestRunStateEncoding(t *testing.T) {
	t.Parallel()
	g, err := NewGraph(spec(t, "a", "b:a", "c:a", "d:b,c", "e", "f*1"))
	if err != nil {
		t.Fatal(err)
	}
	st := NewRunState(g)
	for _, s := range []string{"submit", "ok a 1", "fail f 1", "fail e 1"} {
		if _, err := Apply(g, st, ev(t, s), t0, testPolicy); err != nil {
			t.Fatal(err)
		}
	}
	data, err := st.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got RunState
	if err := got.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	if stateString(g, &got) != stateString(g, st) || got.Remaining != st.Remaining || got.Error != st.Error ||
		got.FailedTask != st.FailedTask || got.Compacted {
		t.Fatalf("round trip: got %s %+v, want %s %+v", stateString(g, &got), got, stateString(g, st), *st)
	}
	// The decoded state carries on exactly like the original.
	c1, _ := Apply(g, st, ev(t, "ok b 1"), t0, testPolicy)
	c2, _ := Apply(g, &got, ev(t, "ok b 1"), t0, testPolicy)
	c1b, _ := Apply(g, st, ev(t, "ok c 1"), t0, testPolicy)
	c2b, _ := Apply(g, &got, ev(t, "ok c 1"), t0, testPolicy)
	if len(c1.Dispatches) != len(c2.Dispatches) || len(c1b.Dispatches) != 1 || len(c2b.Dispatches) != 1 {
		t.Fatalf("decoded state diverged: %+v %+v %+v %+v", c1, c2, c1b, c2b)
	}
	var tomb RunState
	enc, _ := st.Tombstone().MarshalBinary()
	if err := tomb.UnmarshalBinary(enc); err != nil || !tomb.Compacted || len(tomb.Tasks) != 0 {
		t.Fatalf("tombstone round trip: %+v %v", tomb, err)
	}
	for i := range data {
		var bad RunState
		if err := bad.UnmarshalBinary(data[:i]); err == nil {
			t.Fatalf("truncated at %d decoded", i)
		}
	}
	wrongVersion := append([]byte{9}, data[1:]...)
	if err := new(RunState).UnmarshalBinary(wrongVersion); err == nil || !strings.Contains(err.Error(), "version") {
		t.Fatalf("wrong version: %v", err)
	}
}

func TestRunStateEncodingIsCompact(t *testing.T) {
	t.Parallel()
	names := make([]string, 10_000)
	for i := range names {
		names[i] = "t" + strconv.Itoa(i)
	}
	g, err := NewGraph(spec(t, names...))
	if err != nil {
		t.Fatal(err)
	}
	st := NewRunState(g)
	if _, err := Apply(g, st, ev(t, "submit"), t0, testPolicy); err != nil {
		t.Fatal(err)
	}
	// Every other task done: the worst case for run-length encoding.
	for i := 0; i < len(names); i += 2 {
		if c, err := Apply(g, st, ev(t, "ok "+names[i]+" 1"), t0, testPolicy); err != nil || c.Outcome != Applied {
			t.Fatalf("ok %s: %v %v", names[i], c.Outcome, err)
		}
	}
	data, _ := st.MarshalBinary()
	if len(data) > 3*len(names)+64 {
		t.Fatalf("state of %d tasks takes %d bytes", len(names), len(data))
	}
}
