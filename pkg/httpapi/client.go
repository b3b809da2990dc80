package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ork-go/ork/pkg/event"
)

// Client talks to an Ork server's API.
type Client struct {
	base  string // e.g. http://127.0.0.1:4000
	token string
	http  *http.Client
}

// NewClient returns a client of the server at base (scheme, host and port) with a bearer token
// ("" when the server needs none).
func NewClient(base, token string) *Client {
	return &Client{base: strings.TrimRight(base, "/"), token: token, http: &http.Client{}}
}

// Base is the server's base URL.
func (c *Client) Base() string { return c.base }

// do sends one request and decodes a 2xx answer into out; another status is a *Problem.
func (c *Client) do(ctx context.Context, method, path string, body []byte, header http.Header, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("the Ork server at %s: %w", c.base, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return res.StatusCode, fmt.Errorf("reading the answer of %s %s: %w", method, path, err)
	}
	if res.StatusCode/100 != 2 {
		p := &Problem{}
		if json.Unmarshal(data, p) != nil || p.Status == 0 {
			p = &Problem{Status: res.StatusCode, Title: http.StatusText(res.StatusCode), Detail: strings.TrimSpace(string(data))}
		}
		return res.StatusCode, p
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return res.StatusCode, fmt.Errorf("decoding the answer of %s %s: %w", method, path, err)
		}
	}
	return res.StatusCode, nil
}

// IsProblem reports whether err is a problem of the given kind ("not-found", "invalid-params"...).
func IsProblem(err error, kind string) bool {
	var p *Problem
	return errors.As(err, &p) && p.Kind() == kind
}

// Health checks that the server answers.
func (c *Client) Health(ctx context.Context) error {
	_, err := c.do(ctx, "GET", "/healthz", nil, nil, nil)
	return err
}

// PutWorkflow registers a workflow's YAML under name; dir is its folder relative to the server's
// workflows root. created is true when the name was not registered before.
func (c *Client) PutWorkflow(ctx context.Context, name string, yaml []byte, dir string) (WorkflowDetail, bool, error) {
	var out WorkflowDetail
	path := "/api/v1/workflows/" + url.PathEscape(name)
	if dir != "" {
		path += "?dir=" + url.QueryEscape(dir)
	}
	status, err := c.do(ctx, "PUT", path, yaml, http.Header{"Content-Type": {"application/yaml"}}, &out)
	return out, status == http.StatusCreated, err
}

// Workflows lists every registered workflow whose name contains q (all pages).
func (c *Client) Workflows(ctx context.Context, q string) ([]WorkflowSummary, error) {
	var all []WorkflowSummary
	token := ""
	for {
		v := url.Values{"page_size": {"500"}}
		if q != "" {
			v.Set("q", q)
		}
		if token != "" {
			v.Set("page_token", token)
		}
		var page WorkflowList
		if _, err := c.do(ctx, "GET", "/api/v1/workflows?"+v.Encode(), nil, nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Workflows...)
		if page.NextPageToken == "" {
			return all, nil
		}
		token = page.NextPageToken
	}
}

// Workflow reads one registered workflow.
func (c *Client) Workflow(ctx context.Context, name string) (WorkflowDetail, error) {
	var out WorkflowDetail
	_, err := c.do(ctx, "GET", "/api/v1/workflows/"+url.PathEscape(name), nil, nil, &out)
	return out, err
}

// DeleteWorkflow removes a workflow from the registry.
func (c *Client) DeleteWorkflow(ctx context.Context, name string) error {
	_, err := c.do(ctx, "DELETE", "/api/v1/workflows/"+url.PathEscape(name), nil, nil, nil)
	return err
}

// Trigger starts a run of a registered workflow. A repeat with the same idempotency key answers
// the same run (Repeat set).
func (c *Client) Trigger(ctx context.Context, name string, params map[string]json.RawMessage, key string) (Triggered, error) {
	body, err := json.Marshal(TriggerRequest{Params: params})
	if err != nil {
		return Triggered{}, err
	}
	h := http.Header{"Content-Type": {"application/json"}}
	if key != "" {
		h.Set("Idempotency-Key", key)
	}
	var out Triggered
	_, err = c.do(ctx, "POST", "/api/v1/workflows/"+url.PathEscape(name)+"/runs", body, h, &out)
	return out, err
}

