package pgstore

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/workflow"
)

// errStaleSubmission reports that another transaction committed a run with the id or idempotency key
// of a submission after this one read them: the batch is retried with fresh knowledge.
var errStaleSubmission = errors.New("a submission raced another writer")

// errStaleRegistration reports that another transaction moved a workflow's registered revision after
// this one read it: the batch is retried with fresh knowledge.
var errStaleRegistration = errors.New("a registration raced another writer")

// applyAttemptsMax bounds how often a batch is retried after a deadlock, a serialization failure or a
// lost submission race (see retryable).
const applyAttemptsMax = 5

// ApplyBatch writes a batch in one transaction (see the package documentation for how).
func (s *Store) ApplyBatch(ctx context.Context, p store.ApplyBatchParams) (store.ApplyBatchResult, error) {
	if err := ctx.Err(); err != nil {
		return store.ApplyBatchResult{}, fmt.Errorf("applying batch: %w", err)
	}
	if p.Empty() {
		return store.ApplyBatchResult{}, nil
	}
	for try := 1; ; try++ {
		res, err := s.applyOnce(ctx, p)
		if err == nil || try == applyAttemptsMax || !retryable(err) {
			return res, err
		}
	}
}

func (s *Store) applyOnce(ctx context.Context, p store.ApplyBatchParams) (store.ApplyBatchResult, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return store.ApplyBatchResult{}, interpretError(err, "beginning batch transaction")
	}
	// A no-op after Commit; without ctx's cancellation so that a cancelled batch keeps its connection.
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // the interesting error is returned below

	known, err := loadKnown(ctx, tx, p.Events, p.Registrations)
	if err != nil {
		return store.ApplyBatchResult{}, err
	}
	plan := decide(p.Events, p.Registrations, known)
	b := &pgx.Batch{}
	if err := plan.queue(b); err != nil {
		return store.ApplyBatchResult{}, err
	}
	queueLogs(b, p.Logs)
	queueDeadLetters(b, p.DeadLetters)
	if err := execBatch(ctx, tx, b); err != nil {
		return store.ApplyBatchResult{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return store.ApplyBatchResult{}, interpretError(err, "committing batch")
	}
	return store.ApplyBatchResult{Orphans: plan.orphans, FinishedRuns: plan.finished}, nil
}

// execBatch sends a pipeline of statements; results are checked by the callbacks they were queued
// with, run by Close in order.
func execBatch(ctx context.Context, db dbtx, b *pgx.Batch) error {
	if b.Len() == 0 {
		return nil
	}
	return interpretError(db.SendBatch(ctx, b).Close(), "applying batch")
}

type taskKey struct{ run, task string }

type attemptKey struct {
	run, task string
	attempt   int
}

// slotKey is a workflow's nominal time (store.NominalTime) in microseconds since the Unix epoch: the
// unique index runs_workflow_scheduled_for_idx allows one run per slot.
type slotKey struct {
	workflow string
	micros   int64
}

// slotOf returns the slot of a submission, and false when it has no nominal time.
func slotOf(e *event.Event) (slotKey, bool) {
	at := store.NominalTime(e)
	if at == nil || e.Plan == nil {
		return slotKey{}, false
	}
	return slotKey{pgText(e.Plan.Name), at.UnixMicro()}, true
}

// known is what the database held before the batch: runs, idempotency keys, slots and tasks it
// names, and the registered revisions of the workflows its registrations name.
type known struct {
	runs  map[string]bool
	keys  map[string]bool
	slots map[slotKey]bool
	tasks map[taskKey]bool
	revs  map[string]uint64
}

// loadKnown reads, in one round trip, which of the runs, keys, slots and tasks named by events
// exist, and the registered revision of each workflow named by a registration.
func loadKnown(ctx context.Context, db dbtx, evs []event.Event, regs []store.Registration) (known, error) {
	k := known{runs: map[string]bool{}, keys: map[string]bool{}, slots: map[slotKey]bool{}, tasks: map[taskKey]bool{},
		revs: map[string]uint64{}}
	b := &pgx.Batch{}
	k.queueRuns(b, evs)
	k.queueRevisions(b, regs)
	if b.Len() == 0 {
		return k, nil
	}
	if err := db.SendBatch(ctx, b).Close(); err != nil {
		return known{}, interpretError(err, "reading the runs, tasks and workflows of a batch")
	}
	return k, nil
}

