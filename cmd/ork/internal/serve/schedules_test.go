package serve_test

import (
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ork-go/ork/cmd/ork/internal/embedded"
	"github.com/ork-go/ork/cmd/ork/internal/serve"
	"github.com/ork-go/ork/pkg/poll"
	"github.com/ork-go/ork/services/api"
)

// scheduledYAML is a one-task workflow; sched is its schedule: field as YAML ("" for none).
func scheduledYAML(name, sched string) []byte {
	src := "name: " + name + "\n"
	if sched != "" {
		src += "schedule: " + sched + "\n"
	}
	return []byte(src + "tasks:\n  a: {executor: noop}\n")
}

// startFiring is start with the schedules fired, as `ork serve` does, and no rate limit (the
// test polls).
func startFiring(t *testing.T) *server {
	t.Helper()
	dir := t.TempDir()
	return startWith(t, serve.Config{API: api.Config{RatePerSecond: -1},
		Stack: embedded.Config{DataDir: dir, DBURL: "sqlite://" + filepath.Join(dir, "ork.db"), Schedules: true}})
}

type scheduleJSON struct {
	Workflow string     `json:"workflow"`
	Cron     string     `json:"cron"`
	Timezone string     `json:"timezone"`
	Overlap  string     `json:"overlap"`
	Catchup  string     `json:"catchup"`
	Paused   bool       `json:"paused"`
	PausedBy string     `json:"paused_by"`
	Next     *time.Time `json:"next"`
	LastFire *struct {
		Nominal time.Time `json:"nominal"`
		RunID   string    `json:"run_id"`
	} `json:"last_fire"`
	Fires  int64          `json:"fires"`
	Params map[string]any `json:"params"`
	Skips  []struct {
		Reason string `json:"reason"`
		Count  int64  `json:"count"`
	} `json:"skips"`
}

type tickJSON struct {
	Nominal time.Time `json:"nominal"`
	RunID   string    `json:"run_id"`
	URL     string    `json:"url"`
}

func (s *server) schedule(name string) scheduleJSON {
	s.t.Helper()
	r := s.do("GET", "/api/v1/schedules/"+name, nil)
	s.want(r, http.StatusOK)
	var out scheduleJSON
	r.json(s.t, &out)
	return out
}

// waitRun waits until the database has run id, fired by a schedule for the tick at nominal.
func (s *server) waitRun(id string, nominal time.Time) {
	s.t.Helper()
	var run struct {
		TriggeredBy  string     `json:"triggered_by"`
		ScheduledFor *time.Time `json:"scheduled_for"`
	}
	poll.UntilWithin(s.t, 30*time.Second, "run "+id+" in the database", func() bool {
		r := s.do("GET", "/api/v1/runs/"+id, nil)
		if r.status == http.StatusOK {
			r.json(s.t, &run)
		}
		return r.status == http.StatusOK
	})
	if run.TriggeredBy != "schedule" || run.ScheduledFor == nil || !run.ScheduledFor.Equal(nominal) {
		s.t.Errorf("run %s: triggered_by %q, scheduled_for %v, want schedule and %v", id, run.TriggeredBy, run.ScheduledFor, nominal)
	}
}

