package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/workflow"
)

// scheduled builds the run.submitted of a run a schedule fired for the nominal time at.
func (f *fixture) scheduled(runID string, p *workflow.Plan, at time.Time) event.Event {
	e := f.submit(runID, p, "")
	e.TriggeredBy = "schedule"
	e.ScheduledFor = &at
	return e
}

// wantScheduledFor checks a run's nominal time: in UTC, the instant want stands for.
func wantScheduledFor(t *testing.T, what string, r store.Run, want *time.Time) {
	t.Helper()
	wantTime(t, what, r.ScheduledFor, want)
	if r.ScheduledFor != nil && r.ScheduledFor.Location() != time.UTC {
		t.Errorf("%s = %v, want it in UTC", what, r.ScheduledFor)
	}
}

// testSubmitScheduled checks that a run keeps its nominal time, and that a workflow has at most one
// run per nominal time: a second submission of it under another run id is stored as nothing, and
// the batch holding it commits the rest of its events.
func testSubmitScheduled(t *testing.T, f *fixture) {
	p := diamond("nightly")
	// Microseconds are kept; given in another zone, the time reads back in UTC.
	tick := time.Date(2025, 3, 14, 2, 0, 0, 123456000, time.FixedZone("UTC+2", 2*60*60))
	first := runID()
	f.events(f.scheduled(first, p, tick), f.ev(event.TypeRunStarted, first, "", 0))
	r := f.run(first)
	wantScheduledFor(t, "RunGet.ScheduledFor", r, &tick)
	wantEq(t, "RunGet.TriggeredBy", r.TriggeredBy, "schedule")
	wantEq(t, "RunGet.Status", r.Status, event.RunRunning)

	// One batch: the same tick again (another run id, another version of the workflow, the same
	// instant in UTC and 300ns later, below what a store keeps), the duplicate's task event, an
	// event of the first run, and runs that are no duplicates: the workflow's next tick, another
	// workflow's run at the same tick and two runs no schedule fired; the next tick twice, the second
	// a duplicate within the batch.
	again, later, nextAgain := runID(), runID(), runID()
	v2 := plan("nightly", "another version", task("only", 0))
	dup := f.scheduled(again, v2, tick.UTC().Add(300*time.Nanosecond))
	dupTask := f.ev(event.TypeTaskDispatched, again, "only", 1)
	next, otherWorkflow, manual1, manual2 := runID(), runID(), runID(), runID()
	nextTick := tick.Add(24 * time.Hour)
	res := f.events(
		dup,
		dupTask,
		f.scheduled(later, p, tick),
		f.ev(event.TypeTaskDispatched, first, "fetch", 1),
		f.scheduled(next, p, nextTick),
		f.scheduled(nextAgain, p, nextTick.UTC()),
		f.scheduled(otherWorkflow, diamond("hourly"), tick),
		f.submit(manual1, p, ""),
		f.submit(manual2, p, ""),
	)
	wantDeep(t, "orphans", eventIDs(res.Orphans), []string{dupTask.ID})

	for _, id := range []string{again, later, nextAgain} {
		if _, err := f.s.RunGet(f.ctx, store.RunGetParams{ID: id}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("RunGet(duplicate of the tick) error = %v, want ErrNotFound", err)
		}
	}
	if _, err := f.s.WorkflowVersionGet(f.ctx, store.WorkflowVersionGetParams{Hash: v2.Hash}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("WorkflowVersionGet(the duplicate's version) error = %v, want ErrNotFound", err)
	}
	wantEq(t, "nightly.CurrentHash", f.workflow("nightly").CurrentHash, p.Hash)
	wantEq(t, "first run's fetch.Status", f.task(first, "fetch").Status, event.TaskDispatched)

	want := map[string]*time.Time{first: &tick, next: &nextTick, otherWorkflow: &tick, manual1: nil, manual2: nil}
	listed := f.runs(store.RunListParams{})
	wantEq(t, "listed runs", len(listed), len(want))
	for _, r := range listed {
		wt, ok := want[r.ID]
		if !ok {
			t.Errorf("RunList lists run %s, which should not exist", r.ID)
			continue
		}
		wantScheduledFor(t, "RunList: "+r.ID+".ScheduledFor", r, wt)
		wantScheduledFor(t, "RunGet("+r.ID+").ScheduledFor", f.run(r.ID), wt)
	}
	wantEq(t, "nightly.RunCount", f.workflow("nightly").RunCount, 4)

	// Replayed, the first submission changes nothing either.
	before := f.snapshot(first)
	f.events(f.scheduled(first, p, tick))
	f.equalSnapshots(before, f.snapshot(first))
}

// testConcurrentSameNominalTime has writers submit different run ids for one workflow's nominal
// time at once, each followed in its batch by an event of its own run. Exactly one run exists
// afterwards, no batch fails, and every loser's event is an orphan.
func testConcurrentSameNominalTime(t *testing.T, f *fixture) {
	const writers = 6
	p := diamond("nightly")
	tick := time.Date(2025, 3, 14, 2, 0, 0, 0, time.UTC)
	ids := make([]string, writers)
	batches := make([][]event.Event, writers)
	for i := range writers {
		ids[i] = runID()
		batches[i] = []event.Event{f.scheduled(ids[i], p, tick), f.ev(event.TypeTaskDispatched, ids[i], "fetch", 1)}
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
	rs := f.runs(store.RunListParams{})
	if len(rs) != 1 {
		t.Fatalf("runs = %v, want one for the nominal time", runIDs(rs))
	}
	wantScheduledFor(t, "ScheduledFor", rs[0], &tick)
	for i := range writers {
		if ids[i] == rs[0].ID {
			wantEq(t, "winner's fetch.Status", f.task(ids[i], "fetch").Status, event.TaskDispatched)
			if len(results[i].Orphans) != 0 {
				t.Errorf("winner %d: orphans %v, want none", i, eventIDs(results[i].Orphans))
			}
			continue
		}
		wantDeep(t, fmt.Sprintf("orphans of loser %d", i), eventIDs(results[i].Orphans), eventIDs(batches[i][1:]))
	}
}
