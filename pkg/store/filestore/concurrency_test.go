package filestore_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/store/filestore"
	"github.com/ork-go/ork/pkg/workflow"
)

// Environment of a writer child process (see TestMain).
const (
	envDir  = "ORK_FILESTORE_TEST_DIR"
	envRole = "ORK_FILESTORE_TEST_ROLE"
	envRuns = "ORK_FILESTORE_TEST_RUNS"
)

const workloadTasks = 8

// childMain runs one writer of TestTwoProcesses when the test binary is started as a child.
func childMain() int {
	s, err := filestore.Open(os.Getenv(envDir))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = s.Close() }()
	role, _ := strconv.Atoi(os.Getenv(envRole))
	if err := workload(context.Background(), s, role, strings.Split(os.Getenv(envRuns), ",")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func workloadPlan() *workflow.Plan {
	p := &workflow.Plan{Name: "shared", Hash: "shared-1"}
	for i := range workloadTasks {
		p.Tasks = append(p.Tasks, workflow.Task{Name: fmt.Sprintf("t%d", i), Index: i, Executor: workflow.ExecutorNoop})
	}
	return p
}

// submitWorkload submits the shared runs.
func submitWorkload(t *testing.T, s store.Store, runs []string) {
	t.Helper()
	var evs []event.Event
	for _, id := range runs {
		e := event.New(event.TypeRunSubmitted, id, "", 0)
		e.Plan = workloadPlan()
		evs = append(evs, e)
	}
	if _, err := s.ApplyBatch(t.Context(), store.ApplyBatchParams{Events: evs}); err != nil {
		t.Fatalf("submitting: %v", err)
	}
}

// workload writes, one small batch at a time, either the dispatch and start (role 0) or the success
// (role 1) of every task of runs, log lines with odd (role 0) or even (role 1) seqs into one shared
// file per attempt, and dead letters of a stream of its own. Without mutual exclusion, the
// read-modify-write of two writers loses updates.
func workload(ctx context.Context, s store.Store, role int, runs []string) error {
	for _, id := range runs {
		for i := range workloadTasks {
			name := fmt.Sprintf("t%d", i)
			var evs []event.Event
			if role == 0 {
				evs = append(evs, event.New(event.TypeTaskDispatched, id, name, 1), event.New(event.TypeTaskStarted, id, name, 1))
			} else {
				ok := event.New(event.TypeTaskSucceeded, id, name, 1)
				ok.Instance = "writer-1"
				evs = append(evs, ok)
			}
			seq := int64(2*i + 1 + role)
			for _, e := range evs {
				_, err := s.ApplyBatch(ctx, store.ApplyBatchParams{
					Events: []event.Event{e},
					Logs: []event.LogBatch{{RunID: id, Task: "t0", Attempt: 1, Lines: []event.LogLine{
						{Seq: seq, Stream: event.Stdout, Line: "line " + strconv.FormatInt(seq, 10), Time: time.Now()},
					}}},
					DeadLetters: []store.DeadLetter{{Stream: "writer-" + strconv.Itoa(role), Seq: uint64(i + 1), Reason: id}}, //nolint:gosec // small
				})
				if err != nil {
					return fmt.Errorf("writer %d: %w", role, err)
				}
			}
		}
	}
	return nil
}

// checkWorkload verifies that nothing either writer wrote was lost.
func checkWorkload(t *testing.T, s store.Store, runs []string) {
	t.Helper()
	ctx := t.Context()
	for _, id := range runs {
		tasks, err := s.TaskList(ctx, store.TaskListParams{RunID: id})
		if err != nil || len(tasks) != workloadTasks {
			t.Fatalf("TaskList(%s) = %d tasks, %v", id, len(tasks), err)
		}
		for _, tk := range tasks {
			if tk.Status != event.TaskSuccess || tk.Attempt != 1 {
				t.Errorf("task %s/%s = %s attempt %d, want success attempt 1", id, tk.Name, tk.Status, tk.Attempt)
			}
		}
		as, err := s.AttemptList(ctx, store.AttemptListParams{RunID: id})
		if err != nil || len(as) != workloadTasks {
			t.Fatalf("AttemptList(%s) = %d attempts, %v", id, len(as), err)
		}
		for _, a := range as {
			if a.Status != event.TaskSuccess || a.DispatchedAt == nil || a.StartedAt == nil || a.FinishedAt == nil {
				t.Errorf("attempt %s/%s = %+v, want success with all three times", id, a.Task, a)
			}
		}
		lines, err := s.LogList(ctx, store.LogListParams{RunID: id})
		if err != nil {
			t.Fatalf("LogList: %v", err)
		}
		if len(lines) != 2*workloadTasks {
			t.Errorf("run %s has %d log lines, want %d", id, len(lines), 2*workloadTasks)
		}
		for i, l := range lines {
			if l.Seq != int64(i+1) {
				t.Errorf("log line %d has seq %d", i, l.Seq)
			}
		}
	}
	dls, err := s.DeadLetterList(ctx, store.DeadLetterListParams{Limit: 1000})
	if err != nil {
		t.Fatalf("DeadLetterList: %v", err)
	}
	if len(dls) != 2*workloadTasks {
		t.Errorf("%d dead letters, want %d", len(dls), 2*workloadTasks)
	}
}

// TestTwoStores runs two writers in one process, each with its own Store and so its own flock
// handle on the same directory.
func TestTwoStores(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, b := open(t, dir), open(t, dir)
	runs := []string{event.NewID(), event.NewID()}
	submitWorkload(t, a, runs)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for role, s := range []store.Store{a, b} {
		wg.Go(func() { errs[role] = workload(t.Context(), s, role, runs) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	checkWorkload(t, a, runs)
	checkWorkload(t, b, runs)
}

// TestTwoProcesses runs the two writers as separate OS processes (this test binary re-executed).
func TestTwoProcesses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := open(t, dir)
	runs := []string{event.NewID(), event.NewID()}
	submitWorkload(t, s, runs)
	cmds := make([]*exec.Cmd, 2)
	outs := make([]strings.Builder, 2)
	for role := range cmds {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$") //nolint:gosec // the test binary itself
		cmd.Env = append(os.Environ(), envDir+"="+dir, envRole+"="+strconv.Itoa(role), envRuns+"="+strings.Join(runs, ","))
		cmd.Stdout, cmd.Stderr = &outs[role], &outs[role]
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting writer %d: %v", role, err)
		}
		cmds[role] = cmd
	}
	for role, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("writer %d: %v\n%s", role, err, outs[role].String())
		}
	}
	checkWorkload(t, s, runs)
}
