package faults_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ork-go/ork/deploy/faults"
	"github.com/ork-go/ork/deploy/processes"
	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/client"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/store/storeopen"
)

// TestStreamLimits: with ORK_TASKS limited to one message the scheduler's dispatches are refused
// with an error and retried, never dropped: every task runs once and the run succeeds. With
// ORK_EVENTS full, a submission fails with an explicit error and nothing is stored; once the limit
// is raised, submissions are accepted again.
//
// Every service provisions the streams at start with the limits of its flags (here through their
// environment, ORK_TASKS_MAX_MSGS); ORK_EVENTS is filled up on the running server instead, since a
// full events stream cannot be emptied from outside.
func TestStreamLimits(t *testing.T) {
	t.Parallel()
	e := setup(t, options{executors: 2, concurrency: 2, env: []string{bus.EnvTasksMaxMsgs + "=1"}})
	update := func(name string, change func(*jetstream.StreamConfig)) {
		t.Helper()
		s, err := e.bus.JS.Stream(e.ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		cfg := s.CachedInfo().Config
		change(&cfg)
		if _, err := e.bus.JS.UpdateStream(e.ctx, cfg); err != nil {
			t.Fatalf("updating %s: %v", name, err)
		}
	}
	tasks, err := e.bus.JS.Stream(e.ctx, event.StreamTasks)
	if err != nil {
		t.Fatal(err)
	}
	if got := tasks.CachedInfo().Config.MaxMsgs; got != 1 {
		t.Fatalf("ORK_TASKS MaxMsgs = %d, want 1 from %s", got, bus.EnvTasksMaxMsgs)
	}
	wide := e.wide("tiny-tasks-stream", 12, 0.2, 1)
	runID := e.submit(wide)
	e.check(faults.Params{WantStatus: map[string]string{runID: event.RunSuccess}, EveryTaskWritesLedger: true})
	if n := len(e.executions()); n != 14 {
		t.Errorf("%d executions, want 14 (each task once)", n)
	}
	logs := ""
	for _, s := range e.s.Schedulers {
		data, err := os.ReadFile(s.LogPath())
		if err != nil {
			t.Fatal(err)
		}
		logs += string(data)
	}
	// Twelve tasks become ready at once for a stream that holds one: the scheduler must have been
	// refused, explicitly, and retried.
	if !strings.Contains(logs, "maximum messages") {
		t.Errorf("the scheduler's log does not mention a refused dispatch (maximum messages exceeded)")
	}

	// ORK_EVENTS: room for a few hundred bytes more, less than a submission.
	events, err := e.bus.JS.Stream(e.ctx, event.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := events.Info(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	before := info.State
	update(event.StreamEvents, func(c *jetstream.StreamConfig) { c.MaxBytes = int64(before.Bytes) + 300 })
	_, err = e.client.Submit(e.ctx, client.SubmitParams{Plan: wide, TriggeredBy: "faults-test"})
	if err == nil {
		t.Fatal("submitting to a full ORK_EVENTS succeeded, want an error")
	}
	t.Logf("submission to a full ORK_EVENTS refused: %v", err)
	if info, err = events.Info(e.ctx); err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != before.Msgs {
		t.Errorf("ORK_EVENTS holds %d messages after the refused submission, want %d", info.State.Msgs, before.Msgs)
	}
	update(event.StreamEvents, func(c *jetstream.StreamConfig) { c.MaxBytes = 1 << 30 })
	again := e.submit(wide)
	e.check(faults.Params{WantStatus: map[string]string{runID: event.RunSuccess, again: event.RunSuccess}, EveryTaskWritesLedger: true})
}

// pgCluster is a throwaway PostgreSQL server run by an unprivileged user.
type pgCluster struct {
	bin, data, log, sock string
	port                 int
	user                 string // empty: the current user
}

// pgBinDir finds PostgreSQL's server programs: PG_BINDIR, `pg_config --bindir`, or the newest
// /usr/lib/postgresql/*/bin.
func pgBinDir() string {
	if d := os.Getenv("PG_BINDIR"); d != "" {
		return d
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		d := strings.TrimSpace(string(out))
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(matches) == 0 {
		return ""
	}
	return filepath.Dir(matches[len(matches)-1])
}

// pgTestUser is the unprivileged user that runs the throwaway cluster when the tests run as root.
const pgTestUser = "ork-pgtest"

// startPGCluster creates and starts a cluster in a test directory, on a free port.
func startPGCluster(t *testing.T) *pgCluster {
	t.Helper()
	bin := pgBinDir()
	if bin == "" {
		t.Skip("no PostgreSQL server programs (initdb, pg_ctl) found: set PG_BINDIR")
	}
	c := &pgCluster{bin: bin}
	dir := t.TempDir()
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root.
		if _, err := user.Lookup(pgTestUser); err != nil {
			if out, err := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", pgTestUser).CombinedOutput(); err != nil {
				t.Skipf("cannot create the user %s for the throwaway cluster: %v\n%s", pgTestUser, err, out)
			}
		}
		c.user = pgTestUser
		// The test directories are 0700 root: let the user through to its own directory.
		for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	c.data, c.sock, c.log = filepath.Join(dir, "data"), filepath.Join(dir, "sock"), filepath.Join(dir, "postgres.log")
	for _, d := range []string{c.sock} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if c.user != "" {
		u, err := user.Lookup(c.user)
		if err != nil {
			t.Fatal(err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(c.sock, uid, gid); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	c.run(t, "initdb", "-D", c.data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")
	c.start(t)
	t.Cleanup(func() { c.ctl(t, "stop", "-m", "immediate") })
	return c
}

// run runs one of the server programs as the cluster's user.
func (c *pgCluster) run(t *testing.T, prog string, args ...string) {
	t.Helper()
	path := filepath.Join(c.bin, prog)
	cmd := exec.Command(path, args...)
	if c.user != "" {
		cmd = exec.Command("runuser", append([]string{"-u", c.user, "--", path}, args...)...)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		log, _ := os.ReadFile(c.log)
		t.Fatalf("%s %v: %v\n%s\n%s", prog, args, err, out.String(), log)
	}
}

// ctl runs pg_ctl on the cluster, ignoring failures (a stop of a stopped server).
func (c *pgCluster) ctl(t *testing.T, args ...string) {
	t.Helper()
	path := filepath.Join(c.bin, "pg_ctl")
	full := append([]string{"-D", c.data, "-w"}, args...)
	cmd := exec.Command(path, full...)
	if c.user != "" {
		cmd = exec.Command("runuser", append([]string{"-u", c.user, "--", path}, full...)...)
	}
	_ = cmd.Run()
}

// start starts the server and waits until it accepts connections.
func (c *pgCluster) start(t *testing.T) {
	t.Helper()
	c.run(t, "pg_ctl", "-D", c.data, "-l", c.log, "-w", "-t", "60", "start",
		"-o", fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", c.port, c.sock))
}

// stop stops the server at once, as a crash would (no shutdown checkpoint).
func (c *pgCluster) stop(t *testing.T) {
	t.Helper()
	c.run(t, "pg_ctl", "-D", c.data, "-w", "-m", "immediate", "stop")
}

// url returns the URL of a database of the cluster.
func (c *pgCluster) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

// TestPostgresOutage: PostgreSQL stops mid-run; the recorder stops acknowledging, backs off (its CPU
// stays low) and stays up; once PostgreSQL is back it catches up with everything.
func TestPostgresOutage(t *testing.T) {
	t.Parallel()
	adminURL(t) // the other fault tests' requirement, kept for symmetry of skips
	pg := startPGCluster(t)
	createCtx, cancelCreate := context.WithTimeout(context.Background(), time.Minute)
	dbURL, err := processes.CreateDatabase(createCtx, pg.url("postgres"), "ork")
	cancelCreate()
	if err != nil {
		t.Fatal(err)
	}
	e := setup(t, options{executors: 2, concurrency: 2, dbURL: dbURL})
	runID := e.submit(e.wide("pg-outage", 16, 0.2, 3))
	e.waitExecutions(3)
	// A deadline of its own from here: under load the setup alone can take most of a minute.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The outage must come while the recorder runs: one that cannot reach its database at start exits
	// (its supervisor restarts it), which is not what this test is about. Under load the executors
	// can start tasks before the recorder has opened the store, so wait for it to record the run.
	st, err := storeopen.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	e.waitUntil("the recorder to record the submission", func() bool {
		_, err := st.RunGet(ctx, store.RunGetParams{ID: runID})
		return err == nil
	})
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	pg.stop(t)
	t.Logf("postgres stopped after %d executions", len(e.executions()))
	cpu0, err := e.s.Recorder.CPUTime()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()

	// The run goes on without the database: wait for its end on the stream.
	finished, err := e.client.Wait(e.ctx, client.WaitParams{RunID: runID})
	if err != nil {
		t.Fatal(err)
	}
	// Keep the database down a little longer, so the recorder retries for a while.
	waitCtx, cancelWait := context.WithTimeout(e.ctx, 3*time.Second)
	<-waitCtx.Done()
	cancelWait()
	outage := time.Since(start)
	cpu1, err := e.s.Recorder.CPUTime()
	if err != nil {
		t.Fatalf("the recorder died during the outage: %v\n%s", err, e.s.Recorder.LogTail())
	}
	used := cpu1 - cpu0
	t.Logf("outage %s (run %s on the stream meanwhile): recorder used %s CPU", outage.Round(time.Millisecond), finished.Status, used)
	if used > outage/5 {
		t.Errorf("the recorder used %s of CPU in a %s outage, want it to back off (< 20%%)", used, outage)
	}
	cons, err := e.bus.JS.Consumer(e.ctx, event.StreamEvents, "recorder")
	if err != nil {
		t.Fatal(err)
	}
	ci, err := cons.Info(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("recorder consumer during the outage: %d pending, %d awaiting ack", ci.NumPending, ci.NumAckPending)
	if ci.NumPending+uint64(ci.NumAckPending) == 0 {
		t.Error("the recorder acknowledged every event while the database was down")
	}
	if e.s.Recorder.Exited() {
		t.Fatalf("the recorder exited during the outage: %v\n%s", e.s.Recorder.Err(), e.s.Recorder.LogTail())
	}
	pg.start(t)
	t.Logf("postgres started again")
	e.check(faults.Params{WantStatus: map[string]string{runID: event.RunSuccess}, EveryTaskWritesLedger: true})
}
