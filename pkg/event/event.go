// Package event is the only contract between Ork's services: stream and subject names, the JSON
// envelopes that travel on them, event ids, and the Nats-Msg-Id rule of each message.
//
// Every event names (run, task, attempt). Attempts are 1-based; run-level events carry task "" and
// attempt 0. Consumers must tolerate unknown fields and must reject (dead-letter) envelopes whose
// schema version they do not know.
package event

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ork-go/ork/pkg/workflow"
)

// SchemaVersion is the version of every envelope defined here. A consumer that sees another version
// treats the message as undecodable.
const SchemaVersion = 1

// Streams, subjects and buckets.
const (
	StreamEvents = "ORK_EVENTS" // subjects ork.events.>
	StreamTasks  = "ORK_TASKS"  // WorkQueue, subjects ork.tasks.<executor type>
	StreamLogs   = "ORK_LOGS"   // subjects ork.logs.<run>.<task>

	SubjectEventsAll = "ork.events.>"
	SubjectTasksAll  = "ork.tasks.>"
	SubjectLogsAll   = "ork.logs.>"

	// SubjectRunSubmitted is where anyone starts a run. It carries no run id so that plain NATS
	// clients can publish to one fixed subject.
	SubjectRunSubmitted = "ork.events.run.submitted"

	// BucketRuns is the JetStream KV bucket holding the scheduler's per-run state, under the key
	// RunStateKey(run id) from the run's first event until MaxAge after its last change.
	BucketRuns = "ork_runs"

	// BucketWorkflows is the JetStream KV bucket of registered workflows: the key is the workflow's
	// name, the value its current registration (pkg/client's registry). The recorder mirrors it into
	// the database, where the versions are kept.
	BucketWorkflows = "ork_workflows"

	// BucketBundles is the JetStream object store of workflow bundles (pkg/bundle), each named by
	// its hash: submitters put them, executors fetch them.
	BucketBundles = "ork_bundles"
	// BucketSchedules is the JetStream KV bucket of schedules (package schedule): state.<workflow>,
	// written by the scheduler that fires them; ctl.<workflow> (pause, resume) and
	// req.<workflow>.<id> (trigger, backfill), written by clients and consumed by that scheduler.
	BucketSchedules = "ork_schedules"
	// TriggeredBySchedule is the triggered_by of a run a schedule fired.
	TriggeredBySchedule = "schedule"

	// SubjectRecordedPrefix + run id is a core NATS (not JetStream) notice the recorder publishes after
	// it has committed a run's terminal event, so a waiting client knows the database is up to date.
	SubjectRecordedPrefix = "ork.recorded."
)

// Event types. The subject of an event is "ork.events.<type>.<run id>", except run.submitted.
const (
	TypeRunSubmitted   = "run.submitted"
	TypeRunStarted     = "run.started"
	TypeRunFinished    = "run.finished"
	TypeTaskDispatched = "task.dispatched"
	TypeTaskStarted    = "task.started"
	TypeTaskSucceeded  = "task.succeeded"
	TypeTaskFailed     = "task.failed"
	TypeTaskSkipped    = "task.skipped"
	TypeTaskCancelled  = "task.cancelled"

	// Control requests, published by the CLI or any NATS client. The scheduler answers a pause
	// with run.paused, a resume with run.resumed, and a cancel with task.cancelled for every
	// unfinished task and run.finished (status cancelled).
	TypeRunCancelRequested = "run.cancel_requested"
	TypeRunPauseRequested  = "run.pause_requested"
	TypeRunResumeRequested = "run.resume_requested"
	TypeRunPaused          = "run.paused"
	TypeRunResumed         = "run.resumed"
)

// IsControl reports whether an event type is a control request or its answer. Their Nats-Msg-Id
// includes the event id, so pausing, resuming and pausing again within the dedup window all count.
func IsControl(typ string) bool {
	switch typ {
	case TypeRunCancelRequested, TypeRunPauseRequested, TypeRunResumeRequested, TypeRunPaused, TypeRunResumed:
		return true
	}
	return false
}

