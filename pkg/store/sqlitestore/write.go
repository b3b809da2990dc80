package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/workflow"
)

// The write statements. Parameters are numbered so each value is bound once.
var (
	// A run is known by its id, its idempotency key (?2) or its slot: workflow (?4) and nominal time
	// (?3), which the unique index runs_workflow_scheduled_for guards.
	sqlRunExists = `SELECT EXISTS (SELECT 1 FROM runs WHERE id = ?1 OR (?2 IS NOT NULL AND idempotency_key = ?2))
  OR (?3 IS NOT NULL AND EXISTS (SELECT 1 FROM runs WHERE scheduled_for = ?3
    AND workflow_id = (SELECT id FROM workflows WHERE name = ?4)))`

	// A submission older than the workflow's last one does not move its description or version back,
	// nor does any submission of a registered workflow (the registry says what is current).
	sqlWorkflowUpsert = `INSERT INTO workflows (name, description, schedule, current_hash, created_at, updated_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?5)
ON CONFLICT (name) DO UPDATE SET
  description  = CASE WHEN ` + submissionIsCurrent + ` THEN excluded.description ELSE workflows.description END,
  schedule     = CASE WHEN ` + submissionIsCurrent + ` THEN excluded.schedule ELSE workflows.schedule END,
  current_hash = CASE WHEN ` + submissionIsCurrent + ` THEN excluded.current_hash ELSE workflows.current_hash END,
  updated_at   = max(workflows.updated_at, excluded.updated_at)
RETURNING id`

	// Applies a registration when its revision is newer than the stored one (else no row returns); a
	// deletion (?6 = 0) changes only the registration columns.
	sqlRegister = `INSERT INTO workflows (name, description, schedule, current_hash, created_at, updated_at,
  registered, registered_rev, registered_at, registered_by)
VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7, ?5, ?8)
ON CONFLICT (name) DO UPDATE SET
  description    = CASE WHEN excluded.registered THEN excluded.description ELSE workflows.description END,
  schedule       = CASE WHEN excluded.registered THEN excluded.schedule ELSE workflows.schedule END,
  current_hash   = CASE WHEN excluded.registered THEN excluded.current_hash ELSE workflows.current_hash END,
  updated_at     = CASE WHEN excluded.registered THEN max(workflows.updated_at, excluded.updated_at) ELSE workflows.updated_at END,
  registered     = excluded.registered,
  registered_rev = excluded.registered_rev,
  registered_at  = excluded.registered_at,
  registered_by  = excluded.registered_by
WHERE workflows.registered_rev < excluded.registered_rev
RETURNING id`

	sqlVersionInsert = `INSERT INTO workflow_versions (hash, workflow_id, plan, created_at) VALUES (?1, ?2, ?3, ?4)
ON CONFLICT (hash) DO NOTHING`

	sqlWorkflowTaskInsert = `INSERT INTO workflow_tasks (hash, name, idx, executor, depends_on) VALUES (?1, ?2, ?3, ?4, ?5)
ON CONFLICT (hash, name) DO NOTHING`

	// Any unique index makes a row a duplicate (the conflict has no target), the partial one of
	// slots included: a duplicate inserts nothing, and then neither do its tasks.
	sqlRunInsert = `INSERT INTO runs (id, workflow_id, workflow_hash, status, triggered_by, idempotency_key, task_count, created_at, params, rerun_of, scheduled_for)
VALUES (?1, ?2, ?3, '` + event.RunPending + `', ?4, ?5, ?6, ?7, ?8, ?9, ?10)
ON CONFLICT DO NOTHING`

	sqlTaskInsert = `INSERT INTO tasks (run_id, name, idx, executor, depends_on, status, attempt, max_retries, timeout_s)
VALUES (?1, ?2, ?3, ?4, ?5, '` + event.TaskPending + `', 0, ?6, ?7)
ON CONFLICT (run_id, name) DO NOTHING`

	// Moves a task row forward in (attempt, rank) order, from a store.TaskFold. SET expressions see
	// the old row, so "?2 > attempt" tells a new attempt (which clears started_at) from the current
	// one; a start is taken unless the row has started this attempt already.
	sqlTaskAdvance = `UPDATE tasks SET
  status      = ?3,
  attempt     = ?2,
  started_at  = CASE WHEN ?4 IS NOT NULL AND (?2 > attempt OR ` + store.TaskRankSQL("status", "reason") + ` < ` + strconv.Itoa(store.TaskRankRunning) + `) THEN ?4
                     WHEN ?2 > attempt THEN NULL ELSE started_at END,
  finished_at = ?5,
  output      = ?6,
  error       = ?7,
  reason      = ?8
WHERE run_id = ?1 AND name = ?9
  AND (?2 > attempt OR (?2 = attempt AND ?10 > ` + store.TaskRankSQL("status", "reason") + `))`

	sqlTaskExists = `SELECT EXISTS (SELECT 1 FROM tasks WHERE run_id = ?1 AND name = ?2)`

	// Records an event in its attempt's row: the status and the fields of a terminal event move forward
	// by rank only; times and instance keep the first value any event of the attempt brought, so a
	// late event still fills what was missing. Values an event does not carry (zero, NULL) never erase
	// what an earlier event recorded.
	sqlAttemptUpsert = func() string {
		adv := store.TaskRankSQL("excluded.status", "excluded.reason") + " > " + store.TaskRankSQL("task_attempts.status", "task_attempts.reason")
		return `INSERT INTO task_attempts
  (run_id, task, attempt, status, instance, exit_code, error, reason, duration_ms, dispatched_at, started_at, finished_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
ON CONFLICT (run_id, task, attempt) DO UPDATE SET
  status        = CASE WHEN ` + adv + ` THEN excluded.status ELSE task_attempts.status END,
  exit_code     = CASE WHEN ` + adv + ` THEN coalesce(excluded.exit_code, task_attempts.exit_code) ELSE task_attempts.exit_code END,
  error         = CASE WHEN ` + adv + ` THEN excluded.error ELSE task_attempts.error END,
  reason        = CASE WHEN ` + adv + ` THEN excluded.reason ELSE task_attempts.reason END,
  duration_ms   = CASE WHEN ` + adv + ` AND excluded.duration_ms <> 0 THEN excluded.duration_ms ELSE task_attempts.duration_ms END,
  finished_at   = CASE WHEN ` + adv + ` THEN coalesce(excluded.finished_at, task_attempts.finished_at) ELSE task_attempts.finished_at END,
  instance      = CASE WHEN task_attempts.instance = '' THEN excluded.instance ELSE task_attempts.instance END,
  dispatched_at = coalesce(task_attempts.dispatched_at, excluded.dispatched_at),
  started_at    = coalesce(task_attempts.started_at, excluded.started_at)`
	}()

	// Moves a run forward: a higher rank, or running <-> paused.
	sqlRunAdvance = `UPDATE runs SET
  status      = ?2,
  error       = CASE WHEN ?6 = 2 THEN ?3 ELSE error END,
  started_at  = coalesce(started_at, ?4),
  finished_at = coalesce(?5, finished_at)
WHERE id = ?1
  AND (?6 > ` + store.RunRankSQL("status") + ` OR (?6 = 1 AND ` + store.RunRankSQL("status") + ` = 1 AND status <> ?2))`

	sqlRunKnown = `SELECT EXISTS (SELECT 1 FROM runs WHERE id = ?1)`

	sqlLogInsert = `INSERT INTO task_logs (run_id, task, attempt, seq, stream, line, ts) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
ON CONFLICT (run_id, task, attempt, seq) DO NOTHING`

	sqlDeadLetterInsert = `INSERT INTO dead_letters (stream, seq, subject, reason, data, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
ON CONFLICT (stream, seq) DO NOTHING`
)

