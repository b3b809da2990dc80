// Package store defines how Ork's state is persisted: the Store and Tokens interfaces, their domain
// types and the sentinel errors. The recorder is the only writer of what Store holds; the admin CLI
// writes the API tokens (Tokens) directly; everything else only reads.
//
// Three implementations live in sub-packages (pgstore, sqlitestore, filestore); each one's store
// type implements both interfaces, and all pass the one conformance suite in storetest.
//
// Write semantics (ApplyBatch), identical in every implementation:
//   - A batch is applied in ONE transaction: all of it or none of it.
//   - Every write is an idempotent upsert: applying the same batch twice leaves the same state.
//   - run.submitted inserts the workflow (by name; description and current version updated), its
//     version (by content hash, with the plan JSON), the workflow_tasks of that version, the run
//     (status pending) and one task row per plan task (status pending, attempt 0). A second
//     submission of the same run id or idempotency key changes nothing.
//   - A task row moves only forward in the order (attempt, rank), compared lexicographically, where
//     rank is pending 0 < dispatched 1 < running 2 < lost 3 < final 4 (success, failed, skipped,
//     cancelled) < given up 5 (failed with reason max_lost). So an event of an older attempt never
//     changes the task row (it is fenced), a final status is never replaced within its attempt, a
//     lost attempt's real result replaces the loss, and the scheduler's verdict on a task whose
//     attempts were lost too often replaces even a real result that came late; a newer attempt (a
//     retry) does move the row on. task.failed with reason lost is status lost.
//   - Every task event of attempt N >= 1 is recorded in the task_attempts row (run, task, N), whether
//     or not it was applied to the task row, with the same forward-only rule inside that row.
//   - A run row moves only forward: pending < running|paused < success|failed|cancelled; running and
//     paused may replace each other; a terminal run never changes. run.started and run.resumed mean
//     running, run.paused paused, run.finished its Status (failed when empty; a terminal one sets the
//     error and finished time). Run rows carry no version, so a run.paused redelivered after a later
//     run.resumed pauses the row again until the next run event; terminal rows are never affected.
//   - Control requests (run.cancel_requested, run.pause_requested, run.resume_requested) change no
//     row: they are accepted when their run is known and orphans otherwise.
//   - Log lines are keyed by (run, task, attempt, seq): a replayed line is ignored.
//   - Dead letters are keyed by (stream, seq): a replayed one is ignored.
//   - Events for a run or task the store does not know (no run.submitted seen) are returned in
//     ApplyBatchResult.Orphans and not applied; the recorder dead-letters them.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ork-go/ork/pkg/event"
)

// Sentinel errors. Drivers translate their errors into these in one place.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
)

// Store persists workflows, runs, tasks, attempts, logs and dead letters.
type Store interface {
	// ApplyBatch writes events, log batches and dead letters in one transaction.
	ApplyBatch(ctx context.Context, p ApplyBatchParams) (ApplyBatchResult, error)

	// RunGet returns one run with its workflow name.
	RunGet(ctx context.Context, p RunGetParams) (Run, error)
	// RunList returns runs, newest first (created_at, then id, descending), filtered and paged by
	// cursor, with their workflow names (one JOIN, no N+1).
	RunList(ctx context.Context, p RunListParams) ([]Run, error)
	// TaskList returns the tasks of a run in plan order (index), with run and workflow (one JOIN).
	TaskList(ctx context.Context, p TaskListParams) ([]Task, error)
	// AttemptList returns the attempts of a run (optionally one task), ordered by task index, attempt.
	AttemptList(ctx context.Context, p AttemptListParams) ([]Attempt, error)
	// LogList returns log lines of a run (optionally one task), ordered by task index, attempt, seq.
	LogList(ctx context.Context, p LogListParams) ([]LogLine, error)
	// WorkflowList returns workflows by name with their run counts.
	WorkflowList(ctx context.Context, p WorkflowListParams) ([]Workflow, error)
	// WorkflowVersionGet returns a stored workflow version (its plan) by content hash.
	WorkflowVersionGet(ctx context.Context, p WorkflowVersionGetParams) (WorkflowVersion, error)
	// DeadLetterList returns dead letters, oldest first.
	DeadLetterList(ctx context.Context, p DeadLetterListParams) ([]DeadLetter, error)

	// Close releases the store's resources.
	Close() error
}

