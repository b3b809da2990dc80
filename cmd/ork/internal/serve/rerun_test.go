package serve_test

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ork-go/ork/services/api"
)

// b fails on its first run (it leaves a mark), succeeds when run again; c takes a's output.
const rerunFlow = `name: flaky
tasks:
  a:
    executor: process
    command: [sh, -c, 'echo "ORK_OUTPUT:{\"nonce\": \"$(cat /proc/sys/kernel/random/uuid)\"}"']
  b:
    executor: process
    depends_on: [a]
    command: [sh, -c, 'if [ -f mark ]; then echo fixed; else touch mark; echo broken >&2; exit 3; fi']
  c:
    executor: process
    depends_on: [a, b]
    inputs:
      got: {ref: tasks.a.output.nonce}
    command: [sh, -c, 'echo "ORK_OUTPUT:$ORK_INPUT_JSON"']
`

// A rerun of failed tasks in a -> b -> c with b failed runs only b and c, and c receives a's
// stored output; the new run records the run it reruns; a dry run only says what would run.
func TestRerunFailed(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "flaky.yaml"), []byte(rerunFlow), 0o644); err != nil {
		t.Fatal(err)
	}
	s := start(t, api.Config{WorkflowsRoot: root})
	s.want(s.do("PUT", "/api/v1/workflows/flaky", []byte(rerunFlow)), http.StatusCreated)
	var trig struct {
		RunID string `json:"run_id"`
	}
	r := s.do("POST", "/api/v1/workflows/flaky/runs", nil)
	s.want(r, http.StatusCreated)
	r.json(t, &trig)
	first := s.finished(trig.RunID)
	if first.Status != "failed" || first.Tasks["c"].Status != "skipped" {
		t.Fatalf("first run: %+v", first)
	}
	var dry struct {
		Run    []string `json:"run"`
		Reused []string `json:"reused"`
		DryRun bool     `json:"dry_run"`
	}
	r = s.do("POST", "/api/v1/runs/"+trig.RunID+"/rerun", []byte(`{"mode": "failed", "dry_run": true}`))
	s.want(r, http.StatusOK)
	r.json(t, &dry)
	if !dry.DryRun || !slices.Equal(dry.Run, []string{"b", "c"}) || !slices.Equal(dry.Reused, []string{"a"}) {
		t.Fatalf("dry run %+v", dry)
	}
	var re struct {
		RunID   string `json:"run_id"`
		RerunOf string `json:"rerun_of"`
	}
	r = s.do("POST", "/api/v1/runs/"+trig.RunID+"/rerun", []byte(`{"mode": "failed"}`))
	s.want(r, http.StatusCreated)
	r.json(t, &re)
	if re.RerunOf != trig.RunID || re.RunID == "" || re.RunID == trig.RunID {
		t.Fatalf("rerun %+v", re)
	}
	second := s.finished(re.RunID)
	if second.Status != "success" {
		t.Fatalf("rerun ended %s", second.Status)
	}
	nonce := first.Tasks["a"].Output["nonce"]
	if got := second.Tasks["c"].Output["got"]; nonce == nil || got != nonce {
		t.Errorf("c got %v, a's stored output is %v", got, nonce)
	}
	ran := map[string]int{}
	for _, a := range second.Attempts {
		ran[a.Task]++
	}
	if ran["a"] != 0 || ran["b"] != 1 || ran["c"] != 1 {
		t.Errorf("attempts in the rerun %v: want only b and c to run", ran)
	}
	if second.Tasks["a"].Status != "success" || second.Tasks["a"].Attempts != 0 {
		t.Errorf("reused a: %+v", second.Tasks["a"])
	}
	s.wantProblem(s.do("POST", "/api/v1/runs/"+re.RunID+"/rerun", []byte(`{"mode": "failed"}`)), http.StatusConflict, "conflict", "nothing to rerun")
	var all struct {
		Run []string `json:"run"`
	}
	r = s.do("POST", "/api/v1/runs/"+re.RunID+"/rerun", []byte(`{"dry_run": true}`))
	s.want(r, http.StatusOK)
	r.json(t, &all)
	if !slices.Equal(all.Run, []string{"a", "b", "c"}) {
		t.Errorf("a rerun of all (the default) runs %v", all.Run)
	}
	s.wantProblem(s.do("POST", "/api/v1/runs/"+re.RunID+"/rerun", []byte(`{"mode": "some"}`)), http.StatusBadRequest, "bad-request", `mode must be "failed" or "all"`)
}

// finishedRun is the part of a run these tests read.
type finishedRun struct {
	Status string `json:"status"`
	Tasks  map[string]struct {
		Status   string         `json:"status"`
		Attempts int            `json:"attempts"`
		Output   map[string]any `json:"output"`
	} `json:"tasks"`
	Attempts []struct {
		Task string `json:"task"`
	} `json:"attempts"`
}

// finished follows a run's events to the end (the stream ends once the database has it) and reads it.
func (s *server) finished(id string) finishedRun {
	s.t.Helper()
	res := s.openSSE("/api/v1/runs/"+id+"/events", "")
	readSSE(s.t, res.Body, nil)
	res.Body.Close()
	var run finishedRun
	r := s.do("GET", "/api/v1/runs/"+id, nil)
	s.want(r, http.StatusOK)
	r.json(s.t, &run)
	return run
}