// submissionIsCurrent tells, in the workflow upsert of a submission, that the submission says what
// the workflow's current version is.
const submissionIsCurrent = `workflows.registered = 0 AND excluded.updated_at >= workflows.updated_at`

// stmts are the write statements, prepared once on the writer connection.
type stmts struct {
	runExists, workflowUpsert, versionInsert, workflowTaskInsert, runInsert, taskInsert *sql.Stmt
	taskAdvance, taskExists, attemptUpsert, runAdvance, runKnown, logInsert, deadLetter *sql.Stmt
	register                                                                            *sql.Stmt
}

func (st *stmts) all() []**sql.Stmt {
	return []**sql.Stmt{
		&st.runExists, &st.workflowUpsert, &st.versionInsert, &st.workflowTaskInsert, &st.runInsert, &st.taskInsert,
		&st.taskAdvance, &st.taskExists, &st.attemptUpsert, &st.runAdvance, &st.runKnown, &st.logInsert, &st.deadLetter,
		&st.register,
	}
}

func (st *stmts) prepare(ctx context.Context, db *sql.DB) error {
	queries := []string{
		sqlRunExists, sqlWorkflowUpsert, sqlVersionInsert, sqlWorkflowTaskInsert, sqlRunInsert, sqlTaskInsert,
		sqlTaskAdvance, sqlTaskExists, sqlAttemptUpsert, sqlRunAdvance, sqlRunKnown, sqlLogInsert, sqlDeadLetterInsert,
		sqlRegister,
	}
	for i, p := range st.all() {
		s, err := db.PrepareContext(ctx, queries[i])
		if err != nil {
			return fmt.Errorf("preparing %q: %w", queries[i], err)
		}
		*p = s
	}
	return nil
}