// queueRuns adds to b the reads of the runs, keys, slots and tasks named by evs.
func (k *known) queueRuns(b *pgx.Batch, evs []event.Event) {
	if len(evs) == 0 {
		return
	}
	var runIDs, keys, taskRuns, taskNames, slotNames []string
	var slotTimes []time.Time
	seenRun, seenTask := map[string]bool{}, map[taskKey]bool{}
	for i := range evs {
		e := &evs[i]
		if !seenRun[e.RunID] {
			seenRun[e.RunID] = true
			runIDs = append(runIDs, pgText(e.RunID))
		}
		if e.Type == event.TypeRunSubmitted && e.IdempotencyKey != "" {
			keys = append(keys, pgText(e.IdempotencyKey))
		}
		if sk, ok := slotOf(e); e.Type == event.TypeRunSubmitted && ok {
			slotNames, slotTimes = append(slotNames, sk.workflow), append(slotTimes, time.UnixMicro(sk.micros))
		}
		if e.Task != "" && !seenTask[taskKey{e.RunID, e.Task}] {
			seenTask[taskKey{e.RunID, e.Task}] = true
			taskRuns, taskNames = append(taskRuns, pgText(e.RunID)), append(taskNames, pgText(e.Task))
		}
	}
	b.Queue(`SELECT id, COALESCE(idempotency_key, '') FROM runs
		WHERE id = ANY($1::text[]) OR idempotency_key = ANY($2::text[])`, runIDs, keys).
		Query(func(rows pgx.Rows) error {
			var id, key string
			_, err := pgx.ForEachRow(rows, []any{&id, &key}, func() error {
				k.runs[id] = true
				if key != "" {
					k.keys[key] = true
				}
				return nil
			})
			return err
		})
	if len(slotNames) > 0 {
		b.Queue(`SELECT w.name, r.scheduled_for FROM runs r
			JOIN workflows w ON w.id = r.workflow_id
			JOIN unnest($1::text[], $2::timestamptz[]) AS i(name, scheduled_for)
				ON w.name = i.name AND r.scheduled_for = i.scheduled_for`, slotNames, slotTimes).
			Query(func(rows pgx.Rows) error {
				var name string
				var at time.Time
				_, err := pgx.ForEachRow(rows, []any{&name, &at}, func() error {
					k.slots[slotKey{name, at.UnixMicro()}] = true
					return nil
				})
				return err
			})
	}
	if len(taskRuns) > 0 {
		b.Queue(`SELECT t.run_id, t.name FROM tasks t
			JOIN unnest($1::text[], $2::text[]) AS i(run_id, name) ON t.run_id = i.run_id AND t.name = i.name`,
			taskRuns, taskNames).
			Query(func(rows pgx.Rows) error {
				var run, name string
				_, err := pgx.ForEachRow(rows, []any{&run, &name}, func() error {
					k.tasks[taskKey{run, name}] = true
					return nil
				})
				return err
			})
	}
}

// queueRevisions adds to b the read of the registered revisions of the workflows regs name.
func (k *known) queueRevisions(b *pgx.Batch, regs []store.Registration) {
	if len(regs) == 0 {
		return
	}
	names := make([]string, 0, len(regs))
	for i := range regs {
		names = append(names, pgText(regs[i].Name))
	}
	b.Queue(`SELECT name, registered_rev FROM workflows WHERE name = ANY($1::text[])`, names).
		Query(func(rows pgx.Rows) error {
			var name string
			var rev int64
			_, err := pgx.ForEachRow(rows, []any{&name, &rev}, func() error {
				k.revs[name] = uint64(rev) //nolint:gosec // stored from a uint64 that fits
				return nil
			})
			return err
		})
}

