package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// copyExamples copies the repository's examples into a fresh directory, so each test has its own
// ./.ork like a new user in a fresh checkout.
func copyExamples(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join("..", "..", "..", "..", "examples")
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		dst := filepath.Join(dir, "examples", rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, data, info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestRunThenInspect(t *testing.T) {
	t.Parallel()
	dir := copyExamples(t)

	r := ork(t, dir, "run", "examples/fails_on_purpose.yaml")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1 for a failed run; stderr:\n%s", r.code, r.stderr)
	}
	for _, want := range []string{"✗ broken", "never_runs   skipped", "independent  success", "TASK", "failed"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, ".ork", "ork.db")); err != nil {
		t.Fatalf("default database not created: %v", err)
	}

	r = ork(t, dir, "run", "examples/typed_chain.yaml", "--json")
	if r.code != 0 {
		t.Fatalf("exit %d, want 0; stderr:\n%s", r.code, r.stderr)
	}
	var res struct {
		RunID    string `json:"run_id"`
		Workflow string `json:"workflow"`
		Status   string `json:"status"`
		Tasks    map[string]struct {
			Status   string          `json:"status"`
			Attempts int             `json:"attempts"`
			Output   json.RawMessage `json:"output"`
		} `json:"tasks"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("--json output is not one JSON object: %v\n%s", err, r.stdout)
	}
	if res.Status != "success" || res.Workflow != "typed_chain" || len(res.Tasks) != 3 {
		t.Fatalf("result %+v", res)
	}
	for name, tk := range res.Tasks {
		if tk.Status != "success" || tk.Attempts != 1 || len(tk.Output) == 0 || string(tk.Output) == "null" {
			t.Errorf("task %s: %+v, want success with an output", name, tk)
		}
	}

	r = ork(t, dir, "status")
	if r.code != 0 || !strings.Contains(r.stdout, res.RunID) || !strings.Contains(r.stdout, "fails_on_purpose") {
		t.Fatalf("status (exit %d) lacks the runs:\n%s%s", r.code, r.stdout, r.stderr)
	}
	if first := strings.Split(r.stdout, "\n")[1]; !strings.HasPrefix(first, res.RunID) {
		t.Errorf("status does not list the newest run first:\n%s", r.stdout)
	}
	r = ork(t, dir, "tasks", res.RunID)
	if r.code != 0 || strings.Count(r.stdout, "success") != 3 {
		t.Errorf("tasks (exit %d):\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = ork(t, dir, "workflows")
	if r.code != 0 || !strings.Contains(r.stdout, "typed_chain") || !strings.Contains(r.stdout, "fails_on_purpose") {
		t.Errorf("workflows (exit %d):\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestRunLogs(t *testing.T) {
	t.Parallel()
	dir := copyExamples(t)
	r := ork(t, dir, "run", "examples/fails_on_purpose.yaml", "--json")
	var res struct {
		RunID string `json:"run_id"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || res.RunID == "" {
		t.Fatalf("run: %v\n%s%s", err, r.stdout, r.stderr)
	}
	r = ork(t, dir, "logs", res.RunID, "broken")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "broken! | about to fail" {
		t.Fatalf("logs (exit %d):\n%q\n%s", r.code, r.stdout, r.stderr)
	}
}

func TestRunRejectsBadInputAndStoresNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("name: x\ntasks:\n  a:\n    executor: pyton\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := ork(t, dir, "run", "bad.yaml")
	if r.code != 1 || !strings.Contains(r.stderr, `bad.yaml:4:15: task "a": unknown executor "pyton"`) {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, ".ork")); !os.IsNotExist(err) {
		t.Errorf("an invalid workflow left %s behind (err %v)", filepath.Join(dir, ".ork"), err)
	}
	if r := ork(t, dir, "run", "missing.yaml"); r.code != 1 || !strings.Contains(r.stderr, "missing.yaml") {
		t.Errorf("missing file: exit %d, want 1 naming it; stderr %q", r.code, r.stderr)
	}
	if r := ork(t, dir, "status"); r.code != 1 || !strings.Contains(r.stderr, "no database at") {
		t.Errorf("status without a database: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := ork(t, dir, "tasks", "nope", "--db", "file://"+dir); r.code != 1 || !strings.Contains(r.stderr, "no run nope") {
		t.Errorf("tasks of an unknown run: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestShellTasks: a shell task's command runs with /bin/sh -c (pipes, $VAR from the task's
// environment, globs), with the same timeout and process-group kill as a process task; a process
// task with the same string is refused before anything runs.
func TestShellTasks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, f := range []string{"a.csv", "b.csv", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	flow := `name: shell_flow
tasks:
  count:
    executor: shell
    command: 'echo "ORK_OUTPUT:{\"csv\": $(ls *.csv | wc -l), \"task\": \"$ORK_TASK_NAME\"}"'
  flagged:
    executor: process
    shell: true
    command: 'test "$(echo hi | tr a-z A-Z)" = HI && echo ok'
  slow:
    executor: shell
    command: sleep 30 | cat
    timeout: 1
`
	if err := os.WriteFile(filepath.Join(dir, "flow.yaml"), []byte(flow), 0o600); err != nil {
		t.Fatal(err)
	}
	r := ork(t, dir, "run", "flow.yaml", "--json")
	r.expect(t, 1)
	var res struct {
		Tasks map[string]struct {
			Status string          `json:"status"`
			Output json.RawMessage `json:"output"`
			Error  *string         `json:"error"`
		} `json:"tasks"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	var counted struct {
		CSV  int    `json:"csv"`
		Task string `json:"task"`
	}
	if c := res.Tasks["count"]; c.Status != "success" || json.Unmarshal(c.Output, &counted) != nil || counted.CSV != 2 || counted.Task != "count" {
		t.Errorf("count = %s (output %s), want 2 csv files counted by a pipe, its name from $ORK_TASK_NAME", c.Status, c.Output)
	}
	if f := res.Tasks["flagged"]; f.Status != "success" {
		t.Errorf("flagged = %+v", f)
	}
	if s := res.Tasks["slow"]; s.Status != "failed" || s.Error == nil || !strings.Contains(*s.Error, "timed out") {
		t.Errorf("slow = %+v, want it killed at its timeout", s)
	}

	process := strings.Replace(flow, "executor: shell\n    command: 'echo", "executor: process\n    command: 'echo", 1)
	if err := os.WriteFile(filepath.Join(dir, "process.yaml"), []byte(process), 0o600); err != nil {
		t.Fatal(err)
	}
	r = ork(t, dir, "validate", "process.yaml")
	if r.code != 1 || !strings.Contains(r.stderr, "which only a shell understands") {
		t.Errorf("a process task with shell syntax: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestReadmeWorkflowsRun: every YAML workflow shown in README.md runs, from the examples folder,
// against the task files shipped there.
func TestReadmeWorkflowsRun(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	dir := copyExamples(t)
	blocks := strings.Split(string(readme), "```yaml\n")[1:]
	if len(blocks) == 0 {
		t.Fatal("README.md shows no workflow")
	}
	for i, b := range blocks {
		body, _, _ := strings.Cut(b, "```")
		file := filepath.Join("examples", fmt.Sprintf("readme_%d.yaml", i))
		if err := os.WriteFile(filepath.Join(dir, file), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		r := ork(t, dir, "run", file)
		if r.code != 0 {
			t.Errorf("README workflow %d does not run (exit %d):\n%s\n%s%s", i, r.code, body, r.stdout, r.stderr)
		}
	}
}

// timeRE matches an RFC 3339 UTC time.
var timeRE = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`)

// Every example with python tasks gives the same statuses, attempts and outputs warm (forked from
// the zygote, the default) and cold (--python-cold).
func TestPythonExamplesSameWarmAndCold(t *testing.T) {
	t.Parallel()
	type taskResult struct {
		Status   string          `json:"status"`
		Attempts int             `json:"attempts"`
		Output   json.RawMessage `json:"output"`
		Error    *string         `json:"error"`
	}
	type result struct {
		RunID  string                `json:"run_id"`
		Status string                `json:"status"`
		Tasks  map[string]taskResult `json:"tasks"`
	}
	files, err := filepath.Glob(filepath.Join("..", "..", "..", "..", "examples", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), "executor: python") {
			continue
		}
		checked++
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var got [2]result
			for i, flags := range [][]string{nil, {"--python-cold"}} {
				dir := copyExamples(t)
				r := ork(t, dir, append([]string{"run", "examples/" + name, "--json"}, flags...)...)
				if err := json.Unmarshal([]byte(r.stdout), &got[i]); err != nil {
					t.Fatalf("%v: %v\n%s\n%s", flags, err, r.stdout, r.stderr)
				}
			}
			warm, cold := got[0], got[1]
			if warm.Status != cold.Status || len(warm.Tasks) != len(cold.Tasks) {
				t.Fatalf("warm %+v, cold %+v", warm, cold)
			}
			for task, w := range warm.Tasks {
				c := cold.Tasks[task]
				// An output may name its run (a file per run) or the time: compare it without them.
				wOut := timeRE.ReplaceAllString(strings.ReplaceAll(string(w.Output), warm.RunID, "RUN"), "TIME")
				cOut := timeRE.ReplaceAllString(strings.ReplaceAll(string(c.Output), cold.RunID, "RUN"), "TIME")
				if w.Status != c.Status || w.Attempts != c.Attempts || wOut != cOut {
					t.Errorf("task %s: warm %s/%d/%s, cold %s/%d/%s", task, w.Status, w.Attempts, w.Output, c.Status, c.Attempts, c.Output)
				}
			}
		})
	}
	if checked < 3 {
		t.Fatalf("only %d examples have python tasks", checked)
	}
}