func (st *stmts) close() error {
	var errs []error
	for _, p := range st.all() {
		if *p != nil {
			errs = append(errs, (*p).Close())
		}
	}
	return errors.Join(errs...)
}

// batch applies one ApplyBatch inside its transaction.
type batch struct {
	ctx context.Context
	tx  *sql.Tx
	st  *stmts
	txs map[*sql.Stmt]*sql.Stmt
	res store.ApplyBatchResult
	fin map[string]bool

	// The batch's task events, folded (store.TaskFold, store.AttemptFold) and written after the
	// other events: one task update and one attempt upsert each, in the order first seen. A task
	// event whose task does not exist when it comes (in batch order) is an orphan, as if applied alone.
	tasks    map[taskKey]*store.TaskFold
	taskKeys []taskKey
	attempts map[attemptKey]*store.AttemptFold
	attKeys  []attemptKey
}

type taskKey struct{ run, task string }

type attemptKey struct {
	run, task string
	attempt   int
}

// stmt returns a prepared statement bound to the transaction.
func (b *batch) stmt(s *sql.Stmt) *sql.Stmt {
	ts, ok := b.txs[s]
	if !ok {
		ts = b.tx.StmtContext(b.ctx, s)
		b.txs[s] = ts
	}
	return ts
}

func (b *batch) exec(s *sql.Stmt, args ...any) (int64, error) {
	r, err := b.stmt(s).ExecContext(b.ctx, args...)
	if err != nil {
		return 0, err
	}
	return r.RowsAffected()
}

func (b *batch) exists(s *sql.Stmt, args ...any) (bool, error) {
	var ok bool
	err := b.stmt(s).QueryRowContext(b.ctx, args...).Scan(&ok)
	return ok, err
}