// batchPlan is a batch decided in Go: orphans set aside, duplicates dropped, task events folded,
// registrations that apply picked.
type batchPlan struct {
	orphans     []event.Event
	finished    []string
	submissions []*event.Event
	// registered is the last registration that applies of each workflow it names; versions are the
	// plans of every registration that applies, in batch order.
	registered  map[string]*store.Registration
	regVersions []*store.Registration
	tasks       map[taskKey]*store.TaskFold
	attempts    map[attemptKey]*store.AttemptFold
	runEvents   []runChange
}

// runChange is one run event and the status it implies.
type runChange struct {
	e      *event.Event
	status string
}

// decide walks the registrations, then the events, in order against what the database knew before
// the batch.
func decide(evs []event.Event, regs []store.Registration, k known) *batchPlan {
	bp := &batchPlan{tasks: map[taskKey]*store.TaskFold{}, attempts: map[attemptKey]*store.AttemptFold{},
		registered: map[string]*store.Registration{}}
	for i := range regs {
		r := &regs[i]
		if r.Revision <= k.revs[r.Name] {
			continue // replayed or superseded
		}
		k.revs[r.Name] = r.Revision
		applied := *r
		applied.AppliedAt = store.TimeOrNow(r.AppliedAt)
		bp.registered[r.Name] = &applied
		if r.Plan != nil {
			bp.regVersions = append(bp.regVersions, &applied)
		}
	}
	finished := map[string]bool{}
	for i := range evs {
		e := &evs[i]
		runStatus, isRunEvent := store.RunStatusOf(e)
		switch {
		case e.Type == event.TypeRunSubmitted:
			if e.RunID == "" || e.Plan == nil {
				bp.orphans = append(bp.orphans, *e)
				continue
			}
			sk, scheduled := slotOf(e)
			if k.runs[e.RunID] || (e.IdempotencyKey != "" && k.keys[e.IdempotencyKey]) || (scheduled && k.slots[sk]) {
				continue // a duplicate submission changes nothing
			}
			k.runs[e.RunID] = true
			if e.IdempotencyKey != "" {
				k.keys[e.IdempotencyKey] = true
			}
			if scheduled {
				k.slots[sk] = true
			}
			for _, t := range e.Plan.Tasks {
				k.tasks[taskKey{e.RunID, t.Name}] = true
			}
			bp.submissions = append(bp.submissions, e)
		case store.IsRunRequest(e.Type):
			// A request changes no row; it only needs its run.
			if !k.runs[e.RunID] {
				bp.orphans = append(bp.orphans, *e)
			}
		case isRunEvent:
			if !k.runs[e.RunID] {
				bp.orphans = append(bp.orphans, *e)
				continue
			}
			bp.runEvents = append(bp.runEvents, runChange{e, runStatus})
			if e.Type == event.TypeRunFinished && event.IsTerminalRun(runStatus) && !finished[e.RunID] {
				finished[e.RunID] = true
				bp.finished = append(bp.finished, e.RunID)
			}
		default:
			status, ok := store.TaskStatusOf(e)
			tk := taskKey{e.RunID, e.Task}
			if !ok || !k.tasks[tk] {
				bp.orphans = append(bp.orphans, *e)
				continue
			}
			tf := bp.tasks[tk]
			if tf == nil {
				tf = &store.TaskFold{}
				bp.tasks[tk] = tf
			}
			tf.Add(e, status)
			if e.Attempt >= 1 {
				ak := attemptKey{e.RunID, e.Task, e.Attempt}
				af := bp.attempts[ak]
				if af == nil {
					af = &store.AttemptFold{}
					bp.attempts[ak] = af
				}
				af.Add(e, status)
			}
		}
	}
	return bp
}

// queue adds the plan's writes to b. Workflow rows come first, registrations before submissions,
// so that versions and runs find them.
func (bp *batchPlan) queue(b *pgx.Batch) error {
	bp.queueRegistrations(b)
	bp.queueWorkflows(b)
	if err := bp.queueVersions(b); err != nil {
		return err
	}
	bp.queueRuns(b)
	bp.queueTasks(b)
	bp.queueAttempts(b)
	bp.queueRunEvents(b)
	return nil
}