// Run statuses.
const (
	RunPending   = "pending"
	RunRunning   = "running"
	RunPaused    = "paused"
	RunSuccess   = "success"
	RunFailed    = "failed"
	RunCancelled = "cancelled"
)

// Task statuses.
const (
	TaskPending    = "pending"
	TaskDispatched = "dispatched"
	TaskRunning    = "running"
	TaskSuccess    = "success"
	TaskFailed     = "failed"
	TaskSkipped    = "skipped"
	TaskCancelled  = "cancelled"
	TaskPaused     = "paused"
	// TaskLost is an attempt whose executor stopped answering; a new attempt runs. A late result of
	// the same attempt may still replace it in the database (its body did finish).
	TaskLost = "lost"
)

// Failure reasons carried in Event.Reason.
const (
	ReasonExit           = "exit"            // the process exited non-zero or the function raised
	ReasonTimeout        = "timeout"         // killed after its timeout
	ReasonOutput         = "output"          // output missing, too large, not JSON, or of the wrong type
	ReasonStart          = "start"           // the process could not be started
	ReasonUpstreamFailed = "upstream_failed" // skipped because a dependency failed for good
	ReasonInput          = "input"           // an input could not be resolved
	ReasonLost           = "lost"            // the attempt's executor stopped responding; a new attempt runs
	ReasonMaxLost        = "max_lost"        // the task's attempts were lost more often than the scheduler's cap; it gave up
	ReasonNoExecutor     = "no_executor"     // no executor of the task's type came online in time
	ReasonMaxDeliveries  = "max_deliveries"  // the dispatch was delivered too many times
	ReasonCancelled      = "cancelled"       // the run was cancelled
	ReasonStalled        = "stalled"         // the run had nothing in flight and could not be re-driven
	ReasonReused         = "reused"          // a rerun took the task's output from the run it reruns (attempt 0: it did not run)
)

// Event is the envelope of everything on ORK_EVENTS. Fields beyond the identity are set per type.
type Event struct {
	V       int       `json:"v"`
	ID      string    `json:"id"` // UUIDv7
	Type    string    `json:"type"`
	Time    time.Time `json:"time"`
	RunID   string    `json:"run_id"`
	Task    string    `json:"task,omitempty"`
	Attempt int       `json:"attempt,omitempty"`

	// Workflow is the workflow name (run.* events).
	Workflow string `json:"workflow,omitempty"`
	// Plan is the compiled workflow (run.submitted only).
	Plan           *workflow.Plan `json:"plan,omitempty"`
	IdempotencyKey string         `json:"idempotency_key,omitempty"`
	TriggeredBy    string         `json:"triggered_by,omitempty"`
	// ScheduledFor is the nominal time of a schedule's tick (run.submitted of a run the schedule
	// fired, TriggeredBy "schedule"): the cron time it stands for, whatever its jitter or lateness.
	// A workflow has at most one run per nominal time.
	ScheduledFor *time.Time `json:"scheduled_for,omitempty"`
	// Params are the run's parameters (run.submitted only): a JSON object with a value for every
	// parameter the plan declares, checked by the submitter (workflow.Plan.BindParams).
	Params json.RawMessage `json:"params,omitempty"`
	// RerunOf is the run this one reruns (run.submitted only): Reuse holds, by task name, the
	// outputs of that run's tasks that are not run again; the scheduler counts them as succeeded.
	RerunOf string                     `json:"rerun_of,omitempty"`
	Reuse   map[string]json.RawMessage `json:"reuse,omitempty"`

	// Status is the final status on run.finished.
	Status string `json:"status,omitempty"`
	// Executor is the executor type on task.dispatched.
	Executor string `json:"executor,omitempty"`
	// Instance is the executor instance that ran the attempt (task.started and terminal events).
	Instance string          `json:"instance,omitempty"`
	Output   json.RawMessage `json:"output,omitempty"`
	Error    string          `json:"error,omitempty"`
	Reason   string          `json:"reason,omitempty"`
	ExitCode *int            `json:"exit_code,omitempty"`
	// DurationMS is the attempt's wall time on terminal task events.
	DurationMS int64 `json:"duration_ms,omitempty"`
	// NotBefore delays a dispatched retry (task.dispatched).
	NotBefore *time.Time `json:"not_before,omitempty"`

	// Seq is the ORK_EVENTS stream sequence, filled in by consumers; never encoded.
	Seq uint64 `json:"-"`
}

