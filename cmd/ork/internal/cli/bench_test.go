package cli

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
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
		"unknown task type":    {"bench", "--shape", "wide", "--task-type", "java"},
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

// TestBenchCountsOnlySuccesses: a scenario whose tasks fail (here every process task: `true` on the
// executor's PATH exits 1) shows the failures, counts no task in tasks/s and fails the command.
func TestBenchCountsOnlySuccesses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "true"), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "bench.json")
	cmd := exec.CommandContext(t.Context(), orkBin, "bench", "--shape", "wide", "--tasks", "8", "--task-type", "process",
		"--idle", "0", "--out", out)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	output, err := cmd.CombinedOutput()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != ExitCodeFailure {
		t.Fatalf("ork bench of failing tasks: %v, want exit 1\n%s", err, output)
	}
	if !strings.Contains(string(output), "0 of 8 tasks and 0 of 1 runs succeeded (8 failed attempts, 0 tasks skipped)") {
		t.Errorf("output does not say what failed:\n%s", output)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep bench.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	s := rep.Scenarios[0]
	if s.Tasks != 8 || s.TasksPerSecond != 0 || s.RunsPerSecond != 0 || s.TasksRecordedFailed != 8 || s.TasksRecordedSuccess != 0 {
		t.Errorf("scenario %+v: want 8 planned tasks, 8 recorded failed, 0 tasks/s", s)
	}
}