var (
	// A registered workflow's description, schedule and current hash are the registry's.
	sqlUpsertWorkflows = `INSERT INTO workflows AS w (name, description, schedule, current_hash, created_at, updated_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[])
ON CONFLICT (name) DO UPDATE SET
	description = CASE WHEN w.registered THEN w.description ELSE excluded.description END,
	schedule = CASE WHEN w.registered THEN w.schedule ELSE excluded.schedule END,
	current_hash = CASE WHEN w.registered THEN w.current_hash ELSE excluded.current_hash END,
	updated_at = GREATEST(w.updated_at, excluded.updated_at)`

	// Applies each workflow's last registration when its revision is newer than the stored one; a
	// deletion changes only the registration columns. The count of rows written tells ApplyBatch
	// whether another writer moved a revision since the batch read it.
	sqlRegisterWorkflows = `WITH u AS (
	INSERT INTO workflows AS w (name, description, schedule, current_hash, created_at, updated_at,
		registered, registered_rev, registered_at, registered_by)
	SELECT i.name, i.description, i.schedule, i.hash, i.at, i.at, i.registered, i.rev, i.at, i.by
	FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::bool[], $7::bigint[], $8::text[])
		AS i(name, description, schedule, hash, at, registered, rev, by)
	ON CONFLICT (name) DO UPDATE SET
		description = CASE WHEN excluded.registered THEN excluded.description ELSE w.description END,
		schedule = CASE WHEN excluded.registered THEN excluded.schedule ELSE w.schedule END,
		current_hash = CASE WHEN excluded.registered THEN excluded.current_hash ELSE w.current_hash END,
		updated_at = CASE WHEN excluded.registered THEN GREATEST(w.updated_at, excluded.updated_at) ELSE w.updated_at END,
		registered = excluded.registered,
		registered_rev = excluded.registered_rev,
		registered_at = excluded.registered_at,
		registered_by = excluded.registered_by
	WHERE w.registered_rev < excluded.registered_rev
	RETURNING 1)
SELECT count(*) FROM u`

	// The compiled DAG is written only with a version that is new.
	sqlInsertVersions = `WITH v AS (
	INSERT INTO workflow_versions (hash, workflow_id, plan, created_at)
	SELECT i.hash, w.id, i.plan::jsonb, i.created_at
	FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[]) AS i(hash, name, plan, created_at)
	JOIN workflows w ON w.name = i.name
	ON CONFLICT (hash) DO NOTHING
	RETURNING hash)
INSERT INTO workflow_tasks (hash, name, idx, executor, depends_on)
SELECT i.hash, i.name, i.idx, i.executor, i.depends_on::jsonb
FROM unnest($5::text[], $6::text[], $7::int[], $8::text[], $9::text[]) AS i(hash, name, idx, executor, depends_on)
WHERE i.hash IN (SELECT hash FROM v)
ON CONFLICT DO NOTHING`

	// Task rows are written only for the runs this statement inserted, so a submission that lost a
	// race on its id, idempotency key or slot (workflow and nominal time) to another transaction
	// writes nothing; the count of runs inserted tells ApplyBatch that its plan was decided on stale
	// knowledge. The conflict has no target: any unique index, the partial one of slots included,
	// makes a row a duplicate.
	sqlInsertRuns = `WITH r AS (
	INSERT INTO runs (id, workflow_id, workflow_hash, status, triggered_by, idempotency_key, task_count, created_at, params, rerun_of, scheduled_for)
	SELECT i.id, w.id, i.hash, '` + event.RunPending + `', i.triggered_by, NULLIF(i.key, ''), i.task_count, i.created_at, NULLIF(i.params, '')::jsonb, i.rerun_of, i.scheduled_for
	FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[], $7::timestamptz[], $15::text[], $16::text[], $17::timestamptz[])
		AS i(id, name, hash, triggered_by, key, task_count, created_at, params, rerun_of, scheduled_for)
	JOIN workflows w ON w.name = i.name
	ON CONFLICT DO NOTHING
	RETURNING id),
t AS (
	INSERT INTO tasks (run_id, name, idx, executor, depends_on, status, attempt, max_retries, timeout_s)
	SELECT i.run_id, i.name, i.idx, i.executor, i.depends_on::jsonb, '` + event.TaskPending + `', 0, i.max_retries, i.timeout_s
	FROM unnest($8::text[], $9::text[], $10::int[], $11::text[], $12::text[], $13::int[], $14::int[])
		AS i(run_id, name, idx, executor, depends_on, max_retries, timeout_s)
	WHERE i.run_id IN (SELECT id FROM r)
	ON CONFLICT DO NOTHING)
SELECT count(*) FROM r`
)

