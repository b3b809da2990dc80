package serve_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ork-go/ork/cmd/ork/internal/embedded"
	"github.com/ork-go/ork/cmd/ork/internal/serve"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/services/api"
)

// runList is a page of GET /api/v1/runs.
type runList struct {
	Runs []struct {
		RunID     string    `json:"run_id"`
		CreatedAt time.Time `json:"created_at"`
	} `json:"runs"`
	Next string `json:"next_page_token"`
}

func (s *server) runs(query string) runList {
	s.t.Helper()
	r := s.do("GET", "/api/v1/runs?"+query, nil)
	s.want(r, http.StatusOK)
	var l runList
	r.json(s.t, &l)
	return l
}

func (s *server) triggerDone(name string) string {
	s.t.Helper()
	r := s.do("POST", "/api/v1/workflows/"+name+"/runs", nil)
	s.want(r, http.StatusCreated)
	var trig struct {
		RunID string `json:"run_id"`
	}
	r.json(s.t, &trig)
	s.finished(trig.RunID)
	return trig.RunID
}

// Paging through runs with a cursor while new runs are created: every older run comes once, in
// order (newest first), and none of the new ones shifts or repeats them. Filters by time and by
// who triggered.
func TestRunsCursorPaging(t *testing.T) {
	t.Parallel()
	s := start(t, api.Config{RatePerSecond: -1})
	s.want(s.do("PUT", "/api/v1/workflows/hello", readExample(t, "hello.yaml")), http.StatusCreated)
	var ids []string
	for range 7 {
		ids = append(ids, s.triggerDone("hello"))
	}
	slices.Reverse(ids) // newest first
	var seen []string
	page := s.runs("page_size=3")
	for {
		for _, r := range page.Runs {
			seen = append(seen, r.RunID)
		}
		if page.Next == "" {
			break
		}
		s.triggerDone("hello") // a new run between two pages
		page = s.runs("page_size=3&page_token=" + page.Next)
	}
	if !slices.Equal(seen, ids) {
		t.Fatalf("paged %v\nwant  %v", seen, ids)
	}
	all := s.runs("page_size=500")
	if len(all.Runs) != 7+2 || all.Next != "" {
		t.Fatalf("%d runs in all, want 9", len(all.Runs))
	}
	mid := all.Runs[4].CreatedAt
	since := s.runs("page_size=500&since=" + url.QueryEscape(mid.Format(time.RFC3339Nano)))
	until := s.runs("page_size=500&until=" + url.QueryEscape(mid.Format(time.RFC3339Nano)))
	if len(since.Runs)+len(until.Runs) != 9 || since.Runs[len(since.Runs)-1].RunID != all.Runs[4].RunID {
		t.Errorf("since %d + until %d runs, want 9 with the boundary in since", len(since.Runs), len(until.Runs))
	}
	if l := s.runs("triggered_by=api:local&page_size=500"); len(l.Runs) != 9 {
		t.Errorf("triggered_by api:local: %d runs", len(l.Runs))
	}
	if l := s.runs("triggered_by=someone"); len(l.Runs) != 0 {
		t.Errorf("triggered_by someone: %d runs", len(l.Runs))
	}
	s.wantProblem(s.do("GET", "/api/v1/runs?page_token=zzz", nil), http.StatusBadRequest, "bad-request", "page_token")
	s.wantProblem(s.do("GET", "/api/v1/runs?since=yesterday", nil), http.StatusBadRequest, "bad-request", "RFC 3339")
}

// An event stream that cannot start (here: the server has lost the logs stream) is a 503 problem
// before anything is streamed, not a 200 that ends at once.
func TestStreamThatCannotStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// Not strict: losing the stream stops the recorder too, and Serve says so.
	s := startServer(t, serve.Config{Stack: embedded.Config{DataDir: dir, DBURL: "sqlite://" + filepath.Join(dir, "ork.db")}}, false)
	s.want(s.do("PUT", "/api/v1/workflows/hello", readExample(t, "hello.yaml")), http.StatusCreated)
	id := s.triggerDone("hello")
	if err := s.Stack.Bus.JS.DeleteStream(context.Background(), event.StreamLogs); err != nil {
		t.Fatal(err)
	}
	s.wantProblem(s.do("GET", "/api/v1/runs/"+id+"/logs/stream", nil), http.StatusServiceUnavailable, "unavailable", "could not start")
}

// Log lines page per task and attempt (seqs restart with each attempt): every line of each
// attempt comes once; a page of several attempts says there is more; an offset without an attempt
// is refused.
func TestLogPagingPerAttempt(t *testing.T) {
	t.Parallel()
	s := start(t, api.Config{RatePerSecond: -1})
	s.want(s.do("PUT", "/api/v1/workflows/retries", readExample(t, "retries.yaml")), http.StatusCreated)
	id := s.triggerDone("retries")
	type page struct {
		Lines []struct {
			Attempt int   `json:"attempt"`
			Seq     int64 `json:"seq"`
		} `json:"lines"`
		NextOffset *int64 `json:"next_offset"`
		More       bool   `json:"more"`
	}
	var all page
	s.do("GET", "/api/v1/runs/"+id+"/logs?task=flaky", nil).json(t, &all)
	byAttempt := map[int]int{}
	for _, l := range all.Lines {
		byAttempt[l.Attempt]++
	}
	if byAttempt[1] == 0 || byAttempt[2] == 0 {
		t.Fatalf("flaky's lines by attempt %v, want both attempts", byAttempt)
	}
	for attempt, want := range byAttempt {
		seen := map[int64]bool{}
		offset := ""
		for pages := 0; ; pages++ {
			var p page
			s.do("GET", fmt.Sprintf("/api/v1/runs/%s/logs?task=flaky&attempt=%d&limit=1%s", id, attempt, offset), nil).json(t, &p)
			for _, l := range p.Lines {
				if l.Attempt != attempt || seen[l.Seq] {
					t.Fatalf("attempt %d: got line %+v again or of another attempt", attempt, l)
				}
				seen[l.Seq] = true
			}
			if p.NextOffset == nil {
				break
			}
			offset = fmt.Sprintf("&offset=%d", *p.NextOffset)
		}
		if len(seen) != want {
			t.Errorf("attempt %d: paged %d lines, want %d", attempt, len(seen), want)
		}
	}
	var short page
	s.do("GET", "/api/v1/runs/"+id+"/logs?task=flaky&limit=1", nil).json(t, &short)
	if !short.More || short.NextOffset != nil {
		t.Errorf("a full page of several attempts: more=%v next=%v", short.More, short.NextOffset)
	}
	s.wantProblem(s.do("GET", "/api/v1/runs/"+id+"/logs?task=flaky&offset=1", nil), http.StatusBadRequest, "bad-request", "give task and attempt")
}
