package scheduler

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/ork-go/ork/pkg/client"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/schedule"
	"github.com/ork-go/ork/pkg/workflow"
)

// scheduleConfig is a scheduler that takes the schedules lease quickly and counts ticks over a
// second late as missed.
func scheduleConfig() Config {
	return Config{ScheduleLease: 100 * time.Millisecond, ScheduleGrace: time.Second, ReconcileInterval: -1}
}

// applyScheduled registers a one-task workflow with the schedule written as YAML (a flow mapping).
func applyScheduled(t *testing.T, h *harness, name, sched string) *workflow.Plan {
	t.Helper()
	src := "name: " + name + "\nschedule: " + sched + "\ntasks:\n  a: {executor: noop}\n"
	p, err := workflow.Parse(name+".yaml", []byte(src), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := client.New(h.b).Apply(h.ctx, client.ApplyParams{Plan: p, By: "test"}); err != nil {
		t.Fatal(err)
	}
	return p
}

// submissions follows the run.submitted events of the stream, from the start.
type submissions struct {
	t  *testing.T
	it jetstream.MessagesContext
}

func watchSubmissions(t *testing.T, h *harness) *submissions {
	t.Helper()
	c, err := h.b.JS.OrderedConsumer(h.ctx, event.StreamEvents, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{event.SubjectRunSubmitted}})
	if err != nil {
		t.Fatal(err)
	}
	it, err := c.Messages()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(it.Stop)
	return &submissions{t: t, it: it}
}

// next returns the next submission, or false when none comes within wait.
func (s *submissions) next(wait time.Duration) (event.Event, bool) {
	s.t.Helper()
	m, err := s.it.Next(jetstream.NextMaxWait(wait))
	if err != nil {
		return event.Event{}, false
	}
	e, err := event.DecodeEvent(m.Data())
	if err != nil {
		s.t.Fatal(err)
	}
	return e, true
}

// collect returns the submissions that arrive within d.
func (s *submissions) collect(d time.Duration) []event.Event {
	var out []event.Event
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if e, ok := s.next(time.Until(deadline)); ok {
			out = append(out, e)
		}
	}
	return out
}

// A schedule firing every second submits one run per tick, each with its nominal time, its
// deterministic run id and triggered_by schedule; a pause stops it and a resume starts it again
// without a restart, and the ticks of the pause are not caught up.
func TestScheduleFiresPausesResumes(t *testing.T) {
	t.Parallel()
	h := setup(t)
	watch := watchSubmissions(t, h)
	applyScheduled(t, h, "every-second", `{cron: "* * * * * *", overlap: allow_all}`)
	h.start(scheduleConfig())

	first, ok := watch.next(waitLimit)
	if !ok {
		t.Fatal("no run fired within the wait")
	}
	got := append([]event.Event{first}, watch.collect(2500*time.Millisecond)...)
	if len(got) < 2 {
		t.Fatalf("%d runs in 2.5 s of a schedule firing every second", len(got))
	}
	for i, e := range got {
		if e.TriggeredBy != event.TriggeredBySchedule || e.ScheduledFor == nil || e.Workflow != "every-second" {
			t.Fatalf("submission %+v", e)
		}
		if want := client.ScheduleRunID("every-second", *e.ScheduledFor); e.RunID != want {
			t.Errorf("run id %s, want %s (derived from the tick)", e.RunID, want)
		}
		if late := e.Time.Sub(*e.ScheduledFor); late < 0 || late > time.Second {
			t.Errorf("fired %v after its nominal time", late)
		}
		if i > 0 {
			if d := e.ScheduledFor.Sub(*got[i-1].ScheduledFor); d != time.Second {
				t.Errorf("nominal times %v apart: %v then %v", d, *got[i-1].ScheduledFor, *e.ScheduledFor)
			}
		}
	}

	cl := client.New(h.b)
	info, err := cl.PauseSchedule(h.ctx, "every-second", true, "test")
	if err != nil || !info.Paused {
		t.Fatalf("pause: %+v %v", info, err)
	}
	watch.collect(300 * time.Millisecond) // a tick in flight when the pause was written
	if during := watch.collect(2 * time.Second); len(during) != 0 {
		t.Fatalf("%d runs fired while paused", len(during))
	}
	if _, err := cl.PauseSchedule(h.ctx, "every-second", false, "test"); err != nil {
		t.Fatal(err)
	}
	resumed := time.Now()
	e, ok := watch.next(3 * time.Second)
	if !ok {
		t.Fatal("no run after the resume")
	}
	if e.ScheduledFor.Before(resumed.Add(-time.Second)) {
		t.Errorf("after the resume a tick of the pause fired: %v (resumed at %v)", *e.ScheduledFor, resumed)
	}
	info, err = cl.Schedule(h.ctx, "every-second")
	if err != nil {
		t.Fatal(err)
	}
	if info.Paused || info.State.Fires < 3 || info.State.LastFire == nil || info.Next.IsZero() {
		t.Errorf("schedule info %+v", info)
	}
	var paused int64
	for _, s := range info.State.Skips {
		if s.Reason == schedule.SkipPaused {
			paused += s.Count
		}
	}
	if paused < 1 {
		t.Errorf("the pause's ticks are not recorded as skipped: %+v", info.State.Skips)
	}
}

