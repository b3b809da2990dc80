package schedule

import (
	"crypto/sha256"
	"encoding/binary"
	"time"

	"github.com/robfig/cron/v3"
)

// Schedule is a compiled Spec: it computes fire times.
type Schedule struct {
	Spec      Spec
	loc       *time.Location
	cron      cron.Schedule      // as parsed (descriptors such as @every are durations, not wall-clock fields)
	spec      *cron.SpecSchedule // wall-clock fields, evaluated in UTC; nil for @every
	everyHour bool               // the hour field is "*": a repeated wall-clock hour fires twice
	window    time.Duration
	jitter    time.Duration
}

// Location is the schedule's time zone.
func (s *Schedule) Location() *time.Location { return s.loc }

// CatchupWindow is how far back catch-up "all" goes.
func (s *Schedule) CatchupWindow() time.Duration { return s.window }

// Next returns the first nominal time strictly after t.
//
// Fields match the wall clock of the schedule's zone. Around daylight-saving changes:
//   - a wall-clock time that does not exist (skipped by a spring-forward) fires at the first instant
//     after the gap (02:30 on a day New York jumps from 02:00 to 03:00 fires at 03:00 EDT), once even
//     when several skipped times map to that instant;
//   - a wall-clock time that happens twice (repeated by a fall-back) fires at its first occurrence
//     only, unless the hour field is "*": an hourly schedule fires in both copies of the hour (25 fires
//     that day), a daily one once.
func (s *Schedule) Next(t time.Time) time.Time {
	if s.spec == nil {
		return s.cron.Next(t)
	}
	t = t.In(s.loc)
	wall := naive(t)
	next := s.spec.Next(wall)
	if next.IsZero() {
		return time.Time{}
	}
	// Fast path: the candidate and t lie in one zone period and the candidate's wall time is
	// unambiguous, so no other candidate can fall between them.
	if c := s.instants(next); len(c) == 1 {
		start, end := t.ZoneBounds()
		if !c[0].Before(start) && (end.IsZero() || c[0].Before(end)) && c[0].After(t) {
			return c[0]
		}
	}
	// Near a zone change wall-clock order and time order differ: take the earliest instant after t
	// among the wall-clock candidates from a few hours before t's wall time.
	const shift = 3 * time.Hour // more than any zone's change
	var best time.Time
	cur := s.spec.Next(wall.Add(-shift - time.Second))
	for i := 0; !cur.IsZero() && i < 1<<20; i++ {
		if !best.IsZero() && cur.Add(-shift).After(best) {
			break
		}
		for _, c := range s.instants(cur) {
			if c.After(t) && (best.IsZero() || c.Before(best)) {
				best = c
			}
		}
		cur = s.spec.Next(cur)
	}
	return best
}

// naive is t's wall clock as a UTC time.
func naive(t time.Time) time.Time {
	y, mo, d := t.Date()
	h, mi, sec := t.Clock()
	return time.Date(y, mo, d, h, mi, sec, t.Nanosecond(), time.UTC)
}

// instants are the instants the wall-clock time w (a naive UTC time) fires at in the schedule's
// zone: one; none made one (a time in a gap fires at the gap's end); two when the wall time
// repeats and the hour field is "*" (else the first).
func (s *Schedule) instants(w time.Time) []time.Time {
	var out []time.Time
	for _, probe := range []time.Duration{-26 * time.Hour, 26 * time.Hour} {
		_, off := w.Add(probe).In(s.loc).Zone() // the offsets before and after any change near w
		// Offsets are read at the wall time taken as UTC: good enough within 26 hours.
		u := w.Add(-time.Duration(off) * time.Second).In(s.loc)
		if naive(u).Equal(w) && (len(out) == 0 || !out[0].Equal(u)) {
			out = append(out, u)
		}
	}
	switch {
	case len(out) == 0:
		// In a gap: read as the earlier offset, w names an instant past the change; the change (the
		// start of that instant's zone period) is the first instant after the gap.
		_, before := w.Add(-26 * time.Hour).In(s.loc).Zone()
		start, _ := w.Add(-time.Duration(before) * time.Second).In(s.loc).ZoneBounds()
		return []time.Time{start}
	case len(out) == 2:
		if out[1].Before(out[0]) {
			out[0], out[1] = out[1], out[0]
		}
		if !s.everyHour {
			out = out[:1]
		}
	}
	return out
}

// Ticks returns the nominal times in (after, until], in order, at most max of them (the first
// ones); more is true when some were left off.
func (s *Schedule) Ticks(after, until time.Time, max int) (ticks []time.Time, more bool) {
	for t := s.Next(after); !t.IsZero() && !t.After(until); t = s.Next(t) {
		if len(ticks) == max {
			return ticks, true
		}
		ticks = append(ticks, t)
	}
	return ticks, false
}

// CountTicks counts the nominal times in (after, until], up to max (then capped is true).
func (s *Schedule) CountTicks(after, until time.Time, max int) (n int, capped bool) {
	for t := s.Next(after); !t.IsZero() && !t.After(until); t = s.Next(t) {
		if n == max {
			return n, true
		}
		n++
	}
	return n, false
}

// Jitter is the delay a tick of workflow at nominal fires after: the same on every scheduler, in
// [0, jitter), spread by a hash of the workflow and the nominal time. It never changes the nominal
// time the run records.
func (s *Schedule) Jitter(workflow string, nominal time.Time) time.Duration {
	if s.jitter <= 0 {
		return 0
	}
	h := sha256.New()
	h.Write([]byte(workflow))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(nominal.UnixNano()))
	h.Write(b[:])
	sum := h.Sum(nil)
	return time.Duration(binary.BigEndian.Uint64(sum[:8]) % uint64(s.jitter))
}
