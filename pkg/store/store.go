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
//   - Registrations mirror the workflow registry (the ork_workflows KV bucket: one key per workflow
//     name, its value the current plan, every change a new revision) and are applied before the
//     batch's events. A registration applies only when its Revision is greater than the one the
//     workflow holds (0 when it never was registered; KV revisions start at 1), so a replayed or
//     older one changes nothing, whatever the order they arrive in; several of one name in a batch
//     apply as if one by one, in batch order. A registration with a plan upserts the workflow by
//     name (description, schedule, current hash = the plan's hash, updated_at moved forward to
//     AppliedAt), inserts its version and the version's workflow_tasks when the hash is new (as
//     run.submitted does), and marks the workflow registered. A deletion (no plan) marks it not
//     registered and changes nothing else: the row, its versions and runs stay. Both record the
//     revision, AppliedAt and AppliedBy. A deletion of a workflow the store does not know inserts it,
//     not registered and without a version, so that an older registration arriving later is still
//     ignored.
//   - run.submitted inserts the workflow (by name; description and current version updated unless
//     the workflow is registered: then the registry says what is current), its version (by content
//     hash, with the plan JSON), the workflow_tasks of that version, the run (status pending, with its
//     params and the run it reruns, as the event says, known to the store or not) and one task row
//     per plan task (status pending, attempt 0). It never changes a workflow's registration. A
//     second submission of the same run id or idempotency key changes nothing, and so does one of
//     the same workflow and nominal time (ScheduledFor: a workflow has at most one run per schedule
//     tick, which a unique index guarantees in the SQL stores) under another run id: that run is
//     not stored, so its later events are orphans.
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
	"github.com/ork-go/ork/pkg/workflow"
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
	// WorkflowList returns workflows by name (byte order) with their run counts, filtered and paged.
	WorkflowList(ctx context.Context, p WorkflowListParams) ([]Workflow, error)
	// WorkflowGet returns one workflow by name with its run count; ErrNotFound when there is none.
	WorkflowGet(ctx context.Context, p WorkflowGetParams) (Workflow, error)
	// WorkflowVersionGet returns a stored workflow version (its plan) by content hash.
	WorkflowVersionGet(ctx context.Context, p WorkflowVersionGetParams) (WorkflowVersion, error)
	// WorkflowVersionList returns a workflow's versions with their plans, newest first (created_at
	// descending, then hash); none for a workflow the store does not know.
	WorkflowVersionList(ctx context.Context, p WorkflowVersionListParams) ([]WorkflowVersion, error)
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
	// Registrations are changes of the workflow registry, mirrored into the workflows.
	Registrations []Registration
}

// Empty reports whether the batch holds nothing to write.
func (p *ApplyBatchParams) Empty() bool {
	return len(p.Events) == 0 && len(p.Logs) == 0 && len(p.DeadLetters) == 0 && len(p.Registrations) == 0
}

// Registration is one change of the workflow registry (the ork_workflows KV bucket): a workflow
// registered with its current plan, or deleted from the registry.
type Registration struct {
	Name string
	// Revision is the change's KV revision. A registration applies only when it is greater than the
	// workflow's stored one, which makes registrations idempotent and safe to replay or reorder.
	Revision uint64
	// Plan is the registered plan; nil means the workflow was deleted from the registry.
	Plan *workflow.Plan
	// AppliedAt is when the change was made (the KV entry's time); zero means now.
	AppliedAt time.Time
	// AppliedBy says who made it.
	AppliedBy string
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
	return likeEscaper.Replace(prefix) + "%"
}

// likeEscaper makes %, _ and \ stand for themselves in a LIKE pattern whose escape is \.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// NominalTime returns the nominal time of a run.submitted (event.Event.ScheduledFor) as every store
// keeps it: in UTC, truncated to the microsecond (PostgreSQL's precision), so that which nominal
// times are the same, and so which submissions the one-run-per-tick rule ignores, is the same in
// every store. It returns nil when the event has none (nil or the zero time).
func NominalTime(e *event.Event) *time.Time {
	if e.ScheduledFor == nil || e.ScheduledFor.IsZero() {
		return nil
	}
	t := e.ScheduledFor.UTC().Truncate(time.Microsecond)
	return &t
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
	RunID string
	Task  string
	// Attempt, when set, keeps the lines of that attempt only: seq numbers restart with each
	// attempt, so AfterSeq pages through one (task, attempt).
	Attempt  int
	AfterSeq int64
	Limit    int
}

// WorkflowListParams filters and pages workflows, listed by name. Zero values mean no filter and
// the filters combine; Limit 0 means no limit.
type WorkflowListParams struct {
	// Registered keeps only the workflows the registry holds now.
	Registered bool
	// NameContains keeps the workflows whose name contains it, ignoring the case of ASCII letters (as
	// every store can: other letters are compared as they are).
	NameContains string
	// After keeps the names greater than it, byte for byte: the last name of a page gets the next.
	After string
	Limit int
}

// WorkflowGetParams selects a workflow by name.
type WorkflowGetParams struct{ Name string }

// WorkflowVersionListParams selects a workflow's versions; Limit 0 means no limit.
type WorkflowVersionListParams struct {
	Workflow string
	Limit    int
}

// LikeContainsPattern returns the SQL LIKE pattern, with backslash as its escape character, that
// matches the strings containing sub, sub's ASCII letters lowered: match it against a string with
// its ASCII letters lowered for WorkflowListParams.NameContains.
func LikeContainsPattern(sub string) string {
	return "%" + likeEscaper.Replace(LowerASCII(sub)) + "%"
}

// ContainsFoldASCII reports whether s contains sub, ignoring the case of ASCII letters only, as
// WorkflowListParams.NameContains matches.
func ContainsFoldASCII(s, sub string) bool {
	return strings.Contains(LowerASCII(s), LowerASCII(sub))
}

// LowerASCII returns s with its ASCII letters lowered and every other byte kept.
func LowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
	}
	return string(b)
}

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
	// Registered tells whether the registry holds the workflow now. Revision, AppliedAt and AppliedBy
	// are those of the last registry change applied (a deletion too); 0, nil and "" when none was.
	Registered bool
	Revision   uint64
	AppliedAt  *time.Time
	AppliedBy  string
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
	Params json.RawMessage
	// RerunOf is the run this one reruns (run.submitted's rerun_of); "" when it is no rerun.
	RerunOf string
	// ScheduledFor is the nominal time of the schedule tick that fired the run (run.submitted's
	// scheduled_for), in UTC to the microsecond (NominalTime); nil for a run no schedule fired.
	ScheduledFor *time.Time
	CreatedAt    time.Time // when run.submitted was published
	StartedAt    *time.Time
	FinishedAt   *time.Time
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