// queueRegistrations writes the last registration that applies of each workflow, in name order.
func (bp *batchPlan) queueRegistrations(b *pgx.Batch) {
	if len(bp.registered) == 0 {
		return
	}
	var name, desc, sched, hash, by []string
	var at []time.Time
	var registered []bool
	var rev []int64
	for _, n := range sortedKeys(bp.registered) {
		r := bp.registered[n]
		var d, sc, h string
		if r.Plan != nil {
			d, sc, h = r.Plan.Description, r.Plan.ScheduleCron(), r.Plan.Hash
		}
		name, desc, sched, hash, by = append(name, pgText(n)), append(desc, pgText(d)), append(sched, pgText(sc)), append(hash, pgText(h)), append(by, pgText(r.AppliedBy))
		at, registered, rev = append(at, r.AppliedAt), append(registered, r.Plan != nil), append(rev, int64(r.Revision)) //nolint:gosec // KV revisions fit in int64
	}
	want := len(name)
	b.Queue(sqlRegisterWorkflows, name, desc, sched, hash, at, registered, rev, by).
		QueryRow(func(row pgx.Row) error {
			var written int
			if err := row.Scan(&written); err != nil {
				return err
			}
			if written != want {
				return errStaleRegistration
			}
			return nil
		})
}

type workflowRow struct {
	name, description, schedule, hash string
	created, updated                  time.Time
}

// queueWorkflows upserts the workflows of the submissions: one row per name, as the last submission
// of the batch left it.
func (bp *batchPlan) queueWorkflows(b *pgx.Batch) {
	if len(bp.submissions) == 0 {
		return
	}
	wfs := map[string]*workflowRow{}
	for _, e := range bp.submissions {
		p := e.Plan
		w := wfs[p.Name]
		if w == nil {
			w = &workflowRow{name: p.Name, created: e.Time}
			wfs[p.Name] = w
		}
		w.description, w.schedule, w.hash, w.updated = p.Description, p.ScheduleCron(), p.Hash, e.Time
	}
	var wName, wDesc, wSched, wHash []string
	var wCreated, wUpdated []time.Time
	for _, name := range sortedKeys(wfs) {
		w := wfs[name]
		wName, wDesc, wSched, wHash = append(wName, pgText(w.name)), append(wDesc, pgText(w.description)), append(wSched, pgText(w.schedule)), append(wHash, pgText(w.hash))
		wCreated, wUpdated = append(wCreated, w.created), append(wUpdated, w.updated)
	}
	b.Queue(sqlUpsertWorkflows, wName, wDesc, wSched, wHash, wCreated, wUpdated)
}

// queueVersions inserts the versions of the registrations that apply and of the submissions, the
// first of each hash, with their compiled DAGs.
func (bp *batchPlan) queueVersions(b *pgx.Batch) error {
	if len(bp.regVersions) == 0 && len(bp.submissions) == 0 {
		return nil
	}
	var vHash, vName, vPlan []string
	var vCreated []time.Time
	var dHash, dName, dExec, dDeps []string
	var dIdx []int32
	seenHash := map[string]bool{}
	add := func(name string, p *workflow.Plan, at time.Time) error {
		if seenHash[p.Hash] {
			return nil
		}
		seenHash[p.Hash] = true
		planJSON, err := json.Marshal(p)
		if err != nil {
			return fmt.Errorf("encoding plan of workflow %s: %w", name, err)
		}
		vHash, vName, vPlan, vCreated = append(vHash, pgText(p.Hash)), append(vName, pgText(name)), append(vPlan, pgJSON(planJSON)), append(vCreated, at)
		for _, t := range p.Tasks {
			dHash, dName, dExec = append(dHash, pgText(p.Hash)), append(dName, pgText(t.Name)), append(dExec, pgText(t.Executor))
			dIdx, dDeps = append(dIdx, int32(t.Index)), append(dDeps, dependsJSON(t.DependsOn)) //nolint:gosec // task counts are capped far below 2^31
		}
		return nil
	}
	for _, r := range bp.regVersions {
		if err := add(r.Name, r.Plan, r.AppliedAt); err != nil {
			return err
		}
	}
	for _, e := range bp.submissions {
		if err := add(e.Plan.Name, e.Plan, e.Time); err != nil {
			return err
		}
	}
	b.Queue(sqlInsertVersions, vHash, vName, vPlan, vCreated, dHash, dName, dIdx, dExec, dDeps)
	return nil
}

