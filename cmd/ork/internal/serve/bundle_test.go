package serve_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ork-go/ork/pkg/bundle"
	"github.com/ork-go/ork/services/api"
)

// A workflow registered with its folder as a bundle runs though that folder is gone from every
// disk: the executor fetches the bundle, checks it and runs from its copy. A body that does not hash
// to its name is refused, and so is a workflow naming a bundle the store lacks.
func TestBundledWorkflowRuns(t *testing.T) {
	t.Parallel()
	s := start(t, api.Config{})
	src := t.TempDir()
	flow := "name: packed\ntasks:\n  read:\n    executor: python\n    file: lib/task.py\n    function: main\n"
	for path, content := range map[string]string{
		"packed.yaml":  flow,
		"lib/task.py":  "def main():\n    return open('lib/data.txt').read().strip()\n",
		"lib/data.txt": "shipped in the bundle\n",
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(src, path)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, path), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, hash, err := bundle.Pack(src, 0)
	if err != nil {
		t.Fatal(err)
	}
	s.wantProblem(s.do("PUT", "/api/v1/bundles/"+strings.Repeat("0", 64), data), http.StatusBadRequest, "bad-request", "hashes to "+hash)
	s.want(s.do("PUT", "/api/v1/bundles/"+hash, data), http.StatusCreated)
	s.want(s.do("PUT", "/api/v1/bundles/"+hash, data), http.StatusOK)
	s.wantProblem(s.do("PUT", "/api/v1/workflows/packed?bundle="+strings.Repeat("1", 64), []byte(flow)), http.StatusBadRequest, "bad-request", "no bundle")
	if err := os.RemoveAll(src); err != nil {
		t.Fatal(err)
	}
	r := s.do("PUT", "/api/v1/workflows/packed?bundle="+hash+"&dir=/home/someone/flows", []byte(flow))
	s.want(r, http.StatusCreated)
	var wf struct {
		Dir  string `json:"dir"`
		Plan struct {
			Bundle string `json:"bundle"`
		} `json:"plan"`
	}
	r.json(t, &wf)
	if wf.Plan.Bundle != hash || wf.Dir != "/home/someone/flows" {
		t.Fatalf("registered %+v", wf)
	}
	r = s.do("POST", "/api/v1/workflows/packed/runs", nil)
	s.want(r, http.StatusCreated)
	var trig struct {
		RunID string `json:"run_id"`
	}
	r.json(t, &trig)
	res := s.openSSE("/api/v1/runs/"+trig.RunID+"/events", "")
	readSSE(t, res.Body, nil)
	res.Body.Close()
	var run struct {
		Status string `json:"status"`
		Tasks  map[string]struct {
			Output json.RawMessage `json:"output"`
			Error  *string         `json:"error"`
		} `json:"tasks"`
	}
	r = s.do("GET", "/api/v1/runs/"+trig.RunID, nil)
	s.want(r, http.StatusOK)
	r.json(t, &run)
	if run.Status != "success" || string(run.Tasks["read"].Output) != `"shipped in the bundle"` {
		t.Fatalf("run %s, read's output %s (error %v)", run.Status, run.Tasks["read"].Output, run.Tasks["read"].Error)
	}
}
