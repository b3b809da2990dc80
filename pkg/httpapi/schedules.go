package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/ork-go/ork/pkg/client"
	"github.com/ork-go/ork/pkg/schedule"
)

// ScheduleSummary is a registered workflow's schedule in a list: its policies with their defaults
// applied, whether it is paused, its next tick and its last fire.
type ScheduleSummary struct {
	Workflow string `json:"workflow"`
	Version  string `json:"version"` // the registered plan's hash
	Cron     string `json:"cron"`
	Timezone string `json:"timezone"`
	Overlap  string `json:"overlap"`
	Catchup  string `json:"catchup"`
	// Paused is the effective pause: the last pause or resume of this version, else the spec's.
	Paused bool `json:"paused"`
	// Next is the nominal time of the next tick (skipped while paused); nil when the cron has none.
	Next *time.Time `json:"next"`
	// LastFire is the latest run the schedule started; nil before the first.
	LastFire *ScheduleFire `json:"last_fire"`
	Fires    int64         `json:"fires"`
	Skipped  int64         `json:"skipped"`
}

// ScheduleFire is a run a schedule started: its tick, the run, and when it was submitted.
type ScheduleFire struct {
	Nominal time.Time `json:"nominal"`
	RunID   string    `json:"run_id"`
	At      time.Time `json:"at"`
}

// ScheduleSkip is a tick, or a row of consecutive ticks, that did not fire, and why.
type ScheduleSkip struct {
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Count  int64     `json:"count"`
	Reason string    `json:"reason"` // schedule.Skip* (overlap, paused, missed, ...)
	At     time.Time `json:"at"`
}

// ScheduleActive is the run the schedule started last, which its overlap policy looks at.
type ScheduleActive struct {
	RunID   string    `json:"run_id"`
	Nominal time.Time `json:"nominal"`
	At      time.Time `json:"at"`
	// Cancelling is set once overlap cancel_other asked the run to stop.
	Cancelling bool `json:"cancelling"`
}

// ScheduleDetail is one schedule in full: the spec, who paused it, and what the firing scheduler
// stored of it.
type ScheduleDetail struct {
	ScheduleSummary
	// Upcoming are the nominal times of the next ticks (at most 5), the first being next.
	Upcoming []time.Time `json:"upcoming"`
	// CatchupWindow is how far back catch-up all goes ("" for the other policies); Jitter the
	// spread of the fires ("" for none). Both are Go durations.
	CatchupWindow string `json:"catchup_window"`
	Jitter        string `json:"jitter"`
	// Params are the parameters of the runs the schedule starts.
	Params map[string]json.RawMessage `json:"params"`
	// SpecPaused is the workflow file's paused, which applying another version goes back to.
	SpecPaused bool `json:"spec_paused"`
	// PausedBy and PausedAt say who paused or resumed this version last, when (nil: nobody did).
	PausedBy string     `json:"paused_by"`
	PausedAt *time.Time `json:"paused_at"`
	// Since: ticks at or before it never fire (the registration, the last resume); Last is the
	// latest tick handled (fired, buffered or skipped). Both nil before the scheduler saw it.
	Since *time.Time `json:"since"`
	Last  *time.Time `json:"last"`
	// Active is the run the schedule started last; nil before the first.
	Active *ScheduleActive `json:"active"`
	// Pending are the ticks waiting for the active run to end, in order.
	Pending []time.Time `json:"pending"`
	// Skips are the newest skip records (at most schedule.MaxSkips), oldest first.
	Skips []ScheduleSkip `json:"skips"`
	// Requests counts the triggers and backfills the scheduler has not handled yet.
	Requests int `json:"requests"`
}

// ScheduleList is a page of schedules, by workflow name.
type ScheduleList struct {
	Schedules     []ScheduleSummary `json:"schedules"`
	NextPageToken string            `json:"next_page_token"` // "" on the last page
}

// ScheduleTick is a run a trigger or a backfill asked for: its tick and the run it names, which
// the firing scheduler submits (a tick that fired already names the same run and starts nothing).
type ScheduleTick struct {
	Nominal time.Time `json:"nominal"`
	RunID   string    `json:"run_id"`
	URL     string    `json:"url"`
}

// ScheduleTriggered answers a trigger (202: the scheduler submits the run).
type ScheduleTriggered struct {
	Workflow string `json:"workflow"`
	ScheduleTick
}

// BackfillRequest is the body of POST /schedules/{name}/backfill: the ticks of [From, To], both
// RFC 3339 times, under Overlap (buffer_all when empty: one after another).
type BackfillRequest struct {
	From    string `json:"from"`
	To      string `json:"to"`
	Overlap string `json:"overlap,omitempty"`
}

// Backfilled answers a backfill (202: the scheduler fires the ticks, in order).
type Backfilled struct {
	Workflow string         `json:"workflow"`
	From     time.Time      `json:"from"`
	To       time.Time      `json:"to"`
	Overlap  string         `json:"overlap"`
	Ticks    []ScheduleTick `json:"ticks"`
}

