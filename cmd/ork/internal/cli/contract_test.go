package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.uber.org/zap/zaptest"

	"github.com/ork-go/ork/cmd/ork/internal/embedded"
)

// startCluster starts an in-process stack whose NATS server listens on a random port, with its data
// in dataDir, for commands that talk to a cluster (--nats); it stops when the test ends.
func startCluster(t *testing.T, dataDir string) *embedded.Stack {
	t.Helper()
	stk, err := embedded.Start(context.Background(), embedded.Config{DataDir: dataDir, Port: -1}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stk.Stop(); err != nil {
			t.Errorf("stopping the stack: %v", err)
		}
	})
	return stk
}

// runSchema is docs/run.schema.json, compiled, with formats asserted.
func runSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	sch, err := c.Compile(filepath.Join("..", "..", "..", "..", "docs", "run.schema.json"))
	if err != nil {
		t.Fatalf("compiling docs/run.schema.json: %v", err)
	}
	return sch
}

// conforms checks that out is one run object of the schema and returns it decoded.
func conforms(t *testing.T, sch *jsonschema.Schema, what, out string) map[string]any {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(out))
	if err != nil {
		t.Fatalf("%s: not JSON: %v\n%s", what, err, out)
	}
	if err := sch.Validate(inst); err != nil {
		t.Fatalf("%s does not follow docs/run.schema.json: %v\n%s", what, err, out)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return m
}

func tasksOf(m map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	for name, v := range m["tasks"].(map[string]any) {
		out[name] = v.(map[string]any)
	}
	return out
}

// TestJSONContract holds `ork run --json`, `ork status RUN --json`, `ork tasks RUN --json` and
// `ork status --json` to one run object (docs/run.schema.json), in embedded mode, and `ork logs
// --json` to one object per line.
func TestJSONContract(t *testing.T) {
	t.Parallel()
	sch := runSchema(t)
	dir := copyExamples(t)

	r := ork(t, dir, "run", "examples/typed_chain.yaml", "--json")
	r.expect(t, 0)
	ok := conforms(t, sch, "run --json (success)", r.stdout)
	for name, tk := range tasksOf(ok) {
		if tk["status"] != "success" || tk["error"] != nil || tk["output"] == nil || tk["attempts"] != 1.0 ||
			tk["duration_ms"] == nil || tk["executor"] != "python" {
			t.Errorf("task %s = %v, want success with an output, no error, a duration", name, tk)
		}
	}
	if ok["error"] != nil || ok["duration_ms"] == nil || ok["finished_at"] == nil {
		t.Errorf("successful run = %v", ok)
	}

	r = ork(t, dir, "run", "examples/fails_on_purpose.yaml", "--json")
	r.expect(t, 1)
	failed := conforms(t, sch, "run --json (failure)", r.stdout)
	ft := tasksOf(failed)
	if failed["status"] != "failed" || failed["error"] == nil {
		t.Errorf("failed run = %v", failed)
	}
	if b := ft["broken"]; b["status"] != "failed" || b["error"] == nil || b["output"] != nil {
		t.Errorf("broken = %v, want failed with an error and no output", b)
	}
	if s := ft["never_runs"]; s["status"] != "skipped" || s["started_at"] != nil || s["duration_ms"] != nil || s["attempts"] != 0.0 {
		t.Errorf("never_runs = %v, want skipped, never started", s)
	}

	for _, run := range []map[string]any{ok, failed} {
		id := run["run_id"].(string)
		for _, args := range [][]string{{"status", id, "--json"}, {"tasks", id, "--json"}} {
			r := ork(t, dir, args...)
			r.expect(t, 0)
			got := conforms(t, sch, strings.Join(args, " "), r.stdout)
			if !reflect.DeepEqual(got, run) {
				t.Errorf("%v differs from run --json:\n%s\nwant\n%v", args, r.stdout, run)
			}
		}
	}

	r = ork(t, dir, "status", "--json")
	r.expect(t, 0)
	var list []json.RawMessage
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list) != 2 {
		t.Fatalf("status --json: %v, %d runs\n%s", err, len(list), r.stdout)
	}
	for _, raw := range list {
		conforms(t, sch, "a run of status --json", string(raw))
	}

	r = ork(t, dir, "logs", failed["run_id"].(string), "--json")
	r.expect(t, 0)
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	lines := 0
	for sc.Scan() {
		var l map[string]any
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("logs --json line %q: %v", sc.Text(), err)
		}
		for _, k := range []string{"run_id", "task", "attempt", "seq", "stream", "line", "time"} {
			if _, ok := l[k]; !ok {
				t.Errorf("logs --json line %q lacks %q", sc.Text(), k)
			}
		}
		lines++
	}
	if lines == 0 {
		t.Fatalf("logs --json printed nothing:\n%s", r.stderr)
	}
}