// A trigger fires one run now; a backfill fires every tick of a past period in order, and the
// ticks that already fired start nothing new.
func TestScheduleTriggerAndBackfill(t *testing.T) {
	t.Parallel()
	h := setup(t)
	watch := watchSubmissions(t, h)
	applyScheduled(t, h, "hourly", `"0 * * * *"`)
	h.start(scheduleConfig())
	cl := client.New(h.b)

	fired, err := cl.TriggerSchedule(h.ctx, "hourly", "test")
	if err != nil {
		t.Fatal(err)
	}
	e, ok := watch.next(waitLimit)
	if !ok || e.RunID != fired.RunID || !e.ScheduledFor.Equal(fired.Nominal) {
		t.Fatalf("trigger: submission %+v, want run %s", e, fired.RunID)
	}
	to := time.Now().Add(-time.Hour).Truncate(time.Hour)
	from := to.Add(-2 * time.Hour)
	ticks, err := cl.BackfillSchedule(h.ctx, client.BackfillParams{Workflow: "hourly", From: from, To: to,
		Overlap: schedule.OverlapAllowAll, By: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ticks) != 3 {
		t.Fatalf("backfill of 3 hours names %d ticks", len(ticks))
	}
	got := watch.collect(2 * time.Second)
	if len(got) != 3 {
		t.Fatalf("backfill submitted %d runs, want 3", len(got))
	}
	for i, e := range got {
		if !e.ScheduledFor.Equal(ticks[i].Nominal) || e.RunID != ticks[i].RunID {
			t.Errorf("backfilled run %d: %v %s, want %v %s", i, e.ScheduledFor, e.RunID, ticks[i].Nominal, ticks[i].RunID)
		}
	}
	// Again: the same runs (the stream drops the repeated submissions).
	if _, err := cl.BackfillSchedule(h.ctx, client.BackfillParams{Workflow: "hourly", From: from, To: to,
		Overlap: schedule.OverlapAllowAll}); err != nil {
		t.Fatal(err)
	}
	if again := watch.collect(1500 * time.Millisecond); len(again) != 0 {
		t.Errorf("a repeated backfill submitted %d runs", len(again))
	}
	// Refused before anything is asked.
	for _, p := range []client.BackfillParams{
		{Workflow: "hourly", From: to, To: from},
		{Workflow: "hourly", From: from, To: time.Now().Add(time.Hour)},
		{Workflow: "hourly", From: from, To: to, Overlap: "sometimes"},
		{Workflow: "hourly", From: from.Add(time.Minute), To: from.Add(2 * time.Minute)},
		{Workflow: "nope", From: from, To: to},
	} {
		if _, err := cl.BackfillSchedule(h.ctx, p); err == nil {
			t.Errorf("backfill %+v accepted", p)
		}
	}
}

// After a scheduler was down longer than the grace, the catch-up policy decides what the missed
// ticks do: none fires none of them, latest the last one, all every one (in order).
func TestScheduleCatchupAfterRestart(t *testing.T) {
	t.Parallel()
	for _, policy := range []string{schedule.CatchupNone, schedule.CatchupLatest, schedule.CatchupAll} {
		t.Run(policy, func(t *testing.T) {
			t.Parallel()
			h := setup(t)
			watch := watchSubmissions(t, h)
			applyScheduled(t, h, "catchup", `{cron: "* * * * * *", overlap: allow_all, catchup: `+policy+`}`)
			stop := h.startStoppable(scheduleConfig())
			first, ok := watch.next(waitLimit)
			if !ok {
				t.Fatal("nothing fired")
			}
			stop()
			before := append([]event.Event{first}, watch.collect(300*time.Millisecond)...)
			time.Sleep(4 * time.Second) // 4 ticks missed, all more than the 1 s grace late
			h.startStoppable(scheduleConfig())
			after := watch.collect(2500 * time.Millisecond)
			if len(after) == 0 {
				t.Fatal("nothing fired after the restart")
			}
			info, err := client.New(h.b).Schedule(h.ctx, "catchup")
			if err != nil {
				t.Fatal(err)
			}
			var missed int64
			for _, s := range info.State.Skips {
				if s.Reason == schedule.SkipMissed {
					missed += s.Count
				}
			}
			// The last run fired before the stop (the last tick the first scheduler handled).
			last := *before[len(before)-1].ScheduledFor
			for _, e := range after {
				if !e.ScheduledFor.After(last) {
					t.Fatalf("a tick fired twice or out of order: %v after %v", *e.ScheduledFor, last)
				}
				last = *e.ScheduledFor
			}
			gaps := 0 // ticks between the runs fired after the restart
			for i := 1; i < len(after); i++ {
				if d := after[i].ScheduledFor.Sub(*after[i-1].ScheduledFor); d != time.Second {
					gaps++
				}
			}
			t.Logf("after the restart: %d runs from %v, %d skipped as missed", len(after), *after[0].ScheduledFor, missed)
			switch policy {
			case schedule.CatchupNone:
				if missed < 3 || gaps != 0 {
					t.Errorf("catchup none: %d missed ticks skipped, %d gaps among the runs after, want >= 3 and 0", missed, gaps)
				}
			case schedule.CatchupLatest:
				// The ticks before the latest missed one are skipped; the latest and the next run.
				if missed < 2 || gaps != 0 {
					t.Errorf("catchup latest: %d missed ticks skipped, %d gaps, want >= 2 and 0", missed, gaps)
				}
			case schedule.CatchupAll:
				if missed != 0 || gaps != 0 || after[0].ScheduledFor.Sub(*before[len(before)-1].ScheduledFor) != time.Second {
					t.Errorf("catchup all: %d missed skipped, %d gaps, first after %v: want every tick", missed, gaps, *after[0].ScheduledFor)
				}
			}
		})
	}
}

// startStoppable runs a scheduler until the returned function is called (or the test ends).
func (h *harness) startStoppable(cfg Config) func() {
	h.t.Helper()
	svc, err := New(h.b, cfg, zaptest.NewLogger(h.t))
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(h.ctx)
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			h.t.Errorf("scheduler Run: %v", err)
		}
	}
	h.t.Cleanup(stop)
	return stop
}

