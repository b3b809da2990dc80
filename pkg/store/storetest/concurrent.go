package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/workflow"
)

func contextCancelled(f *fixture) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(f.ctx)
	cancel()
	return ctx, cancel
}

// concurrently runs fn(i) for i in [0, n) at once and fails the test with the first error.
func concurrently(t *testing.T, n int, fn func(i int) error) {
	t.Helper()
	errs := make(chan error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs <- fn(i)
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func testConcurrentWriters(t *testing.T, f *fixture) {
	concurrentWriters(t, f, []store.Store{f.s})
}

// testTwoHandles runs the concurrent writers through two handles on one backend, and checks that
// both handles read the same state.
func testTwoHandles(t *testing.T, f *fixture, second store.Store) {
	ids := concurrentWriters(t, f, []store.Store{f.s, second})
	other := &fixture{t: t, s: second, ctx: f.ctx}
	f.equalSnapshots(f.snapshot(ids...), other.snapshot(ids...))
}

// concurrentWriters has six writers apply batches at once, writer w through handles[w %
// len(handles)], checks the result through f and returns the ids of the runs written.
func concurrentWriters(t *testing.T, f *fixture, handles []store.Store) []string {
	const writers = 6
	seed := rand.Uint64() //nolint:gosec // a test's shuffle, logged so that it can be replayed
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0)) //nolint:gosec // see seed

	// Shared runs, submitted first; their events are shuffled and spread over every writer, a third
	// of them twice.
	shared := []string{runID(), runID(), runID()}
	var subs []event.Event
	for _, id := range shared {
		subs = append(subs, f.submit(id, diamond("shared"), ""))
	}
	f.events(subs...)
	var sharedEvents []event.Event
	for _, id := range shared {
		sharedEvents = append(sharedEvents, f.ev(event.TypeRunStarted, id, "", 0), f.finished(id, event.RunSuccess, ""))
		for _, name := range []string{"report", "fetch", "left", "right"} {
			sharedEvents = append(sharedEvents,
				f.ev(event.TypeTaskDispatched, id, name, 1), f.ev(event.TypeTaskStarted, id, name, 1),
				f.ev(event.TypeTaskFailed, id, name, 1),
				f.ev(event.TypeTaskDispatched, id, name, 2), f.ev(event.TypeTaskStarted, id, name, 2),
				f.ev(event.TypeTaskSucceeded, id, name, 2))
		}
	}
	perWriter := make([][]event.Event, writers)
	for i, e := range sharedEvents {
		perWriter[i%writers] = append(perWriter[i%writers], e)
		if i%3 == 0 {
			w := rng.IntN(writers)
			perWriter[w] = append(perWriter[w], e)
		}
	}
	// Each writer also owns a run of its own, applied in order, batch by batch.
	own := make([]string, writers)
	ownBatches := make([][]store.ApplyBatchParams, writers)
	for w := range writers {
		rng.Shuffle(len(perWriter[w]), func(i, j int) { perWriter[w][i], perWriter[w][j] = perWriter[w][j], perWriter[w][i] })
		own[w] = runID()
		b := f.lifecycleBatch(own[w], diamond(fmt.Sprintf("own-%d", w)))
		b.DeadLetters[0].Seq = uint64(1000 + w)
		// Cut into batches of five events, the logs and dead letter with the first.
		for i := 0; i < len(b.Events); i += 5 {
			p := store.ApplyBatchParams{Events: b.Events[i:min(i+5, len(b.Events))]}
			if i == 0 {
				p.Logs, p.DeadLetters = b.Logs, b.DeadLetters
			}
			ownBatches[w] = append(ownBatches[w], p)
		}
	}

	// Registrations of two workflows, revisions 1 to regRevs each, shuffled over the writers; the last
	// revision of reg-b is a deletion. Whatever the order, the last revision of each wins.
	const regRevs = 24
	regPlan := func(name string, rev int) *workflow.Plan {
		return plan(name, fmt.Sprint("revision ", rev), task("a", 0))
	}
	var regs []store.Registration
	for rev := 1; rev <= regRevs; rev++ {
		for _, name := range []string{"reg-a", "reg-b"} {
			p := regPlan(name, rev)
			if name == "reg-b" && rev == regRevs {
				p = nil
			}
			regs = append(regs, store.Registration{Name: name, Revision: uint64(rev), Plan: p, AppliedAt: f.now(), AppliedBy: "storetest"})
		}
	}
	rng.Shuffle(len(regs), func(i, j int) { regs[i], regs[j] = regs[j], regs[i] })
	perWriterRegs := make([][]store.Registration, writers)
	for i, r := range regs {
		perWriterRegs[i%writers] = append(perWriterRegs[i%writers], r)
	}

	concurrently(t, writers, func(w int) error {
		mine, shuffled, regs := ownBatches[w], perWriter[w], perWriterRegs[w]
		for len(mine) > 0 || len(shuffled) > 0 || len(regs) > 0 {
			var p store.ApplyBatchParams
			if len(mine) > 0 {
				p = mine[0]
				mine = mine[1:]
			}
			n := min(4, len(shuffled))
			p.Events = append(append([]event.Event(nil), p.Events...), shuffled[:n]...)
			shuffled = shuffled[n:]
			n = min(2, len(regs))
			p.Registrations, regs = regs[:n], regs[n:]
			res, err := handles[w%len(handles)].ApplyBatch(f.ctx, p)
			if err != nil {
				return fmt.Errorf("writer %d: ApplyBatch: %w", w, err)
			}
			if len(res.Orphans) != 0 {
				return fmt.Errorf("writer %d: unexpected orphans %v", w, eventIDs(res.Orphans))
			}
		}
		return nil
	})

	for _, id := range shared {
		wantEq(t, "shared run status", f.run(id).Status, event.RunSuccess)
		for _, tk := range f.tasks(id) {
			wantEq(t, tk.Name+".Attempt", tk.Attempt, 2)
			wantEq(t, tk.Name+".Status", tk.Status, event.TaskSuccess)
			as := f.attempts(id, tk.Name)
			if len(as) != 2 || as[0].Status != event.TaskFailed || as[1].Status != event.TaskSuccess {
				t.Errorf("attempts of %s = %+v, want failed then success", tk.Name, as)
			}
		}
	}
	for w, id := range own {
		wantEq(t, "own run status", f.run(id).Status, event.RunSuccess)
		for _, tk := range f.tasks(id) {
			wantEq(t, tk.Name+".Status", tk.Status, event.TaskSuccess)
		}
		wantEq(t, fmt.Sprintf("own run %d log lines", w), len(f.logs(store.LogListParams{RunID: id})), 8)
	}
	wantEq(t, "dead letters", len(f.deadLetters(0)), writers)
	wantEq(t, "workflows", len(f.workflows(store.WorkflowListParams{})), writers+3)
	a, b := f.workflow("reg-a"), f.workflow("reg-b")
	wantEq(t, "reg-a.Revision", a.Revision, uint64(regRevs))
	wantEq(t, "reg-a.Registered", a.Registered, true)
	wantEq(t, "reg-a.CurrentHash", a.CurrentHash, regPlan("reg-a", regRevs).Hash)
	wantEq(t, "reg-b.Revision", b.Revision, uint64(regRevs))
	wantEq(t, "reg-b.Registered", b.Registered, false)
	if vs := f.versionHashes("reg-a", 0); len(vs) == 0 || len(vs) > regRevs {
		t.Errorf("reg-a has %d versions, want 1 to %d", len(vs), regRevs)
	}
	return append(shared, own...)
}

