package faults

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/store/pgstore"
	"github.com/ork-go/ork/pkg/store/storecheck"
)

// Defaults of Params.
const (
	CheckDeadlineDefault = 2 * time.Minute
	CheckPollDefault     = 250 * time.Millisecond
)

// Params says what Check checks.
type Params struct {
	// DBURL is the PostgreSQL database the recorder writes.
	DBURL string
	// NATSURL, when set, makes Check compare the database with the streams: the attempts named by
	// the runs' task events on ORK_EVENTS and the log lines on ORK_LOGS must all be stored, once.
	NATSURL string
	// NATSAuth holds the credentials for NATSURL (a role that may read ORK_EVENTS and ORK_LOGS).
	NATSAuth bus.Auth
	// RunIDs are the accepted runs: every one must end.
	RunIDs []string
	// WantStatus optionally names the final status each run must have; other runs must only end.
	WantStatus map[string]string
	// Ledger is the file task bodies append "run task attempt pid" lines to; empty skips the
	// execution checks.
	Ledger string
	// EveryTaskWritesLedger says every task of the runs is a ledger body: a task that succeeded
	// must have run its final attempt, a skipped or cancelled-before-start task none.
	EveryTaskWritesLedger bool
	// LogLines, when set, returns how many log lines the final attempt of a successful task wrote
	// (0: unknown); fewer stored lines is a loss.
	LogLines func(runID, task string) int
	// AllowDeadLetters accepts rows in dead_letters (the poison tests put them there on purpose).
	AllowDeadLetters bool
	// Watcher, when set, is stopped and its status-order findings are added.
	Watcher *Watcher
	// Deadline bounds the wait for the runs to end and the database to catch up with the streams.
	Deadline time.Duration
	// Poll is the interval between two looks at the database while waiting.
	Poll time.Duration
}

// WithDefaults returns the params with zero fields set to their defaults.
func (p Params) WithDefaults() Params {
	if p.Deadline == 0 {
		p.Deadline = CheckDeadlineDefault
	}
	if p.Poll == 0 {
		p.Poll = CheckPollDefault
	}
	return p
}

// Validate names the first bad field.
func (p Params) Validate() error {
	switch {
	case p.DBURL == "":
		return errors.New("check: DBURL is required")
	case p.Deadline < 0:
		return fmt.Errorf("check: Deadline must not be negative, got %s", p.Deadline)
	case p.Poll <= 0:
		return fmt.Errorf("check: Poll must be positive, got %s", p.Poll)
	}
	return nil
}

// Report is what Check found: counts, and one sentence per violation of the invariant.
type Report struct {
	Runs        int
	RunStatus   map[string]int // final run statuses, counted
	Tasks       int
	Attempts    int
	LogLines    int
	DeadLetters int
	// Executions is the number of ledger lines of the runs; Reexecutions counts the executions
	// beyond one per task (attempts that were superseded after their body had started).
	Executions   int
	Reexecutions int
	// Waited is how long the runs took to end and the database to catch up.
	Waited   time.Duration
	Problems []string
}

// OK reports whether the invariant holds.
func (r Report) OK() bool { return len(r.Problems) == 0 }

// String summarizes the report on one line, followed by one line per problem.
func (r Report) String() string {
	var b strings.Builder
	statuses := make([]string, 0, len(r.RunStatus))
	for s, n := range r.RunStatus {
		statuses = append(statuses, s+"="+strconv.Itoa(n))
	}
	sort.Strings(statuses)
	fmt.Fprintf(&b, "runs %d (%s), tasks %d, attempts %d, log lines %d, dead letters %d, executions %d (re-executions %d), caught up in %s",
		r.Runs, strings.Join(statuses, " "), r.Tasks, r.Attempts, r.LogLines, r.DeadLetters, r.Executions, r.Reexecutions,
		r.Waited.Round(time.Millisecond))
	for _, p := range r.Problems {
		b.WriteString("\n  violation: " + p)
	}
	return b.String()
}

// attemptKey names one attempt of one task.
type attemptKey struct {
	run, task string
	attempt   int
}

