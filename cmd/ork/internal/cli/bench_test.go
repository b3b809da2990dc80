package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ork-go/ork/cmd/ork/internal/bench"
)

func TestBenchCustomScenarioWritesJSON(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "bench.json")
	r := ork(t, t.TempDir(), "bench", "--shape", "chain", "--depth", "4", "--idle", "0", "--concurrency", "2", "--json", "--out", out)
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	var printed, written bench.Report
	if err := json.Unmarshal([]byte(r.stdout), &printed); err != nil {
		t.Fatalf("stdout is not a JSON report: %v\n%s", err, r.stdout)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &written); err != nil {
		t.Fatalf("--out is not a JSON report: %v", err)
	}
	for _, rep := range []bench.Report{printed, written} {
		if rep.Config != "custom" || rep.Mode != bench.ModeEmbedded || len(rep.Scenarios) != 1 || len(rep.Idle) != 0 {
			t.Fatalf("report %+v, want one embedded custom scenario and no idle sample", rep)
		}
		s := rep.Scenarios[0]
		if s.Scenario.Shape != bench.ShapeChain || s.Tasks != 4 || s.TasksSucceeded != 4 || s.DepToStart.Count != 3 {
			t.Errorf("scenario %+v, want a chain of 4 tasks, all succeeded, 3 dependency latencies", s)
		}
	}
	if !strings.Contains(r.stderr, "bench: chain-4-noop") {
		t.Errorf("stderr %q lacks the progress line", r.stderr)
	}
}

func TestBenchRejectsBadArguments(t *testing.T) {
	t.Parallel()
	cases := map[string][]string{
		"name and shape":       {"bench", "quick", "--shape", "wide"},
		"unknown name":         {"bench", "enormous"},
		"unknown shape":        {"bench", "--shape", "ring"},
		"cluster without url":  {"bench", "quick", "--mode", "cluster"},
		"task type sans shape": {"bench", "quick", "--task-type", "sleep"},
		"unknown task type":    {"bench", "--shape", "wide", "--task-type", "python"},
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := ork(t, t.TempDir(), args...)
			if r.code != ExitCodeUsage || !strings.HasPrefix(r.stderr, "error: ") {
				t.Errorf("exit %d, stderr %q; want %d and an error sentence", r.code, r.stderr, ExitCodeUsage)
			}
		})
	}
}

func TestBenchConfigFlag(t *testing.T) {
	t.Parallel()
	if r := ork(t, t.TempDir(), "bench", "--config", "quick", "standard"); r.code != 2 || !strings.Contains(r.stderr, "name two configurations") {
		t.Errorf("two names: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := ork(t, t.TempDir(), "bench", "--config", "nope"); r.code != 2 || !strings.Contains(r.stderr, "nope") {
		t.Errorf("unknown name: exit %d, stderr %q", r.code, r.stderr)
	}
}
