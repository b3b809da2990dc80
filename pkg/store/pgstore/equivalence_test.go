package pgstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/store/filestore"
	"github.com/ork-go/ork/pkg/workflow"
)

// TestFoldMatchesSequentialApplication checks the batch folding of pgstore against the file store,
// which applies events one at a time: random batches of out-of-order, replayed, stale and orphan
// events must leave both stores in the same state and give the same results.
func TestFoldMatchesSequentialApplication(t *testing.T) {
	t.Parallel()
	for round := range 6 {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			t.Parallel()
			seed := rand.Uint64()
			t.Logf("seed %d", seed)
			checkEquivalence(t, rand.New(rand.NewPCG(seed, uint64(round))))
		})
	}
}

func checkEquivalence(t *testing.T, rng *rand.Rand) {
	ctx := context.Background()
	pg := open(t)
	fs, err := filestore.Open(t.TempDir())
	if err != nil {
		t.Fatalf("filestore.Open: %v", err)
	}
	t.Cleanup(func() { _ = fs.Close() })

	g := &generator{rng: rng, clock: time.Now().UTC().Truncate(time.Millisecond)}
	runs := []string{event.NewID(), event.NewID(), event.NewID(), event.NewID()}
	var history []event.Event
	for batchNo := range 40 {
		var evs []event.Event
		for range 1 + rng.IntN(12) {
			if len(history) > 0 && rng.IntN(6) == 0 {
				evs = append(evs, history[rng.IntN(len(history))]) // a replay
				continue
			}
			evs = append(evs, g.event(runs))
		}
		history = append(history, evs...)
		p := store.ApplyBatchParams{Events: evs}
		for range rng.IntN(3) {
			p.Logs = append(p.Logs, g.logBatch(runs))
		}
		if rng.IntN(4) == 0 {
			p.DeadLetters = append(p.DeadLetters, store.DeadLetter{
				Stream: g.pick("A", "B"), Seq: uint64(rng.IntN(6)), Reason: g.pick("x", "y"), CreatedAt: g.now(),
			})
		}
		rp, errP := pg.ApplyBatch(ctx, p)
		rf, errF := fs.ApplyBatch(ctx, p)
		if errP != nil || errF != nil {
			t.Fatalf("batch %d: ApplyBatch errors: pgstore %v, filestore %v", batchNo, errP, errF)
		}
		if a, b := orphanIDs(rp), orphanIDs(rf); !slices.Equal(a, b) {
			t.Fatalf("batch %d: orphans differ: pgstore %v, filestore %v", batchNo, a, b)
		}
		if a, b := sortedCopy(rp.FinishedRuns), sortedCopy(rf.FinishedRuns); !slices.Equal(a, b) {
			t.Fatalf("batch %d: finished runs differ: pgstore %v, filestore %v", batchNo, a, b)
		}
		if a, b := dump(t, pg, runs), dump(t, fs, runs); a != b {
			t.Fatalf("batch %d %s: states differ\npgstore:   %s\nfilestore: %s", batchNo, describe(evs), a, b)
		}
	}
}

// logBatch returns lines of a random attempt, seqs 1 to 6 in random order, so some replay others.
func (g *generator) logBatch(runs []string) event.LogBatch {
	lb := event.LogBatch{RunID: runs[g.rng.IntN(len(runs))], Task: g.pick("a", "b", "c", "zz", "yy"), Attempt: 1 + g.rng.IntN(2)}
	for range 1 + g.rng.IntN(4) {
		seq := int64(1 + g.rng.IntN(6))
		lb.Lines = append(lb.Lines, event.LogLine{Seq: seq, Stream: g.pick(event.Stdout, event.Stderr), Line: fmt.Sprint("line ", seq, " ", g.rng.IntN(3)), Time: g.now()})
	}
	return lb
}

type generator struct {
	rng   *rand.Rand
	clock time.Time
}

func (g *generator) now() time.Time {
	g.clock = g.clock.Add(time.Duration(1+g.rng.IntN(5)) * time.Millisecond)
	return g.clock
}

func (g *generator) pick(ss ...string) string { return ss[g.rng.IntN(len(ss))] }

func (g *generator) plan() *workflow.Plan {
	name := g.pick("etl", "ml")
	tasks := []workflow.Task{
		{Name: "a", Index: 2, Executor: workflow.ExecutorProcess, TimeoutSeconds: 5},
		{Name: "b", Index: 0, Executor: workflow.ExecutorPython, DependsOn: []string{"a"}, Retries: 2},
		{Name: "c", Index: 1, Executor: workflow.ExecutorNoop, DependsOn: []string{"a", "b"}},
	}
	if g.rng.IntN(2) == 0 {
		tasks = tasks[:2]
	}
	return &workflow.Plan{Name: name, Description: g.pick("one", "two"), Hash: fmt.Sprintf("%s-%d", name, len(tasks)), Tasks: tasks}
}

