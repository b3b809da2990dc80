package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/ork-go/ork/pkg/store"
)

// Default limits of the list methods.
const (
	RunListLimitDefault        = 50
	DeadLetterListLimitDefault = 100
)

const runColumns = `r.id, w.name, r.workflow_hash, r.status, r.triggered_by, coalesce(r.idempotency_key, ''), r.error,
  r.task_count, r.params, r.rerun_of, r.scheduled_for, r.created_at, r.started_at, r.finished_at`

type scanner interface{ Scan(dest ...any) error }

func scanRun(sc scanner) (store.Run, error) {
	var (
		r                            store.Run
		created                      string
		scheduled, started, finished sql.NullString
		params                       sql.NullString
	)
	if err := sc.Scan(&r.ID, &r.Workflow, &r.WorkflowHash, &r.Status, &r.TriggeredBy, &r.IdempotencyKey, &r.Error,
		&r.TaskCount, &params, &r.RerunOf, &scheduled, &created, &started, &finished); err != nil {
		return store.Run{}, err
	}
	if params.Valid {
		r.Params = json.RawMessage(params.String)
	}
	var err error
	if r.CreatedAt, err = parseTime(created); err != nil {
		return store.Run{}, err
	}
	if r.ScheduledFor, err = parseNullTime(scheduled); err != nil {
		return store.Run{}, err
	}
	if r.StartedAt, err = parseNullTime(started); err != nil {
		return store.Run{}, err
	}
	if r.FinishedAt, err = parseNullTime(finished); err != nil {
		return store.Run{}, err
	}
	return r, nil
}

// collect runs a query and scans each row with scan.
func collect[T any](ctx context.Context, db *sql.DB, what, query string, args []any, scan func(scanner) (T, error)) ([]T, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, interpretError(err))
	}
	defer func() { _ = rows.Close() }() // rows.Err below reports what matters
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, interpretError(err))
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, interpretError(err))
	}
	return out, nil
}

// RunGet returns one run with its workflow name.
func (s *Store) RunGet(ctx context.Context, p store.RunGetParams) (store.Run, error) {
	row := s.r.QueryRowContext(ctx, `SELECT `+runColumns+` FROM runs r JOIN workflows w ON w.id = r.workflow_id WHERE r.id = ?`, p.ID)
	r, err := scanRun(row)
	if err != nil {
		return store.Run{}, fmt.Errorf("getting run %s: %w", p.ID, interpretError(err))
	}
	return r, nil
}

// RunList returns runs, newest first, with their workflow names.
func (s *Store) RunList(ctx context.Context, p store.RunListParams) ([]store.Run, error) {
	var (
		where []string
		args  []any
	)
	if p.Workflow != "" {
		where = append(where, `r.workflow_id = (SELECT id FROM workflows WHERE name = ?)`)
		args = append(args, p.Workflow)
	}
	if p.Status != "" {
		where = append(where, `r.status = ?`)
		args = append(args, p.Status)
	}
	if p.IDPrefix != "" {
		// SQLite's LIKE ignores ASCII case; the substr comparison keeps the match case-sensitive,
		// as in the other stores.
		where = append(where, `r.id LIKE ? ESCAPE '\' AND substr(r.id, 1, length(?)) = ?`)
		args = append(args, store.LikePrefixPattern(p.IDPrefix), p.IDPrefix, p.IDPrefix)
	}
	if p.TriggeredBy != "" {
		where = append(where, `r.triggered_by = ?`)
		args = append(args, p.TriggeredBy)
	}
	// Times are fixed-width UTC text (dbTime), so text comparison is time comparison.
	if !p.Since.IsZero() {
		where = append(where, `r.created_at >= ?`)
		args = append(args, dbTime(p.Since))
	}
	if !p.Until.IsZero() {
		where = append(where, `r.created_at < ?`)
		args = append(args, dbTime(p.Until))
	}
	if p.Before != nil {
		where = append(where, `(r.created_at, r.id) < (?, ?)`)
		args = append(args, dbTime(p.Before.CreatedAt), p.Before.ID)
	}
	q := `SELECT ` + runColumns + ` FROM runs r JOIN workflows w ON w.id = r.workflow_id`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	limit := p.Limit
	if limit <= 0 {
		limit = RunListLimitDefault
	}
	q += ` ORDER BY r.created_at DESC, r.id DESC LIMIT ?`
	args = append(args, limit)
	return collect(ctx, s.r, "listing runs", q, args, scanRun)
}

