package schedule

import (
	"testing"
	"time"
)

// world is a fake clock and a fake run table for an Engine: runs start when fired and end when the
// test says so.
type world struct {
	t       *testing.T
	e       *Engine
	st      State
	now     time.Time
	running map[string]bool // run id -> still running
	fired   []time.Time
	cancels []string
}

func newWorld(t *testing.T, s Spec, start string) *world {
	w := &world{t: t, now: mustTime(t, start), running: map[string]bool{}}
	w.e = &Engine{Schedule: compile(t, s), RunID: func(n time.Time) string { return Key("wf", n) }}
	w.st.Since = w.now
	return w
}

func (w *world) activeRunning() bool { return w.st.Active != "" && w.running[w.st.Active] }

func (w *world) apply(d Decision) {
	if d.Cancel != "" {
		w.cancels = append(w.cancels, d.Cancel)
	}
	for _, n := range d.Fire {
		w.fired = append(w.fired, n)
		w.running[w.e.RunID(n)] = true
	}
}

// advance moves the clock and handles the due ticks, as a scheduler woken by its timer does.
func (w *world) advance(d time.Duration) {
	w.now = w.now.Add(d)
	w.apply(w.e.Tick(&w.st, w.now, w.activeRunning(), false))
}

// end ends the active run.
func (w *world) end() {
	w.running[w.st.Active] = false
	w.apply(w.e.RunEnded(&w.st, w.now))
}

func (w *world) wantFired(want ...string) {
	w.t.Helper()
	if len(w.fired) != len(want) {
		w.t.Fatalf("fired %v, want %v", w.fired, want)
	}
	for i := range want {
		if !w.fired[i].Equal(mustTime(w.t, want[i])) {
			w.t.Fatalf("fire %d is %v, want %s (all: %v)", i, w.fired[i], want[i], w.fired)
		}
	}
}

func (w *world) wantSkips(reason string, n int64) {
	w.t.Helper()
	var got int64
	for _, s := range w.st.Skips {
		if s.Reason == reason {
			got += s.Count
		}
	}
	if got != n {
		w.t.Fatalf("%d skips for %s, want %d: %+v", got, reason, n, w.st.Skips)
	}
}

const t0 = "2026-05-01T10:00:00Z"

func TestOverlapSkip(t *testing.T) {
	w := newWorld(t, Spec{Cron: "* * * * *"}, t0)
	w.advance(time.Minute) // 10:01 fires
	w.advance(time.Minute) // 10:02 skipped: 10:01 runs
	w.advance(time.Minute) // 10:03 skipped
	w.end()
	w.advance(time.Minute) // 10:04 fires
	w.wantFired("2026-05-01T10:01:00Z", "2026-05-01T10:04:00Z")
	w.wantSkips(SkipOverlap, 2)
	if len(w.st.Skips) != 1 {
		t.Errorf("two consecutive skips are one record: %+v", w.st.Skips)
	}
}

func TestOverlapBufferOne(t *testing.T) {
	w := newWorld(t, Spec{Cron: "* * * * *", Overlap: OverlapBufferOne}, t0)
	w.advance(time.Minute) // 10:01 fires
	w.advance(time.Minute) // 10:02 waits
	w.advance(time.Minute) // 10:03 skipped: one waits already
	w.end()                // 10:02 starts
	w.advance(time.Minute) // 10:04 waits
	w.end()                // 10:04 starts
	w.wantFired("2026-05-01T10:01:00Z", "2026-05-01T10:02:00Z", "2026-05-01T10:04:00Z")
	w.wantSkips(SkipOverlap, 1)
}

