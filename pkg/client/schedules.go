package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/schedule"
)

// Schedules: the registered workflows that have a schedule, their state as the firing scheduler
// stored it, and the controls a client writes (pause, resume, trigger, backfill) to the
// ork_schedules bucket, which that scheduler watches: each takes effect at once, with no restart.

// ErrNoSchedule is a registered workflow without a schedule.
var ErrNoSchedule = errors.New("the workflow has no schedule")

// ErrBadBackfill is wrapped by BackfillSchedule's errors about its parameters (the period, the
// policy, the ticks in it): the caller's mistake, not the system's.
var ErrBadBackfill = errors.New("bad backfill")

func badBackfill(format string, args ...any) error {
	return fmt.Errorf("backfill: %s: %w", fmt.Sprintf(format, args...), ErrBadBackfill)
}

// UpcomingTicks is how many of the next ticks ScheduleInfo lists.
const UpcomingTicks = 5

// ScheduleInfo is one schedule as it stands.
type ScheduleInfo struct {
	Workflow string
	Spec     schedule.Spec
	// Hash is the registered version's.
	Hash string
	// Paused is the effective pause: the last pause or resume given on this version, else the
	// spec's paused. PausedBy and PausedAt say who paused or resumed it last, when.
	Paused   bool
	PausedBy string
	PausedAt time.Time
	// Next is the nominal time of the next tick (zero when the cron has no more), Upcoming the
	// next UpcomingTicks of them, Next first.
	Next     time.Time
	Upcoming []time.Time
	// State is what the firing scheduler stored (zero before it first saw the schedule).
	State schedule.State
	// Requests counts the triggers and backfills not handled yet.
	Requests int
}

// Schedules returns every registered workflow with a schedule, by name.
func (c *Client) Schedules(ctx context.Context) ([]ScheduleInfo, error) {
	regs, err := c.Workflows(ctx)
	if err != nil {
		return nil, err
	}
	kv, err := c.bus.Schedules(ctx)
	if err != nil {
		return nil, err
	}
	var out []ScheduleInfo
	for _, r := range regs {
		if r.Plan.Schedule == nil {
			continue
		}
		info, err := c.scheduleInfo(ctx, kv, r)
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}

// Schedule returns one workflow's schedule: ErrNotRegistered or ErrNoSchedule when there is none.
func (c *Client) Schedule(ctx context.Context, name string) (ScheduleInfo, error) {
	r, err := c.Workflow(ctx, name)
	if err != nil {
		return ScheduleInfo{}, err
	}
	if r.Plan.Schedule == nil {
		return ScheduleInfo{}, fmt.Errorf("workflow %q: %w", name, ErrNoSchedule)
	}
	kv, err := c.bus.Schedules(ctx)
	if err != nil {
		return ScheduleInfo{}, err
	}
	return c.scheduleInfo(ctx, kv, r)
}

func (c *Client) scheduleInfo(ctx context.Context, kv jetstream.KeyValue, r Registered) (ScheduleInfo, error) {
	name := r.Plan.Name
	info := ScheduleInfo{Workflow: name, Spec: *r.Plan.Schedule, Hash: r.Plan.Hash}
	var stored struct {
		schedule.State
		Cron string `json:"cron"`
	}
	if e, err := kv.Get(ctx, schedule.StateKey(name)); err == nil {
		if err := json.Unmarshal(e.Value(), &stored); err != nil {
			return info, fmt.Errorf("schedule of %s: decoding its state: %w", name, err)
		}
		info.State = stored.State
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return info, fmt.Errorf("schedule of %s: reading its state: %w", name, err)
	}
	ctl, err := readControl(ctx, kv, name)
	if err != nil {
		return info, err
	}
	info.Paused = schedule.Paused(r.Plan.Schedule, r.Plan.Hash, ctl)
	if ctl != nil && ctl.Hash == r.Plan.Hash {
		info.PausedBy, info.PausedAt = ctl.By, ctl.At
	}
	if sc, err := schedule.Compile(*r.Plan.Schedule); err == nil {
		after := info.State.Last
		since := info.State.Since
		if since.IsZero() || (stored.Cron != "" && stored.Cron != r.Plan.Schedule.Cron) {
			since = r.AppliedAt
		}
		if since.After(after) {
			after = since
		}
		info.Next = sc.Next(after)
		for t := info.Next; !t.IsZero() && len(info.Upcoming) < UpcomingTicks; t = sc.Next(t) {
			info.Upcoming = append(info.Upcoming, t)
		}
	}
	keys, err := kv.ListKeysFiltered(ctx, "req."+name+".*")
	if err == nil {
		for range keys.Keys() {
			info.Requests++
		}
	}
	return info, nil
}

func readControl(ctx context.Context, kv jetstream.KeyValue, name string) (*schedule.Control, error) {
	e, err := kv.Get(ctx, schedule.ControlKey(name))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("schedule of %s: reading its control: %w", name, err)
	}
	var ctl schedule.Control
	if err := json.Unmarshal(e.Value(), &ctl); err != nil {
		return nil, fmt.Errorf("schedule of %s: decoding its control: %w", name, err)
	}
	return &ctl, nil
}