// Run reads one run with its tasks and attempts.
func (c *Client) Run(ctx context.Context, id string) (RunDetail, error) {
	var out RunDetail
	_, err := c.do(ctx, "GET", "/api/v1/runs/"+url.PathEscape(id), nil, nil, &out)
	return out, err
}

// RunsQuery filters a list of runs.
type RunsQuery struct {
	Workflow, Status, TriggeredBy string
	IDPrefix                      string // runs whose id starts with it
	Since, Until                  time.Time
	PageSize                      int
	PageToken                     string
}

// Runs lists one page of runs, newest first.
func (c *Client) Runs(ctx context.Context, q RunsQuery) (RunList, error) {
	v := url.Values{}
	for k, s := range map[string]string{"workflow": q.Workflow, "status": q.Status, "triggered_by": q.TriggeredBy,
		"id_prefix": q.IDPrefix, "page_token": q.PageToken} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.UTC().Format(time.RFC3339Nano))
	}
	if q.PageSize > 0 {
		v.Set("page_size", strconv.Itoa(q.PageSize))
	}
	var out RunList
	_, err := c.do(ctx, "GET", "/api/v1/runs?"+v.Encode(), nil, nil, &out)
	return out, err
}

// Logs reads a page of a run's log lines: of one task (task "" for all) and one attempt (0 for
// all), after offset (with a task and an attempt).
func (c *Client) Logs(ctx context.Context, id, task string, attempt int, offset int64, limit int) (LogPage, error) {
	v := url.Values{}
	if task != "" {
		v.Set("task", task)
	}
	if attempt > 0 {
		v.Set("attempt", strconv.Itoa(attempt))
	}
	if offset > 0 {
		v.Set("offset", strconv.FormatInt(offset, 10))
	}
	if limit > 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	var out LogPage
	_, err := c.do(ctx, "GET", "/api/v1/runs/"+url.PathEscape(id)+"/logs?"+v.Encode(), nil, nil, &out)
	return out, err
}

// Cancel, Pause and Resume send a control request (the scheduler acts on it asynchronously).
func (c *Client) Cancel(ctx context.Context, id, reason string) (ControlAccepted, error) {
	return c.control(ctx, id, "cancel", reason)
}

// Pause asks the scheduler to start no new task of the run.
func (c *Client) Pause(ctx context.Context, id string) (ControlAccepted, error) {
	return c.control(ctx, id, "pause", "")
}

// Resume asks the scheduler to go on with a paused run.
func (c *Client) Resume(ctx context.Context, id string) (ControlAccepted, error) {
	return c.control(ctx, id, "resume", "")
}

func (c *Client) control(ctx context.Context, id, action, reason string) (ControlAccepted, error) {
	body, _ := json.Marshal(ControlRequest{Reason: reason})
	var out ControlAccepted
	_, err := c.do(ctx, "POST", "/api/v1/runs/"+url.PathEscape(id)+"/"+action, body, http.Header{"Content-Type": {"application/json"}}, &out)
	return out, err
}

// FollowRun calls fn with each event of a run, in order, from the start (or after the stream
// sequence after), until the stream's end, which comes after run.finished once the server's
// database has it (nil), fn returns an error, or ctx ends. A dropped connection is resumed where
// it stopped, with no gap and no repeat.
func (c *Client) FollowRun(ctx context.Context, id string, after uint64, fn func(event.Event) error) error {
	return c.follow(ctx, "/api/v1/runs/"+url.PathEscape(id)+"/events", after, func(seq uint64, _ string, data []byte) error {
		var e event.Event
		if err := json.Unmarshal(data, &e); err != nil {
			return fmt.Errorf("an event of run %s: %w", id, err)
		}
		e.Seq = seq
		return fn(e)
	})
}

// EndEvent is the name of the event that ends a finite stream (a run's events, a run's logs).
const EndEvent = "end"

// stopError is the callback's error, which ends the following.
type stopError struct{ err error }

func (e *stopError) Error() string { return e.err.Error() }