// ApplyBatch writes registrations, events, log lines and dead letters in one transaction.
func (s *Store) ApplyBatch(ctx context.Context, p store.ApplyBatchParams) (res store.ApplyBatchResult, err error) {
	if p.Empty() {
		return store.ApplyBatchResult{}, ctx.Err()
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return store.ApplyBatchResult{}, fmt.Errorf("applying batch: beginning: %w", interpretError(err))
	}
	// Statements run under a context without cancellation: modernc.org/sqlite starts a goroutine
	// per statement to watch a cancellable one, which costs more than the statement. The batch
	// checks ctx itself between events, and rolls back when it ends.
	b := &batch{ctx: context.WithoutCancel(ctx), tx: tx, st: &s.st, txs: make(map[*sql.Stmt]*sql.Stmt), fin: map[string]bool{},
		tasks: map[taskKey]*store.TaskFold{}, attempts: map[attemptKey]*store.AttemptFold{}}
	defer func() {
		if err != nil {
			err = errors.Join(err, ignoreDone(tx.Rollback()))
		}
	}()
	for i := range p.Registrations {
		if err := b.register(&p.Registrations[i]); err != nil {
			return store.ApplyBatchResult{}, fmt.Errorf("applying registration %s@%d: %w", p.Registrations[i].Name, p.Registrations[i].Revision, interpretError(err))
		}
	}
	for i := range p.Events {
		if err := ctx.Err(); err != nil {
			return store.ApplyBatchResult{}, fmt.Errorf("applying batch: %w", err)
		}
		if err := b.event(&p.Events[i]); err != nil {
			return store.ApplyBatchResult{}, fmt.Errorf("applying event %s (%s): %w", p.Events[i].ID, p.Events[i].Type, interpretError(err))
		}
	}
	if err := b.writeTasks(); err != nil {
		return store.ApplyBatchResult{}, fmt.Errorf("applying task events: %w", interpretError(err))
	}
	for i := range p.Logs {
		if err := b.logs(&p.Logs[i]); err != nil {
			return store.ApplyBatchResult{}, fmt.Errorf("applying log lines of %s/%s: %w", p.Logs[i].RunID, p.Logs[i].Task, interpretError(err))
		}
	}
	for i := range p.DeadLetters {
		if err := b.deadLetter(&p.DeadLetters[i]); err != nil {
			return store.ApplyBatchResult{}, fmt.Errorf("applying dead letter %s/%d: %w", p.DeadLetters[i].Stream, p.DeadLetters[i].Seq, interpretError(err))
		}
	}
	if err := ctx.Err(); err != nil {
		return store.ApplyBatchResult{}, fmt.Errorf("applying batch: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return store.ApplyBatchResult{}, fmt.Errorf("applying batch: committing: %w", interpretError(err))
	}
	return b.res, nil
}

// ignoreDone drops the error of rolling back a transaction that already ended.
func ignoreDone(err error) error {
	if errors.Is(err, sql.ErrTxDone) {
		return nil
	}
	return err
}

func (b *batch) orphan(e *event.Event) { b.res.Orphans = append(b.res.Orphans, *e) }

func (b *batch) event(e *event.Event) error {
	switch e.Type {
	case event.TypeRunSubmitted:
		return b.submit(e)
	}
	if status, ok := store.RunStatusOf(e); ok {
		return b.runEvent(e, status)
	}
	if store.IsRunRequest(e.Type) {
		return b.request(e)
	}
	if status, ok := store.TaskStatusOf(e); ok {
		return b.taskEvent(e, status)
	}
	// An event type this store does not know cannot be applied: hand it back like an orphan.
	b.orphan(e)
	return nil
}

func (b *batch) submit(e *event.Event) error {
	p := e.Plan
	if p == nil || p.Name == "" || p.Hash == "" {
		b.orphan(e)
		return nil
	}
	runID := event.SubmissionRunID(e, e.Seq)
	var key any
	if e.IdempotencyKey != "" {
		key = e.IdempotencyKey
	}
	var scheduled any // NULL for a run no schedule fired
	if at := store.NominalTime(e); at != nil {
		scheduled = dbTime(*at)
	}
	known, err := b.exists(b.st.runExists, runID, key, scheduled, p.Name)
	if err != nil || known {
		return err
	}
	at := dbTime(e.Time)
	if at == nil {
		at = dbTime(time.Now())
	}
	var workflowID int64
	if err := b.stmt(b.st.workflowUpsert).QueryRowContext(b.ctx, p.Name, p.Description, p.ScheduleCron(), p.Hash, at).Scan(&workflowID); err != nil {
		return fmt.Errorf("upserting workflow %s: %w", p.Name, err)
	}
	deps, err := dependsJSON(p)
	if err != nil {
		return err
	}
	if err := b.insertVersion(p, workflowID, at, deps); err != nil {
		return err
	}
	var params any // NULL without params
	if len(e.Params) > 0 {
		params = string(e.Params)
	}
	n, err := b.exec(b.st.runInsert, runID, workflowID, p.Hash, e.TriggeredBy, key, len(p.Tasks), at, params, e.RerunOf, scheduled)
	if err != nil || n == 0 {
		return err
	}
	for i, t := range p.Tasks {
		if _, err := b.exec(b.st.taskInsert, runID, t.Name, t.Index, t.Executor, deps[i], t.Retries, t.TimeoutSeconds); err != nil {
			return fmt.Errorf("inserting task %s: %w", t.Name, err)
		}
	}
	return nil
}

// dependsJSON returns the depends_on column of each task of a plan.
func dependsJSON(p *workflow.Plan) ([]string, error) {
	deps := make([]string, len(p.Tasks))
	for i := range p.Tasks {
		d, err := json.Marshal(nonNil(p.Tasks[i].DependsOn))
		if err != nil {
			return nil, fmt.Errorf("encoding depends_on: %w", err)
		}
		deps[i] = string(d)
	}
	return deps, nil
}

// insertVersion inserts a plan's version of a workflow, and its compiled DAG, unless the hash is
// stored already; deps are the tasks' depends_on columns (dependsJSON).
func (b *batch) insertVersion(p *workflow.Plan, workflowID int64, at any, deps []string) error {
	planJSON, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encoding plan: %w", err)
	}
	n, err := b.exec(b.st.versionInsert, p.Hash, workflowID, string(planJSON), at)
	if err != nil {
		return fmt.Errorf("inserting version %s: %w", p.Hash, err)
	}
	if n == 0 {
		return nil // stored already, with its DAG
	}
	for i, t := range p.Tasks {
		if _, err := b.exec(b.st.workflowTaskInsert, p.Hash, t.Name, t.Index, t.Executor, deps[i]); err != nil {
			return fmt.Errorf("inserting workflow task %s: %w", t.Name, err)
		}
	}
	return nil
}

