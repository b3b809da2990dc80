package processes_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ork-go/ork/deploy/processes"
	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/client"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/store/pgstore"
	"github.com/ork-go/ork/pkg/store/pgtest"
	"github.com/ork-go/ork/pkg/workflow"
)

// build builds the binaries once for the package.
var build processes.BuildOnce

// services builds nats-server, the three services and the CLI once for the package.
func services(t *testing.T) processes.Binaries {
	t.Helper()
	return build.Binaries(t, processes.BuildConfig{Dir: binDir, CLI: true})
}

// testDatabase creates a fresh database on TEST_DATABASE_URL's server, dropped at cleanup.
func testDatabase(t *testing.T) string {
	t.Helper()
	return processes.TestDatabase(t, pgtest.AdminURL(t), "ork_deploy")
}

// wideWorkflowYAML returns a workflow of one root task, width tasks depending on it and one task
// joining them all; every task is a process that sleeps a little and outputs its own name.
func wideWorkflowYAML(width int) string {
	var b strings.Builder
	b.WriteString("name: deploy-wide\ndescription: multi-process test\ntasks:\n")
	task := func(name string, deps []string) {
		fmt.Fprintf(&b, "  %s:\n    executor: process\n", name)
		b.WriteString(`    command: ["sh", "-c", "sleep 0.05; printf 'ORK_OUTPUT:{\"task\":\"%s\"}\\n' \"$ORK_TASK_NAME\""]` + "\n")
		if len(deps) > 0 {
			fmt.Fprintf(&b, "    depends_on: [%s]\n", strings.Join(deps, ", "))
		}
	}
	task("start", nil)
	var middle []string
	for i := 1; i <= width; i++ {
		name := fmt.Sprintf("w%02d", i)
		middle = append(middle, name)
		task(name, []string{"start"})
	}
	task("join", middle)
	return b.String()
}

// wideWorkflow compiles the wide workflow from a file in a test directory.
func wideWorkflow(t *testing.T, width int) *workflow.Plan {
	t.Helper()
	path := wideWorkflowFile(t, width)
	plan, err := workflow.Load(path)
	if err != nil {
		t.Fatalf("loading the test workflow: %v\n%s", err, wideWorkflowYAML(width))
	}
	return plan
}

// freePort returns a TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// freePorts returns the first of n consecutive ports that are free now, none of them in avoid.
func freePorts(t *testing.T, n int, avoid ...int) int {
	t.Helper()
next:
	for range 100 {
		base := freePort(t)
		var held []net.Listener
		ok := true
		for p := base; p < base+n && ok; p++ {
			if slices.Contains(avoid, p) {
				ok = false
				break
			}
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				ok = false
				break
			}
			held = append(held, l)
		}
		for _, l := range held {
			_ = l.Close()
		}
		if !ok {
			continue next
		}
		return base
	}
	t.Fatalf("no %d consecutive free ports", n)
	return 0
}