// follow reads an event stream until its end event, resuming after a dropped connection with
// Last-Event-ID; handle gets each other event.
func (c *Client) follow(ctx context.Context, path string, after uint64, handle func(id uint64, name string, data []byte) error) error {
	failures := 0
	for {
		ended, last, err := c.stream(ctx, path, after, handle)
		if ended || ctx.Err() != nil {
			return ctx.Err()
		}
		var p *Problem
		var stop *stopError
		switch {
		case errors.As(err, &stop):
			return stop.err
		case errors.As(err, &p):
			return err
		}
		if last > after {
			after, failures = last, 0
		} else if failures++; failures > 5 {
			return fmt.Errorf("following %s: %w", path, err)
		}
		t := time.NewTimer(time.Duration(failures) * 200 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// stream reads one connection of an event stream.
func (c *Client) stream(ctx context.Context, path string, after uint64, handle func(uint64, string, []byte) error) (ended bool, last uint64, err error) {
	last = after
	req, err := http.NewRequestWithContext(ctx, "GET", c.base+path, nil)
	if err != nil {
		return false, last, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if after > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatUint(after, 10))
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return false, last, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		p := &Problem{}
		if json.Unmarshal(data, p) != nil || p.Status == 0 {
			p = &Problem{Status: res.StatusCode, Title: http.StatusText(res.StatusCode), Detail: string(data)}
		}
		return false, last, p
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 32<<20)
	var id uint64
	var name string
	var data []byte
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0:
			if name == EndEvent {
				return true, last, nil
			}
			if data != nil {
				if err := handle(id, name, data); err != nil {
					return false, last, &stopError{err}
				}
				last = id
			}
			name, data = "", nil
		case bytes.HasPrefix(line, []byte("id: ")):
			id, _ = strconv.ParseUint(string(line[4:]), 10, 64)
		case bytes.HasPrefix(line, []byte("event: ")):
			name = string(line[7:])
		case bytes.HasPrefix(line, []byte("data: ")):
			data = append([]byte(nil), line[6:]...)
		}
	}
	if err := sc.Err(); err != nil {
		return false, last, err
	}
	return false, last, io.ErrUnexpectedEOF
}

// LogBatch is a batch of log lines of one attempt, as the log stream sends them.
type LogBatch = event.LogBatch

// FollowLogs calls fn with each log batch of a run (of one task when task is set), those stored
// so far and then the new ones, until the run has ended and every line has been delivered (nil),
// fn returns an error, or ctx ends. A dropped connection is resumed where it stopped.
func (c *Client) FollowLogs(ctx context.Context, id, task string, fn func(LogBatch) error) error {
	path := "/api/v1/runs/" + url.PathEscape(id) + "/logs/stream"
	if task != "" {
		path += "?task=" + url.QueryEscape(task)
	}
	return c.follow(ctx, path, 0, func(_ uint64, _ string, data []byte) error {
		var b LogBatch
		if err := json.Unmarshal(data, &b); err != nil {
			return fmt.Errorf("a log batch of run %s: %w", id, err)
		}
		return fn(b)
	})
}

// Rerun starts a new run of a finished run's version and parameters (or, with DryRun, says what
// it would run).
func (c *Client) Rerun(ctx context.Context, id string, req RerunRequest, key string) (Rerun, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return Rerun{}, err
	}
	h := http.Header{"Content-Type": {"application/json"}}
	if key != "" {
		h.Set("Idempotency-Key", key)
	}
	var out Rerun
	_, err = c.do(ctx, "POST", "/api/v1/runs/"+url.PathEscape(id)+"/rerun", body, h, &out)
	return out, err
}

// PutBundle stores a workflow bundle (pkg/bundle) under its hash.
func (c *Client) PutBundle(ctx context.Context, data []byte, hash string) error {
	_, err := c.do(ctx, "PUT", "/api/v1/bundles/"+url.PathEscape(hash), data, http.Header{"Content-Type": {"application/gzip"}}, nil)
	return err
}

// PutWorkflowBundled registers a workflow's YAML under name, its folder being the stored bundle
// hash; dir only records where it was packed.
func (c *Client) PutWorkflowBundled(ctx context.Context, name string, yaml []byte, hash, dir string) (WorkflowDetail, bool, error) {
	var out WorkflowDetail
	path := "/api/v1/workflows/" + url.PathEscape(name) + "?bundle=" + url.QueryEscape(hash) + "&dir=" + url.QueryEscape(dir)
	status, err := c.do(ctx, "PUT", path, yaml, http.Header{"Content-Type": {"application/yaml"}}, &out)
	return out, status == http.StatusCreated, err
}
