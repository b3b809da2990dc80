package serve_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/workflow"
	"github.com/ork-go/ork/services/api"
)

// A scheduled run's nominal time is in the API's run and in its list entry (as documented: the
// answers are checked against openapi.json); a run no schedule fired has none.
func TestRunScheduledFor(t *testing.T) {
	t.Parallel()
	s := start(t, api.Config{})
	tick := time.Date(2025, 3, 14, 2, 0, 0, 0, time.FixedZone("UTC+2", 2*60*60))
	plan := &workflow.Plan{Name: "nightly", Hash: "hash-nightly", Tasks: []workflow.Task{{Name: "only", Executor: workflow.ExecutorNoop}}}
	scheduled, manual := event.NewID(), event.NewID()
	var p store.ApplyBatchParams
	for _, id := range []string{scheduled, manual} {
		sub := event.New(event.TypeRunSubmitted, id, "", 0)
		sub.Time, sub.Workflow, sub.Plan, sub.TriggeredBy = time.Now().UTC(), plan.Name, plan, "test"
		if id == scheduled {
			sub.TriggeredBy, sub.ScheduledFor = "schedule", &tick
		}
		p.Events = append(p.Events, sub)
	}
	if _, err := s.Stack.Store.ApplyBatch(t.Context(), p); err != nil {
		t.Fatal(err)
	}

	type run struct {
		RunID        string     `json:"run_id"`
		ScheduledFor *time.Time `json:"scheduled_for"`
	}
	check := func(what string, r run) {
		t.Helper()
		switch {
		case r.RunID == scheduled && (r.ScheduledFor == nil || !r.ScheduledFor.Equal(tick)):
			t.Errorf("%s of the scheduled run: scheduled_for %v, want %v", what, r.ScheduledFor, tick)
		case r.RunID == manual && r.ScheduledFor != nil:
			t.Errorf("%s of a run no schedule fired: scheduled_for %v, want none", what, r.ScheduledFor)
		}
	}
	for _, id := range []string{scheduled, manual} {
		res := s.do("GET", "/api/v1/runs/"+id, nil)
		s.want(res, http.StatusOK)
		var r run
		res.json(t, &r)
		check("GET /api/v1/runs/{id}", r)
	}
	res := s.do("GET", "/api/v1/runs?workflow=nightly", nil)
	s.want(res, http.StatusOK)
	var list struct {
		Runs []run `json:"runs"`
	}
	res.json(t, &list)
	if len(list.Runs) != 2 {
		t.Fatalf("listed %d runs, want 2", len(list.Runs))
	}
	for _, r := range list.Runs {
		check("GET /api/v1/runs", r)
	}
}
