package faults_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ork-go/ork/deploy/faults"
	"github.com/ork-go/ork/deploy/processes"
	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/client"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/schedule"
	"github.com/ork-go/ork/pkg/workflow"
)

// everySecondYAML is a workflow of one noop task fired every second: every tick starts a run
// whatever runs (allow_all), and the ticks missed while no scheduler fires are all caught up.
const everySecondYAML = `name: %s
schedule:
  cron: "* * * * * *"
  overlap: allow_all
  catchup: all
tasks:
  tick:
    executor: noop
`

// TestScheduleFiresOnceThroughKilledSchedulers: three schedulers with the shipped permissions, and a
// workflow whose schedule fires every second. While it fires, the scheduler holding the schedules
// lease is killed with SIGKILL and started again, twice. The 30 ticks from the first one are 30 runs
// in the database, one per second with no gap and no duplicate, each the run its tick names;
// ORK_EVENTS holds no tick submitted under two run ids; every run ends (the invariant).
func TestScheduleFiresOnceThroughKilledSchedulers(t *testing.T) {
	t.Parallel()
	const ticks = 30
	const name = "every-second"
	e := setup(t, options{executors: 1, concurrency: 4, schedulers: 3, types: workflow.ExecutorNoop})
	path := filepath.Join(e.dir, name+".yaml")
	if err := os.WriteFile(path, fmt.Appendf(nil, everySecondYAML, name), 0o644); err != nil {
		t.Fatal(err)
	}
	plan, err := workflow.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	sched, err := schedule.Compile(*plan.Schedule)
	if err != nil {
		t.Fatal(err)
	}

	// Registered as `ork workflows apply` does, with the submitter's credentials.
	sb, err := e.s.Connect(processes.RoleSubmitter, bus.Config{Name: "faults-submitter"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	submitter := client.New(sb)
	reg, _, err := submitter.Apply(e.ctx, client.ApplyParams{Plan: plan, By: "faults-test"})
	if err != nil {
		t.Fatal(err)
	}
	// The schedule counts its ticks from the registration: the first is the next second after it.
	first := sched.Next(reg.AppliedAt).UTC()
	last := first.Add((ticks - 1) * time.Second)
	var window []time.Time
	for i := range ticks {
		window = append(window, first.Add(time.Duration(i)*time.Second))
	}
	t.Logf("applied at %s: the window is %s to %s", reg.AppliedAt.UTC().Format(time.RFC3339Nano),
		first.Format(time.RFC3339), last.Format(time.RFC3339))

	states, err := e.bus.Schedules(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	runState, err := e.bus.Runs(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	state := func() schedule.State {
		var st schedule.State
		if kve, err := states.Get(e.ctx, schedule.StateKey(name)); err == nil {
			_ = json.Unmarshal(kve.Value(), &st)
		}
		return st
	}
	firedUpTo := func(at time.Time) func() bool {
		return func() bool {
			st := state()
			return st.LastFire != nil && !st.LastFire.Nominal.Before(at)
		}
	}

	e.waitEvery("the first tick to fire", 100*time.Millisecond, firedUpTo(first))
	for _, at := range []time.Duration{9 * time.Second, 19 * time.Second} {
		e.waitEvery("the tick at "+first.Add(at).Format(time.RFC3339)+" to fire", 100*time.Millisecond, firedUpTo(first.Add(at)))
		victim := e.scheduleLeaseHolder(runState)
		if err := victim.Kill(); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s, holding the schedules lease, killed %s after the first tick", victim.Name(),
			time.Since(first).Round(time.Millisecond))
		if _, err := e.s.Restart(victim); err != nil {
			t.Fatal(err)
		}
	}

	conn, err := pgx.Connect(e.ctx, e.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var recorded []scheduledRun
	defer func() {
		if t.Failed() {
			t.Logf("scheduled runs in the database: %v", recorded)
		}
	}()
	e.waitEvery(fmt.Sprintf("the %d runs of the window in the database", ticks), 250*time.Millisecond, func() bool {
		recorded = scheduledRuns(e.ctx, t, conn, name)
		n := 0
		for _, r := range recorded {
			if !r.nominal.Before(first) && !r.nominal.After(last) {
				n++
			}
		}
		return n >= ticks
	})

	// Paused by the submitter: once a tick is skipped as paused, nothing fires any more and the
	// submissions on ORK_EVENTS are all there is.
	if _, err := submitter.PauseSchedule(e.ctx, name, true, "faults-test"); err != nil {
		t.Fatal(err)
	}
	e.waitEvery("a tick skipped as paused", 100*time.Millisecond, func() bool {
		return slices.ContainsFunc(state().Skips, func(s schedule.Skip) bool { return s.Reason == schedule.SkipPaused })
	})
	recorded = scheduledRuns(e.ctx, t, conn, name)

	// The database: exactly the window's ticks, one run each, the run each tick names; none before.
	var inWindow []time.Time
	for _, r := range recorded {
		if r.nominal.Before(first) {
			t.Errorf("run %s for %s, before the first tick after the registration (%s)", r.id, r.nominal.Format(time.RFC3339Nano), first.Format(time.RFC3339))
		}
		if r.nominal.After(last) {
			continue
		}
		inWindow = append(inWindow, r.nominal)
		if want := client.ScheduleRunID(name, r.nominal); r.id != want {
			t.Errorf("the run for %s is %s, want %s (derived from its tick)", r.nominal.Format(time.RFC3339), r.id, want)
		}
		if r.triggeredBy != event.TriggeredBySchedule {
			t.Errorf("run %s: triggered by %q, want %q", r.id, r.triggeredBy, event.TriggeredBySchedule)
		}
	}
	if !slices.EqualFunc(inWindow, window, time.Time.Equal) {
		t.Errorf("%d runs in the window, nominal times %s; want %d, one per second from %s to %s",
			len(inWindow), formatTimes(inWindow), ticks, first.Format(time.RFC3339), last.Format(time.RFC3339))
	}

	// ORK_EVENTS: no tick submitted under two run ids, and every tick of the window submitted.
	runsOf := map[time.Time][]string{}
	var ids []string
	for _, ev := range e.submissions(name) {
		if ev.ScheduledFor == nil {
			t.Errorf("run.submitted of run %s without scheduled_for", ev.RunID)
			continue
		}
		nominal := ev.ScheduledFor.UTC()
		if !slices.Contains(runsOf[nominal], ev.RunID) {
			runsOf[nominal] = append(runsOf[nominal], ev.RunID)
		}
		if !slices.Contains(ids, ev.RunID) {
			ids = append(ids, ev.RunID)
		}
	}
	for nominal, runs := range runsOf {
		if len(runs) > 1 {
			t.Errorf("the tick at %s was submitted as %d runs: %v", nominal.Format(time.RFC3339), len(runs), runs)
		}
	}
	for _, nominal := range window {
		if len(runsOf[nominal]) == 0 {
			t.Errorf("no run.submitted for the tick at %s", nominal.Format(time.RFC3339))
		}
	}

	// The schedulers had every permission they used.
	for _, p := range e.s.Schedulers {
		data, err := os.ReadFile(p.LogPath())
		if err != nil {
			t.Fatal(err)
		}
		if i := strings.Index(string(data), "Permissions Violation"); i >= 0 {
			line := string(data[strings.LastIndexByte(string(data[:i]), '\n')+1:])
			line, _, _ = strings.Cut(line, "\n")
			t.Errorf("%s was refused: %s", p.Name(), line)
		}
	}
	if exited := e.s.Exited(); len(exited) > 0 {
		t.Errorf("%s exited: %v", exited[0].Name(), exited[0].Err())
	}

	want := map[string]string{}
	for _, id := range ids {
		e.accept(id, name)
		want[id] = event.RunSuccess
	}
	e.check(faults.Params{WantStatus: want})
}

// scheduleLeaseHolder returns the scheduler holding the schedules lease: the live one whose log
// names the lease's holder (its instance, logged when it starts firing).
func (e *env) scheduleLeaseHolder(runState jetstream.KeyValue) *processes.Process {
	e.t.Helper()
	var holder *processes.Process
	e.waitEvery("a live holder of the schedules lease", 100*time.Millisecond, func() bool {
		kve, err := runState.Get(e.ctx, "lease.schedules")
		if err != nil {
			return false
		}
		var lease struct {
			Holder string    `json:"holder"`
			Until  time.Time `json:"until"`
		}
		if json.Unmarshal(kve.Value(), &lease) != nil || lease.Holder == "" || !time.Now().Before(lease.Until) {
			return false
		}
		for _, p := range e.s.Schedulers {
			data, err := os.ReadFile(p.LogPath())
			if err == nil && !p.Exited() && strings.Contains(string(data), lease.Holder) {
				holder = p
				return true
			}
		}
		return false
	})
	return holder
}

// scheduledRun is one runs row of a scheduled run.
type scheduledRun struct {
	id, triggeredBy string
	nominal         time.Time
}

func (r scheduledRun) String() string { return r.nominal.Format(time.RFC3339Nano) + " " + r.id }

// scheduledRuns reads the runs of a workflow that a schedule fired, by nominal time.
func scheduledRuns(ctx context.Context, t *testing.T, conn *pgx.Conn, workflowName string) []scheduledRun {
	t.Helper()
	rows, err := conn.Query(ctx, `SELECT r.id, r.triggered_by, r.scheduled_for FROM runs r JOIN workflows w ON w.id = r.workflow_id
		WHERE w.name = $1 AND r.scheduled_for IS NOT NULL ORDER BY r.scheduled_for, r.id`, workflowName)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []scheduledRun
	for rows.Next() {
		var r scheduledRun
		if err := rows.Scan(&r.id, &r.triggeredBy, &r.nominal); err != nil {
			t.Fatal(err)
		}
		r.nominal = r.nominal.UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// submissions reads every run.submitted of a workflow on ORK_EVENTS, in stream order.
func (e *env) submissions(workflowName string) []event.Event {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, time.Minute)
	defer cancel()
	s, err := e.bus.JS.Stream(ctx, event.StreamEvents)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(event.SubjectRunSubmitted))
	if err != nil {
		e.t.Fatal(err)
	}
	total := info.State.Subjects[event.SubjectRunSubmitted]
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{event.SubjectRunSubmitted}})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []event.Event
	for read := uint64(0); read < total; {
		batch, err := cons.Fetch(int(min(500, total-read)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			e.t.Fatal(err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			ev, err := event.DecodeEvent(msg.Data())
			if err != nil {
				e.t.Errorf("undecodable run.submitted: %v", err)
				continue
			}
			if ev.Workflow == workflowName {
				out = append(out, ev)
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			e.t.Fatal(err)
		}
		if n == 0 {
			e.t.Fatalf("reading %s: %d of %d submissions, then nothing", event.StreamEvents, read, total)
		}
		read += uint64(n)
	}
	return out
}

func formatTimes(ts []time.Time) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = t.Format("15:04:05.000")
	}
	return "[" + strings.Join(s, " ") + "]"
}
