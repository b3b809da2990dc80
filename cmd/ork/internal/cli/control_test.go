package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/ork-go/ork/cmd/ork/internal/embedded"
	"github.com/ork-go/ork/pkg/client"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/workflow"
)

const controlFlow = `name: control
tasks:
  long:
    executor: sleep
    inputs:
      seconds: {const: 5}
  after:
    executor: noop
    depends_on: [long]
`

// cli runs the ork command line in this process and returns its exit status and output.
func cli(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := Run(ctx, args, &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func TestControlCommands(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	stk := startCluster(t, filepath.Join(dir, "data"))
	url := stk.Server.ClientURL()
	file := filepath.Join(dir, "flow.yaml")
	if err := os.WriteFile(file, []byte(controlFlow), 0o600); err != nil {
		t.Fatal(err)
	}
	plan, err := workflow.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	cl := client.New(stk.Bus)
	runID, err := cl.Submit(ctx, client.SubmitParams{Plan: plan, TriggeredBy: "test"})
	if err != nil {
		t.Fatal(err)
	}

	unknown := event.NewID()
	steps := []struct {
		args []string
		code int
		out  string // in stdout (code 0) or stderr
	}{
		{[]string{"pause", runID, "--nats", url, "--wait"}, 0, "run " + runID + " paused\n"},
		{[]string{"pause", runID, "--nats", url, "--wait"}, 0, "run " + runID + " paused\n"},
		{[]string{"resume", runID, "--nats", url, "--wait"}, 0, "run " + runID + " resumed\n"},
		{[]string{"pause", runID, "--nats", url}, 0, "run " + runID + ": run.pause_requested sent\n"},
		{[]string{"cancel", runID, "--nats", url, "--reason", "not needed"}, 0, "run " + runID + " cancelled\n"},
		{[]string{"cancel", runID, "--nats", url}, 0, "run " + runID + " cancelled\n"},
		{[]string{"resume", runID, "--nats", url, "--wait"}, 1, "error: run " + runID + " has already finished: cancelled"},
		{[]string{"pause", unknown, "--nats", url, "--wait", "--timeout", "300ms"}, 1, "no run " + unknown + " on the cluster"},
		{[]string{"cancel", runID}, 2, "ork cancel acts on a run of a server or a cluster"},
		{[]string{"pause", "--nats", url}, 2, "accepts 1 arg"},
	}
	for _, s := range steps {
		r := cli(t, s.args...)
		got := r.stdout
		if s.code != 0 {
			got = r.stderr
		}
		if r.code != s.code || !strings.Contains(got, s.out) {
			t.Fatalf("ork %s: status %d, stdout %q, stderr %q; want status %d and %q", strings.Join(s.args, " "),
				r.code, r.stdout, r.stderr, s.code, s.out)
		}
	}

	final, err := cl.Wait(ctx, client.WaitParams{RunID: runID})
	if err != nil {
		t.Fatal(err)
	}
	if final.Status != event.RunCancelled || final.Error != "run cancelled: not needed" {
		t.Fatalf("run.finished %+v", final)
	}
	var cancelled []string
	if err := cl.Follow(ctx, runID, func(e event.Event) error {
		if e.Type == event.TypeTaskCancelled {
			cancelled = append(cancelled, e.Task)
		}
		if e.Type == event.TypeRunFinished {
			return client.ErrStop
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(cancelled, ",") != "long,after" {
		t.Fatalf("cancelled tasks %q, want long and after", cancelled)
	}
}

// TestControlRunRef names the run of a control command by a prefix of its id and by latest, looked
// up in the cluster's database, and requires the whole id without one.
func TestControlRunRef(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	committed := make(chan struct{}, 1)
	stk, err := embedded.Start(ctx, embedded.Config{DataDir: filepath.Join(dir, "data"), Port: -1,
		OnRecorderCommit: func(embedded.RecorderCommit) {
			select {
			case committed <- struct{}{}:
			default:
			}
		}}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := stk.Stop(); err != nil {
			t.Errorf("stopping the stack: %v", err)
		}
	})
	url, db := stk.Server.ClientURL(), "sqlite://"+filepath.Join(dir, "data", "ork.db")
	file := filepath.Join(dir, "flow.yaml")
	if err := os.WriteFile(file, []byte(controlFlow), 0o600); err != nil {
		t.Fatal(err)
	}
	plan, err := workflow.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	cl := client.New(stk.Bus)
	runID, err := cl.Submit(ctx, client.SubmitParams{Plan: plan, TriggeredBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	// The commands look the run up in the database: wait until the recorder has stored it.
	deadline := time.After(30 * time.Second)
	for {
		if _, err := stk.Store.RunGet(ctx, store.RunGetParams{ID: runID}); err == nil {
			break
		}
		select {
		case <-committed:
		case <-deadline:
			t.Fatalf("run %s not recorded within 30s", runID)
		}
	}

	prefix := runID[:8]
	wantCLI(t, 2, []string{"pause", prefix, "--nats", url, "--wait"},
		"error: ork pause needs a whole run id when no database is given, and \""+prefix+"\" is not one: pass the full id, or --db URL")
	wantCLI(t, 2, []string{"cancel", "latest", "--nats", url}, "ork cancel needs a whole run id")
	wantCLI(t, 1, []string{"pause", prefix + "zz", "--nats", url, "--db", db, "--wait"}, "error: no run "+prefix+"zz in this database")
	wantCLI(t, 0, []string{"pause", prefix, "--nats", url, "--db", db, "--wait"}, "run "+runID+" paused\n")
	wantCLI(t, 0, []string{"resume", "latest", "--nats", url, "--db", db, "--wait"}, "run "+runID+" resumed\n")
	wantCLI(t, 0, []string{"cancel", prefix, "--nats", url, "--db", db}, "run "+runID+" cancelled\n")
}

func TestControlHelp(t *testing.T) {
	t.Parallel()
	r := cli(t, "cancel", "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "--wait") || !strings.Contains(r.stdout, "--reason") {
		t.Fatalf("cancel --help: %d %q %q", r.code, r.stdout, r.stderr)
	}
}
