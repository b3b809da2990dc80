package client_test

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/ork-go/ork/pkg/client"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/workflow"
)

func TestPlanRerun(t *testing.T) {
	t.Parallel()
	plan := &workflow.Plan{Name: "p", Tasks: []workflow.Task{
		{Name: "a"}, {Name: "b", DependsOn: []string{"a"}}, {Name: "c", DependsOn: []string{"b"}}, {Name: "d"}, {Name: "e", DependsOn: []string{"d"}},
	}}
	tasks := []store.Task{
		{Name: "a", Status: event.TaskSuccess, Output: json.RawMessage(`1`)},
		{Name: "b", Status: event.TaskFailed},
		{Name: "c", Status: event.TaskSkipped},
		{Name: "d", Status: event.TaskSuccess},
		{Name: "e", Status: event.TaskCancelled},
	}
	rp, err := client.PlanRerun(plan, tasks, client.RerunFailed)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rp.Run, []string{"b", "c", "e"}) || len(rp.Reuse) != 2 || string(rp.Reuse["a"]) != "1" || string(rp.Reuse["d"]) != "null" {
		t.Errorf("failed: %+v", rp)
	}
	if rp, _ = client.PlanRerun(plan, tasks, client.RerunAll); len(rp.Run) != 5 || len(rp.Reuse) != 0 {
		t.Errorf("all: %+v", rp)
	}
	if _, err := client.PlanRerun(plan, tasks, "some"); err == nil {
		t.Error("an unknown mode was taken")
	}
	run := store.Run{ID: "r", Status: event.RunRunning}
	if _, _, err := client.PrepareRerun(client.RerunParams{Run: run, Plan: plan, Tasks: tasks, Mode: client.RerunAll}); !errors.Is(err, client.ErrRunNotFinished) {
		t.Errorf("a running run: %v", err)
	}
	ok := []store.Task{{Name: "a", Status: event.TaskSuccess}}
	one := &workflow.Plan{Name: "p", Tasks: []workflow.Task{{Name: "a"}}}
	run.Status = event.RunSuccess
	if _, _, err := client.PrepareRerun(client.RerunParams{Run: run, Plan: one, Tasks: ok, Mode: client.RerunFailed}); !errors.Is(err, client.ErrNothingToRerun) {
		t.Errorf("nothing failed: %v", err)
	}
}