// Tokens persists the API's bearer tokens. It is apart from Store because tokens have another
// writer: the admin CLI writes them directly, where everything in Store is written by the recorder.
// Every store's concrete type implements both.
//
// A token's secret is never stored, only its hash. Times a write does not give (a zero CreatedAt or
// At) are the time of the write.
type Tokens interface {
	// TokenCreate stores a new token; ErrConflict when a token with its id exists.
	TokenCreate(ctx context.Context, p TokenCreateParams) error
	// TokenGet returns one token, revoked or expired ones included; ErrNotFound when there is none.
	TokenGet(ctx context.Context, p TokenGetParams) (Token, error)
	// TokenList returns every token, revoked and expired ones included, by created_at then id.
	TokenList(ctx context.Context, p TokenListParams) ([]Token, error)
	// TokenRevoke sets the token's revoked_at; revoking it again keeps the first time. ErrNotFound
	// when there is no such token.
	TokenRevoke(ctx context.Context, p TokenRevokeParams) error
	// TokenTouch records a use of the token: last_used_at becomes At unless it is later already (uses
	// recorded out of order never move it back). Best effort: a token that does not exist is no error.
	TokenTouch(ctx context.Context, p TokenTouchParams) error
}

// Token is an API bearer token as stored.
type Token struct {
	ID         string
	Name       string // who or what it was made for
	Scope      string // what it may do (the API's scope names)
	SecretHash []byte
	CreatedAt  time.Time
	ExpiresAt  *time.Time // nil: never expires
	RevokedAt  *time.Time
	LastUsedAt *time.Time
}

// TokenCreateParams is a token to store.
type TokenCreateParams struct{ Token Token }

// TokenGetParams selects a token by id.
type TokenGetParams struct{ ID string }

// TokenListParams lists every token.
type TokenListParams struct{}

// TokenRevokeParams revokes a token at a time.
type TokenRevokeParams struct {
	ID string
	At time.Time
}

// TokenTouchParams records a use of a token at a time.
type TokenTouchParams struct {
	ID string
	At time.Time
}

// TimeOrNow returns t, or the current time when t is zero: the time of a token write that gives
// none.
func TimeOrNow(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now().UTC()
	}
	return t
}

// ApplyBatchParams is one recorder batch.
type ApplyBatchParams struct {
	Events      []event.Event
	Logs        []event.LogBatch
	DeadLetters []DeadLetter
}

// ApplyBatchResult tells the recorder what the batch did.
type ApplyBatchResult struct {
	// Orphans are events naming a run or task the store does not know; they were not applied.
	Orphans []event.Event
	// FinishedRuns are run ids whose run.finished event was part of the batch and is now committed.
	FinishedRuns []string
}

// RunGetParams selects one run.
type RunGetParams struct{ ID string }

// RunListParams filters and pages runs. Runs are listed newest first, by created_at and then id,
// both descending, ids compared byte for byte; the order is total, so pages are stable. Zero values
// mean no filter and the filters combine; Limit 0 means 50.
type RunListParams struct {
	Workflow string
	Status   string
	// IDPrefix keeps the runs whose id starts with it, compared byte for byte (case-sensitive, no
	// wildcards), so a person can name a run by the first characters of its id.
	IDPrefix string
	// TriggeredBy keeps the runs whose triggered_by is exactly it.
	TriggeredBy string
	// Since and Until keep the runs with Since <= created_at < Until; a zero time is no bound.
	Since, Until time.Time
	// Before keeps the runs that come after the cursor in the list order, those whose (created_at,
	// id) is less than (Before.CreatedAt, Before.ID). Passing the Cursor of a page's last run gets
	// the next page: runs created meanwhile are newer than the cursor, so they neither shift nor
	// repeat the older ones.
	Before *RunCursor
	Limit  int
}

// RunCursor is a position in the run list, between the runs before and after (CreatedAt, ID).
type RunCursor struct {
	CreatedAt time.Time
	ID        string
}

// Cursor returns the position of r in the run list, for RunListParams.Before.
func (r Run) Cursor() *RunCursor { return &RunCursor{CreatedAt: r.CreatedAt, ID: r.ID} }

// RunOrder compares two runs in the run list order (newest first, then by id descending): negative
// when a comes first.
func RunOrder(aCreated time.Time, aID string, bCreated time.Time, bID string) int {
	if c := bCreated.Compare(aCreated); c != 0 {
		return c
	}
	return strings.Compare(bID, aID)
}

