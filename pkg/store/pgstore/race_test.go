package pgstore_test

import (
	"sync"
	"testing"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/workflow"
)

// TestSubmissionRaceReportsOrphans has writers submit different run ids under one idempotency key at
// once, each followed in its batch by an event of its run. Exactly one run exists afterwards, and
// every loser learns that its run's event was an orphan rather than silently dropped.
func TestSubmissionRaceReportsOrphans(t *testing.T) {
	t.Parallel()
	s := open(t)
	p := &workflow.Plan{Name: "race", Hash: "race-1", Tasks: []workflow.Task{{Name: "a", Executor: workflow.ExecutorNoop}}}
	const writers = 6
	results := make([]store.ApplyBatchResult, writers)
	errs := make([]error, writers)
	ids := make([]string, writers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range writers {
		ids[i] = event.NewID()
		sub := event.New(event.TypeRunSubmitted, ids[i], "", 0)
		sub.Plan, sub.IdempotencyKey = p, "one-key"
		d := event.New(event.TypeTaskDispatched, ids[i], "a", 1)
		wg.Go(func() {
			<-start
			results[i], errs[i] = s.ApplyBatch(t.Context(), store.ApplyBatchParams{Events: []event.Event{sub, d}})
		})
	}
	close(start)
	wg.Wait()
	winners := 0
	for i := range writers {
		if errs[i] != nil {
			t.Fatalf("writer %d: %v", i, errs[i])
		}
		_, err := s.RunGet(t.Context(), store.RunGetParams{ID: ids[i]})
		exists := err == nil
		if exists {
			winners++
		}
		if orphaned := len(results[i].Orphans) == 1; orphaned == exists {
			t.Errorf("writer %d: run exists %v, orphans %d", i, exists, len(results[i].Orphans))
		}
	}
	if winners != 1 {
		t.Errorf("%d runs under one key, want 1", winners)
	}
}
