package serve_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/ork-go/ork/cmd/ork/internal/embedded"
	"github.com/ork-go/ork/cmd/ork/internal/serve"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/services/api"
)

// examplesDir is the repository's examples folder, the tests' workflows root.
var examplesDir, _ = filepath.Abs(filepath.Join("..", "..", "..", "..", "examples"))

// server is a running `ork serve` for one test, on a free loopback port.
type server struct {
	*serve.Server
	t    *testing.T
	base string
}

func start(t *testing.T, apiCfg api.Config) *server {
	t.Helper()
	dir := t.TempDir()
	return startWith(t, serve.Config{API: apiCfg, Stack: embedded.Config{DataDir: dir, DBURL: "sqlite://" + filepath.Join(dir, "ork.db")}})
}

// startWith starts cfg (on a free loopback port, with the examples as its workflows root unless
// set) and stops it when the test ends.
func startWith(t *testing.T, cfg serve.Config) *server {
	t.Helper()
	return startServer(t, cfg, true)
}

// startServer is startWith; strict makes an error of Serve a test failure.
func startServer(t *testing.T, cfg serve.Config, strict bool) *server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if cfg.API.Addr == "" {
		cfg.API.Addr = "127.0.0.1:0"
	}
	if cfg.API.WorkflowsRoot == "" {
		cfg.API.WorkflowsRoot = examplesDir
	}
	s, err := serve.Start(ctx, cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil && strict {
			t.Errorf("serve: %v", err)
		}
	})
	return &server{Server: s, t: t, base: s.URL()}
}

// response is an answer read whole.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decoding %s: %v", r.body, err)
	}
}