// queueRuns inserts the submissions' runs and their tasks, in run id order.
func (bp *batchPlan) queueRuns(b *pgx.Batch) {
	if len(bp.submissions) == 0 {
		return
	}
	subs := slices.Clone(bp.submissions)
	slices.SortFunc(subs, func(a, b *event.Event) int { return cmp.Compare(a.RunID, b.RunID) })
	var rID, rName, rHash, rBy, rKey, rParams, rRerunOf []string
	var rCount []int32
	var rCreated []time.Time
	var rScheduled []*time.Time
	var tRun, tName, tExec, tDeps []string
	var tIdx, tRetries, tTimeout []int32
	for _, e := range subs {
		p := e.Plan
		rID, rName, rHash, rBy, rKey = append(rID, pgText(e.RunID)), append(rName, pgText(p.Name)), append(rHash, pgText(p.Hash)), append(rBy, pgText(e.TriggeredBy)), append(rKey, pgText(e.IdempotencyKey))
		rCount, rCreated = append(rCount, int32(len(p.Tasks))), append(rCreated, e.Time) //nolint:gosec // capped task count
		rParams, rRerunOf = append(rParams, pgText(string(e.Params))), append(rRerunOf, pgText(e.RerunOf))
		rScheduled = append(rScheduled, store.NominalTime(e))
		for _, t := range p.Tasks {
			tRun, tName, tExec, tDeps = append(tRun, pgText(e.RunID)), append(tName, pgText(t.Name)), append(tExec, pgText(t.Executor)), append(tDeps, dependsJSON(t.DependsOn))
			tIdx, tRetries, tTimeout = append(tIdx, int32(t.Index)), append(tRetries, int32(t.Retries)), append(tTimeout, int32(t.TimeoutSeconds)) //nolint:gosec // validated small values
		}
	}
	b.Queue(sqlInsertRuns, rID, rName, rHash, rBy, rKey, rCount, rCreated, tRun, tName, tIdx, tExec, tDeps, tRetries, tTimeout, rParams, rRerunOf, rScheduled).
		QueryRow(func(row pgx.Row) error {
			var inserted int
			if err := row.Scan(&inserted); err != nil {
				return err
			}
			if inserted != len(subs) {
				return errStaleSubmission
			}
			return nil
		})
}

func dependsJSON(deps []string) string {
	if len(deps) == 0 {
		return "[]"
	}
	out, _ := json.Marshal(deps) //nolint:errchkjson // a []string always encodes
	return pgJSON(out)
}

// sqlUpdateTasks applies each folded task chain when its last event advances the row. The started
// time is the chain's start of the final attempt when that start itself advances the row; a newer
// attempt clears what the previous one left.
var sqlUpdateTasks = `UPDATE tasks AS t SET
	attempt = i.attempt,
	status = i.status,
	started_at = CASE
		WHEN i.started_at IS NOT NULL AND (i.attempt > t.attempt OR ` + store.TaskRankSQL("t.status", "t.reason") + ` < ` + strconv.Itoa(store.TaskRankRunning) + `) THEN i.started_at
		WHEN i.attempt > t.attempt THEN NULL
		ELSE t.started_at END,
	finished_at = i.finished_at,
	output = NULLIF(i.output, '')::jsonb,
	error = i.error,
	reason = i.reason
FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::int[], $6::timestamptz[], $7::timestamptz[],
		$8::text[], $9::text[], $10::text[])
	AS i(run_id, name, attempt, status, rank, started_at, finished_at, output, error, reason)
WHERE t.run_id = i.run_id AND t.name = i.name
	AND (i.attempt > t.attempt OR (i.attempt = t.attempt AND i.rank > ` + store.TaskRankSQL("t.status", "t.reason") + `))`