// TaskList returns the tasks of a run in index order, with the run's status and workflow name.
func (s *Store) TaskList(ctx context.Context, p store.TaskListParams) ([]store.Task, error) {
	const q = `SELECT t.run_id, w.name, r.status, t.name, t.idx, t.executor, t.depends_on, t.status, t.attempt,
  t.max_retries, t.timeout_s, t.output, t.error, t.reason, t.started_at, t.finished_at
FROM tasks t JOIN runs r ON r.id = t.run_id JOIN workflows w ON w.id = r.workflow_id
WHERE t.run_id = ? ORDER BY t.idx, t.name`
	return collect(ctx, s.r, "listing tasks of run "+p.RunID, q, []any{p.RunID}, func(sc scanner) (store.Task, error) {
		var (
			t                 store.Task
			deps              string
			output            sql.NullString
			started, finished sql.NullString
		)
		if err := sc.Scan(&t.RunID, &t.Workflow, &t.RunStatus, &t.Name, &t.Index, &t.Executor, &deps, &t.Status, &t.Attempt,
			&t.MaxRetries, &t.TimeoutSeconds, &output, &t.Error, &t.Reason, &started, &finished); err != nil {
			return store.Task{}, err
		}
		if err := json.Unmarshal([]byte(deps), &t.DependsOn); err != nil {
			return store.Task{}, fmt.Errorf("stored depends_on of %s: %w", t.Name, err)
		}
		if len(t.DependsOn) == 0 {
			t.DependsOn = nil
		}
		if output.Valid {
			t.Output = json.RawMessage(output.String)
		}
		var err error
		if t.StartedAt, err = parseNullTime(started); err != nil {
			return store.Task{}, err
		}
		if t.FinishedAt, err = parseNullTime(finished); err != nil {
			return store.Task{}, err
		}
		return t, nil
	})
}

// AttemptList returns the attempts of a run (or of one of its tasks), by task index and attempt.
func (s *Store) AttemptList(ctx context.Context, p store.AttemptListParams) ([]store.Attempt, error) {
	q := `SELECT a.run_id, a.task, a.attempt, a.status, a.instance, a.exit_code, a.error, a.reason, a.duration_ms,
  a.dispatched_at, a.started_at, a.finished_at
FROM task_attempts a JOIN tasks t ON t.run_id = a.run_id AND t.name = a.task
WHERE a.run_id = ?`
	args := []any{p.RunID}
	if p.Task != "" {
		q += ` AND a.task = ?`
		args = append(args, p.Task)
	}
	q += ` ORDER BY t.idx, a.task, a.attempt`
	return collect(ctx, s.r, "listing attempts of run "+p.RunID, q, args, func(sc scanner) (store.Attempt, error) {
		var (
			a                             store.Attempt
			exit                          sql.NullInt64
			dispatched, started, finished sql.NullString
		)
		if err := sc.Scan(&a.RunID, &a.Task, &a.Attempt, &a.Status, &a.Instance, &exit, &a.Error, &a.Reason, &a.DurationMS,
			&dispatched, &started, &finished); err != nil {
			return store.Attempt{}, err
		}
		if exit.Valid {
			c := int(exit.Int64)
			a.ExitCode = &c
		}
		var err error
		if a.DispatchedAt, err = parseNullTime(dispatched); err != nil {
			return store.Attempt{}, err
		}
		if a.StartedAt, err = parseNullTime(started); err != nil {
			return store.Attempt{}, err
		}
		if a.FinishedAt, err = parseNullTime(finished); err != nil {
			return store.Attempt{}, err
		}
		return a, nil
	})
}

// LogList returns log lines by task index, attempt and seq. Lines of a task the store does not
// know (yet) come after the known tasks, by name.
func (s *Store) LogList(ctx context.Context, p store.LogListParams) ([]store.LogLine, error) {
	const cols = `SELECT l.run_id, l.task, l.attempt, l.seq, l.stream, l.line, l.ts`
	var q string
	args := []any{p.RunID}
	if p.Task != "" {
		// One task: the primary key gives the order, no join and no sort (pages stay cheap).
		q = cols + ` FROM task_logs l WHERE l.run_id = ? AND l.task = ?`
		args = append(args, p.Task)
	} else {
		q = cols + ` FROM task_logs l LEFT JOIN tasks t ON t.run_id = l.run_id AND t.name = l.task WHERE l.run_id = ?`
	}
	if p.Attempt > 0 {
		q += ` AND l.attempt = ?`
		args = append(args, p.Attempt)
	}
	if p.AfterSeq > 0 {
		q += ` AND l.seq > ?`
		args = append(args, p.AfterSeq)
	}
	if p.Task != "" {
		q += ` ORDER BY l.attempt, l.seq`
	} else {
		q += ` ORDER BY t.idx IS NULL, t.idx, l.task, l.attempt, l.seq`
	}
	if p.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, p.Limit)
	}
	return collect(ctx, s.r, "listing log lines of run "+p.RunID, q, args, func(sc scanner) (store.LogLine, error) {
		var (
			l  store.LogLine
			ts string
		)
		if err := sc.Scan(&l.RunID, &l.Task, &l.Attempt, &l.Seq, &l.Stream, &l.Line, &ts); err != nil {
			return store.LogLine{}, err
		}
		var err error
		l.Time, err = parseTime(ts)
		return l, err
	})
}

// workflowColumns are a workflow's columns with its run count, over workflows w.
const workflowColumns = `w.name, w.description, w.current_hash, w.schedule,
  (SELECT count(*) FROM runs r WHERE r.workflow_id = w.id), w.created_at, w.updated_at,
  w.registered, w.registered_rev, w.registered_at, w.registered_by`