// register applies one registration (see store.ApplyBatchParams.Registrations).
func (b *batch) register(r *store.Registration) error {
	if r.Revision == 0 {
		// Not greater than any stored revision; the statement's WHERE only guards an update, and
		// would let it insert a workflow it does not know.
		return nil
	}
	at := dbTime(store.TimeOrNow(r.AppliedAt))
	var desc, sched, hash string
	if r.Plan != nil {
		desc, sched, hash = r.Plan.Description, r.Plan.ScheduleCron(), r.Plan.Hash
	}
	var workflowID int64
	err := b.stmt(b.st.register).QueryRowContext(b.ctx, r.Name, desc, sched, hash, at, r.Plan != nil,
		int64(r.Revision), r.AppliedBy).Scan(&workflowID) //nolint:gosec // KV revisions fit in int64
	if errors.Is(err, sql.ErrNoRows) {
		return nil // a revision the workflow has seen already
	}
	if err != nil {
		return fmt.Errorf("registering workflow %s: %w", r.Name, err)
	}
	if r.Plan == nil {
		return nil
	}
	deps, err := dependsJSON(r.Plan)
	if err != nil {
		return err
	}
	return b.insertVersion(r.Plan, workflowID, at, deps)
}

func nonNil(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return ss
}

func (b *batch) runEvent(e *event.Event, status string) error {
	if e.RunID == "" {
		b.orphan(e)
		return nil
	}
	var started, finished any
	switch {
	case status == event.RunRunning:
		started = dbTime(e.Time)
	case event.IsTerminalRun(status):
		finished = dbTime(e.Time)
	}
	n, err := b.exec(b.st.runAdvance, e.RunID, status, e.Error, started, finished, store.RunRank(status))
	if err != nil {
		return fmt.Errorf("updating run: %w", err)
	}
	if n == 0 {
		known, err := b.exists(b.st.runKnown, e.RunID)
		if err != nil {
			return err
		}
		if !known {
			b.orphan(e)
			return nil
		}
	}
	if e.Type == event.TypeRunFinished && event.IsTerminalRun(status) && !b.fin[e.RunID] {
		b.fin[e.RunID] = true
		b.res.FinishedRuns = append(b.res.FinishedRuns, e.RunID)
	}
	return nil
}