// The schedules of the registered workflows, read, paused and resumed, triggered and backfilled
// over the API, with the runs they fire in the database; what is wrong is a problem saying so.
func TestSchedules(t *testing.T) {
	t.Parallel()
	s := startFiring(t)
	s.want(s.do("PUT", "/api/v1/workflows/every_second", scheduledYAML("every_second", `"* * * * * *"`)), http.StatusCreated)
	s.want(s.do("PUT", "/api/v1/workflows/hourly", scheduledYAML("hourly",
		`{cron: "0 * * * *", timezone: Europe/Paris, overlap: allow_all, params: {}}`)), http.StatusCreated)
	s.want(s.do("PUT", "/api/v1/workflows/plain", scheduledYAML("plain", "")), http.StatusCreated)

	var list struct {
		Schedules []scheduleJSON `json:"schedules"`
		Next      string         `json:"next_page_token"`
	}
	r := s.do("GET", "/api/v1/schedules", nil)
	s.want(r, http.StatusOK)
	r.json(t, &list)
	if len(list.Schedules) != 2 || list.Next != "" {
		t.Fatalf("schedules %+v, want every_second and hourly (plain has none)", list)
	}
	es, h := list.Schedules[0], list.Schedules[1]
	if es.Workflow != "every_second" || es.Cron != "* * * * * *" || es.Timezone != "UTC" || es.Overlap != "skip" || es.Catchup != "latest" ||
		es.Paused || es.Next == nil {
		t.Errorf("every_second listed as %+v, want the defaults and a next tick", es)
	}
	if h.Workflow != "hourly" || h.Timezone != "Europe/Paris" || h.Overlap != "allow_all" || h.Next == nil || h.Next.Minute() != 0 {
		t.Errorf("hourly listed as %+v", h)
	}
	r = s.do("GET", "/api/v1/schedules?page_size=1", nil)
	r.json(t, &list)
	if len(list.Schedules) != 1 || list.Schedules[0].Workflow != "every_second" || list.Next == "" {
		t.Fatalf("first page %+v", list)
	}
	r = s.do("GET", "/api/v1/schedules?page_size=1&page_token="+list.Next, nil)
	r.json(t, &list)
	if len(list.Schedules) != 1 || list.Schedules[0].Workflow != "hourly" || list.Next != "" {
		t.Fatalf("second page %+v", list)
	}
	s.wantProblem(s.do("GET", "/api/v1/schedules?page_size=0", nil), http.StatusBadRequest, "bad-request", "page_size")
	s.wantProblem(s.do("GET", "/api/v1/schedules/plain", nil), http.StatusNotFound, "not-found", `workflow "plain" has no schedule`)
	s.wantProblem(s.do("GET", "/api/v1/schedules/nope", nil), http.StatusNotFound, "not-found", `no registered workflow "nope"`)

	// The cron fires: show has the last fire, whose run the database has.
	var shown scheduleJSON
	poll.UntilWithin(t, 30*time.Second, "every_second to fire", func() bool {
		shown = s.schedule("every_second")
		return shown.LastFire != nil
	})
	s.waitRun(shown.LastFire.RunID, shown.LastFire.Nominal)

	// Paused, its ticks are skipped and recorded; resumed, it says so.
	r = s.do("POST", "/api/v1/schedules/every_second/pause", nil)
	s.want(r, http.StatusOK)
	r.json(t, &shown)
	if !shown.Paused || shown.PausedBy != "api:local" {
		t.Errorf("paused: %+v", shown)
	}
	poll.UntilWithin(t, 30*time.Second, "a tick skipped while paused", func() bool {
		shown = s.schedule("every_second")
		for _, sk := range shown.Skips {
			if sk.Reason == "paused" && sk.Count > 0 {
				return true
			}
		}
		return false
	})
	if !shown.Paused {
		t.Errorf("show after pause: %+v", shown)
	}
	s.want(s.do("POST", "/api/v1/schedules/every_second/resume", nil), http.StatusOK)
	if shown = s.schedule("every_second"); shown.Paused || shown.PausedBy != "api:local" {
		t.Errorf("show after resume: %+v", shown)
	}
	s.wantProblem(s.do("POST", "/api/v1/schedules/plain/pause", nil), http.StatusNotFound, "not-found", "has no schedule")
	s.want(s.do("POST", "/api/v1/schedules/every_second/pause", nil), http.StatusOK) // enough runs

	// A trigger names its run, which the scheduler submits.
	r = s.do("POST", "/api/v1/schedules/hourly/trigger", nil)
	s.want(r, http.StatusAccepted)
	var trig struct {
		Workflow string `json:"workflow"`
		tickJSON
	}
	r.json(t, &trig)
	if trig.Workflow != "hourly" || trig.RunID == "" || r.header.Get("Location") != trig.URL || time.Since(trig.Nominal) > time.Minute {
		t.Fatalf("trigger %+v (Location %q)", trig, r.header.Get("Location"))
	}
	s.waitRun(trig.RunID, trig.Nominal)
	s.wantProblem(s.do("POST", "/api/v1/schedules/nope/trigger", nil), http.StatusNotFound, "not-found", "nope")

	// A backfill of three past hours answers their three ticks, which fire; again, the same runs.
	hour := time.Now().UTC().Truncate(time.Hour)
	from, to := hour.Add(-3*time.Hour), hour.Add(-time.Hour)
	body := `{"from": "` + from.Format(time.RFC3339) + `", "to": "` + to.Format(time.RFC3339) + `"}`
	r = s.do("POST", "/api/v1/schedules/hourly/backfill", []byte(body))
	s.want(r, http.StatusAccepted)
	var bf struct {
		Workflow string     `json:"workflow"`
		Overlap  string     `json:"overlap"`
		Ticks    []tickJSON `json:"ticks"`
	}
	r.json(t, &bf)
	if bf.Workflow != "hourly" || bf.Overlap != "buffer_all" || len(bf.Ticks) != 3 {
		t.Fatalf("backfill %+v, want 3 ticks under buffer_all", bf)
	}
	for i, tk := range bf.Ticks {
		if want := from.Add(time.Duration(i) * time.Hour); !tk.Nominal.Equal(want) {
			t.Errorf("tick %d at %v, want %v", i, tk.Nominal, want)
		}
		s.waitRun(tk.RunID, tk.Nominal)
	}
	r = s.do("POST", "/api/v1/schedules/hourly/backfill", []byte(body))
	s.want(r, http.StatusAccepted)
	var again struct {
		Ticks []tickJSON `json:"ticks"`
	}
	r.json(t, &again)
	for i := range again.Ticks {
		if again.Ticks[i].RunID != bf.Ticks[i].RunID {
			t.Errorf("backfilled again, tick %d names run %s, before %s", i, again.Ticks[i].RunID, bf.Ticks[i].RunID)
		}
	}

	rfc := func(t time.Time) string { return strconv.Quote(t.Format(time.RFC3339)) }
	for _, c := range []struct{ name, path, body, want string }{
		{"no body", "hourly", ``, "the body must be a JSON object"},
		{"unknown field", "hourly", `{"from": ` + rfc(from) + `, "to": ` + rfc(to) + `, "policy": "x"}`, `unknown field "policy"`},
		{"no to", "hourly", `{"from": ` + rfc(from) + `}`, "from and to are required"},
		{"not a time", "hourly", `{"from": "yesterday", "to": ` + rfc(to) + `}`, `from must be an RFC 3339 time such as 2024-08-01T00:00:00Z, got "yesterday"`},
		{"reversed", "hourly", `{"from": ` + rfc(to) + `, "to": ` + rfc(from) + `}`, "is before from"},
		{"future", "hourly", `{"from": ` + rfc(from) + `, "to": ` + rfc(hour.Add(2*time.Hour)) + `}`, "is in the future"},
		{"overlap", "hourly", `{"from": ` + rfc(from) + `, "to": ` + rfc(to) + `, "overlap": "sometimes"}`, `unknown overlap policy "sometimes"`},
		{"too many ticks", "every_second", `{"from": ` + rfc(from) + `, "to": ` + rfc(to) + `}`, "more than 1000 ticks"},
		{"no tick", "hourly", `{"from": ` + rfc(from.Add(time.Minute)) + `, "to": ` + rfc(from.Add(59*time.Minute)) + `}`, "has no tick"},
	} {
		r := s.do("POST", "/api/v1/schedules/"+c.path+"/backfill", []byte(c.body))
		if p := s.wantProblem(r, http.StatusBadRequest, "bad-request", c.want); t.Failed() {
			t.Fatalf("backfill with %s: %+v", c.name, p)
		}
	}
	s.wantProblem(s.do("POST", "/api/v1/schedules/nope/backfill", []byte(body)), http.StatusNotFound, "not-found", "nope")
	s.wantProblem(s.do("POST", "/api/v1/schedules/plain/backfill", []byte(body)), http.StatusNotFound, "not-found", "has no schedule")
}