// LikePrefixPattern returns the SQL LIKE pattern, with backslash as its escape character, that
// matches the strings starting with prefix: the prefix's own %, _ and \ stand for themselves.
func LikePrefixPattern(prefix string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(prefix) + "%"
}

// TaskListParams selects the tasks of a run.
type TaskListParams struct{ RunID string }

// AttemptListParams selects attempts; Task "" means every task of the run.
type AttemptListParams struct {
	RunID string
	Task  string
}

// LogListParams selects log lines; Task "" means every task. AfterSeq and Limit page through one
// task's lines (Limit 0 means no limit).
type LogListParams struct {
	RunID    string
	Task     string
	AfterSeq int64
	Limit    int
}

// WorkflowListParams lists workflows; Limit 0 means no limit.
type WorkflowListParams struct{ Limit int }

// WorkflowVersionGetParams selects a version by hash.
type WorkflowVersionGetParams struct{ Hash string }

// DeadLetterListParams lists dead letters; Limit 0 means 100.
type DeadLetterListParams struct{ Limit int }

// Workflow is a named workflow and its current version.
type Workflow struct {
	Name        string
	Description string
	CurrentHash string
	Schedule    string
	RunCount    int
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// WorkflowVersion is one stored version of a workflow.
type WorkflowVersion struct {
	Workflow  string
	Hash      string
	Plan      json.RawMessage // the compiled workflow.Plan
	CreatedAt time.Time
}

// Run is one execution of a workflow.
type Run struct {
	ID             string
	Workflow       string
	WorkflowHash   string
	Status         string
	TriggeredBy    string
	IdempotencyKey string
	Error          string
	TaskCount      int
	// Params is the run's parameters, a JSON object; nil when its workflow declares none.
	Params     json.RawMessage
	CreatedAt  time.Time // when run.submitted was published
	StartedAt  *time.Time
	FinishedAt *time.Time
}

// Task is one task of a run, at its latest applied attempt.
type Task struct {
	RunID          string
	Workflow       string
	RunStatus      string
	Name           string
	Index          int
	Executor       string
	DependsOn      []string
	Status         string
	Attempt        int // latest attempt, 0 before the first dispatch
	MaxRetries     int
	TimeoutSeconds int
	Output         json.RawMessage
	Error          string
	Reason         string
	StartedAt      *time.Time
	FinishedAt     *time.Time
}

// Attempt is one attempt of a task.
type Attempt struct {
	RunID        string
	Task         string
	Attempt      int
	Status       string
	Instance     string
	ExitCode     *int
	Error        string
	Reason       string
	DurationMS   int64
	DispatchedAt *time.Time
	StartedAt    *time.Time
	FinishedAt   *time.Time
}

// LogLine is one stored line of a task's output.
type LogLine struct {
	RunID   string
	Task    string
	Attempt int
	Seq     int64
	Stream  string
	Line    string
	Time    time.Time
}

// DeadLetter is a message the recorder could not apply, kept for inspection.
type DeadLetter struct {
	Stream    string
	Seq       uint64
	Subject   string
	Reason    string
	Data      []byte
	CreatedAt time.Time
}

// taskRanks orders task statuses within one attempt; a status not listed is final (TaskRankFinal).
// lost sits below the final statuses: when an executor is declared lost but its attempt did finish
// (a stalled executor that resumes, redeliveries out of order after a server restart), the
// attempt's real result replaces the loss, whichever arrives first. The scheduler agrees: a loss
// below its cap starts a new attempt, which moves the row on whatever the old attempt reports.
var taskRanks = []struct {
	status string
	rank   int
}{
	{event.TaskPending, 0}, {event.TaskPaused, 0},
	{event.TaskDispatched, 1},
	{event.TaskRunning, TaskRankRunning},
	{event.TaskLost, 3},
}

// TaskRankRunning is the rank of a running task: a task row below it has not started its attempt.
const TaskRankRunning = 2

// TaskRankEnded is the lowest rank of an attempt that has ended: lost or final. Its end fields
// (error, reason, exit code, duration, finish time) are recorded from this rank on.
const TaskRankEnded = 3

// TaskRankFinal is the rank of the statuses no result replaces within an attempt: success, failed,
// skipped, cancelled.
const TaskRankFinal = 4

// TaskRankGivenUp is the rank of the scheduler's verdict on a task whose attempts were lost more
// often than its cap allows (task.failed, reason max_lost, at the last lost attempt). The scheduler
// has then failed the task and skipped what depends on it, and ignores whatever that attempt still
// reports; the verdict outranks a real result of the same attempt, so the database ends the same
// whichever of the two arrives first.
const TaskRankGivenUp = 5

// TaskRank orders task statuses within one attempt: pending 0 < dispatched 1 < running 2 < lost 3 <
// success, failed, skipped, cancelled 4 < failed with reason max_lost 5. reason is the reason of the
// event (or row) that brought the status.
func TaskRank(status, reason string) int {
	if status == event.TaskFailed && reason == event.ReasonMaxLost {
		return TaskRankGivenUp
	}
	for _, r := range taskRanks {
		if r.status == status {
			return r.rank
		}
	}
	return TaskRankFinal
}

// TaskRankSQL is TaskRank as an SQL CASE expression over a status and a reason column, so every SQL
// store compares exactly as the Go code does.
func TaskRankSQL(statusCol, reasonCol string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "(CASE WHEN %s = '%s' AND %s = '%s' THEN %d", statusCol, event.TaskFailed, reasonCol, event.ReasonMaxLost, TaskRankGivenUp)
	for _, r := range taskRanks {
		fmt.Fprintf(&b, " WHEN %s = '%s' THEN %d", statusCol, r.status, r.rank)
	}
	fmt.Fprintf(&b, " ELSE %d END)", TaskRankFinal)
	return b.String()
}

