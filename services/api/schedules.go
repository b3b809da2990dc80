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
	"github.com/ork-go/ork/pkg/httpapi"
)

// The schedules of the registered workflows: read them, pause and resume them, trigger a run
// outside the cron and backfill a past period. The controls are written to the ork_schedules
// bucket, which the scheduler holding the schedules lease watches: they take effect at once, and
// the runs a trigger or a backfill names are submitted by that scheduler (202).

func (s *Server) listSchedules(w http.ResponseWriter, r *http.Request) {
	size, ok := pageSize(w, r)
	if !ok {
		return
	}
	after, ok := nameToken(w, r)
	if !ok {
		return
	}
	all, err := s.client.Schedules(r.Context())
	if err != nil {
		s.internal(w, r, err)
		return
	}
	out := httpapi.ScheduleList{Schedules: []httpapi.ScheduleSummary{}}
	for _, info := range all { // by name
		if info.Workflow <= after {
			continue
		}
		if len(out.Schedules) == size {
			out.NextPageToken = base64.RawURLEncoding.EncodeToString([]byte(out.Schedules[size-1].Workflow))
			break
		}
		out.Schedules = append(out.Schedules, httpapi.ScheduleSummaryOf(info))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getSchedule(w http.ResponseWriter, r *http.Request) {
	info, err := s.client.Schedule(r.Context(), r.PathValue("name"))
	if err != nil {
		s.scheduleError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, httpapi.ScheduleDetailOf(info))
}

func (s *Server) pauseSchedule(w http.ResponseWriter, r *http.Request) { s.setPaused(w, r, true) }

func (s *Server) resumeSchedule(w http.ResponseWriter, r *http.Request) { s.setPaused(w, r, false) }

// setPaused pauses or resumes {name}'s schedule and answers it as it stands: the pause holds at
// once (ticks while paused are skipped, never caught up).
func (s *Server) setPaused(w http.ResponseWriter, r *http.Request, paused bool) {
	info, err := s.client.PauseSchedule(r.Context(), r.PathValue("name"), paused, "api:"+principal(r.Context()).Name)
	if err != nil {
		s.scheduleError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, httpapi.ScheduleDetailOf(info))
}

// triggerSchedule asks for one run of {name} now, outside its cron and overlap policy (paused or
// not), and answers the run it names: the scheduler submits it.
func (s *Server) triggerSchedule(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	fired, err := s.client.TriggerSchedule(r.Context(), name, "api:"+principal(r.Context()).Name)
	if err != nil {
		s.scheduleError(w, r, err)
		return
	}
	tick := httpapi.ScheduleTickOf(fired)
	w.Header().Set("Location", tick.URL)
	writeJSON(w, http.StatusAccepted, httpapi.ScheduleTriggered{Workflow: name, ScheduleTick: tick})
}

// backfillSchedule asks for the ticks of {name}'s cron in [from, to] and answers them with the
// runs they name. The period is checked here, so that a bad one is a 400 saying what is wrong.
func (s *Server) backfillSchedule(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	const example = `{"from": "2024-08-01T00:00:00Z", "to": "2024-08-02T00:00:00Z", "overlap": "buffer_all"}`
	var req httpapi.BackfillRequest
	dec := json.NewDecoder(bytesReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeProblem(w, r, probBadRequest, "the body must be a JSON object such as "+example+": "+err.Error())
		return
	}
	var from, to time.Time
	for _, f := range []struct {
		name, value string
		dst         *time.Time
	}{{"from", req.From, &from}, {"to", req.To, &to}} {
		if f.value == "" {
			writeProblem(w, r, probBadRequest, "from and to are required: the period to backfill, such as "+example)
			return
		}
		t, err := time.Parse(time.RFC3339Nano, f.value)
		if err != nil {
			writeProblem(w, r, probBadRequest, f.name+" must be an RFC 3339 time such as 2024-08-01T00:00:00Z, got "+strconv.Quote(f.value))
			return
		}
		*f.dst = t
	}
	p := client.BackfillParams{Workflow: name, From: from, To: to, Overlap: req.Overlap, By: "api:" + principal(r.Context()).Name}
	fired, err := s.client.BackfillSchedule(r.Context(), p)
	if err != nil {
		s.scheduleError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, httpapi.BackfilledOf(p, fired))
}

// scheduleError answers a schedule operation's error: 404 for a workflow that is not registered
// or has no schedule, 500 otherwise.
func (s *Server) scheduleError(w http.ResponseWriter, r *http.Request, err error) {
	name := strconv.Quote(r.PathValue("name"))
	switch {
	case errors.Is(err, client.ErrBadBackfill):
		writeProblem(w, r, probBadRequest, strings.TrimPrefix(strings.TrimSuffix(err.Error(), ": "+client.ErrBadBackfill.Error()), "backfill: "))
	case errors.Is(err, client.ErrNotRegistered):
		writeProblem(w, r, probNotFound, "no registered workflow "+name+" (GET /api/v1/schedules lists the scheduled ones)")
	case errors.Is(err, client.ErrNoSchedule):
		writeProblem(w, r, probNotFound, "workflow "+name+" has no schedule (GET /api/v1/schedules lists the scheduled ones)")
	default:
		s.internal(w, r, err)
	}
}
