package pgstore

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ork-go/ork/pkg/store"
)

func scanRun(row pgx.Row) (store.Run, error) {
	var r store.Run
	err := row.Scan(&r.ID, &r.Workflow, &r.WorkflowHash, &r.Status, &r.TriggeredBy, &r.IdempotencyKey,
		&r.Error, &r.TaskCount, &r.Params, &r.RerunOf, &r.ScheduledFor, &r.CreatedAt, &r.StartedAt, &r.FinishedAt)
	r.CreatedAt = r.CreatedAt.UTC()
	r.ScheduledFor, r.StartedAt, r.FinishedAt = utc(r.ScheduledFor), utc(r.StartedAt), utc(r.FinishedAt)
	return r, err
}

// utc returns t in UTC (pgx returns local times), keeping nil.
func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// RunGet returns one run with its workflow name.
func (s *Store) RunGet(ctx context.Context, p store.RunGetParams) (store.Run, error) {
	r, err := scanRun(s.pool.QueryRow(ctx, `SELECT `+runColumns+`
		FROM runs r JOIN workflows w ON w.id = r.workflow_id WHERE r.id = $1`, p.ID))
	if err != nil {
		return store.Run{}, interpretError(err, "run "+p.ID)
	}
	return r, nil
}

// RunList returns runs, newest first.
func (s *Store) RunList(ctx context.Context, p store.RunListParams) ([]store.Run, error) {
	limit := p.Limit
	if limit <= 0 {
		limit = RunListLimitDefault
	}
	var where []string
	args := []any{limit}
	if p.Workflow != "" {
		args = append(args, p.Workflow)
		// By id rather than w.name, so that the planner walks runs_workflow_created_at_id_idx in
		// list order instead of sorting the workflow's runs.
		where = append(where, "r.workflow_id = (SELECT id FROM workflows WHERE name = $"+strconv.Itoa(len(args))+")")
	}
	if p.Status != "" {
		args = append(args, p.Status)
		where = append(where, "r.status = $"+strconv.Itoa(len(args)))
	}
	if p.IDPrefix != "" {
		args = append(args, store.LikePrefixPattern(p.IDPrefix))
		where = append(where, "r.id LIKE $"+strconv.Itoa(len(args))+` ESCAPE '\'`)
	}
	if p.TriggeredBy != "" {
		args = append(args, p.TriggeredBy)
		where = append(where, "r.triggered_by = $"+strconv.Itoa(len(args)))
	}
	if !p.Since.IsZero() {
		args = append(args, p.Since)
		where = append(where, "r.created_at >= $"+strconv.Itoa(len(args)))
	}
	if !p.Until.IsZero() {
		args = append(args, p.Until)
		where = append(where, "r.created_at < $"+strconv.Itoa(len(args)))
	}
	if p.Before != nil {
		args = append(args, p.Before.CreatedAt, p.Before.ID)
		where = append(where, `(r.created_at, r.id COLLATE "C") < ($`+strconv.Itoa(len(args)-1)+`, $`+strconv.Itoa(len(args))+`)`)
	}
	q := `SELECT ` + runColumns + ` FROM runs r JOIN workflows w ON w.id = r.workflow_id`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	// Ids compare byte for byte (COLLATE "C", as the other stores and the runs indexes do), whatever
	// the database's collation.
	q += ` ORDER BY r.created_at DESC, r.id COLLATE "C" DESC LIMIT $1`
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, interpretError(err, "listing runs")
	}
	runs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Run, error) { return scanRun(row) })
	if err != nil {
		return nil, interpretError(err, "listing runs")
	}
	return runs, nil
}

// TaskList returns the tasks of a run in index order.
func (s *Store) TaskList(ctx context.Context, p store.TaskListParams) ([]store.Task, error) {
	rows, err := s.pool.Query(ctx, `SELECT t.run_id, w.name, r.status, t.name, t.idx, t.executor, t.depends_on,
			t.status, t.attempt, t.max_retries, t.timeout_s, t.output, t.error, t.reason, t.started_at, t.finished_at
		FROM tasks t JOIN runs r ON r.id = t.run_id JOIN workflows w ON w.id = r.workflow_id
		WHERE t.run_id = $1 ORDER BY t.idx, t.name`, p.RunID)
	if err != nil {
		return nil, interpretError(err, "listing tasks of run "+p.RunID)
	}
	tasks, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Task, error) {
		var t store.Task
		var output []byte
		err := row.Scan(&t.RunID, &t.Workflow, &t.RunStatus, &t.Name, &t.Index, &t.Executor, &t.DependsOn,
			&t.Status, &t.Attempt, &t.MaxRetries, &t.TimeoutSeconds, &output, &t.Error, &t.Reason,
			&t.StartedAt, &t.FinishedAt)
		if len(output) > 0 {
			t.Output = output
		}
		if len(t.DependsOn) == 0 {
			t.DependsOn = nil
		}
		t.StartedAt, t.FinishedAt = utc(t.StartedAt), utc(t.FinishedAt)
		return t, err
	})
	if err != nil {
		return nil, interpretError(err, "listing tasks of run "+p.RunID)
	}
	return tasks, nil
}

