// Package httpapi is the wire format of Ork's HTTP API (/api/v1, served by services/api and `ork
// serve`) and a Go client for it. The server encodes these types and the client decodes them, so
// the JSON has one definition; docs/api.md and the OpenAPI document served at
// /api/v1/openapi.json describe the same.
package httpapi

import (
	"encoding/json"
	"time"

	"github.com/ork-go/ork/pkg/client"
	"github.com/ork-go/ork/pkg/view"
	"github.com/ork-go/ork/pkg/workflow"
)

// WorkflowSummary is a registered workflow in a list.
type WorkflowSummary struct {
	Name        string           `json:"name"`
	Description string           `json:"description"`
	Version     string           `json:"version"`  // the plan's hash
	Revision    uint64           `json:"revision"` // grows with every change of the registration
	Schedule    string           `json:"schedule"`
	Params      []workflow.Param `json:"params"`
	TaskCount   int              `json:"task_count"`
	Dir         string           `json:"dir"`
	AppliedAt   time.Time        `json:"applied_at"`
	AppliedBy   string           `json:"applied_by"`
}

// DAGTask is one node of a workflow's compiled DAG.
type DAGTask struct {
	Name      string   `json:"name"`
	Executor  string   `json:"executor"`
	DependsOn []string `json:"depends_on"`
}

// WorkflowDetail is one registered workflow.
type WorkflowDetail struct {
	WorkflowSummary
	DAG  []DAGTask      `json:"dag"`  // in plan (topological) order
	Plan *workflow.Plan `json:"plan"` // the compiled workflow, as runs get it
	// Source is the YAML the workflow was registered from; omitted when its registration did not
	// keep it (registered before sources were kept).
	Source string `json:"source,omitempty"`
	// Versions are the workflow's versions the database knows, newest first (the current one
	// included); omitted where no database is read.
	Versions []Version `json:"versions,omitempty"`
}

// Version is one version of a workflow: the hash of its compiled plan, first seen at CreatedAt.
type Version struct {
	Version   string    `json:"version"`
	CreatedAt time.Time `json:"created_at"`
}

// WorkflowList is a page of workflows.
type WorkflowList struct {
	Workflows     []WorkflowSummary `json:"workflows"`
	NextPageToken string            `json:"next_page_token"` // "" on the last page
}

// Deleted answers a deletion.
type Deleted struct {
	Deleted string `json:"deleted"`
}

// TriggerRequest is the body of POST /workflows/{name}/runs.
type TriggerRequest struct {
	Params map[string]json.RawMessage `json:"params,omitempty"`
}

// Triggered answers a trigger.
type Triggered struct {
	RunID    string `json:"run_id"`
	Workflow string `json:"workflow"`
	Version  string `json:"version"`
	// Repeat is true when this idempotency key had already started the run: nothing new started.
	Repeat bool   `json:"repeat"`
	URL    string `json:"url"`
}

// RunSummary is a run in a list.
type RunSummary struct {
	RunID          string          `json:"run_id"`
	Workflow       string          `json:"workflow"`
	Version        string          `json:"version"`
	Status         string          `json:"status"`
	Error          *string         `json:"error"`
	Params         json.RawMessage `json:"params"`
	TriggeredBy    string          `json:"triggered_by"`
	IdempotencyKey string          `json:"idempotency_key"`
	// ScheduledFor is the nominal time of the schedule tick that fired the run; absent for a run no
	// schedule fired.
	ScheduledFor *time.Time `json:"scheduled_for,omitempty"`
	TaskCount    int        `json:"task_count"`
	CreatedAt    time.Time  `json:"created_at"`
	StartedAt    *time.Time `json:"started_at"`
	FinishedAt   *time.Time `json:"finished_at"`
}

// RunList is a page of runs, newest first.
type RunList struct {
	Runs          []RunSummary `json:"runs"`
	NextPageToken string       `json:"next_page_token"`
}

// RunDetail is one run: the CLI's JSON (docs/run.schema.json) and its attempts.
type RunDetail struct {
	*view.Run
	Version        string `json:"version"`
	TriggeredBy    string `json:"triggered_by"`
	IdempotencyKey string `json:"idempotency_key"`
	// ScheduledFor is the nominal time of the schedule tick that fired the run; absent for a run no
	// schedule fired.
	ScheduledFor *time.Time `json:"scheduled_for,omitempty"`
	Attempts     []Attempt  `json:"attempts"`
	// DAG is the tasks of the run's version and their dependencies, in plan order; omitted when
	// the database does not have that version.
	DAG []DAGTask `json:"dag,omitempty"`
}

// Whoami says who a request's token is: its name and scope, and whether the server requires
// tokens at all (without, every request is "local" with scope admin).
type Whoami struct {
	Name           string `json:"name"`
	Scope          string `json:"scope"`
	TokensRequired bool   `json:"tokens_required"`
}

