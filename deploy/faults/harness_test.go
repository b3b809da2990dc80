package faults_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/ork-go/ork/deploy/faults"
	"github.com/ork-go/ork/deploy/processes"
	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/client"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/store/pgtest"
	"github.com/ork-go/ork/pkg/workflow"
)

// binDir holds the executables built once for the whole package.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ork-faults-bin-")
	if err != nil {
		panic(err)
	}
	binDir = dir
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		_ = os.RemoveAll(dir)
		os.Exit(code)
	}))
}

// python3 is the real path of the machine's python3 (its sys.executable), asked once: a python3 on
// PATH may be a version manager's shim (pyenv's costs 0.4 s per start, seconds under load), and the
// tasks of these tests start it hundreds of times.
var python3 = sync.OnceValue(func() string {
	out, err := exec.Command("python3", "-c", "import sys; sys.stdout.write(sys.executable or '')").Output()
	if err != nil || len(out) == 0 {
		return "python3"
	}
	return string(out)
})

// build builds the binaries once for the package.
var build processes.BuildOnce

// binaries builds nats-server, the services and the CLI once for the package, from the workspace
// holding this package or from ORK_FAULTS_ROOT (another checkout, e.g. a `git archive` of a commit).
func binaries(t *testing.T) processes.Binaries {
	t.Helper()
	return build.Binaries(t, processes.BuildConfig{Root: os.Getenv("ORK_FAULTS_ROOT"), Dir: binDir, CLI: true})
}

// adminURL returns TEST_DATABASE_URL, skipping the test when it is unset.
func adminURL(t *testing.T) string { return pgtest.AdminURL(t) }

// testDatabase creates a fresh database on the server of admin, dropped at cleanup.
func testDatabase(t *testing.T, admin string) string {
	return processes.TestDatabase(t, admin, "ork_faults")
}

// options shape one test's stack.
type options struct {
	executors  int
	schedulers int
	recorders  int
	// natsCluster, above 1, runs that many clustered nats-servers, every stream and the bucket at
	// that many replicas.
	natsCluster int
	concurrency int
	ackWait     time.Duration
	// dbURL replaces the fresh database on TEST_DATABASE_URL's server.
	dbURL         string
	recorderArgs  []string
	schedulerArgs []string
	executorArgs  []string
	types         string
	// timeout bounds the whole test; default 5 minutes.
	timeout time.Duration
	// env is added to every service's environment.
	env []string
}

// env is one test's running stack, its ledger and a client.
type env struct {
	t      *testing.T
	ctx    context.Context
	dir    string
	ledger string
	body   string
	dbURL  string
	s      *processes.Stack
	bus    *bus.Bus
	client *client.Client
	watch  *faults.Watcher
	tap    *tap

	mu   sync.Mutex
	runs []string
	// lines holds how many log lines each task of each workflow writes ("workflow/task"), and
	// runWorkflow the workflow of each accepted run.
	lines       map[string]int
	runWorkflow map[string]string
}

// bodyPy is every task's body: it appends "run task attempt pid" to the ledger (argv[1]), prints
// argv[3] numbered log lines, sleeps argv[2] seconds and outputs its task, attempt and the rest of
// its argv.
const bodyPy = `import json, os, sys, time
ledger, seconds, lines = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
rec = "%s %s %s %d\n" % (os.environ["ORK_RUN_ID"], os.environ["ORK_TASK_NAME"], os.environ["ORK_ATTEMPT"], os.getpid())
fd = os.open(ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
os.write(fd, rec.encode())
os.close(fd)
for i in range(1, lines + 1):
    print("log %d" % i, flush=True)
time.sleep(seconds)
out = {"task": os.environ["ORK_TASK_NAME"], "attempt": int(os.environ["ORK_ATTEMPT"]), "argv": sys.argv[4:]}
print("ORK_OUTPUT:" + json.dumps(out), flush=True)
`

// schedulerTestArgs are the schedulers' flags unless a test gives its own: the reconciler finds lost
// attempts and stalled runs; sweep often so the scenarios end in seconds.
var schedulerTestArgs = []string{"--reconcile-interval", "1s", "--stall-timeout", "10s"}