func (k attemptKey) String() string { return k.run + "/" + k.task + "/" + strconv.Itoa(k.attempt) }

// logKey names one log line.
type logKey struct {
	attemptKey
	seq int64
}

// maxListed bounds how many examples one problem lists.
const maxListed = 5

// Check waits (up to p.Deadline) until every run of p.RunIDs is terminal in the database and, with
// p.NATSURL, the database holds everything the streams carried; then it checks the invariant. An
// error means Check could not look (database unreachable); violations are in the report.
func Check(ctx context.Context, p Params) (Report, error) {
	p = p.WithDefaults()
	if err := p.Validate(); err != nil {
		return Report{}, err
	}
	start := time.Now()
	deadline := start.Add(p.Deadline)
	st, err := pgstore.Open(ctx, p.DBURL)
	if err != nil {
		return Report{}, fmt.Errorf("opening the store: %w", err)
	}
	defer st.Close()
	var tally *streamTally
	var rep Report
	for {
		var err error
		rep, err = look(ctx, p, st, tally)
		if err == nil && p.NATSURL != "" && rep.OK() {
			// The runs ended: read the streams once, then wait for the recorder to catch up.
			if tally == nil {
				if tally, err = readStreams(ctx, p.NATSURL, p.NATSAuth, p.RunIDs); err != nil {
					return Report{}, err
				}
				continue
			}
		}
		if err == nil && rep.OK() {
			break
		}
		if time.Now().After(deadline) {
			if err != nil {
				return Report{}, err
			}
			break
		}
		select {
		case <-ctx.Done():
			return Report{}, fmt.Errorf("checking: %w", ctx.Err())
		case <-time.After(p.Poll):
		}
	}
	rep.Waited = time.Since(start)
	if err := final(ctx, p, &rep); err != nil {
		return Report{}, err
	}
	return rep, nil
}

