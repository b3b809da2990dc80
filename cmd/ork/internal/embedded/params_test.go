package embedded_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ork-go/ork/pkg/client"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/workflow"
)

const paramsFlow = `name: greet
params:
  who: {type: {name: str}}
  n: {type: int, default: 2}
tasks:
  consume:
    executor: process
    command: [sh, -c, 'echo "ORK_OUTPUT:$ORK_INPUT_JSON"']
    inputs:
      name: {ref: params.who.name}
      count: {ref: params.n}
`

// A run's parameters reach its tasks through params.* refs (a field inside one too), the defaults
// fill what the run does not give, and the run row keeps them.
func TestParamsReachTasks(t *testing.T) {
	t.Parallel()
	plan := greetPlan(t)
	s := start(t, "sqlite://"+filepath.Join(t.TempDir(), "ork.db"), 0)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := client.New(s.Bus).Run(ctx, client.RunParams{Store: s.Store, Submit: client.SubmitParams{
		Plan: plan, TriggeredBy: "test", Params: map[string]json.RawMessage{"who": json.RawMessage(`{"name": "ada"}`)}}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Run.Status != event.RunSuccess {
		t.Fatalf("run ended %s", res.Run.Status)
	}
	var got map[string]any
	if err := json.Unmarshal(res.Run.Tasks["consume"].Output, &got); err != nil {
		t.Fatal(err)
	}
	if got["name"] != "ada" || got["count"] != float64(2) {
		t.Errorf("consume received %v, want name=ada count=2", got)
	}
	run, err := s.Store.RunGet(ctx, store.RunGetParams{ID: res.RunID})
	if err != nil {
		t.Fatal(err)
	}
	var params map[string]any
	if err := json.Unmarshal(run.Params, &params); err != nil || params["n"] != float64(2) || params["who"].(map[string]any)["name"] != "ada" {
		t.Errorf("stored params %s (%v), want n=2 and who.name=ada", run.Params, err)
	}
	if !strings.Contains(string(res.Run.Params), `"ada"`) {
		t.Errorf("the run's view has params %s", res.Run.Params)
	}
	// The client refuses bad values before anything is published.
	_, err = client.New(s.Bus).Submit(ctx, client.SubmitParams{Plan: plan, Params: map[string]json.RawMessage{"n": json.RawMessage(`"two"`)}})
	var perr *workflow.ParamError
	if !asParamError(err, &perr) || !strings.Contains(err.Error(), `param "who" is required`) || !strings.Contains(err.Error(), `param "n": "two" does not fit int`) {
		t.Errorf("submitting bad params: %v", err)
	}
}

func asParamError(err error, target **workflow.ParamError) bool {
	pe, ok := err.(*workflow.ParamError)
	*target = pe
	return ok
}

// A submission that did not go through the client (any program with a NATS client) and carries
// parameters that do not fit is failed by the scheduler, naming the parameter; nothing runs.
func TestBadParamsFromTheNetworkFailTheRun(t *testing.T) {
	t.Parallel()
	plan := greetPlan(t)
	s := start(t, "sqlite://"+filepath.Join(t.TempDir(), "ork.db"), 0)
	cl := client.New(s.Bus)
	runID := event.NewID()
	rec, err := cl.WatchRecorded(runID)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	e := event.New(event.TypeRunSubmitted, runID, "", 0)
	e.Workflow, e.Plan, e.Params = plan.Name, plan, json.RawMessage(`{"who":{"name":"ada"},"n":"two"}`)
	data, err := json.Marshal(&e)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.Bus.JS.Publish(ctx, event.SubjectRunSubmitted, data); err != nil {
		t.Fatal(err)
	}
	if status, err := rec.Wait(ctx); err != nil || status != event.RunFailed {
		t.Fatalf("recorded %q, %v; want failed", status, err)
	}
	run, err := s.Store.RunGet(ctx, store.RunGetParams{ID: runID})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(run.Error, `param "n": "two" does not fit int`) {
		t.Errorf("run error %q, want it to name the param", run.Error)
	}
	tasks, err := s.Store.TaskList(ctx, store.TaskListParams{RunID: runID})
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range tasks {
		if tk.Attempt != 0 {
			t.Errorf("task %s ran (attempt %d)", tk.Name, tk.Attempt)
		}
	}
}

// greetPlan loads paramsFlow from a file of its own.
func greetPlan(t *testing.T) *workflow.Plan {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "greet.yaml"), []byte(paramsFlow), 0o644); err != nil {
		t.Fatal(err)
	}
	plan, err := workflow.Load(filepath.Join(dir, "greet.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return plan
}