// PauseSchedule pauses a workflow's schedule (paused true) or resumes it (false), for its
// registered version: applying another version goes back to that version's `paused`. Ticks while
// paused are skipped (recorded, reason paused), never caught up.
func (c *Client) PauseSchedule(ctx context.Context, name string, paused bool, by string) (ScheduleInfo, error) {
	r, err := c.Workflow(ctx, name)
	if err != nil {
		return ScheduleInfo{}, err
	}
	if r.Plan.Schedule == nil {
		return ScheduleInfo{}, fmt.Errorf("workflow %q: %w", name, ErrNoSchedule)
	}
	kv, err := c.bus.Schedules(ctx)
	if err != nil {
		return ScheduleInfo{}, err
	}
	data, err := json.Marshal(schedule.Control{Paused: paused, Hash: r.Plan.Hash, At: time.Now().UTC(), By: by})
	if err != nil {
		return ScheduleInfo{}, err
	}
	if _, err := kv.Put(ctx, schedule.ControlKey(name), data); err != nil {
		return ScheduleInfo{}, fmt.Errorf("schedule of %s: %w", name, err)
	}
	return c.scheduleInfo(ctx, kv, r)
}

// ScheduleFired is a run a trigger or backfill asked for: its tick and the run it names.
type ScheduleFired struct {
	Nominal time.Time
	RunID   string
}

// TriggerSchedule asks the firing scheduler for one run of the workflow now, outside the cron
// and its overlap policy (also while paused); its nominal time is now. It returns the run that
// request names, which the scheduler submits.
func (c *Client) TriggerSchedule(ctx context.Context, name, by string) (ScheduleFired, error) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	if err := c.scheduleRequest(ctx, name, schedule.Request{Kind: schedule.RequestTrigger, At: now, By: by}); err != nil {
		return ScheduleFired{}, err
	}
	return ScheduleFired{Nominal: now, RunID: ScheduleRunID(name, now)}, nil
}

// ScheduleRunID is the run of a workflow's tick at nominal.
func ScheduleRunID(name string, nominal time.Time) string {
	return event.DeriveRunID(schedule.Key(name, nominal))
}

// BackfillParams asks for the ticks of a past period.
type BackfillParams struct {
	Workflow string
	// From and To bound the period, both included; To may not be in the future.
	From, To time.Time
	// Overlap is the policy between the backfilled runs (schedule.Overlaps); buffer_all when empty:
	// one after another.
	Overlap string
	By      string
}

// BackfillSchedule asks the firing scheduler to fire every tick of the cron in [From, To] under
// Overlap, in order. A tick that already fired names the same run and starts nothing, so a
// backfill over a period the schedule covered fires only the missing ticks. It returns the ticks.
func (c *Client) BackfillSchedule(ctx context.Context, p BackfillParams) ([]ScheduleFired, error) {
	r, err := c.Workflow(ctx, p.Workflow)
	if err != nil {
		return nil, err
	}
	if r.Plan.Schedule == nil {
		return nil, fmt.Errorf("workflow %q: %w", p.Workflow, ErrNoSchedule)
	}
	if p.Overlap != "" && !slices.Contains(schedule.Overlaps, p.Overlap) {
		return nil, badBackfill("unknown overlap policy %q (one of %s)", p.Overlap, strings.Join(schedule.Overlaps, ", "))
	}
	now := time.Now()
	switch {
	case p.From.IsZero() || p.To.IsZero():
		return nil, badBackfill("both from and to are required")
	case p.To.Before(p.From):
		return nil, badBackfill("to %s is before from %s", p.To.Format(time.RFC3339), p.From.Format(time.RFC3339))
	case p.To.After(now):
		return nil, badBackfill("to %s is in the future: the cron fires those ticks", p.To.Format(time.RFC3339))
	}
	sc, err := schedule.Compile(*r.Plan.Schedule)
	if err != nil {
		return nil, err
	}
	ticks, more := sc.Ticks(p.From.Add(-time.Nanosecond), p.To, schedule.MaxBuffer)
	period := "between " + p.From.Format(time.RFC3339) + " and " + p.To.Format(time.RFC3339)
	if more {
		return nil, badBackfill("more than %d ticks %s: backfill a shorter period at a time", schedule.MaxBuffer, period)
	}
	if len(ticks) == 0 {
		return nil, badBackfill("the cron %q has no tick %s", r.Plan.Schedule.Cron, period)
	}
	req := schedule.Request{Kind: schedule.RequestBackfill, From: p.From.UTC(), To: p.To.UTC(), Overlap: p.Overlap,
		At: now.UTC(), By: p.By}
	if err := c.scheduleRequest(ctx, p.Workflow, req); err != nil {
		return nil, err
	}
	out := make([]ScheduleFired, len(ticks))
	for i, t := range ticks {
		out[i] = ScheduleFired{Nominal: t.UTC(), RunID: ScheduleRunID(p.Workflow, t)}
	}
	return out, nil
}

func (c *Client) scheduleRequest(ctx context.Context, name string, req schedule.Request) error {
	r, err := c.Workflow(ctx, name)
	if err != nil {
		return err
	}
	if r.Plan.Schedule == nil {
		return fmt.Errorf("workflow %q: %w", name, ErrNoSchedule)
	}
	kv, err := c.bus.Schedules(ctx)
	if err != nil {
		return err
	}
	data, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if _, err := kv.Create(ctx, schedule.RequestKey(name, event.NewID()), data); err != nil {
		return fmt.Errorf("schedule of %s: sending the %s: %w", name, req.Kind, err)
	}
	return nil
}
