package faults_test

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ork-go/ork/deploy/faults"
	"github.com/ork-go/ork/deploy/processes"
	"github.com/ork-go/ork/pkg/client"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/workflow"
)

// attemptRow is one task_attempts row.
type attemptRow struct {
	attempt  int
	status   string
	reason   string
	instance string
}

// attemptsOf reads the recorded attempts of one task, in attempt order.
func (e *env) attemptsOf(runID, task string) []attemptRow {
	e.t.Helper()
	conn, err := pgx.Connect(e.ctx, e.dbURL)
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(e.ctx, `SELECT attempt, status, reason, instance FROM task_attempts
		WHERE run_id = $1 AND task = $2 ORDER BY attempt`, runID, task)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []attemptRow
	for rows.Next() {
		var a attemptRow
		if err := rows.Scan(&a.attempt, &a.status, &a.reason, &a.instance); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// executionsOf counts the ledger's executions of one task of one run.
func (e *env) executionsOf(runID, task string) []faults.Execution {
	var out []faults.Execution
	for _, x := range e.executions() {
		if x.RunID == runID && x.Task == task {
			out = append(out, x)
		}
	}
	return out
}

// TestExecutorKilledMidTask: an executor killed with SIGKILL while it runs a 3 s task takes its
// task process with it (Pdeathsig), the dispatch is redelivered after AckWait to the other executor,
// which records the first attempt lost and runs attempt 2; the run succeeds and downstream runs once.
func TestExecutorKilledMidTask(t *testing.T) {
	t.Parallel()
	e := setup(t, options{executors: 2, concurrency: 1, ackWait: 2 * time.Second})
	plan := e.workflow("killed-mid-task", []taskSpec{
		{name: "long", seconds: 3, lines: 2},
		{name: "after", deps: []string{"long"}, lines: 1},
	})
	runID := e.submit(plan)
	first := e.waitExecution("long", func(x faults.Execution) bool { return x.RunID == runID && x.Task == "long" })
	victim := e.executorOf(first.Pid)
	if err := victim.Kill(); err != nil {
		t.Fatal(err)
	}
	// The task was in its own process group: only Pdeathsig can have stopped it.
	e.waitUntil("the killed executor's task process to die", func() bool { return !processes.ProcAlive(first.Pid) })

	e.check(faults.Params{WantStatus: map[string]string{runID: event.RunSuccess}, EveryTaskWritesLedger: true})
	execs := e.executionsOf(runID, "long")
	if len(execs) != 2 || execs[0].Attempt != 1 || execs[1].Attempt != 2 {
		t.Errorf("executions of long = %+v, want attempt 1 (killed) then attempt 2", execs)
	}
	attempts := e.attemptsOf(runID, "long")
	if len(attempts) != 2 {
		t.Fatalf("attempts of long = %+v, want 2", attempts)
	}
	if a := attempts[0]; a.status != event.TaskLost || a.reason != event.ReasonLost || a.instance != victim.Name() {
		t.Errorf("attempt 1 = %+v, want failed (lost) on %s", a, victim.Name())
	}
	if a := attempts[1]; a.status != event.TaskSuccess || a.instance == victim.Name() {
		t.Errorf("attempt 2 = %+v, want success on the surviving executor", a)
	}
	if n := len(e.executionsOf(runID, "after")); n != 1 {
		t.Errorf("after ran %d times, want once", n)
	}
}

// TestLongTaskNotRedelivered: a healthy task running longer than 3x AckWait is heartbeated and
// never redelivered: exactly one execution, one attempt.
func TestLongTaskNotRedelivered(t *testing.T) {
	t.Parallel()
	const ackWait = time.Second
	e := setup(t, options{executors: 2, concurrency: 1, ackWait: ackWait})
	plan := e.workflow("long-healthy", []taskSpec{{name: "long", seconds: (4 * ackWait).Seconds(), lines: 3}})
	runID := e.submit(plan)
	e.check(faults.Params{WantStatus: map[string]string{runID: event.RunSuccess}, EveryTaskWritesLedger: true})
	if execs := e.executionsOf(runID, "long"); len(execs) != 1 {
		t.Errorf("executions of long = %+v, want exactly one", execs)
	}
	if attempts := e.attemptsOf(runID, "long"); len(attempts) != 1 || attempts[0].status != event.TaskSuccess {
		t.Errorf("attempts of long = %+v, want one, successful", attempts)
	}
}

// TestFencing: an executor stopped with SIGSTOP mid-task until its attempt is superseded, then
// continued, publishes a late result that is stored but not applied; downstream runs exactly once.
// A long last task keeps the run going while the late result arrives (an executor drops the result
// of a run that has already finished).
func TestFencing(t *testing.T) {
	t.Parallel()
	e := setup(t, options{executors: 2, concurrency: 1, ackWait: 1500 * time.Millisecond})
	plan := e.workflow("fencing", []taskSpec{
		{name: "slow", seconds: 2, lines: 2},
		{name: "down", deps: []string{"slow"}, lines: 1},
		{name: "tail", deps: []string{"down"}, seconds: 5, lines: 1},
	})
	runID := e.submit(plan)
	first := e.waitExecution("slow attempt 1", func(x faults.Execution) bool {
		return x.RunID == runID && x.Task == "slow" && x.Attempt == 1
	})
	frozen := e.executorOf(first.Pid)
	// Only the executor's group stops: its task runs on in its own group and finishes, unseen.
	if err := frozen.Pause(); err != nil {
		t.Fatal(err)
	}
	e.waitExecution("slow attempt 2", func(x faults.Execution) bool {
		return x.RunID == runID && x.Task == "slow" && x.Attempt == 2
	})
	e.waitExecution("tail", func(x faults.Execution) bool { return x.RunID == runID && x.Task == "tail" })
	if err := frozen.Resume(); err != nil {
		t.Fatal(err)
	}
	// Wait for the frozen executor's late terminal event of attempt 1.
	late := make(chan event.Event, 1)
	waitCtx, cancel := context.WithTimeout(e.ctx, time.Minute)
	defer cancel()
	err := e.client.Follow(waitCtx, runID, func(ev event.Event) error {
		if ev.Task == "slow" && ev.Attempt == 1 && ev.Instance == frozen.Name() &&
			(ev.Type == event.TypeTaskSucceeded || ev.Type == event.TypeTaskFailed) {
			late <- ev
			return client.ErrStop
		}
		return nil
	})
	if err != nil {
		t.Fatalf("waiting for the late result of attempt 1: %v", err)
	}
	ev := <-late
	t.Logf("late result of attempt 1 from %s: %s %s", frozen.Name(), ev.Type, ev.Reason)

	e.check(faults.Params{WantStatus: map[string]string{runID: event.RunSuccess}, EveryTaskWritesLedger: true})
	if n := len(e.executionsOf(runID, "down")); n != 1 {
		t.Errorf("down ran %d times, want once", n)
	}
	attempts := e.attemptsOf(runID, "slow")
	t.Logf("attempts of slow: %+v", attempts)
	if len(attempts) < 2 || attempts[len(attempts)-1].status != event.TaskSuccess {
		t.Errorf("attempts of slow = %+v, want a superseded attempt 1 and a successful last attempt", attempts)
	}
	if len(attempts) > 0 && attempts[0].instance != frozen.Name() {
		t.Errorf("attempt 1 of slow ran on %q, want %s", attempts[0].instance, frozen.Name())
	}
}

// TestRecorderKilled: the recorder killed with SIGKILL at several points of a run of many tasks and
// started again loses and duplicates nothing: the database equals the streams.
func TestRecorderKilled(t *testing.T) {
	t.Parallel()
	e := setup(t, options{executors: 2, concurrency: 4, recorderArgs: []string{"--batch-wait", "20ms"}})
	plan := e.wide("recorder-kills", 60, 0.05, 5)
	e.submit(plan)
	plan2 := e.wide("recorder-kills-2", 30, 0.05, 5)
	e.submit(plan2)
	for _, at := range []int{10, 35, 60} {
		e.waitExecutions(at)
		if err := e.s.Recorder.Kill(); err != nil {
			t.Fatal(err)
		}
		t.Logf("recorder killed after %d executions", at)
		if _, err := e.s.Restart(e.s.Recorder); err != nil {
			t.Fatal(err)
		}
	}
	rep := e.check(faults.Params{EveryTaskWritesLedger: true})
	if want := 2*(1+1) + 60 + 30; rep.Executions != want {
		t.Errorf("%d executions, want %d (one per task)", rep.Executions, want)
	}
}

// TestSchedulerKilled: three schedulers race on the same runs while they are killed with SIGKILL
// and started again; every run finishes and no task is dispatched twice.
func TestSchedulerKilled(t *testing.T) {
	t.Parallel()
	e := setup(t, options{executors: 2, concurrency: 4, schedulers: 3})
	const runs, width = 3, 20
	for i := range runs {
		e.submit(e.wide("scheduler-kills-"+string(rune('a'+i)), width, 0.05, 1))
	}
	for i, at := range []int{5, 20, 35, 50} {
		e.waitExecutions(at)
		victim := e.s.Schedulers[i%len(e.s.Schedulers)]
		if err := victim.Kill(); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s killed after %d executions", victim.Name(), at)
		if _, err := e.s.Restart(victim); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]string{}
	for _, id := range e.accepted() {
		want[id] = event.RunSuccess
	}
	rep := e.check(faults.Params{WantStatus: want, EveryTaskWritesLedger: true})
	if total := runs * (width + 2); rep.Executions != total {
		t.Errorf("%d executions, want %d: a task was dispatched twice", rep.Executions, total)
	}
}

// TestNATSRestarted: nats-server killed with SIGKILL twice mid-run and started again on the same
// store and port; the services reconnect and the runs finish, no attempt executed twice.
func TestNATSRestarted(t *testing.T) {
	t.Parallel()
	e := setup(t, options{executors: 2, concurrency: 4})
	e.submit(e.wide("nats-restart", 30, 0.1, 2))
	e.submit(e.wide("nats-restart-2", 30, 0.1, 2))
	for _, at := range []int{8, 40} {
		e.waitExecutions(at)
		if err := e.s.NATS.Kill(); err != nil {
			t.Fatal(err)
		}
		if err := e.s.NATS.Restart(e.ctx); err != nil {
			t.Fatal(err)
		}
		t.Logf("nats-server killed after %d executions and restarted", at)
	}
	want := map[string]string{}
	for _, id := range e.accepted() {
		want[id] = event.RunSuccess
	}
	e.check(faults.Params{WantStatus: want, EveryTaskWritesLedger: true})
	if exited := e.s.Exited(); len(exited) > 0 {
		t.Errorf("%s exited after the NATS restart: %v", exited[0].Name(), exited[0].Err())
	}
}

// TestStalledRunRedriven deletes the one message that would move a run on, its first task's
// dispatch, while no executor is up to take it, and checks that the schedulers' run-level sweep
// (--stall-timeout) notices the run has nothing in flight, fails the vanished attempt as lost and
// runs a second one, so the run ends.
func TestStalledRunRedriven(t *testing.T) {
	t.Parallel()
	e := setup(t, options{executors: 1, concurrency: 1})
	execs := slices.Clone(e.s.Executors)
	for _, x := range execs {
		if err := x.Kill(); err != nil {
			t.Fatal(err)
		}
	}
	plan := e.workflow("stalled", []taskSpec{{name: "first", lines: 1}, {name: "second", deps: []string{"first"}, lines: 1}})
	runID := e.submit(plan)
	tasks, err := e.bus.JS.Stream(e.ctx, event.StreamTasks)
	if err != nil {
		t.Fatal(err)
	}
	var seq uint64
	e.waitUntil("the first dispatch on "+event.StreamTasks, func() bool {
		m, err := tasks.GetLastMsgForSubject(e.ctx, event.SubjectTasks(workflow.ExecutorProcess))
		if err != nil {
			return false
		}
		seq = m.Sequence
		return true
	})
	if err := tasks.DeleteMsg(e.ctx, seq); err != nil {
		t.Fatal(err)
	}
	for _, x := range execs {
		if _, err := e.s.Restart(x); err != nil {
			t.Fatal(err)
		}
	}
	e.check(faults.Params{WantStatus: map[string]string{runID: event.RunSuccess}, EveryTaskWritesLedger: true})
	attempts := e.attemptsOf(runID, "first")
	if len(attempts) != 2 || attempts[0].status != event.TaskLost || attempts[1].status != event.TaskSuccess {
		t.Errorf("attempts of first = %+v, want 1 lost (its dispatch deleted), 2 success", attempts)
	}
	if n := len(e.executionsOf(runID, "first")); n != 1 {
		t.Errorf("first ran %d times, want once (attempt 2)", n)
	}
}

// TestRecordersShareTheWork: three recorders share the durable consumers of ORK_EVENTS and ORK_LOGS,
// each writing its batches in its own transactions, while one of them is killed with SIGKILL twice
// as batches are written; the database equals the streams. No property of the recorder needs a
// single writer: every write is an idempotent upsert that never moves a status backwards, whatever
// the order in which two transactions commit (see docs/reliability.md).
func TestRecordersShareTheWork(t *testing.T) {
	t.Parallel()
	e := setup(t, options{executors: 2, concurrency: 4, recorders: 3,
		recorderArgs: []string{"--batch-wait", "20ms", "--log-level", "debug"}})
	e.submit(e.wide("recorders-wide", 60, 0.05, 5))
	e.submit(e.workflow("recorders-chain", []taskSpec{
		{name: "a", lines: 3}, {name: "b", deps: []string{"a"}, lines: 3}, {name: "c", deps: []string{"b"}, lines: 3},
	}))
	e.submit(e.wide("recorders-wide-2", 30, 0.05, 5))
	for _, at := range []int{15, 50} {
		e.waitExecutions(at)
		victim := e.s.Recorders[1]
		if err := victim.Kill(); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s killed after %d executions", victim.Name(), at)
		if _, err := e.s.Restart(victim); err != nil {
			t.Fatal(err)
		}
	}
	e.check(faults.Params{EveryTaskWritesLedger: true})
	for _, r := range e.s.Recorders {
		data, err := os.ReadFile(r.LogPath())
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(data), "batch committed"); n == 0 {
			t.Errorf("%s committed no batch: the recorders did not share the work", r.Name())
		}
	}
}