// ScheduleSummaryOf is the summary of a schedule.
func ScheduleSummaryOf(info client.ScheduleInfo) ScheduleSummary {
	s := ScheduleSummary{Workflow: info.Workflow, Version: info.Hash, Cron: info.Spec.Cron, Timezone: info.Spec.Zone(),
		Overlap: info.Spec.OverlapPolicy(), Catchup: info.Spec.CatchupPolicy(), Paused: info.Paused,
		Next: timeOrNil(info.Next), Fires: info.State.Fires, Skipped: info.State.Skipped}
	if f := info.State.LastFire; f != nil {
		s.LastFire = &ScheduleFire{Nominal: f.Nominal, RunID: f.RunID, At: f.At}
	}
	return s
}

// ScheduleDetailOf is a schedule in full.
func ScheduleDetailOf(info client.ScheduleInfo) ScheduleDetail {
	st := info.State
	d := ScheduleDetail{ScheduleSummary: ScheduleSummaryOf(info), Upcoming: append([]time.Time{}, info.Upcoming...), Jitter: info.Spec.Jitter, Params: info.Spec.Params,
		SpecPaused: info.Spec.Paused, PausedBy: info.PausedBy, PausedAt: timeOrNil(info.PausedAt),
		Since: timeOrNil(st.Since), Last: timeOrNil(st.Last), Pending: st.Pending, Requests: info.Requests,
		Skips: make([]ScheduleSkip, len(st.Skips))}
	if d.Catchup == schedule.CatchupAll {
		d.CatchupWindow = info.Spec.CatchupWindow
		if d.CatchupWindow == "" {
			d.CatchupWindow = schedule.DefaultCatchupWindow.String()
		}
	}
	if d.Params == nil {
		d.Params = map[string]json.RawMessage{}
	}
	if d.Pending == nil {
		d.Pending = []time.Time{}
	}
	if st.Active != "" {
		d.Active = &ScheduleActive{RunID: st.Active, Nominal: st.ActiveNominal, At: st.ActiveAt, Cancelling: st.Cancelling}
	}
	for i, sk := range st.Skips {
		d.Skips[i] = ScheduleSkip{From: sk.From, To: sk.To, Count: sk.Count, Reason: sk.Reason, At: sk.At}
	}
	return d
}

// ScheduleTickOf is a tick a trigger or a backfill asked for.
func ScheduleTickOf(f client.ScheduleFired) ScheduleTick {
	return ScheduleTick{Nominal: f.Nominal, RunID: f.RunID, URL: "/api/v1/runs/" + f.RunID}
}

// BackfilledOf is the answer to a backfill: its period, its policy and the ticks it asked for.
func BackfilledOf(p client.BackfillParams, fired []client.ScheduleFired) Backfilled {
	out := Backfilled{Workflow: p.Workflow, From: p.From.UTC(), To: p.To.UTC(), Overlap: p.Overlap, Ticks: make([]ScheduleTick, len(fired))}
	if out.Overlap == "" {
		out.Overlap = schedule.OverlapBufferAll
	}
	for i, f := range fired {
		out.Ticks[i] = ScheduleTickOf(f)
	}
	return out
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// Schedules lists every registered workflow's schedule, by name (all pages).
func (c *Client) Schedules(ctx context.Context) ([]ScheduleSummary, error) {
	var all []ScheduleSummary
	token := ""
	for {
		v := url.Values{"page_size": {"500"}}
		if token != "" {
			v.Set("page_token", token)
		}
		var page ScheduleList
		if _, err := c.do(ctx, "GET", "/api/v1/schedules?"+v.Encode(), nil, nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Schedules...)
		if page.NextPageToken == "" {
			return all, nil
		}
		token = page.NextPageToken
	}
}

// Schedule reads one workflow's schedule (a not-found problem when the workflow is not registered
// or has no schedule).
func (c *Client) Schedule(ctx context.Context, name string) (ScheduleDetail, error) {
	var out ScheduleDetail
	_, err := c.do(ctx, "GET", schedulePath(name), nil, nil, &out)
	return out, err
}

// PauseSchedule pauses a workflow's schedule (paused true) or resumes it, and returns it as it
// stands then.
func (c *Client) PauseSchedule(ctx context.Context, name string, paused bool) (ScheduleDetail, error) {
	action := "/resume"
	if paused {
		action = "/pause"
	}
	var out ScheduleDetail
	_, err := c.do(ctx, "POST", schedulePath(name)+action, nil, nil, &out)
	return out, err
}

// TriggerSchedule asks the firing scheduler for one run of the workflow now, outside its cron.
func (c *Client) TriggerSchedule(ctx context.Context, name string) (ScheduleTriggered, error) {
	var out ScheduleTriggered
	_, err := c.do(ctx, "POST", schedulePath(name)+"/trigger", nil, nil, &out)
	return out, err
}

// BackfillSchedule asks the firing scheduler to fire the ticks of [from, to] under overlap ("":
// buffer_all).
func (c *Client) BackfillSchedule(ctx context.Context, name string, from, to time.Time, overlap string) (Backfilled, error) {
	body, err := json.Marshal(BackfillRequest{From: from.Format(time.RFC3339Nano), To: to.Format(time.RFC3339Nano), Overlap: overlap})
	if err != nil {
		return Backfilled{}, err
	}
	var out Backfilled
	_, err = c.do(ctx, "POST", schedulePath(name)+"/backfill", body, http.Header{"Content-Type": {"application/json"}}, &out)
	return out, err
}

func schedulePath(name string) string { return "/api/v1/schedules/" + url.PathEscape(name) }
