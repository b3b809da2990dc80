package cli

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/httpapi"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/store/schema"
	"github.com/ork-go/ork/pkg/store/storeopen"
	"github.com/ork-go/ork/pkg/view"
	"github.com/ork-go/ork/pkg/workflow"
)

// scheduledLine is the line of `ork status RUN` that shows a run's nominal time.
func scheduledLine(at time.Time) string {
	return "scheduled for  " + at.Local().Format(time.DateTime) + "\n"
}

// ork status RUN shows a scheduled run's nominal time, and no such line for another run.
func TestStatusScheduledFor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := "sqlite://" + filepath.Join(t.TempDir(), "ork.db")
	if err := schema.Up(ctx, url); err != nil {
		t.Fatal(err)
	}
	st, err := storeopen.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tick := time.Date(2025, 3, 14, 2, 0, 0, 0, time.UTC)
	plan := &workflow.Plan{Name: "nightly", Hash: "hash-nightly", Tasks: []workflow.Task{{Name: "only", Executor: workflow.ExecutorNoop}}}
	scheduled, manual := event.NewID(), event.NewID()
	var p store.ApplyBatchParams
	for _, id := range []string{scheduled, manual} {
		sub := event.New(event.TypeRunSubmitted, id, "", 0)
		sub.Time, sub.Workflow, sub.Plan, sub.TriggeredBy = tick.Add(time.Second), plan.Name, plan, "test"
		if id == scheduled {
			sub.TriggeredBy, sub.ScheduledFor = "schedule", &tick
		}
		p.Events = append(p.Events, sub)
	}
	if _, err := st.ApplyBatch(ctx, p); err != nil {
		t.Fatal(err)
	}

	wantCLI(t, 0, []string{"status", scheduled, "--db", url}, "triggered by   schedule\n", scheduledLine(tick))
	if r := wantCLI(t, 0, []string{"status", manual, "--db", url}); strings.Contains(r.stdout, "scheduled for") {
		t.Errorf("status of a run no schedule fired shows a nominal time:\n%s", r.stdout)
	}
}

// The API's scheduled_for reaches store.Run through apiStore, from one run and from a list.
func TestAPIStoreScheduledFor(t *testing.T) {
	t.Parallel()
	tick := time.Date(2025, 3, 14, 2, 0, 0, 0, time.UTC)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/runs/{id}", func(w http.ResponseWriter, r *http.Request) {
		writeTestJSON(t, w, httpapi.RunDetail{Run: &view.Run{RunID: r.PathValue("id"), Workflow: "nightly", Status: event.RunPending,
			Tasks: map[string]*view.Task{}}, TriggeredBy: "schedule", ScheduledFor: &tick, Attempts: []httpapi.Attempt{}})
	})
	mux.HandleFunc("GET /api/v1/runs", func(w http.ResponseWriter, _ *http.Request) {
		writeTestJSON(t, w, httpapi.RunList{Runs: []httpapi.RunSummary{
			{RunID: "a", Workflow: "nightly", Status: event.RunPending, TriggeredBy: "schedule", ScheduledFor: &tick},
			{RunID: "b", Workflow: "nightly", Status: event.RunPending, TriggeredBy: "api"},
		}})
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	a := apiStore{api: httpapi.NewClient(srv.URL, "")}

	r, err := a.RunGet(t.Context(), store.RunGetParams{ID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if r.ScheduledFor == nil || !r.ScheduledFor.Equal(tick) {
		t.Errorf("RunGet: ScheduledFor = %v, want %v", r.ScheduledFor, tick)
	}
	runs, err := a.RunList(t.Context(), store.RunListParams{})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || runs[0].ScheduledFor == nil || !runs[0].ScheduledFor.Equal(tick) || runs[1].ScheduledFor != nil {
		t.Errorf("RunList = %+v, want a scheduled for %v and b for no time", runs, tick)
	}
	wantCLI(t, 0, []string{"status", "a", "--api", srv.URL}, scheduledLine(tick))
}

func writeTestJSON(t *testing.T, w http.ResponseWriter, v any) {
	t.Helper()
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		t.Error(err)
	}
}
