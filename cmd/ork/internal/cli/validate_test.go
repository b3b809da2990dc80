package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const validFlow = `name: ok_flow
tasks:
  a:
    executor: process
    command: [echo, hi]
  b:
    executor: noop
    depends_on: [a]
`

const invalidFlow = `name: bad_flow
tasks:
  extract:
    executor: noop
  load:
    executor: noop
    depend_on: [extract]
    depends_on: [extract2]
`

// setup writes the named workflow files into a fresh directory and returns it.
func setup(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestValidateValid(t *testing.T) {
	t.Parallel()
	dir := setup(t, map[string]string{"ok.yaml": validFlow})
	for _, command := range []string{"validate", "validate-workflow"} {
		t.Run(command, func(t *testing.T) {
			t.Parallel()
			r := ork(t, dir, command, "ok.yaml")
			r.expect(t, 0)
			if want := "✓ workflow \"ok_flow\" is valid (2 tasks)\n"; r.stdout != want {
				t.Fatalf("stdout = %q, want %q", r.stdout, want)
			}
			if r.stderr != "" {
				t.Fatalf("stderr = %q, want nothing", r.stderr)
			}
		})
	}
}

func TestValidateExamples(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("../../../../examples/*.yaml")
	if err != nil || len(files) < 6 {
		t.Fatalf("found %d examples (%v), want at least 6", len(files), err)
	}
	r := ork(t, "", append([]string{"validate"}, files...)...)
	r.expect(t, 0)
	if got := strings.Count(r.stdout, "✓ workflow "); got != len(files) {
		t.Fatalf("%d success lines for %d files:\n%s", got, len(files), r.stdout)
	}
}

func TestValidateInvalid(t *testing.T) {
	t.Parallel()
	dir := setup(t, map[string]string{"ok.yaml": validFlow, "bad.yaml": invalidFlow})
	r := ork(t, dir, "validate", "ok.yaml", "bad.yaml", "missing.yaml")
	r.expect(t, 1)
	if want := "✓ workflow \"ok_flow\" is valid (2 tasks)\n"; r.stdout != want {
		t.Fatalf("stdout = %q, want %q", r.stdout, want)
	}
	want := `bad.yaml:7:5: task "load": unknown field "depend_on"; did you mean "depends_on"?
bad.yaml:8:18: task "load": depends_on "extract2": no such task; did you mean "extract"?
missing.yaml: opening workflow: open missing.yaml: no such file or directory
error: 3 errors in 2 of 3 files
`
	if r.stderr != want {
		t.Fatalf("stderr:\n%s\nwant:\n%s", r.stderr, want)
	}
}

func TestValidateJSON(t *testing.T) {
	t.Parallel()
	dir := setup(t, map[string]string{"ok.yaml": validFlow, "bad.yaml": invalidFlow})
	t.Run("invalid", func(t *testing.T) {
		t.Parallel()
		r := ork(t, dir, "validate", "--json", "ok.yaml", "bad.yaml")
		r.expect(t, 1)
		if r.stderr != "" {
			t.Fatalf("stderr = %q, want nothing with --json", r.stderr)
		}
		var got struct {
			Valid     bool `json:"valid"`
			Workflows []struct {
				File  string `json:"file"`
				Valid bool   `json:"valid"`
				Name  string `json:"name"`
				Tasks int    `json:"tasks"`
			} `json:"workflows"`
			Errors []map[string]any `json:"errors"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
			t.Fatalf("stdout is not JSON: %v\n%s", err, r.stdout)
		}
		if got.Valid || len(got.Workflows) != 2 || !got.Workflows[0].Valid || got.Workflows[0].Tasks != 2 || got.Workflows[1].Valid {
			t.Fatalf("unexpected summary: %+v", got)
		}
		if len(got.Errors) != 2 {
			t.Fatalf("got %d errors, want 2: %v", len(got.Errors), got.Errors)
		}
		first := got.Errors[0]
		want := map[string]any{
			"file": "bad.yaml", "line": 7.0, "col": 5.0, "path": "tasks.load.depend_on",
			"message": `task "load": unknown field "depend_on"; did you mean "depends_on"?`,
		}
		for k, v := range want {
			if first[k] != v {
				t.Errorf("errors[0].%s = %v, want %v", k, first[k], v)
			}
		}
	})
	t.Run("valid", func(t *testing.T) {
		t.Parallel()
		r := ork(t, dir, "validate", "--json", "ok.yaml")
		r.expect(t, 0)
		if !strings.Contains(r.stdout, `"valid": true`) || !strings.Contains(r.stdout, `"errors": []`) {
			t.Fatalf("stdout = %s", r.stdout)
		}
	})
}