func (bp *batchPlan) queueTasks(b *pgx.Batch) {
	if len(bp.tasks) == 0 {
		return
	}
	keys := sortedTaskKeys(bp.tasks)
	n := len(keys)
	runs, names, statuses, outputs, errs, reasons := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	attempts, ranks := make([]int32, n), make([]int32, n)
	started, finished := make([]*time.Time, n), make([]*time.Time, n)
	for i, k := range keys {
		f := bp.tasks[k]
		e := f.Final
		runs[i], names[i], statuses[i] = pgText(k.run), pgText(k.task), f.Status
		attempts[i], ranks[i] = int32(e.Attempt), int32(store.TaskRank(f.Status, e.Reason)) //nolint:gosec // small
		started[i] = f.StartedAt()
		if event.IsTerminalTask(f.Status) {
			finished[i] = &e.Time
			outputs[i], errs[i], reasons[i] = pgJSON(e.Output), pgText(e.Error), pgText(e.Reason)
		}
	}
	b.Queue(sqlUpdateTasks, runs, names, attempts, statuses, ranks, started, finished, outputs, errs, reasons)
}

// sqlUpsertAttempts records each folded attempt: the status and terminal fields move forward only,
// timestamps and instance keep their first value.
var sqlUpsertAttempts = func() string {
	adv := store.TaskRankSQL("excluded.status", "excluded.reason") + " > " + store.TaskRankSQL("a.status", "a.reason")
	term := adv + " AND " + store.TaskRankSQL("excluded.status", "excluded.reason") + " >= " + strconv.Itoa(store.TaskRankEnded)
	return `INSERT INTO task_attempts AS a (run_id, task, attempt, status, instance, exit_code, error, reason,
		duration_ms, dispatched_at, started_at, finished_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::int[], $7::text[], $8::text[],
		$9::bigint[], $10::timestamptz[], $11::timestamptz[], $12::timestamptz[])
ON CONFLICT (run_id, task, attempt) DO UPDATE SET
	status = CASE WHEN ` + adv + ` THEN excluded.status ELSE a.status END,
	exit_code = CASE WHEN ` + term + ` THEN excluded.exit_code ELSE a.exit_code END,
	error = CASE WHEN ` + term + ` THEN excluded.error ELSE a.error END,
	reason = CASE WHEN ` + term + ` THEN excluded.reason ELSE a.reason END,
	duration_ms = CASE WHEN ` + term + ` THEN excluded.duration_ms ELSE a.duration_ms END,
	finished_at = CASE WHEN ` + term + ` THEN excluded.finished_at ELSE a.finished_at END,
	instance = COALESCE(NULLIF(a.instance, ''), excluded.instance),
	dispatched_at = COALESCE(a.dispatched_at, excluded.dispatched_at),
	started_at = COALESCE(a.started_at, excluded.started_at)`
}()

func (bp *batchPlan) queueAttempts(b *pgx.Batch) {
	if len(bp.attempts) == 0 {
		return
	}
	keys := make([]attemptKey, 0, len(bp.attempts))
	for k := range bp.attempts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b attemptKey) int {
		return cmp.Or(cmp.Compare(a.run, b.run), cmp.Compare(a.task, b.task), cmp.Compare(a.attempt, b.attempt))
	})
	n := len(keys)
	runs, tasks, statuses, instances, errs, reasons := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	attempts := make([]int32, n)
	exitCodes := make([]*int32, n)
	durations := make([]int64, n)
	dispatched, started, finished := make([]*time.Time, n), make([]*time.Time, n), make([]*time.Time, n)
	for i, k := range keys {
		f := bp.attempts[k]
		e := f.Final
		runs[i], tasks[i], attempts[i], statuses[i], instances[i] = pgText(k.run), pgText(k.task), int32(k.attempt), f.Status, pgText(f.Instance) //nolint:gosec // small
		dispatched[i], started[i] = f.DispatchedAt, f.StartedAt
		if event.IsTerminalTask(f.Status) {
			if e.ExitCode != nil {
				c := int32(*e.ExitCode) //nolint:gosec // exit codes are small
				exitCodes[i] = &c
			}
			errs[i], reasons[i], durations[i], finished[i] = pgText(e.Error), pgText(e.Reason), e.DurationMS, &e.Time
		}
	}
	b.Queue(sqlUpsertAttempts, runs, tasks, attempts, statuses, instances, exitCodes, errs, reasons, durations,
		dispatched, started, finished)
}