// look checks what must hold once the runs have ended: runs terminal, nothing in flight, and
// (with a tally) the database matching the streams. An error means the database could not be read.
func look(ctx context.Context, p Params, st store.Store, tally *streamTally) (Report, error) {
	rep := Report{RunStatus: map[string]int{}}
	conn, err := pgx.Connect(ctx, p.DBURL)
	if err != nil {
		return rep, fmt.Errorf("connecting to the database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	status := map[string]string{}
	rows, err := conn.Query(ctx, `SELECT id, status FROM runs WHERE id = ANY($1)`, p.RunIDs)
	if err != nil {
		return rep, fmt.Errorf("reading runs: %w", err)
	}
	for rows.Next() {
		var id, s string
		if err := rows.Scan(&id, &s); err != nil {
			return rep, fmt.Errorf("reading runs: %w", err)
		}
		status[id] = s
	}
	if err := rows.Err(); err != nil {
		return rep, fmt.Errorf("reading runs: %w", err)
	}
	rep.Runs = len(status)
	var missing, open, wrong []string
	for _, id := range p.RunIDs {
		s, ok := status[id]
		switch {
		case !ok:
			missing = append(missing, id)
		case !event.IsTerminalRun(s):
			open = append(open, id+" ("+s+")")
		case p.WantStatus[id] != "" && p.WantStatus[id] != s:
			wrong = append(wrong, id+" ("+s+", want "+p.WantStatus[id]+")")
		}
		if ok {
			rep.RunStatus[s]++
		}
	}
	rep.problem(missing, "accepted runs not in the database")
	rep.problem(open, "runs not terminal")
	rep.problem(wrong, "runs ended with the wrong status")
	if len(missing)+len(open) > 0 {
		return rep, nil // not yet: look again later
	}

	// The store's own invariant: runs terminal, nothing in flight, each task at its highest
	// attempt, a successful run's tasks all successful, log seqs 1..n.
	sc, err := storecheck.Check(ctx, st, storecheck.Params{RunIDs: p.RunIDs, LogSeqs: true})
	if err != nil {
		return rep, fmt.Errorf("checking the store: %w", err)
	}
	var found []string
	for _, v := range sc.Violations {
		if v.Rule != storecheck.RuleRunMissing && v.Rule != storecheck.RuleRunNotTerminal { // reported above
			found = append(found, string(v.Rule)+": "+v.Message)
		}
	}
	rep.problem(found, "store invariant violations (pkg/store/storecheck)")

	if tally != nil {
		if err := compareStreams(ctx, conn, p, tally, &rep); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// compareStreams checks that the attempts and log lines the streams carried are stored exactly,
// leaving out what only dead-lettered messages name.
func compareStreams(ctx context.Context, conn *pgx.Conn, p Params, tally *streamTally, rep *Report) error {
	dead := map[string]map[uint64]bool{event.StreamEvents: {}, event.StreamLogs: {}}
	rows, err := conn.Query(ctx, `SELECT stream, seq FROM dead_letters`)
	if err != nil {
		return fmt.Errorf("reading dead letters: %w", err)
	}
	for rows.Next() {
		var stream string
		var seq int64
		if err := rows.Scan(&stream, &seq); err != nil {
			return fmt.Errorf("reading dead letters: %w", err)
		}
		if dead[stream] != nil {
			dead[stream][uint64(seq)] = true
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading dead letters: %w", err)
	}
	live := func(stream string, seqs []uint64) bool {
		return slices.ContainsFunc(seqs, func(s uint64) bool { return !dead[stream][s] })
	}
	attempts := map[attemptKey]bool{}
	rows, err = conn.Query(ctx, `SELECT run_id, task, attempt FROM task_attempts WHERE run_id = ANY($1)`, p.RunIDs)
	if err != nil {
		return fmt.Errorf("reading attempts: %w", err)
	}
	for rows.Next() {
		var k attemptKey
		if err := rows.Scan(&k.run, &k.task, &k.attempt); err != nil {
			return fmt.Errorf("reading attempts: %w", err)
		}
		attempts[k] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading attempts: %w", err)
	}
	var lost, extra []string
	for k, seqs := range tally.attempts {
		if !attempts[k] && live(event.StreamEvents, seqs) {
			lost = append(lost, k.String())
		}
	}
	for k := range attempts {
		if _, ok := tally.attempts[k]; !ok {
			extra = append(extra, k.String())
		}
	}
	rep.problem(lost, "attempts with events on ORK_EVENTS but no row")
	rep.problem(extra, "attempt rows without any event on ORK_EVENTS")

	logs := map[logKey]bool{}
	rows, err = conn.Query(ctx, `SELECT run_id, task, attempt, seq FROM task_logs WHERE run_id = ANY($1)`, p.RunIDs)
	if err != nil {
		return fmt.Errorf("reading logs: %w", err)
	}
	for rows.Next() {
		var k logKey
		if err := rows.Scan(&k.run, &k.task, &k.attempt, &k.seq); err != nil {
			return fmt.Errorf("reading logs: %w", err)
		}
		logs[k] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading logs: %w", err)
	}
	lost, extra = lost[:0], extra[:0]
	for k, seqs := range tally.logs {
		if !logs[k] && live(event.StreamLogs, seqs) {
			lost = append(lost, k.String()+"#"+strconv.FormatInt(k.seq, 10))
		}
	}
	for k := range logs {
		if _, ok := tally.logs[k]; !ok {
			extra = append(extra, k.String()+"#"+strconv.FormatInt(k.seq, 10))
		}
	}
	rep.problem(lost, "log lines on ORK_LOGS but not stored")
	rep.problem(extra, "stored log lines that ORK_LOGS never carried")
	return nil
}

// final adds what is checked once, after the wait: counts, log sequences, executions, dead
// letters and the watcher's findings.
func final(ctx context.Context, p Params, rep *Report) error {
	conn, err := pgx.Connect(ctx, p.DBURL)
	if err != nil {
		return fmt.Errorf("connecting to the database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	type taskRow struct {
		attempt int
		status  string
	}
	tasks := map[attemptKey]taskRow{} // attempt 0: keyed by run and task
	rows, err := conn.Query(ctx, `SELECT run_id, name, attempt, status FROM tasks WHERE run_id = ANY($1)`, p.RunIDs)
	if err != nil {
		return fmt.Errorf("reading tasks: %w", err)
	}
	for rows.Next() {
		var k attemptKey
		var r taskRow
		if err := rows.Scan(&k.run, &k.task, &r.attempt, &r.status); err != nil {
			return fmt.Errorf("reading tasks: %w", err)
		}
		tasks[k] = r
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading tasks: %w", err)
	}
	rep.Tasks = len(tasks)

	attempts := map[attemptKey]string{}
	rows, err = conn.Query(ctx, `SELECT run_id, task, attempt, status FROM task_attempts WHERE run_id = ANY($1)`, p.RunIDs)
	if err != nil {
		return fmt.Errorf("reading attempts: %w", err)
	}
	for rows.Next() {
		var k attemptKey
		var s string
		if err := rows.Scan(&k.run, &k.task, &k.attempt, &s); err != nil {
			return fmt.Errorf("reading attempts: %w", err)
		}
		attempts[k] = s
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading attempts: %w", err)
	}
	rep.Attempts = len(attempts)

	// Lines stored per attempt (storecheck checks that they are numbered 1..n).
	perAttemptLines := map[attemptKey]int64{}
	rows, err = conn.Query(ctx, `SELECT run_id, task, attempt, count(*) FROM task_logs
		WHERE run_id = ANY($1) GROUP BY run_id, task, attempt`, p.RunIDs)
	if err != nil {
		return fmt.Errorf("reading logs: %w", err)
	}
	for rows.Next() {
		var k attemptKey
		var n int64
		if err := rows.Scan(&k.run, &k.task, &k.attempt, &n); err != nil {
			return fmt.Errorf("reading logs: %w", err)
		}
		rep.LogLines += int(n)
		perAttemptLines[k] = n
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading logs: %w", err)
	}
	if p.LogLines != nil {
		var short []string
		for k, r := range tasks {
			if r.status != event.TaskSuccess {
				continue
			}
			want := p.LogLines(k.run, k.task)
			got := perAttemptLines[attemptKey{run: k.run, task: k.task, attempt: r.attempt}]
			if want > 0 && got < int64(want) {
				short = append(short, fmt.Sprintf("%s/%s/%d stored %d of %d lines", k.run, k.task, r.attempt, got, want))
			}
		}
		rep.problem(short, "successful attempts whose log lines were lost")
	}

	var dead []string
	rows, err = conn.Query(ctx, `SELECT stream, seq, reason FROM dead_letters ORDER BY id`)
	if err != nil {
		return fmt.Errorf("reading dead letters: %w", err)
	}
	for rows.Next() {
		var stream, reason string
		var seq int64
		if err := rows.Scan(&stream, &seq, &reason); err != nil {
			return fmt.Errorf("reading dead letters: %w", err)
		}
		dead = append(dead, fmt.Sprintf("%s#%d: %s", stream, seq, reason))
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading dead letters: %w", err)
	}
	rep.DeadLetters = len(dead)
	if !p.AllowDeadLetters {
		rep.problem(dead, "dead letters")
	}

	if p.Ledger != "" {
		if err := checkLedger(p, rep, attempts, func(run, task string) (int, string, bool) {
			r, ok := tasks[attemptKey{run: run, task: task}]
			return r.attempt, r.status, ok
		}); err != nil {
			return err
		}
	}
	if p.Watcher != nil {
		rep.Problems = append(rep.Problems, p.Watcher.Stop()...)
	}
	return nil
}

// checkLedger compares the executions of task bodies with the recorded attempts.
func checkLedger(p Params, rep *Report, attempts map[attemptKey]string, task func(run, task string) (int, string, bool)) error {
	execs, err := ReadLedger(p.Ledger)
	if err != nil {
		return err
	}
	runs := map[string]bool{}
	for _, id := range p.RunIDs {
		runs[id] = true
	}
	perAttempt := map[attemptKey]int{}
	perTask := map[attemptKey]int{}
	for _, e := range execs {
		if !runs[e.RunID] {
			continue
		}
		rep.Executions++
		perAttempt[attemptKey{run: e.RunID, task: e.Task, attempt: e.Attempt}]++
		perTask[attemptKey{run: e.RunID, task: e.Task}]++
	}
	var twice, unrecorded []string
	for k, n := range perAttempt {
		if n > 1 {
			twice = append(twice, fmt.Sprintf("%s ran %d times", k, n))
		}
		if _, ok := attempts[k]; !ok {
			unrecorded = append(unrecorded, k.String())
		}
	}
	rep.problem(twice, "attempts executed more than once")
	rep.problem(unrecorded, "executions without a recorded attempt")
	for _, n := range perTask {
		rep.Reexecutions += n - 1
	}
	if !p.EveryTaskWritesLedger {
		return nil
	}
	var notRun, ranSkipped []string
	for _, id := range p.RunIDs {
		for k, n := range perTask {
			if k.run != id {
				continue
			}
			if _, status, ok := task(k.run, k.task); ok && status == event.TaskSkipped && n > 0 {
				ranSkipped = append(ranSkipped, k.run+"/"+k.task)
			}
		}
	}
	for k, s := range attempts {
		if s != event.TaskSuccess {
			continue
		}
		if final, status, ok := task(k.run, k.task); ok && final == k.attempt && status == event.TaskSuccess && perAttempt[k] == 0 {
			notRun = append(notRun, k.String())
		}
	}
	rep.problem(notRun, "successful attempts whose body never ran")
	rep.problem(ranSkipped, "skipped tasks whose body ran")
	return nil
}

// problem adds one violation naming up to maxListed examples, when there are any.
func (r *Report) problem(examples []string, what string) {
	if len(examples) == 0 {
		return
	}
	sort.Strings(examples)
	shown := examples[:min(len(examples), maxListed)]
	more := ""
	if len(examples) > maxListed {
		more = fmt.Sprintf(" (and %d more)", len(examples)-maxListed)
	}
	r.Problems = append(r.Problems, fmt.Sprintf("%d %s: %s%s", len(examples), what, strings.Join(shown, ", "), more))
}

// Execution is one ledger line: a task body started.
type Execution struct {
	RunID   string
	Task    string
	Attempt int
	Pid     int
}

// ReadLedger parses a ledger file; a missing file is an empty ledger.
func ReadLedger(path string) ([]Execution, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading ledger: %w", err)
	}
	defer f.Close()
	var out []Execution
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 4 {
			return nil, fmt.Errorf("reading ledger: malformed line %q", sc.Text())
		}
		attempt, err1 := strconv.Atoi(fields[2])
		pid, err2 := strconv.Atoi(fields[3])
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("reading ledger: line %q: %w", sc.Text(), err)
		}
		out = append(out, Execution{RunID: fields[0], Task: fields[1], Attempt: attempt, Pid: pid})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading ledger: %w", err)
	}
	return out, nil
}

// taskState is a task's place in the (attempt, rank) order.
type taskState struct {
	attempt int
	status  string
	rank    int // store.TaskRank of status and reason
}

// Watcher samples run, task and attempt statuses while a test runs and notes every move
// backwards: a task whose (attempt, rank) decreases, a terminal task or attempt that changes
// status, a run whose rank decreases or that leaves a terminal status.
type Watcher struct {
	dbURL    string
	interval time.Duration
	cancel   context.CancelFunc
	done     chan struct{}
	problems []string
	samples  int
	runs     map[string]string
	tasks    map[attemptKey]taskState
	attempts map[attemptKey]taskState
}

// Watch starts a Watcher sampling the database every interval until Stop.
func Watch(ctx context.Context, dbURL string, interval time.Duration) *Watcher {
	ctx, cancel := context.WithCancel(ctx)
	w := &Watcher{
		dbURL: dbURL, interval: interval, cancel: cancel, done: make(chan struct{}),
		runs: map[string]string{}, tasks: map[attemptKey]taskState{}, attempts: map[attemptKey]taskState{},
	}
	go w.run(ctx)
	return w
}

// Stop ends the sampling (after one last sample) and returns the violations seen. It may be called
// more than once.
func (w *Watcher) Stop() []string {
	w.cancel()
	<-w.done
	return slices.Clone(w.problems)
}

// Samples returns how many complete samples the watcher took; call it after Stop.
func (w *Watcher) Samples() int { return w.samples }

func (w *Watcher) run(ctx context.Context) {
	defer close(w.done)
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			_ = conn.Close(context.WithoutCancel(ctx))
		}
	}()
	ticker := time.NewTicker(w.interval)
	defer ticker.Stop()
	for stopping := false; ; {
		if conn == nil {
			c, err := pgx.Connect(ctx, w.dbURL)
			if err == nil {
				conn = c
			}
		}
		if conn != nil {
			if err := w.sample(context.WithoutCancel(ctx), conn); err != nil {
				// The database may be down on purpose; connect again next time.
				_ = conn.Close(context.WithoutCancel(ctx))
				conn = nil
			}
		}
		if stopping {
			return
		}
		select {
		case <-ctx.Done():
			stopping = true
		case <-ticker.C:
		}
	}
}

// sample reads every status once, in one repeatable-read transaction so the three reads agree.
func (w *Watcher) sample(ctx context.Context, conn *pgx.Conn) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	runs := map[string]string{}
	rows, err := tx.Query(ctx, `SELECT id, status FROM runs`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id, s string
		if err := rows.Scan(&id, &s); err != nil {
			return err
		}
		runs[id] = s
	}
	if err := rows.Err(); err != nil {
		return err
	}
	tasks := map[attemptKey]taskState{}
	rows, err = tx.Query(ctx, `SELECT run_id, name, attempt, status, `+store.TaskRankSQL("status", "reason")+` FROM tasks`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var k attemptKey
		var s taskState
		if err := rows.Scan(&k.run, &k.task, &s.attempt, &s.status, &s.rank); err != nil {
			return err
		}
		tasks[k] = s
	}
	if err := rows.Err(); err != nil {
		return err
	}
	attempts := map[attemptKey]taskState{}
	rows, err = tx.Query(ctx, `SELECT run_id, task, attempt, status, `+store.TaskRankSQL("status", "reason")+` FROM task_attempts`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var k attemptKey
		var s taskState
		if err := rows.Scan(&k.run, &k.task, &k.attempt, &s.status, &s.rank); err != nil {
			return err
		}
		attempts[k] = s
	}
	if err := rows.Err(); err != nil {
		return err
	}
	w.compare(runs, tasks, attempts)
	return nil
}

