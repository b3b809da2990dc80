package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/workflow"
)

// Rerun modes.
const (
	// RerunFailed runs again the tasks that did not succeed (failed, skipped, cancelled) and what
	// depends on them; the others' outputs are reused.
	RerunFailed = "failed"
	// RerunAll runs every task again.
	RerunAll = "all"
)

// RerunPlan is what a rerun does: the tasks it runs, and the tasks whose outputs it reuses.
type RerunPlan struct {
	Run   []string                   // in plan order
	Reuse map[string]json.RawMessage // by task name
}

// PlanRerun decides a rerun of a finished run of plan whose tasks ended as tasks.
func PlanRerun(plan *workflow.Plan, tasks []store.Task, mode string) (RerunPlan, error) {
	if mode != RerunFailed && mode != RerunAll {
		return RerunPlan{}, fmt.Errorf("rerun mode %q: want %s or %s", mode, RerunFailed, RerunAll)
	}
	byName := make(map[string]store.Task, len(tasks))
	for _, t := range tasks {
		byName[t.Name] = t
	}
	again := make(map[string]bool, len(plan.Tasks))
	rp := RerunPlan{Reuse: map[string]json.RawMessage{}}
	for _, t := range plan.Tasks { // dependencies first
		st, ok := byName[t.Name]
		runs := mode == RerunAll || !ok || st.Status != event.TaskSuccess
		for _, d := range t.DependsOn {
			runs = runs || again[d]
		}
		if runs {
			again[t.Name] = true
			rp.Run = append(rp.Run, t.Name)
			continue
		}
		out := st.Output
		if len(out) == 0 {
			out = json.RawMessage("null")
		}
		rp.Reuse[t.Name] = out
	}
	return rp, nil
}

// RerunParams starts a rerun of a finished run.
type RerunParams struct {
	// Run, Tasks and Plan are the finished run as recorded, its tasks, and the plan it ran (its
	// workflow version).
	Run   store.Run
	Tasks []store.Task
	Plan  *workflow.Plan
	Mode  string // RerunFailed or RerunAll
	// IdempotencyKey, when set, makes a repeat start nothing.
	IdempotencyKey string
	TriggeredBy    string
}

// ErrRunNotFinished is a rerun of a run that has not ended.
var ErrRunNotFinished = errors.New("the run has not finished")

// ErrNothingToRerun is a rerun of failed tasks of a run that had none.
var ErrNothingToRerun = errors.New("every task of the run succeeded: nothing to rerun (rerun all of it instead)")

// PrepareRerun decides a rerun and returns the submission that starts it (for Submit or Run).
func PrepareRerun(p RerunParams) (SubmitParams, RerunPlan, error) {
	if !event.IsTerminalRun(p.Run.Status) {
		return SubmitParams{}, RerunPlan{}, fmt.Errorf("run %s is %s: %w", p.Run.ID, p.Run.Status, ErrRunNotFinished)
	}
	rp, err := PlanRerun(p.Plan, p.Tasks, p.Mode)
	if err != nil {
		return SubmitParams{}, rp, err
	}
	if len(rp.Run) == 0 {
		return SubmitParams{}, rp, ErrNothingToRerun
	}
	var params map[string]json.RawMessage
	if len(p.Run.Params) > 0 {
		if err := json.Unmarshal(p.Run.Params, &params); err != nil {
			return SubmitParams{}, rp, fmt.Errorf("the parameters of run %s: %w", p.Run.ID, err)
		}
	}
	key := RerunKey(p.Run.ID, p.IdempotencyKey)
	sp := SubmitParams{Plan: p.Plan, Params: params, IdempotencyKey: key, TriggeredBy: p.TriggeredBy,
		rerunOf: p.Run.ID, reuse: rp.Reuse}
	if len(sp.reuse) == 0 {
		sp.reuse = nil
	}
	return sp, rp, nil
}

// Rerun submits a new run of p.Plan with the parameters of p.Run, which records p.Run as the run it
// reruns, reuses the outputs p.Mode keeps and runs the rest. It returns the new run's id and what it
// runs.
func (c *Client) Rerun(ctx context.Context, p RerunParams) (string, RerunPlan, error) {
	sp, rp, err := PrepareRerun(p)
	if err != nil {
		return "", rp, err
	}
	runID, _, err := c.submit(ctx, sp)
	return runID, rp, err
}

// RerunKey is the submission's idempotency key of a rerun of runID with key: scoped to that run.
func RerunKey(runID, key string) string {
	if key == "" {
		return ""
	}
	return "rerun/" + runID + "/" + key
}