// TestMultiProcess runs the real deployment shape, as docker-compose.yml does: `ork migrate up`,
// then nats-server, recorder, scheduler and two executors as separate processes, and a wide
// workflow submitted over TCP. Both executor instances
// must have run attempts, and PostgreSQL must hold the finished run.
func TestMultiProcess(t *testing.T) {
	t.Parallel()
	const width = 40
	dbURL := testDatabase(t)
	bins := services(t)
	plan := wideWorkflow(t, width)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	s, err := processes.StartStack(ctx, processes.Config{
		Binaries:            bins,
		Dir:                 t.TempDir(),
		NATSBase:            baseConfig(t),
		DBURL:               dbURL,
		MigrateFirst:        true, // as compose does: `ork migrate up`, then the recorder with --no-migrate
		Executors:           2,
		ExecutorTypes:       workflow.ExecutorProcess,
		ExecutorConcurrency: 2,
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
	// Both executors must be pulling before the run starts, or the first could take every task.
	if err := s.WaitExecutors(ctx); err != nil {
		t.Fatal(err)
	}

	// A submitter, like `ork run --nats`: it may check the streams, not provision them.
	b, err := s.Connect(processes.RoleSubmitter, bus.Config{Name: "stack-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	c := client.New(b)
	runID := runAndWait(ctx, t, c, plan)
	if exited := s.Exited(); len(exited) > 0 {
		t.Fatalf("%d services exited during the run, first %s: %v", len(exited), exited[0].Name(), exited[0].Err())
	}
	st, err := pgstore.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	checkRecorded(ctx, t, st, runID, plan)

	// An executor killed with SIGKILL and started again rejoins its consumer: a second run succeeds
	// on both instances again.
	if err := s.Executors[1].Kill(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Restart(s.Executors[1]); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitExecutors(ctx); err != nil {
		t.Fatal(err)
	}
	runID = runAndWait(ctx, t, c, plan)
	checkRecorded(ctx, t, st, runID, plan)
}

// runAndWait submits plan and waits for the recorder's notice that the run's end is committed.
func runAndWait(ctx context.Context, t *testing.T, c *client.Client, plan *workflow.Plan) string {
	t.Helper()
	runID := event.NewID()
	rec, err := c.WatchRecorded(runID)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	if _, err := c.Submit(ctx, client.SubmitParams{Plan: plan, RunID: runID, TriggeredBy: "stack-test"}); err != nil {
		t.Fatal(err)
	}
	status, err := rec.Wait(ctx)
	if err != nil {
		t.Fatalf("waiting for the recorder's notice of run %s: %v", runID, err)
	}
	if status != event.RunSuccess {
		t.Errorf("run %s: recorded notice says %q, want %q", runID, status, event.RunSuccess)
	}
	return runID
}

func checkRecorded(ctx context.Context, t *testing.T, st store.Store, runID string, plan *workflow.Plan) {
	t.Helper()
	run, err := st.RunGet(ctx, store.RunGetParams{ID: runID})
	if err != nil {
		t.Fatal(err)
	}
	if run.Status != event.RunSuccess || run.Workflow != plan.Name || run.FinishedAt == nil {
		t.Errorf("run = %s %s finished %v, want %s %s finished", run.Workflow, run.Status, run.FinishedAt, plan.Name, event.RunSuccess)
	}
	tasks, err := st.TaskList(ctx, store.TaskListParams{RunID: runID})
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != len(plan.Tasks) {
		t.Fatalf("%d tasks recorded, want %d", len(tasks), len(plan.Tasks))
	}
	for _, task := range tasks {
		var out struct{ Task string }
		if task.Status != event.TaskSuccess || task.Attempt != 1 {
			t.Errorf("task %s: %s at attempt %d, want success at attempt 1", task.Name, task.Status, task.Attempt)
			continue
		}
		if err := json.Unmarshal(task.Output, &out); err != nil || out.Task != task.Name {
			t.Errorf("task %s: output %s, want its own name from ORK_TASK_NAME", task.Name, task.Output)
		}
	}
	attempts, err := st.AttemptList(ctx, store.AttemptListParams{RunID: runID})
	if err != nil {
		t.Fatal(err)
	}
	if len(attempts) != len(plan.Tasks) {
		t.Errorf("%d attempts recorded, want one per task (%d)", len(attempts), len(plan.Tasks))
	}
	perInstance := map[string]int{}
	for _, a := range attempts {
		perInstance[a.Instance]++
		if a.Status != event.TaskSuccess {
			t.Errorf("attempt %s/%d: %s, want success", a.Task, a.Attempt, a.Status)
		}
	}
	for _, instance := range []string{"executor-1", "executor-2"} {
		if perInstance[instance] == 0 {
			t.Errorf("no attempt ran on %s; attempts per instance: %v", instance, perInstance)
		}
	}
	if len(perInstance) != 2 {
		t.Errorf("attempts per instance = %v, want only executor-1 and executor-2", perInstance)
	}
}