// compare notes the moves backwards between the previous sample and this one.
func (w *Watcher) compare(runs map[string]string, tasks map[attemptKey]taskState, attempts map[attemptKey]taskState) {
	w.samples++
	for id, s := range runs {
		prev, ok := w.runs[id]
		if ok && prev != s && (store.RunRank(s) < store.RunRank(prev) || event.IsTerminalRun(prev)) {
			w.problems = append(w.problems, fmt.Sprintf("run %s moved backwards: %s -> %s", id, prev, s))
		}
		w.runs[id] = s
	}
	for k, s := range tasks {
		prev, ok := w.tasks[k]
		if ok && prev != s {
			// Within an attempt the rank only grows, and a final status is replaced only by the
			// scheduler's verdict on a task lost too often.
			backwards := s.attempt < prev.attempt ||
				(s.attempt == prev.attempt && s.rank < prev.rank) ||
				(s.attempt == prev.attempt && prev.rank >= store.TaskRankFinal && s.rank != store.TaskRankGivenUp)
			if backwards {
				w.problems = append(w.problems, fmt.Sprintf("task %s/%s moved backwards: attempt %d %s -> attempt %d %s",
					k.run, k.task, prev.attempt, prev.status, s.attempt, s.status))
			}
		}
		w.tasks[k] = s
	}
	for k, s := range attempts {
		prev, ok := w.attempts[k]
		if ok && prev != s && (s.rank < prev.rank || prev.rank >= store.TaskRankFinal && s.rank != store.TaskRankGivenUp) {
			w.problems = append(w.problems, fmt.Sprintf("attempt %s moved backwards: %s -> %s", k, prev.status, s.status))
		}
		w.attempts[k] = s
	}
}