// Overlap with real runs: under buffer_one, ticks while the first run runs wait (one) or are
// skipped (the rest); the waiting tick starts as soon as the run ends, not at the next tick.
func TestScheduleBufferOneWaitsForTheRun(t *testing.T) {
	t.Parallel()
	h := setup(t)
	watch := watchSubmissions(t, h)
	applyScheduled(t, h, "buffered", `{cron: "* * * * * *", overlap: buffer_one}`)
	h.start(scheduleConfig())
	first, ok := watch.next(waitLimit)
	if !ok {
		t.Fatal("nothing fired")
	}
	d := h.nextDispatch() // the first run's task: it runs until the test says it succeeded
	if d.RunID != first.RunID {
		t.Fatalf("dispatch of run %s, want %s", d.RunID, first.RunID)
	}
	if more := watch.collect(2500 * time.Millisecond); len(more) != 0 {
		t.Fatalf("%d runs fired while the first ran", len(more))
	}
	h.publish(succeeded(d, ""))
	ended := time.Now()
	next, ok := watch.next(waitLimit)
	if !ok {
		t.Fatal("the waiting tick did not fire after the run ended")
	}
	if want := first.ScheduledFor.Add(time.Second); !next.ScheduledFor.Equal(want) {
		t.Errorf("the waiting tick is %v, want %v (the one right after the first run's)", *next.ScheduledFor, want)
	}
	if lag := next.Time.Sub(ended); lag > 900*time.Millisecond {
		t.Logf("the waiting tick fired %v after the run ended", lag) // normally a few ms; a busy machine may take longer
	}
	info, err := client.New(h.b).Schedule(h.ctx, "buffered")
	if err != nil {
		t.Fatal(err)
	}
	var skipped int64
	for _, s := range info.State.Skips {
		if s.Reason == schedule.SkipOverlap {
			skipped += s.Count
		}
	}
	if skipped < 1 {
		t.Errorf("no tick recorded as skipped for overlap: %+v", info.State.Skips)
	}
}