func scanWorkflow(sc scanner) (store.Workflow, error) {
	var (
		w                store.Workflow
		created, updated string
		applied          sql.NullString
		rev              int64
	)
	if err := sc.Scan(&w.Name, &w.Description, &w.CurrentHash, &w.Schedule, &w.RunCount, &created, &updated,
		&w.Registered, &rev, &applied, &w.AppliedBy); err != nil {
		return store.Workflow{}, err
	}
	w.Revision = uint64(rev) //nolint:gosec // stored from a uint64 that fits
	var err error
	if w.CreatedAt, err = parseTime(created); err != nil {
		return store.Workflow{}, err
	}
	if w.UpdatedAt, err = parseTime(updated); err != nil {
		return store.Workflow{}, err
	}
	w.AppliedAt, err = parseNullTime(applied)
	return w, err
}

// WorkflowList returns workflows by name (BINARY collation: byte order) with their run counts.
func (s *Store) WorkflowList(ctx context.Context, p store.WorkflowListParams) ([]store.Workflow, error) {
	var (
		where []string
		args  []any
	)
	if p.Registered {
		where = append(where, `w.registered`)
	}
	if p.NameContains != "" {
		// SQLite's LIKE ignores the case of ASCII letters only, which is the store's rule.
		where = append(where, `w.name LIKE ? ESCAPE '\'`)
		args = append(args, store.LikeContainsPattern(p.NameContains))
	}
	if p.After != "" {
		where = append(where, `w.name > ?`)
		args = append(args, p.After)
	}
	q := `SELECT ` + workflowColumns + ` FROM workflows w`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += ` ORDER BY w.name`
	if p.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, p.Limit)
	}
	return collect(ctx, s.r, "listing workflows", q, args, scanWorkflow)
}

// WorkflowGet returns one workflow by name with its run count.
func (s *Store) WorkflowGet(ctx context.Context, p store.WorkflowGetParams) (store.Workflow, error) {
	w, err := scanWorkflow(s.r.QueryRowContext(ctx, `SELECT `+workflowColumns+` FROM workflows w WHERE w.name = ?`, p.Name))
	if err != nil {
		return store.Workflow{}, fmt.Errorf("getting workflow %s: %w", p.Name, interpretError(err))
	}
	return w, nil
}

const versionColumns = `w.name, v.hash, v.plan, v.created_at`

func scanVersion(sc scanner) (store.WorkflowVersion, error) {
	var (
		v       store.WorkflowVersion
		plan    string
		created string
	)
	if err := sc.Scan(&v.Workflow, &v.Hash, &plan, &created); err != nil {
		return store.WorkflowVersion{}, err
	}
	v.Plan = json.RawMessage(plan)
	var err error
	v.CreatedAt, err = parseTime(created)
	return v, err
}

// WorkflowVersionGet returns a stored workflow version by content hash.
func (s *Store) WorkflowVersionGet(ctx context.Context, p store.WorkflowVersionGetParams) (store.WorkflowVersion, error) {
	v, err := scanVersion(s.r.QueryRowContext(ctx, `SELECT `+versionColumns+`
FROM workflow_versions v JOIN workflows w ON w.id = v.workflow_id WHERE v.hash = ?`, p.Hash))
	if err != nil {
		return store.WorkflowVersion{}, fmt.Errorf("getting workflow version %s: %w", p.Hash, interpretError(err))
	}
	return v, nil
}

// WorkflowVersionList returns a workflow's versions, newest first.
func (s *Store) WorkflowVersionList(ctx context.Context, p store.WorkflowVersionListParams) ([]store.WorkflowVersion, error) {
	q := `SELECT ` + versionColumns + `
FROM workflow_versions v JOIN workflows w ON w.id = v.workflow_id
WHERE v.workflow_id = (SELECT id FROM workflows WHERE name = ?)
ORDER BY v.created_at DESC, v.hash`
	args := []any{p.Workflow}
	if p.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, p.Limit)
	}
	return collect(ctx, s.r, "listing versions of workflow "+p.Workflow, q, args, scanVersion)
}

// DeadLetterList returns dead letters, oldest first.
func (s *Store) DeadLetterList(ctx context.Context, p store.DeadLetterListParams) ([]store.DeadLetter, error) {
	limit := p.Limit
	if limit <= 0 {
		limit = DeadLetterListLimitDefault
	}
	const q = `SELECT stream, seq, subject, reason, data, created_at FROM dead_letters ORDER BY id LIMIT ?`
	return collect(ctx, s.r, "listing dead letters", q, []any{limit}, func(sc scanner) (store.DeadLetter, error) {
		var (
			d       store.DeadLetter
			seq     int64
			created string
		)
		if err := sc.Scan(&d.Stream, &seq, &d.Subject, &d.Reason, &d.Data, &created); err != nil {
			return store.DeadLetter{}, err
		}
		d.Seq = uint64(seq) //nolint:gosec // stored from a uint64 that fits in int64
		var err error
		d.CreatedAt, err = parseTime(created)
		return d, err
	})
}