// TaskAdvances reports whether a task at (toAttempt, toRank) may replace one at (fromAttempt,
// fromRank): the pair must be strictly greater in (attempt, rank) order.
func TaskAdvances(fromAttempt, fromRank, toAttempt, toRank int) bool {
	if toAttempt != fromAttempt {
		return toAttempt > fromAttempt
	}
	return toRank > fromRank
}

// RunRank orders run statuses: pending 0 < running, paused 1 < terminal 2.
func RunRank(status string) int {
	switch status {
	case event.RunPending:
		return 0
	case event.RunRunning, event.RunPaused:
		return 1
	default:
		return 2
	}
}

// RunRankSQL is RunRank as an SQL CASE expression over a status column.
func RunRankSQL(col string) string {
	return "(CASE " + col + " WHEN '" + event.RunPending + "' THEN 0 WHEN '" + event.RunRunning + "' THEN 1" +
		" WHEN '" + event.RunPaused + "' THEN 1 ELSE 2 END)"
}

// RunAdvances reports whether a run in status from may move to status to.
func RunAdvances(from, to string) bool {
	rf, rt := RunRank(from), RunRank(to)
	return rt > rf || (rt == 1 && rf == 1 && from != to)
}

// RunStatusOf returns the run status a run event implies (run.started and run.resumed: running;
// run.paused: paused; run.finished: its Status, failed when empty), and false for every other event.
func RunStatusOf(e *event.Event) (string, bool) {
	switch e.Type {
	case event.TypeRunStarted, event.TypeRunResumed:
		return event.RunRunning, true
	case event.TypeRunPaused:
		return event.RunPaused, true
	case event.TypeRunFinished:
		if e.Status == "" {
			return event.RunFailed, true
		}
		return e.Status, true
	}
	return "", false
}

// IsRunRequest reports whether an event type is a control request (cancel, pause, resume). Stores
// record requests nowhere; they only check that the run exists.
func IsRunRequest(typ string) bool {
	switch typ {
	case event.TypeRunCancelRequested, event.TypeRunPauseRequested, event.TypeRunResumeRequested:
		return true
	}
	return false
}

// TaskStatusOf returns the task status an event type implies, and false for events that do not
// change a task (run events).
func TaskStatusOf(e *event.Event) (string, bool) {
	switch e.Type {
	case event.TypeTaskDispatched:
		return event.TaskDispatched, true
	case event.TypeTaskStarted:
		return event.TaskRunning, true
	case event.TypeTaskSucceeded:
		return event.TaskSuccess, true
	case event.TypeTaskFailed:
		if e.Reason == event.ReasonLost {
			return event.TaskLost, true
		}
		return event.TaskFailed, true
	case event.TypeTaskSkipped:
		return event.TaskSkipped, true
	case event.TypeTaskCancelled:
		return event.TaskCancelled, true
	}
	return "", false
}