// cancel_other: a tick while the previous run runs cancels it, and starts once it has ended.
func TestScheduleCancelOther(t *testing.T) {
	t.Parallel()
	h := setup(t)
	watch := watchSubmissions(t, h)
	applyScheduled(t, h, "replacing", `{cron: "* * * * * *", overlap: cancel_other}`)
	h.start(scheduleConfig())
	first, ok := watch.next(waitLimit)
	if !ok {
		t.Fatal("nothing fired")
	}
	h.nextDispatch() // the first run's task runs until it is cancelled
	fin := h.waitEvent(event.TypeRunFinished, first.RunID, "")
	if fin.Status != event.RunCancelled {
		t.Fatalf("the first run ended %s, want cancelled by the next tick", fin.Status)
	}
	next, ok := watch.next(waitLimit)
	if !ok {
		t.Fatal("the tick that cancelled the first run did not start")
	}
	if !next.ScheduledFor.After(*first.ScheduledFor) {
		t.Errorf("next tick %v is not after %v", *next.ScheduledFor, *first.ScheduledFor)
	}
}

// Applying the workflow again with another cron changes the cadence at once, with no restart.
func TestScheduleEditTakesEffect(t *testing.T) {
	t.Parallel()
	h := setup(t)
	watch := watchSubmissions(t, h)
	applyScheduled(t, h, "edited", `{cron: "*/3 * * * * *", overlap: allow_all}`)
	h.start(scheduleConfig())
	a, ok := watch.next(waitLimit)
	if !ok {
		t.Fatal("nothing fired")
	}
	if a.ScheduledFor.Second()%3 != 0 {
		t.Errorf("*/3 fired at %v", *a.ScheduledFor)
	}
	applyScheduled(t, h, "edited", `{cron: "* * * * * *", overlap: allow_all}`)
	edited := time.Now()
	var after []event.Event
	for _, e := range watch.collect(3500 * time.Millisecond) {
		if e.ScheduledFor.After(edited) {
			after = append(after, e)
		}
	}
	if len(after) < 3 {
		t.Fatalf("%d runs in the 3.5 s after the edit to every second", len(after))
	}
	for i := 1; i < len(after); i++ {
		if d := after[i].ScheduledFor.Sub(*after[i-1].ScheduledFor); d != time.Second {
			t.Errorf("after the edit, ticks %v apart", d)
		}
	}
}
