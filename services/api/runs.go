package api

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ork-go/ork/pkg/client"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/httpapi"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/view"
	"github.com/ork-go/ork/pkg/workflow"
)

// maxIdempotencyKey bounds the Idempotency-Key header (the event's token fields allow 1 KiB).
const maxIdempotencyKey = 256

func (s *Server) triggerRun(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	var req httpapi.TriggerRequest
	if len(body) > 0 {
		dec := json.NewDecoder(bytesReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeProblem(w, r, probBadRequest, `the body must be a JSON object such as {"params": {"day": "2024-08-01"}}: `+err.Error())
			return
		}
	}
	key := r.Header.Get("Idempotency-Key")
	if len(key) > maxIdempotencyKey {
		writeProblem(w, r, probBadRequest, "Idempotency-Key is over "+strconv.Itoa(maxIdempotencyKey)+" bytes")
		return
	}
	// Past the stream's duplicate window the key's run is still in the database: same answer.
	if key != "" {
		runID := client.SubmitRunID(client.SubmitParams{IdempotencyKey: client.TriggerKey(name, key)})
		if run, err := s.store.RunGet(r.Context(), store.RunGetParams{ID: runID}); err == nil && run.Workflow == name {
			writeJSON(w, http.StatusOK, httpapi.Triggered{RunID: runID, Workflow: name, Version: run.WorkflowHash, Repeat: true, URL: runURL(runID)})
			return
		}
	}
	tr, err := s.client.Trigger(r.Context(), client.TriggerParams{Workflow: name, Params: req.Params, IdempotencyKey: key,
		TriggeredBy: "api:" + principal(r.Context()).Name})
	var perr *workflow.ParamError
	switch {
	case errors.Is(err, client.ErrNotRegistered):
		writeProblem(w, r, probNotFound, "no registered workflow "+strconv.Quote(name)+" (PUT /api/v1/workflows/"+name+" registers it)")
		return
	case errors.As(err, &perr):
		p := httpapi.Problem{Type: httpapi.ProblemTypeBase + probParams.slug, Title: http.StatusText(probParams.status), Status: probParams.status,
			Detail: perr.Error()}
		for _, msg := range perr.Problems {
			p.Errors = append(p.Errors, &workflow.Error{Path: "params", Message: msg})
		}
		writeProblemValue(w, r, p)
		return
	case err != nil:
		s.internal(w, r, err)
		return
	}
	status := http.StatusCreated
	if tr.Repeat {
		status = http.StatusOK
	} else {
		w.Header().Set("Location", runURL(tr.RunID))
	}
	writeJSON(w, status, httpapi.Triggered{RunID: tr.RunID, Workflow: name, Version: tr.Plan.Hash, Repeat: tr.Repeat, URL: runURL(tr.RunID)})
}

func runURL(id string) string { return "/api/v1/runs/" + id }

func summarizeRun(r store.Run) httpapi.RunSummary {
	var errText *string
	if r.Error != "" {
		errText = &r.Error
	}
	return httpapi.RunSummary{RunID: r.ID, Workflow: r.Workflow, Version: r.WorkflowHash, Status: r.Status, Error: errText,
		Params: r.Params, TriggeredBy: r.TriggeredBy, IdempotencyKey: r.IdempotencyKey, ScheduledFor: r.ScheduledFor,
		TaskCount: r.TaskCount, CreatedAt: r.CreatedAt, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt}
}

