package schedule

import (
	"time"
)

// Skip reasons.
const (
	SkipOverlap    = "overlap"     // the previous run was running (overlap skip, or buffer_one full)
	SkipBufferFull = "buffer_full" // buffer_all held MaxBuffer ticks already
	SkipSuperseded = "superseded"  // a later tick took its place in the buffer (cancel_other)
	SkipMissed     = "missed"      // missed while no scheduler ran, and the catch-up policy drops it
	SkipPaused     = "paused"      // the schedule was paused
	SkipWindow     = "catchup_window"
	SkipCap        = "catchup_cap"
)

// MaxSkips is how many skip records State keeps (the newest). Consecutive skips of one reason are
// one record with a count.
const MaxSkips = 20

// State is what a scheduler keeps of one schedule between ticks, across restarts and hand-overs.
type State struct {
	// Since: ticks at or before it never fire (the schedule's registration, its last resume).
	Since time.Time `json:"since"`
	// Last is the latest nominal time the cron handled (fired, buffered or skipped).
	Last time.Time `json:"last,omitzero"`
	// Active is the run the schedule started last, which the overlap policy looks at.
	Active        string    `json:"active,omitempty"`
	ActiveNominal time.Time `json:"active_nominal,omitzero"`
	ActiveAt      time.Time `json:"active_at,omitzero"`
	// Cancelling is set once cancel_other asked Active to stop.
	Cancelling bool `json:"cancelling,omitempty"`
	// Pending are the ticks waiting for Active to end (buffer_one, buffer_all, cancel_other), in order.
	Pending []time.Time `json:"pending,omitempty"`
	// LastFire is the latest fire; Fires and Skipped count them all.
	LastFire *Fire  `json:"last_fire,omitempty"`
	Skips    []Skip `json:"skips,omitempty"`
	Fires    int64  `json:"fires"`
	Skipped  int64  `json:"skipped"`
}

// Fire is one started run.
type Fire struct {
	Nominal time.Time `json:"nominal"`
	RunID   string    `json:"run_id"`
	At      time.Time `json:"at"`
}