// TestRunOverNATS: `ork run --nats URL --json` reports what embedded mode reports (statuses,
// attempts, outputs, errors), and with --db it reads the result back from that database.
func TestRunOverNATS(t *testing.T) {
	t.Parallel()
	sch := runSchema(t)
	dir := copyExamples(t)
	data := filepath.Join(dir, "cluster")
	stk := startCluster(t, data)
	url := stk.Server.ClientURL()
	db := "sqlite://" + filepath.Join(data, "ork.db")

	for _, tc := range []struct {
		file string
		code int
	}{{"examples/typed_chain.yaml", 0}, {"examples/fails_on_purpose.yaml", 1}} {
		embedded := ork(t, dir, "run", tc.file, "--json")
		embedded.expect(t, tc.code)
		want := conforms(t, sch, "embedded "+tc.file, embedded.stdout)

		r := ork(t, dir, "run", tc.file, "--json", "--nats", url)
		r.expect(t, tc.code)
		got := conforms(t, sch, "--nats "+tc.file, r.stdout)
		if got["status"] != want["status"] || (got["error"] == nil) != (want["error"] == nil) {
			t.Errorf("%s over NATS: run %v, embedded %v", tc.file, got, want)
		}
		wt := tasksOf(want)
		for name, g := range tasksOf(got) {
			w := wt[name]
			for _, k := range []string{"status", "attempts", "output", "error", "executor"} {
				if !reflect.DeepEqual(g[k], w[k]) {
					t.Errorf("%s over NATS: task %s %s = %v, embedded %v", tc.file, name, k, g[k], w[k])
				}
			}
			if (g["duration_ms"] == nil) != (w["duration_ms"] == nil) || (g["started_at"] == nil) != (w["started_at"] == nil) {
				t.Errorf("%s over NATS: task %s %v, embedded %v", tc.file, name, g, w)
			}
		}

		r = ork(t, dir, "run", tc.file, "--json", "--nats", url, "--db", db)
		r.expect(t, tc.code)
		fromDB := conforms(t, sch, "--nats --db "+tc.file, r.stdout)
		st := ork(t, dir, "status", fromDB["run_id"].(string), "--json", "--db", db)
		st.expect(t, 0)
		if recorded := conforms(t, sch, "status --db", st.stdout); !reflect.DeepEqual(recorded, fromDB) {
			t.Errorf("run --nats --db printed\n%s\nthe database holds\n%s", r.stdout, st.stdout)
		}
	}

	// A --db that cannot be opened is said before anything is submitted.
	r := ork(t, dir, "run", "examples/hello.yaml", "--nats", url, "--db", "sqlite://"+filepath.Join(dir, "nowhere", "ork.db"))
	r.expect(t, 1)
	if !strings.Contains(r.stderr, "no database at") || strings.Contains(r.stdout, "✓") {
		t.Errorf("a missing --db with --nats: stdout %q stderr %q", r.stdout, r.stderr)
	}
}