// request accepts a control request of a known run without writing anything.
func (b *batch) request(e *event.Event) error {
	known, err := b.exists(b.st.runKnown, e.RunID)
	if err != nil {
		return err
	}
	if !known {
		b.orphan(e)
	}
	return nil
}

// taskEvent folds a task event into the batch's task and attempt folds.
func (b *batch) taskEvent(e *event.Event, status string) error {
	if e.RunID == "" || e.Task == "" || e.Attempt < 0 {
		b.orphan(e)
		return nil
	}
	tk := taskKey{e.RunID, e.Task}
	tf := b.tasks[tk]
	if tf == nil {
		// The first event of a task in the batch: the task row exists if its run was submitted before
		// (in an earlier batch, or earlier in this one: the submission is written already).
		known, err := b.exists(b.st.taskExists, e.RunID, e.Task)
		if err != nil {
			return err
		}
		if !known {
			b.orphan(e)
			return nil
		}
		tf = &store.TaskFold{}
		b.tasks[tk] = tf
		b.taskKeys = append(b.taskKeys, tk)
	}
	tf.Add(e, status)
	if e.Attempt >= 1 {
		ak := attemptKey{e.RunID, e.Task, e.Attempt}
		f := b.attempts[ak]
		if f == nil {
			f = &store.AttemptFold{}
			b.attempts[ak] = f
			b.attKeys = append(b.attKeys, ak)
		}
		f.Add(e, status)
	}
	return nil
}

// writeTasks writes the folded task events: the task rows, then the attempts.
func (b *batch) writeTasks() error {
	for _, tk := range b.taskKeys {
		tf := b.tasks[tk]
		e, status := tf.Final, tf.Status
		var started, finished, output any
		if t := tf.StartedAt(); t != nil {
			started = dbTime(*t)
		}
		if event.IsTerminalTask(status) {
			finished = dbTime(e.Time)
			if len(e.Output) > 0 {
				output = string(e.Output)
			}
		}
		if _, err := b.exec(b.st.taskAdvance, e.RunID, e.Attempt, status, started, finished, output, e.Error, e.Reason, e.Task, store.TaskRank(status, e.Reason)); err != nil {
			return fmt.Errorf("updating task %s: %w", e.Task, err)
		}
	}
	for _, ak := range b.attKeys {
		f := b.attempts[ak]
		e := f.Final
		var dispatched, started, finished, exitCode any
		if f.DispatchedAt != nil {
			dispatched = dbTime(*f.DispatchedAt)
		}
		if f.StartedAt != nil {
			started = dbTime(*f.StartedAt)
		}
		if event.IsTerminalTask(f.Status) {
			finished = dbTime(e.Time)
		}
		if e.ExitCode != nil {
			exitCode = *e.ExitCode
		}
		if _, err := b.exec(b.st.attemptUpsert, ak.run, ak.task, ak.attempt, f.Status, f.Instance, exitCode, e.Error, e.Reason,
			e.DurationMS, dispatched, started, finished); err != nil {
			return fmt.Errorf("recording attempt %d of %s: %w", ak.attempt, ak.task, err)
		}
	}
	return nil
}

func (b *batch) logs(lb *event.LogBatch) error {
	for _, l := range lb.Lines {
		ts := dbTime(l.Time)
		if ts == nil {
			ts = dbTime(time.Now())
		}
		if _, err := b.exec(b.st.logInsert, lb.RunID, lb.Task, lb.Attempt, l.Seq, l.Stream, l.Line, ts); err != nil {
			return err
		}
	}
	return nil
}

func (b *batch) deadLetter(d *store.DeadLetter) error {
	at := dbTime(d.CreatedAt)
	if at == nil {
		at = dbTime(time.Now())
	}
	data := d.Data
	if data == nil {
		data = []byte{}
	}
	_, err := b.exec(b.st.deadLetter, d.Stream, int64(d.Seq), d.Subject, d.Reason, data, at) //nolint:gosec // stream sequences fit in int64
	return err
}
