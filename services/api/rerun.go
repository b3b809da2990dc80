package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"

	"github.com/ork-go/ork/pkg/client"
	"github.com/ork-go/ork/pkg/httpapi"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/workflow"
)

// rerunRun starts a new run of a finished run's plan that reuses what succeeded (mode failed) or
// nothing (mode all); with dry_run it only says what would run.
func (s *Server) rerunRun(w http.ResponseWriter, r *http.Request) {
	run, ok := s.runOr404(w, r)
	if !ok {
		return
	}
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	req := httpapi.RerunRequest{Mode: client.RerunAll}
	if len(body) > 0 {
		dec := json.NewDecoder(bytesReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeProblem(w, r, probBadRequest, `the body must be a JSON object such as {"mode": "failed", "dry_run": true}: `+err.Error())
			return
		}
		if req.Mode == "" {
			req.Mode = client.RerunAll
		}
	}
	if req.Mode != client.RerunFailed && req.Mode != client.RerunAll {
		writeProblem(w, r, probBadRequest, `mode must be "failed" or "all", got `+strconv.Quote(req.Mode))
		return
	}
	tasks, err := s.store.TaskList(r.Context(), store.TaskListParams{RunID: run.ID})
	if err != nil {
		s.internal(w, r, err)
		return
	}
	version, err := s.store.WorkflowVersionGet(r.Context(), store.WorkflowVersionGetParams{Hash: run.WorkflowHash})
	if err != nil {
		s.internal(w, r, err)
		return
	}
	plan := new(workflow.Plan)
	if err := json.Unmarshal(version.Plan, plan); err != nil {
		s.internal(w, r, err)
		return
	}
	out := httpapi.Rerun{RerunOf: run.ID, Mode: req.Mode, DryRun: req.DryRun}
	if req.DryRun {
		rp, err := client.PlanRerun(plan, tasks, req.Mode)
		if err != nil {
			writeProblem(w, r, probBadRequest, err.Error())
			return
		}
		out.Run, out.Reused = nonNil(rp.Run), reusedNames(plan.Tasks, rp)
		writeJSON(w, http.StatusOK, out)
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if len(key) > maxIdempotencyKey {
		writeProblem(w, r, probBadRequest, "Idempotency-Key is over "+strconv.Itoa(maxIdempotencyKey)+" bytes")
		return
	}
	if key != "" {
		// The key's rerun, past the stream's duplicate window, is in the database: the same answer.
		prev := client.SubmitRunID(client.SubmitParams{IdempotencyKey: client.RerunKey(run.ID, key)})
		if p, err := s.store.RunGet(r.Context(), store.RunGetParams{ID: prev}); err == nil && p.RerunOf == run.ID {
			writeJSON(w, http.StatusOK, httpapi.Rerun{RunID: prev, RerunOf: run.ID, Mode: req.Mode, Run: []string{}, Reused: []string{},
				URL: runURL(prev), Repeat: true})
			return
		}
	}
	id, rp, err := s.client.Rerun(r.Context(), client.RerunParams{Run: run, Tasks: tasks, Plan: plan, Mode: req.Mode,
		IdempotencyKey: key, TriggeredBy: "api:" + principal(r.Context()).Name})
	switch {
	case errors.Is(err, client.ErrRunNotFinished), errors.Is(err, client.ErrNothingToRerun):
		writeProblem(w, r, probConflict, err.Error())
		return
	case err != nil:
		s.internal(w, r, err)
		return
	}
	out.RunID, out.URL = id, runURL(id)
	out.Run, out.Reused = nonNil(rp.Run), reusedNames(plan.Tasks, rp)
	w.Header().Set("Location", out.URL)
	writeJSON(w, http.StatusCreated, out)
}

// reusedNames lists the reused tasks in plan order.
func reusedNames(tasks []workflow.Task, rp client.RerunPlan) []string {
	out := []string{}
	for _, t := range tasks {
		if _, ok := rp.Reuse[t.Name]; ok {
			out = append(out, t.Name)
		}
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}