func (g *generator) event(runs []string) event.Event {
	run := runs[g.rng.IntN(len(runs))]
	switch n := g.rng.IntN(20); {
	case n < 3:
		e := event.New(event.TypeRunSubmitted, run, "", 0)
		e.Plan = g.plan()
		e.Workflow = e.Plan.Name
		e.IdempotencyKey = g.pick("", "", "k1", "k2")
		e.TriggeredBy = "test"
		e.Time = g.now()
		return e
	case n < 6:
		typ := g.pick(event.TypeRunStarted, event.TypeRunFinished)
		e := event.New(typ, run, "", 0)
		e.Time = g.now()
		if typ == event.TypeRunFinished {
			e.Status = g.pick(event.RunSuccess, event.RunFailed, event.RunCancelled, event.RunPaused)
			e.Error = g.pick("", "boom")
		}
		return e
	default:
		typ := g.pick(event.TypeTaskDispatched, event.TypeTaskStarted, event.TypeTaskSucceeded, event.TypeTaskFailed,
			event.TypeTaskSkipped, event.TypeTaskCancelled)
		e := event.New(typ, run, g.pick("a", "b", "c", "a", "b", "zz"), g.rng.IntN(4))
		e.Time = g.now()
		e.Instance = g.pick("", "i1", "i2")
		switch typ {
		case event.TypeTaskSucceeded:
			e.Output = json.RawMessage(fmt.Sprintf(`{"v": %d, "a": [1, 2]}`, g.rng.IntN(100)))
			code := 0
			e.ExitCode, e.DurationMS = &code, int64(g.rng.IntN(50))
		case event.TypeTaskFailed, event.TypeTaskCancelled, event.TypeTaskSkipped:
			code := 1 + g.rng.IntN(3)
			e.ExitCode, e.DurationMS = &code, int64(g.rng.IntN(50))
			e.Error, e.Reason = g.pick("", "exit 1", "timeout"), g.pick(event.ReasonExit, event.ReasonTimeout)
		}
		return e
	}
}

// dump renders everything both stores return about runs, with JSON values canonicalized.
func dump(t *testing.T, s store.Store, runs []string) string {
	t.Helper()
	ctx := context.Background()
	type runState struct {
		Run      *store.Run
		Tasks    []store.Task
		Attempts []store.Attempt
		Logs     [][]store.LogLine
	}
	var states []runState
	for _, id := range runs {
		var st runState
		r, err := s.RunGet(ctx, store.RunGetParams{ID: id})
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			t.Fatalf("RunGet: %v", err)
		default:
			st.Run = &r
		}
		if st.Tasks, err = s.TaskList(ctx, store.TaskListParams{RunID: id}); err != nil {
			t.Fatalf("TaskList: %v", err)
		}
		for i := range st.Tasks {
			if out := st.Tasks[i].Output; len(out) > 0 {
				var v any
				if err := json.Unmarshal(out, &v); err != nil {
					t.Fatalf("output %q: %v", out, err)
				}
				st.Tasks[i].Output, _ = json.Marshal(v)
			}
		}
		if st.Attempts, err = s.AttemptList(ctx, store.AttemptListParams{RunID: id}); err != nil {
			t.Fatalf("AttemptList: %v", err)
		}
		for _, lp := range []store.LogListParams{
			{RunID: id}, {RunID: id, Task: "b"}, {RunID: id, Task: "zz", AfterSeq: 2}, {RunID: id, Limit: 3},
		} {
			lines, err := s.LogList(ctx, lp)
			if err != nil {
				t.Fatalf("LogList: %v", err)
			}
			st.Logs = append(st.Logs, lines)
		}
		states = append(states, st)
	}
	ws, err := s.WorkflowList(ctx, store.WorkflowListParams{})
	if err != nil {
		t.Fatalf("WorkflowList: %v", err)
	}
	dls, err := s.DeadLetterList(ctx, store.DeadLetterListParams{})
	if err != nil {
		t.Fatalf("DeadLetterList: %v", err)
	}
	out, err := json.Marshal(struct {
		Runs        []runState
		Workflows   []store.Workflow
		DeadLetters []store.DeadLetter
	}{states, ws, dls})
	if err != nil {
		t.Fatalf("encoding state: %v", err)
	}
	return string(out)
}

func orphanIDs(r store.ApplyBatchResult) []string {
	ids := make([]string, 0, len(r.Orphans))
	for _, e := range r.Orphans {
		ids = append(ids, e.ID)
	}
	slices.Sort(ids)
	return ids
}

func sortedCopy(ss []string) []string {
	out := slices.Clone(ss)
	slices.Sort(out)
	return out
}

func describe(evs []event.Event) string {
	s := ""
	for _, e := range evs {
		s += fmt.Sprintf("\n  %s %s/%s/%d status=%s", e.Type, e.RunID[len(e.RunID)-4:], e.Task, e.Attempt, e.Status)
	}
	return s
}