// Reading schedules needs a read token; pausing, resuming, triggering and backfilling one the
// submit scope that starting runs needs: each is refused below it, and no token is a 401.
func TestScheduleTokenBoundaries(t *testing.T) {
	t.Parallel()
	s, tok := startWithTokens(t, "read", "submit", "admin")
	s.want(s.do("PUT", "/api/v1/workflows/hourly", scheduledYAML("hourly", `"0 * * * *"`), bearer(tok["admin"])...), http.StatusCreated)
	hour := time.Now().UTC().Truncate(time.Hour)
	backfill := []byte(`{"from": "` + hour.Add(-2*time.Hour).Format(time.RFC3339) + `", "to": "` + hour.Add(-time.Hour).Format(time.RFC3339) + `"}`)

	s.wantProblem(s.do("GET", "/api/v1/schedules", nil), http.StatusUnauthorized, "unauthorized", "requires a token")
	s.want(s.do("GET", "/api/v1/schedules", nil, bearer(tok["read"])...), http.StatusOK)
	s.want(s.do("GET", "/api/v1/schedules/hourly", nil, bearer(tok["read"])...), http.StatusOK)
	for _, c := range []struct {
		action string
		body   []byte
		status int
	}{
		{"pause", nil, http.StatusOK},
		{"resume", nil, http.StatusOK},
		{"trigger", nil, http.StatusAccepted},
		{"backfill", backfill, http.StatusAccepted},
	} {
		path := "/api/v1/schedules/hourly/" + c.action
		s.wantProblem(s.do("POST", path, c.body), http.StatusUnauthorized, "unauthorized", "requires a token")
		s.wantProblem(s.do("POST", path, c.body, bearer(tok["read"])...), http.StatusForbidden, "forbidden", "scope submit; this one has read")
		r := s.do("POST", path, c.body, bearer(tok["submit"])...)
		s.want(r, c.status)
		if c.action == "pause" {
			var d scheduleJSON
			r.json(t, &d)
			if !d.Paused || d.PausedBy != "api:submit" {
				t.Errorf("paused with the submit token: %+v", d)
			}
		}
	}
}