// Attempt is one attempt of a task.
type Attempt struct {
	Task         string     `json:"task"`
	Attempt      int        `json:"attempt"`
	Status       string     `json:"status"`
	Instance     string     `json:"instance"`
	ExitCode     *int       `json:"exit_code"`
	Error        string     `json:"error"`
	Reason       string     `json:"reason"`
	DurationMS   int64      `json:"duration_ms"`
	DispatchedAt *time.Time `json:"dispatched_at"`
	StartedAt    *time.Time `json:"started_at"`
	FinishedAt   *time.Time `json:"finished_at"`
}

// ControlRequest is the optional body of cancel, pause and resume.
type ControlRequest struct {
	Reason string `json:"reason,omitempty"`
}

// ControlAccepted answers cancel, pause and resume (202: the scheduler acts on it).
type ControlAccepted struct {
	RunID     string `json:"run_id"`
	Request   string `json:"request"` // the event type sent
	RequestID string `json:"request_id"`
}

// LogLine is one line of a task's output.
type LogLine struct {
	Task    string    `json:"task"`
	Attempt int       `json:"attempt"`
	Seq     int64     `json:"seq"`
	Stream  string    `json:"stream"` // stdout or stderr
	Line    string    `json:"line"`
	Time    time.Time `json:"time"`
}

// LogPage is a page of log lines.
type LogPage struct {
	Lines []LogLine `json:"lines"`
	// NextOffset is the offset of the next page of the lines of the task's attempt (given both);
	// nil on the last page.
	NextOffset *int64 `json:"next_offset"`
	// More is true when a page of several attempts or tasks is full: there may be more lines
	// (page through each task's attempt with offset to read them all).
	More bool `json:"more,omitempty"`
}

// Problem is an RFC 9457 problem details object: every error the API answers.
type Problem struct {
	Type     string            `json:"type"`
	Title    string            `json:"title"`
	Status   int               `json:"status"`
	Detail   string            `json:"detail,omitempty"`
	Instance string            `json:"instance,omitempty"`
	Errors   []*workflow.Error `json:"errors,omitempty"` // a workflow's or the request's problems, as `ork validate --json`
	// RetryAfter is the rate limiter's wait in seconds (also the Retry-After header).
	RetryAfter int `json:"retry_after,omitempty"`
}

// ProblemTypeBase prefixes the type of every problem; the rest is its kind.
const ProblemTypeBase = "https://ork.dev/problems/"

// Error makes a Problem an error: the detail, and each listed error on a line of its own.
func (p *Problem) Error() string {
	s := p.Detail
	if s == "" {
		s = p.Title
	}
	for _, e := range p.Errors {
		s += "\n" + e.Error()
	}
	return s
}

// Kind is the problem's kind: the end of its type ("not-found", "invalid-params", ...).
func (p *Problem) Kind() string {
	if len(p.Type) > len(ProblemTypeBase) && p.Type[:len(ProblemTypeBase)] == ProblemTypeBase {
		return p.Type[len(ProblemTypeBase):]
	}
	return p.Type
}

// SummaryOf is the summary of a registered workflow.
func SummaryOf(r client.Registered) WorkflowSummary {
	p := r.Plan
	params := p.Params
	if params == nil {
		params = []workflow.Param{}
	}
	return WorkflowSummary{Name: p.Name, Description: p.Description, Version: p.Hash, Revision: r.Revision,
		Schedule: p.ScheduleCron(), Params: params, TaskCount: len(p.Tasks), Dir: p.Dir, AppliedAt: r.AppliedAt, AppliedBy: r.AppliedBy}
}

// DetailOf is a registered workflow in full.
func DetailOf(r client.Registered) WorkflowDetail {
	return WorkflowDetail{WorkflowSummary: SummaryOf(r), Plan: r.Plan, DAG: DAGOf(r.Plan), Source: r.Source}
}

// DAGOf is a plan's tasks and their dependencies, in plan order.
func DAGOf(p *workflow.Plan) []DAGTask {
	dag := make([]DAGTask, len(p.Tasks))
	for i, t := range p.Tasks {
		deps := t.DependsOn
		if deps == nil {
			deps = []string{}
		}
		dag[i] = DAGTask{Name: t.Name, Executor: t.Executor, DependsOn: deps}
	}
	return dag
}

// RerunRequest is the body of POST /runs/{id}/rerun.
type RerunRequest struct {
	Mode   string `json:"mode"`    // "all" (default) or "failed"
	DryRun bool   `json:"dry_run"` // only say what would run
}

// Rerun answers a rerun: the new run (none for a dry run), what it runs and what it reuses.
type Rerun struct {
	RunID   string   `json:"run_id,omitempty"`
	RerunOf string   `json:"rerun_of"`
	Mode    string   `json:"mode"`
	Run     []string `json:"run"`    // the tasks that run again, in plan order
	Reused  []string `json:"reused"` // the tasks whose outputs are taken from the run rerun
	DryRun  bool     `json:"dry_run"`
	URL     string   `json:"url,omitempty"`
	// Repeat is true when this Idempotency-Key had already started the rerun: nothing new started.
	Repeat bool `json:"repeat,omitempty"`
}