// setup starts a stack for one test: a fresh database, nats-server (file store), the recorder,
// the schedulers and the executors, and a watcher of status order.
func setup(t *testing.T, o options) *env {
	t.Helper()
	admin := adminURL(t)
	bins := binaries(t)
	if o.executors == 0 {
		o.executors = 2
	}
	if o.concurrency == 0 {
		o.concurrency = 2
	}
	if o.types == "" {
		o.types = workflow.ExecutorProcess
	}
	dbURL := o.dbURL
	if dbURL == "" {
		dbURL = testDatabase(t, admin)
	}
	if o.timeout == 0 {
		o.timeout = processes.Scaled(5 * time.Minute)
	}
	if o.natsCluster > 1 {
		o.env = append(o.env, bus.EnvReplicas+"="+strconv.Itoa(o.natsCluster))
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	t.Cleanup(cancel)
	dir := t.TempDir()
	e := &env{t: t, ctx: ctx, dir: dir, lines: map[string]int{}, runWorkflow: map[string]string{}, ledger: filepath.Join(dir, "ledger"), body: filepath.Join(dir, "body.py"), dbURL: dbURL}
	if err := os.WriteFile(e.body, []byte(bodyPy), 0o644); err != nil {
		t.Fatal(err)
	}
	if o.schedulerArgs == nil {
		o.schedulerArgs = schedulerTestArgs
	}
	execArgs := o.executorArgs
	if o.ackWait > 0 {
		execArgs = append(execArgs, "--ack-wait", o.ackWait.String())
	}
	s, err := processes.StartStack(ctx, processes.Config{
		Binaries:            bins,
		Dir:                 filepath.Join(dir, "stack"),
		NATSBase:            natsBase(t),
		DBURL:               dbURL,
		Executors:           o.executors,
		ExecutorTypes:       o.types,
		ExecutorConcurrency: o.concurrency,
		Schedulers:          o.schedulers,
		Recorders:           o.recorders,
		NATSCluster:         o.natsCluster,
		RecorderArgs:        o.recorderArgs,
		SchedulerArgs:       o.schedulerArgs,
		ExecutorArgs:        execArgs,
		Env:                 o.env,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.s = s
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("process logs:\n%s", s.Logs())
			keepLogs(t, s)
		}
		if err := s.Kill(); err != nil {
			t.Errorf("killing the stack: %v", err)
		}
	})
	if err := s.WaitExecutors(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := s.Connect(processes.RoleOperator, bus.Config{Name: "faults-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	e.bus = b
	e.client = client.New(b)
	if e.tap, err = startTap(b.NC); err != nil {
		t.Fatal(err)
	}
	e.watch = faults.Watch(ctx, dbURL, 200*time.Millisecond)
	t.Cleanup(func() { e.watch.Stop() })
	return e
}

// keepLogs copies a failed test's whole process logs to $ORK_FAULTS_LOGS/<test name>, when set, so
// that they can be read after the test's temporary directory is gone.
func keepLogs(t *testing.T, s *processes.Stack) {
	base := os.Getenv("ORK_FAULTS_LOGS")
	if base == "" {
		t.Logf("set ORK_FAULTS_LOGS=DIR to keep the whole logs of a failed test")
		return
	}
	dir := filepath.Join(base, strings.ReplaceAll(t.Name(), "/", "_"))
	kept, err := s.KeepLogs(dir)
	if err != nil {
		t.Errorf("keeping logs: %v", err)
	}
	t.Logf("whole logs kept in %s (%d files)", dir, len(kept))
}

// natsBase returns deploy/nats-server.conf.
func natsBase(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile("../nats-server.conf")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// taskSpec is one task of a generated workflow, running bodyPy.
type taskSpec struct {
	name    string
	deps    []string
	seconds float64
	lines   int
	retries int
	timeout int
	// command replaces the body (no ledger line).
	command []string
	// argv is appended to the body's command line.
	argv []string
}

// workflow writes a workflow of the given tasks next to the body and compiles it.
func (e *env) workflow(name string, tasks []taskSpec) *workflow.Plan {
	e.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "name: %s\ntasks:\n", name)
	for _, ts := range tasks {
		cmd := ts.command
		if cmd == nil {
			cmd = append([]string{python3(), e.body, e.ledger, strconv.FormatFloat(ts.seconds, 'f', -1, 64), strconv.Itoa(ts.lines)}, ts.argv...)
		}
		if ts.command == nil {
			// Its numbered lines and the ORK_OUTPUT line.
			e.mu.Lock()
			e.lines[name+"/"+ts.name] = ts.lines + 1
			e.mu.Unlock()
		}
		argv, err := json.Marshal(cmd)
		if err != nil {
			e.t.Fatal(err)
		}
		fmt.Fprintf(&b, "  %s:\n    executor: process\n    command: %s\n", ts.name, argv)
		if len(ts.deps) > 0 {
			fmt.Fprintf(&b, "    depends_on: [%s]\n", strings.Join(ts.deps, ", "))
		}
		if ts.retries > 0 {
			fmt.Fprintf(&b, "    retries: %d\n", ts.retries)
		}
		if ts.timeout > 0 {
			fmt.Fprintf(&b, "    timeout: %d\n", ts.timeout)
		}
	}
	path := filepath.Join(e.dir, name+".yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		e.t.Fatal(err)
	}
	plan, err := workflow.Load(path)
	if err != nil {
		e.t.Fatalf("loading workflow %s: %v\n%s", name, err, b.String())
	}
	return plan
}

// wide returns a workflow of one root, width middle tasks and a join, each printing lines lines.
func (e *env) wide(name string, width int, seconds float64, lines int) *workflow.Plan {
	tasks := []taskSpec{{name: "root", seconds: seconds, lines: lines}}
	var mid []string
	for i := 1; i <= width; i++ {
		n := fmt.Sprintf("w%03d", i)
		mid = append(mid, n)
		tasks = append(tasks, taskSpec{name: n, deps: []string{"root"}, seconds: seconds, lines: lines})
	}
	tasks = append(tasks, taskSpec{name: "join", deps: mid, seconds: seconds, lines: lines})
	return e.workflow(name, tasks)
}

// submit starts a run of plan and remembers it as accepted.
func (e *env) submit(plan *workflow.Plan) string {
	e.t.Helper()
	id, err := e.client.Submit(e.ctx, client.SubmitParams{Plan: plan, TriggeredBy: "faults-test"})
	if err != nil {
		e.t.Fatal(err)
	}
	e.accept(id, plan.Name)
	return id
}

// accept remembers a run as accepted.
func (e *env) accept(id, workflowName string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.runs = append(e.runs, id)
	e.runWorkflow[id] = workflowName
}

// logLines returns how many log lines a task of a run writes, 0 when unknown.
func (e *env) logLines(runID, task string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lines[e.runWorkflow[runID]+"/"+task]
}

// accepted returns the runs submitted so far.
func (e *env) accepted() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.runs...)
}

// check runs the invariant over every accepted run and fails the test on any violation.
func (e *env) check(p faults.Params) faults.Report {
	e.t.Helper()
	p.DBURL = e.dbURL
	if p.NATSURL == "" {
		p.NATSURL = e.s.NATSURL()
		p.NATSAuth = e.s.Auth(processes.RoleOperator)
	}
	p.RunIDs = e.accepted()
	if p.Deadline == 0 {
		p.Deadline = processes.Scaled(faults.CheckDeadlineDefault)
	}
	if p.Ledger == "" {
		p.Ledger = e.ledger
	}
	p.Watcher = e.watch
	if p.LogLines == nil {
		p.LogLines = e.logLines
	}
	rep, err := faults.Check(e.ctx, p)
	if err != nil {
		e.t.Fatalf("checking the invariant: %v", err)
	}
	e.t.Logf("invariant: %s", rep)
	if n := e.watch.Samples(); n < 2 {
		e.t.Errorf("the status-order watcher took %d samples: the order check saw nothing", n)
	}
	if !rep.OK() {
		e.t.Errorf("the invariant does not hold:\n%s", rep)
		if why := e.tap.explain(e.executions()); why != "" {
			e.t.Logf("deliveries of the attempts executed more than once:\n%s", why)
		}
		e.t.Logf("where the pipeline stands:\n%s", e.standing())
	}
	return rep
}

// standing describes, for a failed check, every durable consumer's position and, for the runs that
// did not end in the database, whether the scheduler ended them on ORK_EVENTS: a run.finished on the
// stream points at the recorder, its absence at the scheduler or the executors.
func (e *env) standing() string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var b strings.Builder
	for _, stream := range []string{event.StreamEvents, event.StreamTasks, event.StreamLogs} {
		st, err := e.bus.JS.Stream(ctx, stream)
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", stream, err)
			continue
		}
		info, err := st.Info(ctx)
		if err == nil {
			fmt.Fprintf(&b, "%s: %d messages, first %d, last %d\n", stream, info.State.Msgs, info.State.FirstSeq, info.State.LastSeq)
		}
		list := st.ListConsumers(ctx)
		for ci := range list.Info() {
			if ci.Config.Durable == "" {
				continue
			}
			last := "never"
			if ci.Delivered.Last != nil {
				last = time.Since(*ci.Delivered.Last).Round(time.Millisecond).String() + " ago"
			}
			fmt.Fprintf(&b, "  consumer %s: pending %d, ack pending %d, waiting pulls %d, redelivered %d, delivered up to %d (last %s), ack floor %d\n",
				ci.Name, ci.NumPending, ci.NumAckPending, ci.NumWaiting, ci.NumRedelivered, ci.Delivered.Stream, last, ci.AckFloor.Stream)
		}
		if err := list.Err(); err != nil {
			fmt.Fprintf(&b, "  listing consumers: %v\n", err)
		}
	}
	conn, err := pgx.Connect(ctx, e.dbURL)
	if err != nil {
		return b.String() + "database: " + err.Error()
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT id, status FROM runs WHERE id = ANY($1) AND status NOT IN ('success', 'failed', 'cancelled') ORDER BY created_at`, e.accepted())
	if err != nil {
		return b.String() + "database: " + err.Error()
	}
	type open struct{ id, status string }
	var runs []open
	for rows.Next() {
		var o open
		if err := rows.Scan(&o.id, &o.status); err != nil {
			return b.String() + "database: " + err.Error()
		}
		runs = append(runs, o)
	}
	rows.Close()
	events, err := e.bus.JS.Stream(ctx, event.StreamEvents)
	if err != nil {
		return b.String() + err.Error()
	}
	onStream := 0
	for i, o := range runs {
		_, err := events.GetLastMsgForSubject(ctx, event.SubjectEvent(event.TypeRunFinished, o.id))
		finished := err == nil
		if finished {
			onStream++
		}
		if i < 10 {
			fmt.Fprintf(&b, "run %s: %s in the database, run.finished on %s: %v\n", o.id, o.status, event.StreamEvents, finished)
		}
	}
	fmt.Fprintf(&b, "%d runs not ended in the database, %d of them ended on %s\n", len(runs), onStream, event.StreamEvents)
	return b.String()
}

// executions returns the ledger.
func (e *env) executions() []faults.Execution {
	e.t.Helper()
	execs, err := faults.ReadLedger(e.ledger)
	if err != nil {
		e.t.Fatal(err)
	}
	return execs
}

// waitExecution waits until the ledger holds an execution matching match and returns it.
func (e *env) waitExecution(what string, match func(faults.Execution) bool) faults.Execution {
	e.t.Helper()
	var found faults.Execution
	e.waitUntil("an execution of "+what, func() bool {
		for _, x := range e.executions() {
			if match(x) {
				found = x
				return true
			}
		}
		return false
	})
	return found
}

// waitExecutions waits until the ledger holds at least n executions.
func (e *env) waitExecutions(n int) {
	e.t.Helper()
	e.waitUntil(strconv.Itoa(n)+" executions", func() bool { return countLines(e.ledger) >= n })
}

// countLines returns the number of lines of a file, 0 when it does not exist.
func countLines(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
	}
	return n
}

// waitLimit bounds one waitUntil: every awaited step of a scenario happens within seconds.
const waitLimit = 90 * time.Second

// waitUntil polls cond every 20 ms until it holds, failing the test after waitLimit.
func (e *env) waitUntil(what string, cond func() bool) {
	e.t.Helper()
	e.waitEvery(what, 20*time.Millisecond, cond)
}

// waitEvery is waitUntil polling every interval, for a cond that costs a query.
func (e *env) waitEvery(what string, interval time.Duration, cond func() bool) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, waitLimit)
	defer cancel()
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			e.t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-ticker.C:
		}
	}
}

// executorOf returns the executor process that is the parent of pid.
func (e *env) executorOf(pid int) *processes.Process {
	e.t.Helper()
	ppid, err := parentPid(pid)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, x := range e.s.Executors {
		if x.Pid() == ppid {
			return x
		}
	}
	e.t.Fatalf("process %d (parent %d) is not a child of any executor", pid, ppid)
	return nil
}

// parentPid reads a process's parent from /proc.
func parentPid(pid int) (int, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("reading parent of %d: %w", pid, err)
	}
	i := strings.LastIndexByte(string(data), ')')
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 2 {
		return 0, fmt.Errorf("reading parent of %d: malformed stat", pid)
	}
	return strconv.Atoi(fields[1])
}