func (s *server) do(method, path string, body []byte, header ...string) response {
	s.t.Helper()
	req, err := http.NewRequest(method, s.base+path, bytes.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	s.checkResponse(method, path, res, data)
	return response{status: res.StatusCode, header: res.Header, body: data}
}

func (s *server) want(r response, status int) {
	s.t.Helper()
	if r.status != status {
		s.t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
}

func readExample(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(examplesDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// problemBody is the RFC 9457 body the API answers errors with.
type problemBody struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Line    int    `json:"line"`
		Col     int    `json:"col"`
		Path    string `json:"path"`
		Message string `json:"message"`
	} `json:"errors"`
}

func (s *server) wantProblem(r response, status int, slug, detailPart string) problemBody {
	s.t.Helper()
	s.want(r, status)
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		s.t.Errorf("Content-Type %q, want application/problem+json", ct)
	}
	var p problemBody
	r.json(s.t, &p)
	if p.Status != status || !strings.HasSuffix(p.Type, "/"+slug) || !strings.Contains(p.Detail, detailPart) {
		s.t.Errorf("problem %+v, want status %d, type …/%s, detail containing %q", p, status, slug, detailPart)
	}
	return p
}

// Register, re-register (unchanged), update, list, show with its DAG, delete; an invalid workflow
// is a 400 listing every error with its position, and nothing is registered.
func TestWorkflowRegistry(t *testing.T) {
	t.Parallel()
	s := start(t, api.Config{})
	hello := readExample(t, "hello.yaml")
	r := s.do("PUT", "/api/v1/workflows/hello", hello)
	s.want(r, http.StatusCreated)
	var first struct {
		Name     string `json:"name"`
		Version  string `json:"version"`
		Revision uint64 `json:"revision"`
		DAG      []struct {
			Name      string   `json:"name"`
			DependsOn []string `json:"depends_on"`
		} `json:"dag"`
	}
	r.json(t, &first)
	if first.Name != "hello" || first.Version == "" || len(first.DAG) == 0 || r.header.Get("Location") != "/api/v1/workflows/hello" {
		t.Fatalf("registered %+v (Location %q)", first, r.header.Get("Location"))
	}
	again := s.do("PUT", "/api/v1/workflows/hello", hello)
	s.want(again, http.StatusOK)
	var second struct{ Revision uint64 }
	again.json(t, &second)
	if second.Revision != first.Revision {
		t.Errorf("the same YAML again made revision %d, want %d (unchanged)", second.Revision, first.Revision)
	}

	bad := []byte("name: broken\ntasks:\n  a:\n    executor: nope\n  b:\n    executor: noop\n    depends_on: [zz]\n")
	p := s.wantProblem(s.do("PUT", "/api/v1/workflows/broken", bad), http.StatusBadRequest, "invalid-workflow", "2 error(s)")
	if len(p.Errors) != 2 || p.Errors[0].Line != 4 || p.Errors[0].Col == 0 || p.Errors[0].Path == "" || p.Errors[1].Line != 7 {
		t.Errorf("errors %+v, want two with positions (lines 4 and 7)", p.Errors)
	}
	s.wantProblem(s.do("GET", "/api/v1/workflows/broken", nil), http.StatusNotFound, "not-found", "broken")
	s.wantProblem(s.do("PUT", "/api/v1/workflows/other", hello), http.StatusBadRequest, "invalid-workflow", `named "hello", not "other"`)
	s.wantProblem(s.do("PUT", "/api/v1/workflows/hello?dir=../..", hello), http.StatusBadRequest, "bad-request", "inside the server's workflows root")

	s.want(s.do("PUT", "/api/v1/workflows/typed_chain", readExample(t, "typed_chain.yaml")), http.StatusCreated)
	var list struct {
		Workflows []struct {
			Name   string `json:"name"`
			Params []struct {
				Name string `json:"name"`
			} `json:"params"`
		} `json:"workflows"`
		Next string `json:"next_page_token"`
	}
	r = s.do("GET", "/api/v1/workflows?page_size=1", nil)
	s.want(r, http.StatusOK)
	r.json(t, &list)
	if len(list.Workflows) != 1 || list.Workflows[0].Name != "hello" || list.Next == "" {
		t.Fatalf("first page %+v", list)
	}
	r = s.do("GET", "/api/v1/workflows?page_size=1&page_token="+list.Next, nil)
	r.json(t, &list)
	if len(list.Workflows) != 1 || list.Workflows[0].Name != "typed_chain" || len(list.Workflows[0].Params) != 2 || list.Next != "" {
		t.Fatalf("second page %+v", list)
	}
	r = s.do("GET", "/api/v1/workflows?q=TYPED", nil)
	r.json(t, &list)
	if len(list.Workflows) != 1 || list.Workflows[0].Name != "typed_chain" {
		t.Fatalf("search %+v", list)
	}
	s.want(s.do("DELETE", "/api/v1/workflows/hello", nil), http.StatusOK)
	s.wantProblem(s.do("GET", "/api/v1/workflows/hello", nil), http.StatusNotFound, "not-found", "hello")
	s.wantProblem(s.do("DELETE", "/api/v1/workflows/hello", nil), http.StatusNotFound, "not-found", "hello")
}

// sseEvent is one Server-Sent Event.
type sseEvent struct {
	id, typ string
	data    map[string]any
}

// readSSE reads events from an open stream until it ends or stop says so.
func readSSE(t *testing.T, body io.Reader, stop func(sseEvent) bool) []sseEvent {
	t.Helper()
	var out []sseEvent
	var cur sseEvent
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.typ == "end" { // the stream is complete
				return out
			}
			if cur.typ != "" {
				out = append(out, cur)
				if stop != nil && stop(cur) {
					return out
				}
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, "id: "):
			cur.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "event: "):
			cur.typ = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &cur.data); err != nil {
				t.Fatalf("event data %q: %v", line, err)
			}
		}
	}
	return out
}

