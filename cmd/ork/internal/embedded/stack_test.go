package embedded_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/ork-go/ork/cmd/ork/internal/embedded"
	"github.com/ork-go/ork/pkg/client"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/poll"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/store/pgtest"
	"github.com/ork-go/ork/pkg/workflow"
)

// examplesDir is the repository's examples folder.
var examplesDir = filepath.Join("..", "..", "..", "..", "examples")

// start brings up an in-process stack over the given database URL for one test.
func start(t testing.TB, dbURL string, port int) *embedded.Stack {
	t.Helper()
	return startIn(t, t.TempDir(), dbURL, port)
}

// startIn is start with a chosen data directory (the embedded NATS store lives there).
func startIn(t testing.TB, dataDir, dbURL string, port int) *embedded.Stack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	log := zaptest.NewLogger(t)
	if _, ok := t.(*testing.B); ok {
		log = zap.NewNop() // a benchmark prints every log line
	}
	s, err := embedded.Start(ctx, embedded.Config{DataDir: dataDir, DBURL: dbURL, Port: port}, log)
	if err != nil {
		t.Fatalf("starting the stack: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stopping the stack: %v", err)
		}
	})
	return s
}

// runPlan submits a plan, waits for run.finished and for the recorder's commit, and returns the
// recorded run.
func runPlan(t testing.TB, s *embedded.Stack, plan *workflow.Plan, key string) store.Run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := client.New(s.Bus)
	runID := event.NewID()
	rec, err := cl.WatchRecorded(runID)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	if _, err := cl.Submit(ctx, client.SubmitParams{Plan: plan, RunID: runID, IdempotencyKey: key, TriggeredBy: "test"}); err != nil {
		t.Fatalf("submit: %v", err)
	}
	if _, err := cl.Wait(ctx, client.WaitParams{RunID: runID}); err != nil {
		t.Fatalf("waiting for %s: %v", plan.Name, err)
	}
	if _, err := rec.Wait(ctx); err != nil {
		t.Fatalf("waiting for the recorder: %v", err)
	}
	run, err := s.Store.RunGet(ctx, store.RunGetParams{ID: runID})
	if err != nil {
		t.Fatalf("reading run: %v", err)
	}
	return run
}

func tasksByName(t *testing.T, s *embedded.Stack, runID string) map[string]store.Task {
	t.Helper()
	tasks, err := s.Store.TaskList(context.Background(), store.TaskListParams{RunID: runID})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]store.Task{}
	for _, tk := range tasks {
		m[tk.Name] = tk
	}
	return m
}

// exampleExpectation is what each example must end with.
var exampleExpectation = map[string]string{
	"fails_on_purpose": event.RunFailed,
}

func TestExamplesRunOnEveryStore(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join(examplesDir, "*.yaml"))
	if err != nil || len(files) < 6 {
		t.Fatalf("want at least 6 examples, found %d (%v)", len(files), err)
	}
	stores := map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "ork.db") },
		"file":     func(t *testing.T) string { return "file://" + t.TempDir() },
		"postgres": func(t *testing.T) string { return pgtest.SchemaURL(t) },
	}
	for name, dbURL := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := start(t, dbURL(t), 0)
			for _, f := range files {
				plan, err := workflow.Load(f)
				if err != nil {
					t.Fatalf("loading %s: %v", f, err)
				}
				t.Run(plan.Name, func(t *testing.T) {
					t.Parallel()
					run := runPlan(t, s, plan, "")
					want := exampleExpectation[plan.Name]
					if want == "" {
						want = event.RunSuccess
					}
					tasks := tasksByName(t, s, run.ID)
					if run.Status != want {
						t.Fatalf("run ended %s (%s), want %s; tasks: %+v", run.Status, run.Error, want, tasks)
					}
					if len(tasks) != len(plan.Tasks) {
						t.Fatalf("%d task rows, want %d", len(tasks), len(plan.Tasks))
					}
					for _, tk := range tasks {
						if !event.IsTerminalTask(tk.Status) {
							t.Errorf("task %s left %s in a finished run", tk.Name, tk.Status)
						}
					}
					checkExample(t, s, plan, run, tasks)
				})
			}
		})
	}
}