// AttemptList returns the attempts of a run (or of one of its tasks) by task index and attempt.
func (s *Store) AttemptList(ctx context.Context, p store.AttemptListParams) ([]store.Attempt, error) {
	q := `SELECT a.run_id, a.task, a.attempt, a.status, a.instance, a.exit_code, a.error, a.reason,
			a.duration_ms, a.dispatched_at, a.started_at, a.finished_at
		FROM task_attempts a JOIN tasks t ON t.run_id = a.run_id AND t.name = a.task
		WHERE a.run_id = $1`
	args := []any{p.RunID}
	if p.Task != "" {
		q += " AND a.task = $2"
		args = append(args, p.Task)
	}
	q += " ORDER BY t.idx, a.task, a.attempt"
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, interpretError(err, "listing attempts of run "+p.RunID)
	}
	attempts, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Attempt, error) {
		var a store.Attempt
		err := row.Scan(&a.RunID, &a.Task, &a.Attempt, &a.Status, &a.Instance, &a.ExitCode, &a.Error, &a.Reason,
			&a.DurationMS, &a.DispatchedAt, &a.StartedAt, &a.FinishedAt)
		a.DispatchedAt, a.StartedAt, a.FinishedAt = utc(a.DispatchedAt), utc(a.StartedAt), utc(a.FinishedAt)
		return a, err
	})
	if err != nil {
		return nil, interpretError(err, "listing attempts of run "+p.RunID)
	}
	return attempts, nil
}

// LogList returns log lines by task index, attempt and sequence. Lines of tasks the store does not
// know (yet) come last, by task name.
func (s *Store) LogList(ctx context.Context, p store.LogListParams) ([]store.LogLine, error) {
	q := `SELECT l.run_id, l.task, l.attempt, l.seq, l.stream, l.line, l.ts
		FROM task_logs l LEFT JOIN tasks t ON t.run_id = l.run_id AND t.name = l.task
		WHERE l.run_id = $1`
	args := []any{p.RunID}
	if p.Task != "" {
		args = append(args, p.Task)
		q += " AND l.task = $" + strconv.Itoa(len(args))
	}
	if p.Attempt > 0 {
		args = append(args, p.Attempt)
		q += " AND l.attempt = $" + strconv.Itoa(len(args))
	}
	if p.AfterSeq > 0 {
		args = append(args, p.AfterSeq)
		q += " AND l.seq > $" + strconv.Itoa(len(args))
	}
	q += " ORDER BY t.idx NULLS LAST, l.task, l.attempt, l.seq"
	if p.Limit > 0 {
		args = append(args, p.Limit)
		q += " LIMIT $" + strconv.Itoa(len(args))
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, interpretError(err, "listing logs of run "+p.RunID)
	}
	lines, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.LogLine, error) {
		var l store.LogLine
		err := row.Scan(&l.RunID, &l.Task, &l.Attempt, &l.Seq, &l.Stream, &l.Line, &l.Time)
		l.Time = l.Time.UTC()
		return l, err
	})
	if err != nil {
		return nil, interpretError(err, "listing logs of run "+p.RunID)
	}
	return lines, nil
}

// workflowColumns are a workflow's columns with its run count, over workflows w.
const workflowColumns = `w.name, w.description, w.current_hash, w.schedule,
	(SELECT count(*) FROM runs r WHERE r.workflow_id = w.id), w.created_at, w.updated_at,
	w.registered, w.registered_rev, w.registered_at, w.registered_by`

func scanWorkflow(row pgx.Row) (store.Workflow, error) {
	var w store.Workflow
	var rev int64
	err := row.Scan(&w.Name, &w.Description, &w.CurrentHash, &w.Schedule, &w.RunCount, &w.CreatedAt, &w.UpdatedAt,
		&w.Registered, &rev, &w.AppliedAt, &w.AppliedBy)
	w.Revision = uint64(rev) //nolint:gosec // stored from a uint64 that fits
	w.CreatedAt, w.UpdatedAt, w.AppliedAt = w.CreatedAt.UTC(), w.UpdatedAt.UTC(), utc(w.AppliedAt)
	return w, err
}

// asciiLower is the SQL of store.LowerASCII over a text expression.
func asciiLower(expr string) string {
	return "translate(" + expr + ", 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')"
}