// openSSE opens an event stream.
func (s *server) openSSE(path, lastID string) *http.Response {
	s.t.Helper()
	req, err := http.NewRequest("GET", s.base+path, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		s.t.Fatalf("event stream: %d %s: %s", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	return res
}

// Trigger with parameters, follow the run live to its end, read it back with its tasks, attempts,
// parameters and logs.
func TestTriggerFollowAndRead(t *testing.T) {
	t.Parallel()
	s := start(t, api.Config{})
	s.want(s.do("PUT", "/api/v1/workflows/typed_chain", readExample(t, "typed_chain.yaml")), http.StatusCreated)
	r := s.do("POST", "/api/v1/workflows/typed_chain/runs", []byte(`{"params": {"city": "Paris"}}`))
	s.want(r, http.StatusCreated)
	var trig struct {
		RunID  string `json:"run_id"`
		Repeat bool   `json:"repeat"`
		URL    string `json:"url"`
	}
	r.json(t, &trig)
	if trig.RunID == "" || trig.Repeat || r.header.Get("Location") != trig.URL {
		t.Fatalf("trigger %+v, Location %q", trig, r.header.Get("Location"))
	}
	res := s.openSSE("/api/v1/runs/"+trig.RunID+"/events", "")
	events := readSSE(t, res.Body, nil) // the stream ends with the run
	res.Body.Close()
	if len(events) == 0 || events[len(events)-1].typ != "run.finished" || events[len(events)-1].data["status"] != "success" {
		t.Fatalf("events %+v, want them to end with a successful run.finished", events)
	}
	for i := 1; i < len(events); i++ {
		if events[i].id <= events[i-1].id && len(events[i].id) == len(events[i-1].id) {
			t.Fatalf("event ids not increasing: %s then %s", events[i-1].id, events[i].id)
		}
	}
	// The stream ends once the database has the end too: one read sees it.
	var run struct {
		Status   string            `json:"status"`
		Params   map[string]string `json:"params"`
		Tasks    map[string]any    `json:"tasks"`
		Attempts []struct {
			Task    string `json:"task"`
			Attempt int    `json:"attempt"`
			Status  string `json:"status"`
		} `json:"attempts"`
		TriggeredBy string `json:"triggered_by"`
	}
	r = s.do("GET", "/api/v1/runs/"+trig.RunID, nil)
	s.want(r, http.StatusOK)
	r.json(t, &run)
	if run.Status != "success" || run.Params["city"] != "Paris" || run.Params["day"] != "2024-07-14" || len(run.Tasks) != 3 ||
		len(run.Attempts) != 3 || run.TriggeredBy != "api:local" {
		t.Fatalf("run %+v", run)
	}
	var runs struct {
		Runs []struct {
			RunID string `json:"run_id"`
		} `json:"runs"`
	}
	r = s.do("GET", "/api/v1/runs?workflow=typed_chain&status=success", nil)
	s.want(r, http.StatusOK)
	r.json(t, &runs)
	if len(runs.Runs) != 1 || runs.Runs[0].RunID != trig.RunID {
		t.Fatalf("runs %+v", runs)
	}
	s.wantProblem(s.do("GET", "/api/v1/runs?status=done", nil), http.StatusBadRequest, "bad-request", `unknown status "done"`)
	var logs struct {
		Lines []struct {
			Task string `json:"task"`
			Line string `json:"line"`
		} `json:"lines"`
	}
	r = s.do("GET", "/api/v1/runs/"+trig.RunID+"/logs?task=report", nil)
	s.want(r, http.StatusOK)
	r.json(t, &logs)
	for _, l := range logs.Lines {
		if l.Task != "report" {
			t.Errorf("a line of %s in report's logs", l.Task)
		}
	}
	s.wantProblem(s.do("GET", "/api/v1/runs/nope", nil), http.StatusNotFound, "not-found", "nope")
	s.wantProblem(s.do("POST", "/api/v1/workflows/typed_chain/runs", []byte(`{"params": {"day": "2024-13-01", "cty": "x"}}`)),
		http.StatusBadRequest, "invalid-params", `unknown param "cty"`)
	s.wantProblem(s.do("POST", "/api/v1/workflows/nope/runs", nil), http.StatusNotFound, "not-found", "nope")
}

// Fifty identical triggers at once, with one idempotency key, start one run: one 201, the others
// 200 with the same run.
func TestIdempotentTrigger(t *testing.T) {
	t.Parallel()
	s := start(t, api.Config{RatePerSecond: -1})
	s.want(s.do("PUT", "/api/v1/workflows/hello", readExample(t, "hello.yaml")), http.StatusCreated)
	const n = 50
	var wg sync.WaitGroup
	statuses := make([]int, n)
	ids := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", s.base+"/api/v1/workflows/hello/runs", nil)
			req.Header.Set("Idempotency-Key", "nightly-2024-08-01")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer res.Body.Close()
			var body struct {
				RunID string `json:"run_id"`
			}
			_ = json.NewDecoder(res.Body).Decode(&body)
			statuses[i], ids[i] = res.StatusCode, body.RunID
		}()
	}
	wg.Wait()
	created := 0
	for i := range n {
		if statuses[i] == http.StatusCreated {
			created++
		} else if statuses[i] != http.StatusOK {
			t.Errorf("request %d: status %d", i, statuses[i])
		}
		if ids[i] != ids[0] || ids[i] == "" {
			t.Fatalf("request %d named run %q, request 0 %q", i, ids[i], ids[0])
		}
	}
	if created != 1 {
		t.Errorf("%d requests created the run, want exactly 1", created)
	}
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	for {
		runs, err := s.Stack.Store.RunList(ctx, store.RunListParams{Workflow: "hello"})
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) == 1 && event2(runs[0].Status) {
			break
		}
		if len(runs) > 1 || time.Now().After(deadline) {
			t.Fatalf("runs of hello: %+v, want one finished", runs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Past the stream's duplicate window the database answers: same run, 200.
	r := s.do("POST", "/api/v1/workflows/hello/runs", nil, "Idempotency-Key", "nightly-2024-08-01")
	s.want(r, http.StatusOK)
}

func event2(status string) bool {
	return status == "success" || status == "failed" || status == "cancelled"
}

// A stream dropped mid-run and resumed with Last-Event-ID delivers the rest: no gap, no repeat.
func TestEventsResume(t *testing.T) {
	t.Parallel()
	s := start(t, api.Config{})
	s.want(s.do("PUT", "/api/v1/workflows/fan_out_fan_in", readExample(t, "fan_out_fan_in.yaml")), http.StatusCreated)
	var trig struct {
		RunID string `json:"run_id"`
	}
	r := s.do("POST", "/api/v1/workflows/fan_out_fan_in/runs", nil)
	s.want(r, http.StatusCreated)
	r.json(t, &trig)
	path := "/api/v1/runs/" + trig.RunID + "/events"
	res := s.openSSE(path, "")
	head := readSSE(t, res.Body, func(e sseEvent) bool { return e.typ == "task.dispatched" })
	res.Body.Close() // dropped
	res = s.openSSE(path, head[len(head)-1].id)
	tail := readSSE(t, res.Body, nil)
	res.Body.Close()
	res = s.openSSE(path, "")
	whole := readSSE(t, res.Body, nil)
	res.Body.Close()
	got := append(append([]sseEvent(nil), head...), tail...)
	if len(got) != len(whole) {
		t.Fatalf("%d events before the drop + %d after = %d, a whole replay has %d", len(head), len(tail), len(got), len(whole))
	}
	for i := range whole {
		if got[i].id != whole[i].id || got[i].typ != whole[i].typ {
			t.Fatalf("event %d: %s %s, the replay has %s %s", i, got[i].id, got[i].typ, whole[i].id, whole[i].typ)
		}
	}
	s.wantProblem(s.do("GET", path, nil, "Last-Event-ID", "x"), http.StatusBadRequest, "bad-request", "Last-Event-ID")
	// Resuming after the end of an ended run: nothing left, and the stream ends (it does not wait
	// for a run.finished it already sent).
	res = s.openSSE(path, whole[len(whole)-1].id)
	if rest := readSSE(t, res.Body, nil); len(rest) != 0 {
		t.Errorf("after the last event: %+v", rest)
	}
	res.Body.Close()
	res = s.openSSE("/api/v1/runs/"+trig.RunID+"/logs/stream", "")
	readSSE(t, res.Body, nil) // ends: the run has ended
	res.Body.Close()
}

// Unknown paths and methods, oversized bodies and too many requests are problems too.
func TestProblems(t *testing.T) {
	t.Parallel()
	s := start(t, api.Config{MaxBodyBytes: 64, RatePerSecond: 0.001, RateBurst: 3})
	s.wantProblem(s.do("GET", "/api/v1/nothing", nil), http.StatusNotFound, "not-found", "/api/v1/nothing")
	r := s.do("PATCH", "/api/v1/workflows/x", nil)
	s.wantProblem(r, http.StatusMethodNotAllowed, "method-not-allowed", "PATCH")
	if allow := r.header.Get("Allow"); !strings.Contains(allow, "PUT") || !strings.Contains(allow, "DELETE") {
		t.Errorf("Allow %q", allow)
	}
	s.wantProblem(s.do("PUT", "/api/v1/workflows/hello", bytes.Repeat([]byte("#"), 65)), http.StatusRequestEntityTooLarge, "too-large", "64 bytes")
	s.do("GET", "/api/v1/workflows", nil) // the burst of 3: the PUT and these two
	s.do("GET", "/api/v1/workflows", nil)
	r = s.do("GET", "/api/v1/workflows", nil)
	s.wantProblem(r, http.StatusTooManyRequests, "rate-limited", "too many requests")
	if r.header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	s.want(s.do("GET", "/healthz", nil), http.StatusOK) // not limited
	s.want(s.do("GET", "/readyz", nil), http.StatusOK)
}

// Without tokens the server listens on loopback only.
func TestRefusesOpenAddressWithoutTokens(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	_, err := serve.Start(ctx, serve.Config{API: api.Config{Addr: "0.0.0.0:0"}, Stack: embedded.Config{DataDir: dir}}, zaptest.NewLogger(t))
	if err == nil || !strings.Contains(err.Error(), "refusing to listen on 0.0.0.0:0 without tokens") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ork.db")); err == nil {
		t.Error("a refused start created the database")
	}
	_ = fmt.Sprint()
}
