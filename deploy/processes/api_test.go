package processes_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ork-go/ork/deploy/processes"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/httpapi"
	"github.com/ork-go/ork/pkg/workflow"
)

// The HTTP API as a process of its own (ork-api, the submitter role) in front of the process stack:
// a token made with the CLI, a workflow registered and triggered with a parameter over HTTP, its
// events followed live to the end, the run read back; no token and a read token are refused.
func TestAPIProcess(t *testing.T) {
	t.Parallel()
	dbURL := testDatabase(t)
	bins := services(t)
	ctx, cancel := context.WithTimeout(context.Background(), processes.Scaled(3*time.Minute))
	defer cancel()
	s, err := processes.StartStack(ctx, processes.Config{
		Binaries: bins, Dir: t.TempDir(), NATSBase: baseConfig(t), DBURL: dbURL, MigrateFirst: true,
		Executors: 1, ExecutorTypes: workflow.ExecutorProcess, ExecutorConcurrency: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("process logs:\n%s", s.Logs())
		}
		if err := s.Kill(); err != nil {
			t.Errorf("killing the stack: %v", err)
		}
	})
	token := func(scope string) string {
		out, err := exec.CommandContext(ctx, bins.CLI, "token", "create", "--scope", scope, "--name", scope, "--db", dbURL).CombinedOutput()
		if err != nil {
			t.Fatalf("ork token create: %v\n%s", err, out)
		}
		for _, f := range strings.Fields(string(out)) {
			if strings.HasPrefix(f, "ork_") {
				return f
			}
		}
		t.Fatalf("no token in:\n%s", out)
		return ""
	}
	admin, read := token("admin"), token("read")

	root, err := os.MkdirTemp("", "ork-api-") // under the executors' roots (the temporary directory)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(root) })
	const flow = `name: greet
params:
  who: {type: str, default: world}
tasks:
  hello:
    executor: process
    command: [sh, -c, 'echo "hello from the stack"; echo "ORK_OUTPUT:$ORK_INPUT_JSON"']
    inputs:
      who: {ref: params.who}
`
	if err := os.WriteFile(filepath.Join(root, "greet.yaml"), []byte(flow), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p, err := processes.StartProcess(s.APISpec(addr, root))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Kill() })
	if err := p.WaitLog(ctx, processes.APIReadyLine); err != nil {
		t.Fatalf("ork-api: %v\n%s", err, p.LogTail())
	}
	base := "http://" + addr
	if err := httpapi.NewClient(base, "").Health(ctx); err != nil {
		t.Fatalf("health: %v", err)
	}
	if _, err := httpapi.NewClient(base, "").Workflows(ctx, ""); !httpapi.IsProblem(err, "unauthorized") {
		t.Fatalf("no token: %v, want unauthorized", err)
	}
	c := httpapi.NewClient(base, admin)
	if _, created, err := c.PutWorkflow(ctx, "greet", []byte(flow), "."); err != nil || !created {
		t.Fatalf("register: created=%v %v", created, err)
	}
	if _, err := httpapi.NewClient(base, read).Trigger(ctx, "greet", nil, ""); !httpapi.IsProblem(err, "forbidden") {
		t.Fatalf("a read token triggering: %v, want forbidden", err)
	}
	tr, err := c.Trigger(ctx, "greet", map[string]json.RawMessage{"who": json.RawMessage(`"stack"`)}, "k1")
	if err != nil {
		t.Fatal(err)
	}
	var final event.Event
	if err := c.FollowRun(ctx, tr.RunID, 0, func(e event.Event) error {
		if e.Type == event.TypeRunFinished {
			final = e
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if final.Status != event.RunSuccess {
		t.Fatalf("run ended %+v", final)
	}
	run, err := httpapi.NewClient(base, read).Run(ctx, tr.RunID)
	if err != nil {
		t.Fatal(err)
	}
	// The run's log lines, followed through the API to the end (the stream knows when it has all).
	var lines []string
	if err := httpapi.NewClient(base, read).FollowLogs(ctx, tr.RunID, "", func(b httpapi.LogBatch) error {
		for _, l := range b.Lines {
			lines = append(lines, l.Line)
		}
		return nil
	}); err != nil {
		t.Fatalf("following the logs: %v", err)
	}
	if !slices.Contains(lines, "hello from the stack") {
		t.Errorf("log lines %q", lines)
	}
	var out struct{ Who string }
	if err := json.Unmarshal(run.Tasks["hello"].Output, &out); err != nil || run.Status != event.RunSuccess || out.Who != "stack" {
		t.Fatalf("the run read back: %s, output %s (%v)", run.Status, run.Tasks["hello"].Output, err)
	}
}