// TestExitCodes runs each command as a process: 2 for usage errors, 1 for what does not exist
// (named in the message), 130 after Ctrl-C.
func TestExitCodes(t *testing.T) {
	t.Parallel()
	dir := copyExamples(t)
	data := filepath.Join(dir, "cluster")
	stk := startCluster(t, data)
	url := stk.Server.ClientURL()
	r := ork(t, dir, "run", "examples/hello.yaml", "--json")
	r.expect(t, 0)
	var run struct {
		RunID string `json:"run_id"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &run); err != nil {
		t.Fatal(err)
	}

	// Without --db a control command takes only a whole run id (a prefix needs the database).
	const unknownRunID = "00000000-0000-7000-8000-000000000000"
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"run"}, 2, "accepts 1 arg"},
		{[]string{"run", "a.yaml", "b.yaml"}, 2, "accepts 1 arg"},
		{[]string{"run", "examples/hello.yaml", "--nats", "localhost:4222"}, 2, `bad NATS URL "localhost:4222"`},
		{[]string{"run", "examples/hello.yaml", "--db", "mysql://x"}, 2, "mysql"},
		{[]string{"run", "examples/missing.yaml"}, 1, "missing.yaml"},
		{[]string{"validate"}, 2, "requires at least 1 arg"},
		{[]string{"status", "a", "b"}, 2, "accepts between 0 and 1 arg"},
		{[]string{"status", "--db", "bogus://x"}, 2, "bogus"},
		{[]string{"status", "--limit", "many"}, 2, "invalid argument"},
		{[]string{"tasks"}, 2, "accepts 1 arg"},
		{[]string{"logs"}, 2, "accepts between 1 and 2 arg"},
		{[]string{"logs", "a", "b", "c"}, 2, "accepts between 1 and 2 arg"},
		{[]string{"workflows", "x"}, 2, `unknown command "x" for "ork workflows"`},
		{[]string{"migrate"}, 2, "accepts 1 arg"},
		{[]string{"cancel"}, 2, "accepts 1 arg"},
		{[]string{"cancel", "x", "--nats", "http://127.0.0.1:4222"}, 2, "bad NATS URL"},
		{[]string{"pause", "x", "y", "--nats", url}, 2, "accepts 1 arg"},
		{[]string{"status", "BADID"}, 1, "no run BADID"},
		{[]string{"status", "BADID", "--json"}, 1, "no run BADID"},
		{[]string{"tasks", "BADID"}, 1, "no run BADID"},
		{[]string{"logs", "BADID"}, 1, "no run BADID"},
		{[]string{"logs", run.RunID, "nosuchtask"}, 1, "has no task nosuchtask"},
		{[]string{"cancel", unknownRunID, "--nats", url}, 1, "no run " + unknownRunID},
		{[]string{"pause", unknownRunID, "--nats", url, "--wait"}, 1, "no run " + unknownRunID},
		{[]string{"resume", unknownRunID, "--nats", url}, 1, "no run " + unknownRunID},
		{[]string{"cancel", "BADID", "--nats", url}, 2, "ork cancel needs a whole run id when no database is given"},
	}
	for _, tc := range cases {
		begin := time.Now()
		r := ork(t, dir, tc.args...)
		took := time.Since(begin)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("ork %s: exit %d, stderr %q; want %d and %q", strings.Join(tc.args, " "), r.code, r.stderr, tc.code, tc.want)
		}
		// Before, an unknown run made a control command wait for its whole --timeout (60 s): the
		// answer now comes from the scheduler's bucket at once. The bound is loose for a busy machine.
		if tc.args[0] != "run" && took > 15*time.Second {
			t.Errorf("ork %s took %s", strings.Join(tc.args, " "), took)
		}
	}
}

// TestInterruptExits130: Ctrl-C during `ork run` cancels the in-process run, records it as
// cancelled and exits 130.
func TestInterruptExits130(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	flow := "name: interrupted\ntasks:\n  nap:\n    executor: sleep\n    inputs:\n      seconds: {const: 60}\n"
	if err := os.WriteFile(filepath.Join(dir, "flow.yaml"), []byte(flow), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), orkBin, "run", "flow.yaml")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	var stdout strings.Builder
	for sc.Scan() {
		stdout.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "nap") && strings.Contains(sc.Text(), "started") {
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() {
		stdout.WriteString(sc.Text() + "\n")
	}
	err = cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != ExitCodeInterrupted {
		t.Fatalf("exit %d (%v), want 130\nstdout:\n%s\nstderr:\n%s", code, err, stdout.String(), stderr.String())
	}
	first := strings.SplitN(stdout.String(), "\n", 2)[0]
	id := strings.Fields(first)[1]
	r := ork(t, dir, "status", id, "--json")
	r.expect(t, 0)
	if !strings.Contains(r.stdout, `"status": "cancelled"`) {
		t.Fatalf("the interrupted run is recorded as\n%s", r.stdout)
	}
}