// Skip is a tick, or a row of consecutive ticks, that did not fire.
type Skip struct {
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Count  int64     `json:"count"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// Decision is what the scheduler does after a step: submit runs for these nominal times (in
// order), and cancel a run first when Cancel is set.
type Decision struct {
	Fire   []time.Time
	Cancel string
	// Skipped counts the ticks this step skipped, by reason.
	Skipped map[string]int64
}

func (d *Decision) merge(o Decision) {
	d.Fire = append(d.Fire, o.Fire...)
	if o.Cancel != "" {
		d.Cancel = o.Cancel
	}
	for r, n := range o.Skipped {
		d.addSkip(r, n)
	}
}

func (d *Decision) addSkip(reason string, n int64) {
	if d.Skipped == nil {
		d.Skipped = map[string]int64{}
	}
	d.Skipped[reason] += n
}

// Engine applies a schedule's policies to its State. It reads no clock: every step is given the time.
type Engine struct {
	Schedule *Schedule
	// RunID names the run a tick fires (derived from the tick's idempotency key, so every scheduler
	// names the same run).
	RunID func(nominal time.Time) string
	// Grace is how late a tick may be handled and still fire as on time; LateGrace when 0.
	Grace time.Duration
}

// Tick handles the ticks due by now, after st.Last (and st.Since): ticks at most Grace late
// fire (under the overlap policy); older ones were missed and follow the catch-up policy. running
// says whether st.Active is still running. A paused schedule skips its due ticks.
func (e *Engine) Tick(st *State, now time.Time, running, paused bool) Decision {
	var d Decision
	after := st.Last
	if st.Since.After(after) {
		after = st.Since
	}
	if !now.After(after) {
		return d
	}
	if paused {
		if n, _ := e.Schedule.CountTicks(after, now, 1<<30); n > 0 {
			first := e.Schedule.Next(after)
			last := e.lastTick(after, now)
			e.skip(st, &d, first, last, int64(n), SkipPaused, now)
			st.Last = last
		}
		return d
	}
	grace := e.Grace
	if grace <= 0 {
		grace = LateGrace
	}
	missedUntil := now.Add(-grace)
	if missedUntil.After(after) {
		d.merge(e.catchup(st, after, missedUntil, now, running))
		running = running || len(d.Fire) > 0
		after = missedUntil
	}
	ticks, _ := e.Schedule.Ticks(after, now, MaxBuffer)
	for _, t := range ticks {
		o := e.Offer(st, t, e.Schedule.Spec.OverlapPolicy(), running, now)
		running = running || len(o.Fire) > 0
		d.merge(o)
		st.Last = t
	}
	return d
}

// catchup handles the missed ticks in (after, until].
func (e *Engine) catchup(st *State, after, until, now time.Time, running bool) Decision {
	var d Decision
	last := e.lastTick(after, until)
	if last.IsZero() {
		return d
	}
	first := e.Schedule.Next(after)
	switch e.Schedule.Spec.CatchupPolicy() {
	case CatchupNone:
		n, _ := e.Schedule.CountTicks(after, until, 1<<30)
		e.skip(st, &d, first, last, int64(n), SkipMissed, now)
	case CatchupLatest:
		if !last.Equal(first) {
			n, _ := e.Schedule.CountTicks(after, last.Add(-time.Nanosecond), 1<<30)
			e.skip(st, &d, first, e.lastTick(after, last.Add(-time.Nanosecond)), int64(n), SkipMissed, now)
		}
		d.merge(e.Offer(st, last, e.Schedule.Spec.OverlapPolicy(), running, now))
	case CatchupAll:
		from := after
		if w := until.Add(-e.Schedule.window); w.After(from) {
			if n, _ := e.Schedule.CountTicks(from, w, 1<<30); n > 0 {
				e.skip(st, &d, first, e.lastTick(from, w), int64(n), SkipWindow, now)
			}
			from = w
		}
		var ticks []time.Time
		for t := e.Schedule.Next(from); !t.IsZero() && !t.After(until); t = e.Schedule.Next(t) {
			ticks = append(ticks, t)
			if len(ticks) > 2*MaxCatchup { // keep the latest MaxCatchup, without holding them all
				ticks = append(ticks[:0], ticks[len(ticks)-MaxCatchup:]...)
			}
		}
		if extra := len(ticks) - MaxCatchup; extra > 0 {
			n, _ := e.Schedule.CountTicks(from, ticks[extra-1], 1<<30)
			e.skip(st, &d, e.Schedule.Next(from), ticks[extra-1], int64(n), SkipCap, now)
			ticks = ticks[extra:]
		}
		for _, t := range ticks {
			o := e.Offer(st, t, e.Schedule.Spec.OverlapPolicy(), running, now)
			running = running || len(o.Fire) > 0
			d.merge(o)
		}
	}
	st.Last = last
	return d
}

// lastTick is the last nominal time in (after, until], zero if none. It looks back from until in
// doubling steps, so a sparse schedule and a dense one both cost a few dozen steps.
func (e *Engine) lastTick(after, until time.Time) time.Time {
	for back := time.Minute; ; back *= 2 {
		from := until.Add(-back)
		if !from.After(after) {
			from = after
		}
		var last time.Time
		for t := e.Schedule.Next(from); !t.IsZero() && !t.After(until); t = e.Schedule.Next(t) {
			last = t
		}
		if !last.IsZero() || from.Equal(after) {
			return last
		}
	}
}

// Offer handles one tick under policy (the schedule's, or a backfill's). running says whether
// st.Active is still running.
func (e *Engine) Offer(st *State, nominal time.Time, policy string, running bool, now time.Time) Decision {
	var d Decision
	if !running && len(st.Pending) > 0 {
		// The active run ended unseen: the waiting ticks go first.
		d.merge(e.RunEnded(st, now))
		running = len(d.Fire) > 0
	}
	if !running || policy == OverlapAllowAll {
		d.Fire = append(d.Fire, nominal)
		e.fired(st, nominal, now)
		return d
	}
	switch policy {
	case OverlapBufferOne:
		if len(st.Pending) == 0 {
			st.Pending = append(st.Pending, nominal)
		} else {
			e.skip(st, &d, nominal, nominal, 1, SkipOverlap, now)
		}
	case OverlapBufferAll:
		if len(st.Pending) < MaxBuffer {
			st.Pending = append(st.Pending, nominal)
		} else {
			e.skip(st, &d, nominal, nominal, 1, SkipBufferFull, now)
		}
	case OverlapCancelOther:
		for _, p := range st.Pending {
			e.skip(st, &d, p, p, 1, SkipSuperseded, now)
		}
		st.Pending = append(st.Pending[:0], nominal)
		if !st.Cancelling {
			st.Cancelling = true
			d.Cancel = st.Active
		}
	default: // skip
		e.skip(st, &d, nominal, nominal, 1, SkipOverlap, now)
	}
	return d
}

// RunEnded is called once st.Active has ended: the first waiting tick fires.
func (e *Engine) RunEnded(st *State, now time.Time) Decision {
	var d Decision
	st.Cancelling = false
	if len(st.Pending) == 0 {
		return d
	}
	next := st.Pending[0]
	st.Pending = append(st.Pending[:0], st.Pending[1:]...)
	if len(st.Pending) == 0 {
		st.Pending = nil
	}
	d.Fire = append(d.Fire, next)
	e.fired(st, next, now)
	return d
}

// Trigger fires a tick now, outside the cron and its policies (also while paused).
func (e *Engine) Trigger(st *State, nominal, now time.Time) Decision {
	e.fired(st, nominal, now)
	return Decision{Fire: []time.Time{nominal}}
}

// Backfill offers the ticks in [from, to] under policy, in order (at most MaxBuffer of them; more
// is an error for the caller to report before calling). Ticks already fired name the same runs, so
// a backfill over fired ticks starts only the missing ones.
func (e *Engine) Backfill(st *State, from, to time.Time, policy string, running bool, now time.Time) Decision {
	var d Decision
	ticks, _ := e.Schedule.Ticks(from.Add(-time.Nanosecond), to, MaxBuffer)
	for _, t := range ticks {
		o := e.Offer(st, t, policy, running, now)
		running = running || len(o.Fire) > 0
		d.merge(o)
	}
	return d
}

func (e *Engine) fired(st *State, nominal, now time.Time) {
	id := e.RunID(nominal)
	st.Active, st.ActiveNominal, st.ActiveAt, st.Cancelling = id, nominal, now, false
	st.LastFire = &Fire{Nominal: nominal, RunID: id, At: now}
	st.Fires++
}

// skip records n skipped ticks from first to last, merged into the newest record when it has the
// same reason and ends at the tick before first.
func (e *Engine) skip(st *State, d *Decision, first, last time.Time, n int64, reason string, now time.Time) {
	if n <= 0 {
		return
	}
	st.Skipped += n
	d.addSkip(reason, n)
	if k := len(st.Skips); k > 0 {
		prev := &st.Skips[k-1]
		if prev.Reason == reason && !e.Schedule.Next(prev.To).Before(first) {
			if last.After(prev.To) {
				prev.To = last
			}
			prev.Count += n
			prev.At = now
			return
		}
	}
	st.Skips = append(st.Skips, Skip{From: first, To: last, Count: n, Reason: reason, At: now})
	if len(st.Skips) > MaxSkips {
		st.Skips = append(st.Skips[:0], st.Skips[len(st.Skips)-MaxSkips:]...)
	}
}