// Subject returns the subject the event is published on.
func (e *Event) Subject() string {
	if e.Type == TypeRunSubmitted {
		return SubjectRunSubmitted
	}
	return SubjectEvent(e.Type, e.RunID)
}

// Subject prefixes; the constructors below build every subject from them.
const (
	subjectEventsPrefix = "ork.events."
	subjectTasksPrefix  = "ork.tasks."
	subjectLogsPrefix   = "ork.logs."
)

// SubjectEvent returns the subject of the event of type typ of run runID (not run.submitted,
// which has one fixed subject).
func SubjectEvent(typ, runID string) string { return subjectEventsPrefix + typ + "." + runID }

// SubjectEventsOfType returns the filter matching every event of type typ, of any run.
func SubjectEventsOfType(typ string) string { return subjectEventsPrefix + typ + ".*" }

// SubjectsEventsOfTypes returns SubjectEventsOfType of each type.
func SubjectsEventsOfTypes(types ...string) []string {
	out := make([]string, len(types))
	for i, t := range types {
		out[i] = SubjectEventsOfType(t)
	}
	return out
}

// IsEventSubject tells whether subject is on ORK_EVENTS.
func IsEventSubject(subject string) bool { return strings.HasPrefix(subject, subjectEventsPrefix) }

// IsLogSubject tells whether subject is on ORK_LOGS.
func IsLogSubject(subject string) bool { return strings.HasPrefix(subject, subjectLogsPrefix) }

// ExecutorTypeOfSubject returns the executor type of dispatch subject "ork.tasks.<type>", and
// false for another subject.
func ExecutorTypeOfSubject(subject string) (string, bool) {
	return strings.CutPrefix(subject, subjectTasksPrefix)
}

// MsgID returns the Nats-Msg-Id that makes publishing the event twice harmless.
// run.submitted uses the idempotency key (or the run id); everything else its event identity.
func (e *Event) MsgID() string {
	switch e.Type {
	case TypeRunSubmitted:
		if e.IdempotencyKey != "" {
			return "submit/" + e.IdempotencyKey
		}
		return "submit/" + e.RunID
	case TypeRunStarted, TypeRunFinished:
		return e.RunID + "/" + e.Type
	case TypeRunCancelRequested, TypeRunPauseRequested, TypeRunResumeRequested, TypeRunPaused, TypeRunResumed:
		return e.RunID + "/" + e.Type + "/" + e.ID
	case TypeTaskFailed:
		id := e.RunID + "/" + e.Task + "/" + strconv.Itoa(e.Attempt) + "/" + e.Type
		if e.Reason == ReasonMaxLost {
			// The scheduler's verdict follows the loss of the same attempt, which holds the plain id.
			id += "/" + ReasonMaxLost
		}
		return id
	default:
		return e.RunID + "/" + e.Task + "/" + strconv.Itoa(e.Attempt) + "/" + e.Type
	}
}

// SubjectRunEvents returns the filter matching every event of one run except its submission.
func SubjectRunEvents(runID string) string { return subjectEventsPrefix + "*.*." + runID }

// Dispatch is a ready task on ORK_TASKS, subject "ork.tasks.<executor type>".
type Dispatch struct {
	V        int           `json:"v"`
	RunID    string        `json:"run_id"`
	Workflow string        `json:"workflow"`
	Task     workflow.Task `json:"task"`
	Attempt  int           `json:"attempt"`
	Dir      string        `json:"dir"`
	// Bundle, when set, names the bundle the task runs from (the plan's): the executor fetches it
	// once, checks its hash, and runs in its copy of it instead of Dir.
	Bundle string          `json:"bundle,omitempty"`
	Inputs json.RawMessage `json:"inputs,omitempty"` // a JSON object, resolved bindings
	// NotBefore is set on retries: an executor receiving the dispatch earlier naks it with the
	// remaining delay instead of holding a slot.
	NotBefore    *time.Time `json:"not_before,omitempty"`
	DispatchedAt time.Time  `json:"dispatched_at"`
}