// checkExample checks what is particular to some examples: retries, skips, outputs and logs.
func checkExample(t *testing.T, s *embedded.Stack, plan *workflow.Plan, run store.Run, tasks map[string]store.Task) {
	t.Helper()
	switch plan.Name {
	case "retries":
		if got := tasks["flaky"].Attempt; got < 2 {
			t.Errorf("flaky succeeded on attempt %d, want a retry (>= 2)", got)
		}
		attempts, err := s.Store.AttemptList(context.Background(), store.AttemptListParams{RunID: run.ID, Task: "flaky"})
		if err != nil {
			t.Fatal(err)
		}
		if len(attempts) < 2 || attempts[0].Status != event.TaskFailed {
			t.Errorf("attempts of flaky: %+v, want a failed first attempt then more", attempts)
		}
	case "fails_on_purpose":
		want := map[string]string{"broken": event.TaskFailed, "never_runs": event.TaskSkipped, "independent": event.TaskSuccess}
		for name, status := range want {
			if tasks[name].Status != status {
				t.Errorf("task %s ended %s, want %s", name, tasks[name].Status, status)
			}
		}
		logs, err := s.Store.LogList(context.Background(), store.LogListParams{RunID: run.ID, Task: "broken"})
		if err != nil {
			t.Fatal(err)
		}
		if len(logs) == 0 || logs[0].Line != "about to fail" || logs[0].Stream != event.Stderr {
			t.Errorf("logs of broken: %+v, want the stderr line \"about to fail\"", logs)
		}
	}
	for _, tk := range tasks {
		if tk.Status == event.TaskSuccess && plan.Task(tk.Name).OutputType != nil && len(tk.Output) == 0 {
			t.Errorf("task %s declares an output_type but no output was stored", tk.Name)
		}
	}
}