func (s *Server) listRuns(w http.ResponseWriter, r *http.Request) {
	size, ok := pageSize(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	p := store.RunListParams{Workflow: q.Get("workflow"), Status: q.Get("status"), TriggeredBy: q.Get("triggered_by"),
		IDPrefix: q.Get("id_prefix"), Limit: size + 1}
	if p.Status != "" && !event.IsRunStatus(p.Status) {
		writeProblem(w, r, probBadRequest, "unknown status "+strconv.Quote(p.Status)+": want pending, running, paused, success, failed or cancelled")
		return
	}
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"since", &p.Since}, {"until", &p.Until}} {
		if v := q.Get(f.name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				writeProblem(w, r, probBadRequest, f.name+" must be an RFC 3339 time such as 2024-08-01T00:00:00Z, got "+strconv.Quote(v))
				return
			}
			*f.dst = t
		}
	}
	if tok := q.Get("page_token"); tok != "" {
		c, err := decodeRunCursor(tok)
		if err != nil {
			writeProblem(w, r, probBadRequest, "page_token is not one this server gave")
			return
		}
		p.Before = c
	}
	runs, err := s.store.RunList(r.Context(), p)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	out := httpapi.RunList{Runs: make([]httpapi.RunSummary, 0, len(runs))}
	if len(runs) > size { // one more than the page: there is a next page, after the page's last
		runs = runs[:size]
		out.NextPageToken = encodeRunCursor(runs[size-1].Cursor())
	}
	for _, run := range runs {
		out.Runs = append(out.Runs, summarizeRun(run))
	}
	writeJSON(w, http.StatusOK, out)
}

// A run page token is the position of a page's last run, (created_at, id): the next page starts
// after it, so runs created while a client pages are neither skipped nor repeated.
func encodeRunCursor(c *store.RunCursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte(c.CreatedAt.UTC().Format(time.RFC3339Nano) + "|" + c.ID))
}

func decodeRunCursor(tok string) (*store.RunCursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return nil, err
	}
	ts, id, ok := strings.Cut(string(b), "|")
	if !ok || id == "" {
		return nil, errors.New("no id")
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return nil, err
	}
	return &store.RunCursor{CreatedAt: t, ID: id}, nil
}

// runOr404 reads the run {id}, answering 404 itself.
func (s *Server) runOr404(w http.ResponseWriter, r *http.Request) (store.Run, bool) {
	id := r.PathValue("id")
	run, err := s.store.RunGet(r.Context(), store.RunGetParams{ID: id})
	if errors.Is(err, store.ErrNotFound) {
		writeProblem(w, r, probNotFound, "no run "+strconv.Quote(id)+" in the database (GET /api/v1/runs lists them)")
		return run, false
	}
	if err != nil {
		s.internal(w, r, err)
		return run, false
	}
	return run, true
}

func (s *Server) getRun(w http.ResponseWriter, r *http.Request) {
	run, ok := s.runOr404(w, r)
	if !ok {
		return
	}
	tasks, err := s.store.TaskList(r.Context(), store.TaskListParams{RunID: run.ID})
	if err != nil {
		s.internal(w, r, err)
		return
	}
	attempts, err := s.store.AttemptList(r.Context(), store.AttemptListParams{RunID: run.ID})
	if err != nil {
		s.internal(w, r, err)
		return
	}
	d := httpapi.RunDetail{Run: view.FromStore(run, tasks), Version: run.WorkflowHash, TriggeredBy: run.TriggeredBy,
		IdempotencyKey: run.IdempotencyKey, ScheduledFor: run.ScheduledFor, Attempts: make([]httpapi.Attempt, 0, len(attempts))}
	for _, a := range attempts {
		d.Attempts = append(d.Attempts, httpapi.Attempt{Task: a.Task, Attempt: a.Attempt, Status: a.Status, Instance: a.Instance,
			ExitCode: a.ExitCode, Error: a.Error, Reason: a.Reason, DurationMS: a.DurationMS,
			DispatchedAt: a.DispatchedAt, StartedAt: a.StartedAt, FinishedAt: a.FinishedAt})
	}
	d.DAG = s.runDAG(r, run.WorkflowHash)
	writeJSON(w, http.StatusOK, d)
}