// Subject returns "ork.tasks.<executor type>".
func (d *Dispatch) Subject() string { return SubjectTasks(d.Task.Executor) }

// MsgID returns "run/task/attempt".
func (d *Dispatch) MsgID() string {
	return d.RunID + "/" + d.Task.Name + "/" + strconv.Itoa(d.Attempt)
}

// SubjectTasks returns the dispatch subject of an executor type.
func SubjectTasks(executorType string) string { return subjectTasksPrefix + executorType }

// Durable consumer names: the one every instance of a service shares.
const (
	// ConsumerScheduler is the schedulers' consumer on ORK_EVENTS.
	ConsumerScheduler = "scheduler"
	// ConsumerRecorderEvents and ConsumerRecorderLogs are the recorders' consumers on ORK_EVENTS
	// and ORK_LOGS.
	ConsumerRecorderEvents = "recorder"
	ConsumerRecorderLogs   = "recorder-logs"
)

// ConsumerExecutor returns the consumer on ORK_TASKS shared by every executor of a type.
func ConsumerExecutor(executorType string) string { return "exec-" + executorType }

// Log streams.
const (
	Stdout = "stdout"
	Stderr = "stderr"
)

// LogLine is one line of a task's output.
type LogLine struct {
	Seq    int64     `json:"seq"` // 1-based, per (run, task, attempt)
	Stream string    `json:"stream"`
	Line   string    `json:"line"`
	Time   time.Time `json:"time"`
}

// LogBatch is a batch of log lines of one attempt on ORK_LOGS, subject "ork.logs.<run>.<task>".
type LogBatch struct {
	V       int       `json:"v"`
	RunID   string    `json:"run_id"`
	Task    string    `json:"task"`
	Attempt int       `json:"attempt"`
	Lines   []LogLine `json:"lines"`
}

// Subject returns "ork.logs.<run>.<task>".
func (b *LogBatch) Subject() string { return SubjectTaskLogs(b.RunID, b.Task) }

// SubjectTaskLogs is the subject of the log batches of one task of a run.
func SubjectTaskLogs(runID, task string) string { return subjectLogsPrefix + runID + "." + task }

// SubjectRunLogs matches the log batches of every task of a run.
func SubjectRunLogs(runID string) string { return subjectLogsPrefix + runID + ".*" }

// MsgID returns "run/task/attempt/first seq", so a re-sent batch is dropped by the stream.
func (b *LogBatch) MsgID() string {
	first := int64(0)
	if len(b.Lines) > 0 {
		first = b.Lines[0].Seq
	}
	return "log/" + b.RunID + "/" + b.Task + "/" + strconv.Itoa(b.Attempt) + "/" + strconv.FormatInt(first, 10)
}

// NewID returns a new UUIDv7 string.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

// New returns an event of the given type with a fresh id, the current time and the schema version.
func New(typ, runID, task string, attempt int) Event {
	return Event{V: SchemaVersion, ID: NewID(), Type: typ, Time: time.Now().UTC(), RunID: runID, Task: task, Attempt: attempt}
}

// ErrSchemaVersion is returned by the decoders for an envelope of an unknown schema version.
var ErrSchemaVersion = errors.New("unknown schema version")

// DecodeEvent decodes and checks an event envelope.
func DecodeEvent(data []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(data, &e); err != nil {
		return Event{}, fmt.Errorf("decoding event: %w", err)
	}
	if e.V != SchemaVersion {
		return Event{}, fmt.Errorf("event version %d: %w", e.V, ErrSchemaVersion)
	}
	if e.Type == "" {
		return Event{}, errors.New("decoding event: no type")
	}
	if e.RunID == "" && e.Type != TypeRunSubmitted {
		return Event{}, errors.New("decoding event: no run_id")
	}
	if err := checkSizes(&e); err != nil {
		return Event{}, fmt.Errorf("decoding event: %w", err)
	}
	return e, nil
}