// TestPlainNATSSubmissionStartsOneRun publishes run.submitted with nothing but nats.go and hand-written
// JSON, twice with one idempotency key, and expects exactly one run.
func TestPlainNATSSubmissionStartsOneRun(t *testing.T) {
	t.Parallel()
	s := start(t, "sqlite://"+filepath.Join(t.TempDir(), "ork.db"), -1)
	nc, err := nats.Connect(s.Server.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	key := "nightly-" + event.NewID()
	body := fmt.Sprintf(`{"v":1,"id":%q,"type":"run.submitted","time":%q,"idempotency_key":%q,"triggered_by":"plain-nats",
		"plan":{"name":"plain","dir":%q,"hash":"h1","tasks":[
			{"name":"a","index":0,"executor":"process","command":["echo","hi"],"timeout_s":10,"retries":0},
			{"name":"b","index":1,"executor":"noop","depends_on":["a"],"timeout_s":10,"retries":0}]}}`,
		event.NewID(), time.Now().UTC().Format(time.RFC3339Nano), key, t.TempDir())
	runID := event.DeriveRunID(key)
	cl := client.New(s.Bus)
	rec, err := cl.WatchRecorded(runID)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	for range 2 {
		msg := nats.NewMsg(event.SubjectRunSubmitted)
		msg.Header.Set("Nats-Msg-Id", key)
		msg.Data = []byte(body)
		reply, err := nc.RequestMsg(msg, 5*time.Second) // a JetStream publish answers with its ack
		if err != nil {
			t.Fatalf("publishing: %v", err)
		}
		if strings.Contains(string(reply.Data), `"error"`) {
			t.Fatalf("publish rejected: %s", reply.Data)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if status, err := rec.Wait(ctx); err != nil || status != event.RunSuccess {
		t.Fatalf("recorded status %q, err %v; want success", status, err)
	}
	runs, err := s.Store.RunList(ctx, store.RunListParams{Workflow: "plain"})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs[0].ID != runID || runs[0].IdempotencyKey != key || runs[0].TriggeredBy != "plain-nats" {
		t.Fatalf("runs of plain: %+v; want exactly one, %s, with its key", runs, runID)
	}
}

// TestTimeoutKillsTheProcessGroup runs a task whose children would outlive it and checks that none
// survives its timeout.
func TestTimeoutKillsTheProcessGroup(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pids")
	yaml := fmt.Sprintf(`name: slow
tasks:
  hang:
    executor: process
    command: [sh, -c, "sleep 1000 & echo $! >> %s; sh -c 'sleep 1000' & echo $! >> %s; echo started; sleep 1000"]
    timeout: 1
  after:
    executor: noop
    depends_on: [hang]
`, pidFile, pidFile)
	if err := os.WriteFile(filepath.Join(dir, "slow.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	plan, err := workflow.Load(filepath.Join(dir, "slow.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := start(t, "sqlite://"+filepath.Join(t.TempDir(), "ork.db"), 0)
	run := runPlan(t, s, plan, "")
	tasks := tasksByName(t, s, run.ID)
	if run.Status != event.RunFailed || tasks["hang"].Reason != event.ReasonTimeout || tasks["after"].Status != event.TaskSkipped {
		t.Fatalf("run %s, hang %+v, after %s; want failed, timeout, skipped", run.Status, tasks["hang"], tasks["after"].Status)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pids := strings.Fields(string(data))
	if len(pids) != 2 {
		t.Fatalf("pid file holds %q, want two pids", data)
	}
	for _, p := range pids {
		pid, _ := strconv.Atoi(p)
		if !waitGone(pid, 5*time.Second) {
			t.Errorf("process %d outlived the task's timeout", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// waitGone waits until pid no longer runs. A killed process can stay a zombie until its new parent
// reaps it, so a zombie counts as gone.
func waitGone(pid int, within time.Duration) bool {
	return poll.Within(within, func() bool {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return true
		}
		// The state follows the command name in parentheses: "pid (comm) S ...".
		i := strings.LastIndexByte(string(stat), ')')
		return i > 0 && i+2 < len(stat) && (stat[i+2] == 'Z' || stat[i+2] == 'X')
	})
}

// TestOutputsFlowDownstream checks that a ref binding delivers an upstream output (a field of it)
// to a downstream process, and that both outputs are stored.
func TestOutputsFlowDownstream(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	yaml := `name: flow
tasks:
  produce:
    executor: process
    command: [sh, -c, 'echo ORK_OUTPUT:{\"user\":{\"name\":\"ada\"},\"n\":3}']
    output_type: {user: {name: str}, n: int}
  consume:
    executor: process
    command: [sh, -c, 'echo "ORK_OUTPUT:$ORK_INPUT_JSON"']
    depends_on: [produce]
    inputs:
      who: {ref: tasks.produce.output.user.name}
      count: {ref: tasks.produce.output.n}
      greeting: {const: hello}
`
	if err := os.WriteFile(filepath.Join(dir, "flow.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	plan, err := workflow.Load(filepath.Join(dir, "flow.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := start(t, "sqlite://"+filepath.Join(t.TempDir(), "ork.db"), 0)
	run := runPlan(t, s, plan, "")
	if run.Status != event.RunSuccess {
		t.Fatalf("run %s: %s", run.Status, run.Error)
	}
	var got map[string]any
	if err := json.Unmarshal(tasksByName(t, s, run.ID)["consume"].Output, &got); err != nil {
		t.Fatal(err)
	}
	if got["who"] != "ada" || got["count"] != float64(3) || got["greeting"] != "hello" {
		t.Fatalf("consume received %v; want who=ada count=3 greeting=hello", got)
	}
}

// TestSecondRunInSameDirectory runs twice on one data directory, as `ork run` does: the second
// stack resumes the persisted streams and a run without any log line must still be confirmed.
func TestSecondRunInSameDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dbURL := "sqlite://" + filepath.Join(dir, "ork.db")
	chatty := &workflow.Plan{Name: "chatty", Dir: dir, Hash: "h1", Tasks: []workflow.Task{
		{Name: "say", Executor: workflow.ExecutorProcess, Command: []string{"echo", "hello"}, TimeoutSeconds: 10},
	}}
	quiet := &workflow.Plan{Name: "quiet", Dir: dir, Hash: "h2", Tasks: []workflow.Task{
		{Name: "nothing", Executor: workflow.ExecutorNoop, TimeoutSeconds: 10},
	}}
	first := startIn(t, dir, dbURL, 0)
	if run := runPlan(t, first, chatty, ""); run.Status != event.RunSuccess {
		t.Fatalf("first run %s", run.Status)
	}
	if err := first.Stop(); err != nil {
		t.Fatal(err)
	}
	second := startIn(t, dir, dbURL, 0)
	if run := runPlan(t, second, quiet, ""); run.Status != event.RunSuccess {
		t.Fatalf("second run %s", run.Status)
	}
}