// sqlUpdateRun applies one run event: $2 is the new status, $5 its rank.
var sqlUpdateRun = `UPDATE runs SET
	status = $2,
	started_at = CASE WHEN $2 = '` + event.RunRunning + `' THEN COALESCE(started_at, $3) ELSE started_at END,
	finished_at = CASE WHEN $5 = 2 THEN $3 ELSE finished_at END,
	error = CASE WHEN $5 = 2 THEN $4 ELSE error END
WHERE id = $1 AND ($5 > ` + store.RunRankSQL("status") + ` OR ($5 = 1 AND ` + store.RunRankSQL("status") + ` = 1 AND status <> $2))`

func (bp *batchPlan) queueRunEvents(b *pgx.Batch) {
	for _, rc := range bp.runEvents {
		e, status := rc.e, rc.status
		b.Queue(sqlUpdateRun, pgText(e.RunID), pgText(status), e.Time, pgText(e.Error), int32(store.RunRank(status))) //nolint:gosec // 0..2
	}
}

const sqlInsertLogs = `INSERT INTO task_logs (run_id, task, attempt, seq, stream, line, ts)
SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::bigint[], $5::text[], $6::text[], $7::timestamptz[])
ON CONFLICT DO NOTHING`

func queueLogs(b *pgx.Batch, logs []event.LogBatch) {
	n := 0
	for _, lb := range logs {
		n += len(lb.Lines)
	}
	if n == 0 {
		return
	}
	runs, tasks, streams, lines := make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
	attempts, seqs, times := make([]int32, 0, n), make([]int64, 0, n), make([]time.Time, 0, n)
	for _, lb := range logs {
		for _, l := range lb.Lines {
			runs, tasks, attempts = append(runs, pgText(lb.RunID)), append(tasks, pgText(lb.Task)), append(attempts, int32(lb.Attempt)) //nolint:gosec // small
			seqs, streams, lines, times = append(seqs, l.Seq), append(streams, pgText(l.Stream)), append(lines, pgText(l.Line)), append(times, l.Time)
		}
	}
	b.Queue(sqlInsertLogs, runs, tasks, attempts, seqs, streams, lines, times)
}

const sqlInsertDeadLetters = `INSERT INTO dead_letters (stream, seq, subject, reason, data, created_at)
SELECT i.stream, i.seq, i.subject, i.reason, i.data, COALESCE(i.created_at, now())
FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::bytea[], $6::timestamptz[])
	WITH ORDINALITY AS i(stream, seq, subject, reason, data, created_at, n)
ORDER BY i.n
ON CONFLICT (stream, seq) DO NOTHING`

func queueDeadLetters(b *pgx.Batch, dls []store.DeadLetter) {
	if len(dls) == 0 {
		return
	}
	n := len(dls)
	streams, subjects, reasons := make([]string, n), make([]string, n), make([]string, n)
	seqs, data, created := make([]int64, n), make([][]byte, n), make([]*time.Time, n)
	for i := range dls {
		d := &dls[i]
		streams[i], seqs[i], subjects[i], reasons[i], data[i] = pgText(d.Stream), int64(d.Seq), pgText(d.Subject), pgText(d.Reason), d.Data //nolint:gosec // stream sequences fit
		if !d.CreatedAt.IsZero() {
			created[i] = &d.CreatedAt
		}
	}
	b.Queue(sqlInsertDeadLetters, streams, seqs, subjects, reasons, data, created)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func sortedTaskKeys(m map[taskKey]*store.TaskFold) []taskKey {
	keys := make([]taskKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b taskKey) int { return cmp.Or(cmp.Compare(a.run, b.run), cmp.Compare(a.task, b.task)) })
	return keys
}