// DecodeDispatch decodes and checks a dispatch.
func DecodeDispatch(data []byte) (Dispatch, error) {
	var d Dispatch
	if err := json.Unmarshal(data, &d); err != nil {
		return Dispatch{}, fmt.Errorf("decoding dispatch: %w", err)
	}
	if d.V != SchemaVersion {
		return Dispatch{}, fmt.Errorf("dispatch version %d: %w", d.V, ErrSchemaVersion)
	}
	if d.RunID == "" || d.Task.Name == "" || d.Attempt < 1 {
		return Dispatch{}, errors.New("decoding dispatch: run_id, task and attempt are required")
	}
	return d, nil
}

// DecodeLogBatch decodes and checks a log batch.
func DecodeLogBatch(data []byte) (LogBatch, error) {
	var b LogBatch
	if err := json.Unmarshal(data, &b); err != nil {
		return LogBatch{}, fmt.Errorf("decoding log batch: %w", err)
	}
	if b.V != SchemaVersion {
		return LogBatch{}, fmt.Errorf("log batch version %d: %w", b.V, ErrSchemaVersion)
	}
	if b.RunID == "" || b.Task == "" {
		return LogBatch{}, errors.New("decoding log batch: run_id and task are required")
	}
	return b, nil
}

// RunStatuses are every status a run can have, in the order a run goes through them.
var RunStatuses = []string{RunPending, RunRunning, RunPaused, RunSuccess, RunFailed, RunCancelled}

// IsRunStatus reports whether s is a run status.
func IsRunStatus(s string) bool {
	for _, x := range RunStatuses {
		if s == x {
			return true
		}
	}
	return false
}

// IsTerminalRun reports whether a run status is final.
func IsTerminalRun(s string) bool { return s == RunSuccess || s == RunFailed || s == RunCancelled }

// IsTerminalTask reports whether a task status is final for its attempt.
func IsTerminalTask(s string) bool {
	return s == TaskSuccess || s == TaskFailed || s == TaskSkipped || s == TaskCancelled || s == TaskLost
}

// runIDNamespace seeds DeriveRunID.
var runIDNamespace = uuid.MustParse("6f726b2d-676f-4000-8000-72756e696473")

// DeriveRunID returns the run id of a submission that did not name one: a name-based UUID of its
// idempotency key (or of any other stable key, such as its stream sequence), so a replayed
// submission always maps to the same run.
func DeriveRunID(key string) string { return uuid.NewSHA1(runIDNamespace, []byte(key)).String() }

// answerNamespace seeds AnswerID.
var answerNamespace = uuid.MustParse("6f726b2d-676f-4000-8000-616e73776572")

// AnswerID returns the event id of the answer of type typ to the control request with id reqID: a
// name-based UUID, so a replayed request re-publishes the same answer and a client can tell the
// answer to its own request from another's. The scheduler's verdict on a task lost too often
// derives its id from the loss's the same way (typ ReasonMaxLost).
func AnswerID(reqID, typ string) string {
	return uuid.NewSHA1(answerNamespace, []byte(typ+"/"+reqID)).String()
}

// SubmissionRunID returns the run id of a run.submitted event read at stream sequence seq: its run_id
// when set, else DeriveRunID of its idempotency key, else DeriveRunID("seq:<seq>"). Every consumer
// (scheduler, recorder) uses it, so a submission without run_id maps to one run everywhere.
func SubmissionRunID(e *Event, seq uint64) string {
	switch {
	case e.RunID != "":
		return e.RunID
	case e.IdempotencyKey != "":
		return DeriveRunID(e.IdempotencyKey)
	default:
		return DeriveRunID("seq:" + strconv.FormatUint(seq, 10))
	}
}

// RunStateKey is the key of a run's state in BucketRuns.
func RunStateKey(runID string) string { return "run." + runID }