// WorkflowList returns workflows by name, byte for byte (COLLATE "C", whatever the database's
// collation), with their run counts.
func (s *Store) WorkflowList(ctx context.Context, p store.WorkflowListParams) ([]store.Workflow, error) {
	var where []string
	var args []any
	if p.Registered {
		where = append(where, "w.registered")
	}
	if p.NameContains != "" {
		args = append(args, store.LikeContainsPattern(p.NameContains))
		where = append(where, asciiLower("w.name")+" LIKE $"+strconv.Itoa(len(args))+` ESCAPE '\'`)
	}
	if p.After != "" {
		args = append(args, p.After)
		where = append(where, `w.name COLLATE "C" > $`+strconv.Itoa(len(args)))
	}
	q := `SELECT ` + workflowColumns + ` FROM workflows w`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += ` ORDER BY w.name COLLATE "C"`
	if p.Limit > 0 {
		args = append(args, p.Limit)
		q += " LIMIT $" + strconv.Itoa(len(args))
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, interpretError(err, "listing workflows")
	}
	ws, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Workflow, error) { return scanWorkflow(row) })
	if err != nil {
		return nil, interpretError(err, "listing workflows")
	}
	return ws, nil
}

// WorkflowGet returns one workflow by name with its run count.
func (s *Store) WorkflowGet(ctx context.Context, p store.WorkflowGetParams) (store.Workflow, error) {
	w, err := scanWorkflow(s.pool.QueryRow(ctx, `SELECT `+workflowColumns+` FROM workflows w WHERE w.name = $1`, p.Name))
	if err != nil {
		return store.Workflow{}, interpretError(err, "workflow "+p.Name)
	}
	return w, nil
}

// WorkflowVersionList returns a workflow's versions, newest first.
func (s *Store) WorkflowVersionList(ctx context.Context, p store.WorkflowVersionListParams) ([]store.WorkflowVersion, error) {
	q := `SELECT w.name, v.hash, v.plan, v.created_at
		FROM workflow_versions v JOIN workflows w ON w.id = v.workflow_id
		WHERE v.workflow_id = (SELECT id FROM workflows WHERE name = $1)
		ORDER BY v.created_at DESC, v.hash COLLATE "C"`
	args := []any{p.Workflow}
	if p.Limit > 0 {
		q += " LIMIT $2"
		args = append(args, p.Limit)
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, interpretError(err, "listing versions of workflow "+p.Workflow)
	}
	vs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.WorkflowVersion, error) { return scanVersion(row) })
	if err != nil {
		return nil, interpretError(err, "listing versions of workflow "+p.Workflow)
	}
	return vs, nil
}

func scanVersion(row pgx.Row) (store.WorkflowVersion, error) {
	var v store.WorkflowVersion
	var plan []byte
	err := row.Scan(&v.Workflow, &v.Hash, &plan, &v.CreatedAt)
	v.Plan = plan
	v.CreatedAt = v.CreatedAt.UTC()
	return v, err
}

// WorkflowVersionGet returns a stored version by content hash.
func (s *Store) WorkflowVersionGet(ctx context.Context, p store.WorkflowVersionGetParams) (store.WorkflowVersion, error) {
	v, err := scanVersion(s.pool.QueryRow(ctx, `SELECT w.name, v.hash, v.plan, v.created_at
		FROM workflow_versions v JOIN workflows w ON w.id = v.workflow_id WHERE v.hash = $1`, p.Hash))
	if err != nil {
		return store.WorkflowVersion{}, interpretError(err, "workflow version "+p.Hash)
	}
	return v, nil
}

// DeadLetterList returns dead letters in the order they were recorded.
func (s *Store) DeadLetterList(ctx context.Context, p store.DeadLetterListParams) ([]store.DeadLetter, error) {
	limit := p.Limit
	if limit <= 0 {
		limit = DeadLetterListLimitDefault
	}
	rows, err := s.pool.Query(ctx, `SELECT stream, seq, subject, reason, data, created_at
		FROM dead_letters ORDER BY id LIMIT $1`, limit)
	if err != nil {
		return nil, interpretError(err, "listing dead letters")
	}
	dls, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.DeadLetter, error) {
		var d store.DeadLetter
		var seq int64
		err := row.Scan(&d.Stream, &seq, &d.Subject, &d.Reason, &d.Data, &d.CreatedAt)
		d.Seq = uint64(seq) //nolint:gosec // stored from a uint64, never negative
		d.CreatedAt = d.CreatedAt.UTC()
		return d, err
	})
	if err != nil {
		return nil, interpretError(err, "listing dead letters")
	}
	return dls, nil
}

var _ store.Store = (*Store)(nil)