func TestOverlapBufferAll(t *testing.T) {
	w := newWorld(t, Spec{Cron: "* * * * *", Overlap: OverlapBufferAll}, t0)
	for range 4 {
		w.advance(time.Minute)
	}
	w.wantFired("2026-05-01T10:01:00Z")
	if len(w.st.Pending) != 3 {
		t.Fatalf("%d waiting, want 3", len(w.st.Pending))
	}
	w.end()
	w.end()
	w.end()
	w.wantFired("2026-05-01T10:01:00Z", "2026-05-01T10:02:00Z", "2026-05-01T10:03:00Z", "2026-05-01T10:04:00Z")
	w.wantSkips(SkipOverlap, 0)
}

func TestOverlapCancelOther(t *testing.T) {
	w := newWorld(t, Spec{Cron: "* * * * *", Overlap: OverlapCancelOther}, t0)
	w.advance(time.Minute) // 10:01 fires
	w.advance(time.Minute) // 10:02: cancel 10:01, 10:02 waits for it to end
	if len(w.cancels) != 1 || w.cancels[0] != Key("wf", mustTime(t, "2026-05-01T10:01:00Z")) {
		t.Fatalf("cancelled %v, want the 10:01 run", w.cancels)
	}
	w.advance(time.Minute) // 10:03 replaces 10:02; no second cancel
	if len(w.cancels) != 1 {
		t.Fatalf("cancelled again: %v", w.cancels)
	}
	w.end() // the cancelled run ended: 10:03 starts
	w.wantFired("2026-05-01T10:01:00Z", "2026-05-01T10:03:00Z")
	w.wantSkips(SkipSuperseded, 1)
}

func TestOverlapAllowAll(t *testing.T) {
	w := newWorld(t, Spec{Cron: "* * * * *", Overlap: OverlapAllowAll}, t0)
	for range 3 {
		w.advance(time.Minute)
	}
	w.wantFired("2026-05-01T10:01:00Z", "2026-05-01T10:02:00Z", "2026-05-01T10:03:00Z")
}

// An end nobody saw (the scheduler was replaced) still releases the buffer at the next tick.
func TestBufferReleasedByALaterTick(t *testing.T) {
	w := newWorld(t, Spec{Cron: "* * * * *", Overlap: OverlapBufferOne}, t0)
	w.advance(time.Minute)
	w.advance(time.Minute) // 10:02 waits
	w.running[w.st.Active] = false
	w.advance(time.Minute) // 10:02 goes first, then 10:03 waits behind it
	w.wantFired("2026-05-01T10:01:00Z", "2026-05-01T10:02:00Z")
	if len(w.st.Pending) != 1 || !w.st.Pending[0].Equal(mustTime(t, "2026-05-01T10:03:00Z")) {
		t.Fatalf("waiting %v, want 10:03", w.st.Pending)
	}
}

// A hand-over that takes a few seconds fires the ticks late, not as missed ones.
func TestLateWithinGraceFires(t *testing.T) {
	w := newWorld(t, Spec{Cron: "* * * * * *", Overlap: OverlapAllowAll, Catchup: CatchupNone}, t0)
	w.advance(5 * time.Second)
	if len(w.fired) != 5 {
		t.Fatalf("5 ticks 0-5 s late: fired %d", len(w.fired))
	}
}

// Catch-up after the scheduler was down from 10:00 to 15:00 (an hourly schedule: 5 missed ticks).
func TestCatchup(t *testing.T) {
	for _, tc := range []struct {
		policy, window string
		want           []string
		skipped        map[string]int64
	}{
		{CatchupNone, "", nil, map[string]int64{SkipMissed: 4}},
		{CatchupLatest, "", []string{"2026-05-01T14:00:00Z"}, map[string]int64{SkipMissed: 3}},
		{CatchupAll, "", []string{"2026-05-01T11:00:00Z", "2026-05-01T12:00:00Z", "2026-05-01T13:00:00Z", "2026-05-01T14:00:00Z"}, nil},
		{CatchupAll, "150m", []string{"2026-05-01T13:00:00Z", "2026-05-01T14:00:00Z"}, map[string]int64{SkipWindow: 2}},
	} {
		t.Run(tc.policy+tc.window, func(t *testing.T) {
			w := newWorld(t, Spec{Cron: "0 * * * *", Overlap: OverlapAllowAll, Catchup: tc.policy, CatchupWindow: tc.window}, t0)
			w.advance(5*time.Hour - time.Minute) // 14:59: 11:00..14:00 were missed
			w.wantFired(tc.want...)
			for r, n := range tc.skipped {
				w.wantSkips(r, n)
			}
			w.advance(time.Minute) // 15:00 is on time
			if last := w.fired[len(w.fired)-1]; !last.Equal(mustTime(t, "2026-05-01T15:00:00Z")) {
				t.Errorf("the first tick after the outage fired %v", last)
			}
		})
	}
}