func testConcurrentSameKey(t *testing.T, f *fixture) {
	const writers = 6
	p := diamond("etl")
	ids := make([]string, writers)
	for i := range ids {
		ids[i] = runID()
	}
	same := f.submit(runID(), p, "")
	concurrently(t, writers, func(i int) error {
		// Each writer submits its own run id under one shared key, and the one same event.
		batch := []event.Event{f.submit(ids[i], p, "shared-key"), same}
		if _, err := f.s.ApplyBatch(f.ctx, store.ApplyBatchParams{Events: batch}); err != nil {
			return fmt.Errorf("writer %d: ApplyBatch: %w", i, err)
		}
		return nil
	})
	rs := f.runs(store.RunListParams{})
	if len(rs) != 2 {
		t.Fatalf("runs = %+v, want 2 (one per key)", rs)
	}
	keyed := 0
	for _, r := range rs {
		if r.IdempotencyKey == "shared-key" {
			keyed++
		}
		wantEq(t, "tasks of "+r.ID, len(f.tasks(r.ID)), 4)
	}
	wantEq(t, "runs with the shared key", keyed, 1)
	wantEq(t, "RunCount", f.workflows(store.WorkflowListParams{})[0].RunCount, 2)
}

// testSubmissionRace has writers submit different run ids under one idempotency key at once, each
// followed in its batch by an event of its own run. Exactly one run exists afterwards, no batch
// fails, and every loser learns that its run's event was an orphan rather than silently dropped.
func testSubmissionRace(t *testing.T, f *fixture) {
	const writers = 6
	p := diamond("etl")
	ids := make([]string, writers)
	batches := make([][]event.Event, writers)
	for i := range writers {
		ids[i] = runID()
		batches[i] = []event.Event{f.submit(ids[i], p, "race-key"), f.ev(event.TypeTaskDispatched, ids[i], "fetch", 1)}
	}
	results := make([]store.ApplyBatchResult, writers)
	concurrently(t, writers, func(i int) error {
		res, err := f.s.ApplyBatch(f.ctx, store.ApplyBatchParams{Events: batches[i]})
		if err != nil {
			return fmt.Errorf("writer %d: ApplyBatch: %w", i, err)
		}
		results[i] = res
		return nil
	})
	winners := 0
	for i := range writers {
		rs := f.runs(store.RunListParams{})
		exists := false
		for _, r := range rs {
			exists = exists || r.ID == ids[i]
		}
		if exists {
			winners++
			wantEq(t, "winner's fetch.Status", f.task(ids[i], "fetch").Status, event.TaskDispatched)
			if len(results[i].Orphans) != 0 {
				t.Errorf("winner %d: orphans %v, want none", i, eventIDs(results[i].Orphans))
			}
			continue
		}
		wantDeep(t, fmt.Sprintf("orphans of loser %d", i), eventIDs(results[i].Orphans), eventIDs(batches[i][1:]))
	}
	wantEq(t, "runs under one key", winners, 1)
	wantEq(t, "RunCount", f.workflows(store.WorkflowListParams{})[0].RunCount, 1)
}