// runDAG is the DAG of a run's version, for drawing it; nil when the version is not stored (the
// run answers without it rather than failing).
func (s *Server) runDAG(r *http.Request, hash string) []httpapi.DAGTask {
	v, err := s.store.WorkflowVersionGet(r.Context(), store.WorkflowVersionGetParams{Hash: hash})
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.log.Warn("reading a run's workflow version failed", zapPath(r), zapErr(err))
		}
		return nil
	}
	var plan workflow.Plan
	if err := json.Unmarshal(v.Plan, &plan); err != nil {
		s.log.Warn("decoding a stored workflow version failed", zapPath(r), zapErr(err))
		return nil
	}
	return httpapi.DAGOf(&plan)
}

func (s *Server) cancelRun(w http.ResponseWriter, r *http.Request) {
	s.control(w, r, (*client.Client).Cancel)
}

func (s *Server) pauseRun(w http.ResponseWriter, r *http.Request) {
	s.control(w, r, (*client.Client).Pause)
}

func (s *Server) resumeRun(w http.ResponseWriter, r *http.Request) {
	s.control(w, r, (*client.Client).Resume)
}

// control sends a control request and answers 202: the scheduler acts on it asynchronously, and
// a repeated request does no harm (cancelling a cancelled run changes nothing).
func (s *Server) control(w http.ResponseWriter, r *http.Request, send func(*client.Client, ctxT, client.ControlParams) (event.Event, error)) {
	id := r.PathValue("id")
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	var req httpapi.ControlRequest
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			writeProblem(w, r, probBadRequest, `the body must be empty or a JSON object such as {"reason": "..."}: `+err.Error())
			return
		}
	}
	e, err := send(s.client, r.Context(), client.ControlParams{RunID: id, Reason: req.Reason, TriggeredBy: "api:" + principal(r.Context()).Name})
	if errors.Is(err, client.ErrUnknownRun) {
		writeProblem(w, r, probNotFound, "no run "+strconv.Quote(id)+" on the cluster")
		return
	}
	if err != nil {
		s.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, httpapi.ControlAccepted{RunID: id, Request: e.Type, RequestID: e.ID})
}

// logsPageDefault and logsPageMax bound a page of log lines.
const (
	logsPageDefault = 1000
	logsPageMax     = 10000
)

// runLogs pages through a run's log lines: per task (and attempt), after the seq given as offset.
func (s *Server) runLogs(w http.ResponseWriter, r *http.Request) {
	run, ok := s.runOr404(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	p := store.LogListParams{RunID: run.ID, Task: q.Get("task"), Limit: logsPageDefault}
	for _, f := range []struct {
		name string
		dst  *int
		max  int
	}{{"limit", &p.Limit, logsPageMax}, {"attempt", &p.Attempt, 1 << 20}} {
		if v := q.Get(f.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > f.max {
				writeProblem(w, r, probBadRequest, f.name+" must be a whole number from 1 to "+strconv.Itoa(f.max)+", got "+strconv.Quote(v))
				return
			}
			*f.dst = n
		}
	}
	if v := q.Get("offset"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeProblem(w, r, probBadRequest, "offset must be a whole number ≥ 0 (the seq of the last line read), got "+strconv.Quote(v))
			return
		}
		if p.Task == "" || p.Attempt == 0 {
			writeProblem(w, r, probBadRequest, "offset pages through the lines of one task's attempt (their seq restarts with each attempt): give task and attempt as well")
			return
		}
		p.AfterSeq = n
	}
	lines, err := s.store.LogList(r.Context(), p)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	out := httpapi.LogPage{Lines: make([]httpapi.LogLine, 0, len(lines))}
	for _, l := range lines {
		out.Lines = append(out.Lines, httpapi.LogLine{Task: l.Task, Attempt: l.Attempt, Seq: l.Seq, Stream: l.Stream, Line: l.Line, Time: l.Time})
	}
	if full := len(lines) == p.Limit; full && p.Task != "" && p.Attempt > 0 {
		next := lines[len(lines)-1].Seq
		out.NextOffset = &next
	} else if full {
		out.More = true // page through one task's attempt to read them all
	}
	writeJSON(w, http.StatusOK, out)
}