func TestCatchupAllIsCapped(t *testing.T) {
	w := newWorld(t, Spec{Cron: "* * * * *", Overlap: OverlapAllowAll, Catchup: CatchupAll}, t0)
	w.advance(10*time.Hour - 30*time.Second) // 599 missed minutes (10:01 to 19:59)
	if len(w.fired) != MaxCatchup {
		t.Fatalf("fired %d, want the cap %d", len(w.fired), MaxCatchup)
	}
	if want := mustTime(t, "2026-05-01T19:59:00Z"); !w.fired[len(w.fired)-1].Equal(want) {
		t.Errorf("last fire %v, want %v (the latest ticks fire)", w.fired[len(w.fired)-1], want)
	}
	for i := 1; i < len(w.fired); i++ {
		if !w.fired[i].After(w.fired[i-1]) {
			t.Fatalf("not in order at %d: %v", i, w.fired)
		}
	}
	w.wantSkips(SkipCap, 499)
}

// Catch-up obeys the overlap policy: under skip, the first missed tick fires and the rest skip.
func TestCatchupAllUnderSkip(t *testing.T) {
	w := newWorld(t, Spec{Cron: "0 * * * *", Catchup: CatchupAll}, t0)
	w.advance(3*time.Hour + time.Minute)
	w.wantFired("2026-05-01T11:00:00Z")
	w.wantSkips(SkipOverlap, 2)
}

func TestPausedSkipsAndResumes(t *testing.T) {
	w := newWorld(t, Spec{Cron: "* * * * *", Overlap: OverlapAllowAll}, t0)
	w.now = w.now.Add(10 * time.Minute)
	w.apply(w.e.Tick(&w.st, w.now, false, true))
	w.wantFired()
	w.wantSkips(SkipPaused, 10)
	w.advance(time.Minute)
	w.wantFired("2026-05-01T10:11:00Z")
}

func TestTriggerAndBackfill(t *testing.T) {
	w := newWorld(t, Spec{Cron: "0 * * * *"}, t0)
	w.apply(w.e.Trigger(&w.st, w.now, w.now))
	w.wantFired(t0)
	w.end()
	// An hour of a 15-minute backfill window at 08:00-09:00 under buffer_all: one after another.
	from, to := mustTime(t, "2026-05-01T06:00:00Z"), mustTime(t, "2026-05-01T09:00:00Z")
	w.apply(w.e.Backfill(&w.st, from, to, OverlapBufferAll, w.activeRunning(), w.now))
	w.wantFired(t0, "2026-05-01T06:00:00Z")
	w.end()
	w.end()
	w.end()
	w.wantFired(t0, "2026-05-01T06:00:00Z", "2026-05-01T07:00:00Z", "2026-05-01T08:00:00Z", "2026-05-01T09:00:00Z")
	// Under allow_all, all at once.
	w2 := newWorld(t, Spec{Cron: "0 * * * *"}, t0)
	w2.apply(w2.e.Backfill(&w2.st, from, to, OverlapAllowAll, false, w2.now))
	if len(w2.fired) != 4 {
		t.Errorf("allow_all backfill fired %v", w2.fired)
	}
}
