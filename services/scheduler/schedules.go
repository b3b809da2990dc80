package scheduler

import (
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/ork-go/ork/pkg/client"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/logging"
	"github.com/ork-go/ork/pkg/schedule"
	"github.com/ork-go/ork/pkg/workflow"
)

// scheduleLeaseKey names the instance that fires the schedules.
const scheduleLeaseKey = "lease.schedules"

// Kinds of fires (the metric's label).
const (
	fireCron     = "cron"
	fireTrigger  = "trigger"
	fireBackfill = "backfill"
)

// submitGrace is how long a fired run may be missing from the run-state bucket and still count
// as running: its submission is not applied yet. After that a missing state is one that expired.
const submitGrace = 5 * time.Minute

// firer fires the schedules of the registered workflows. Every instance runs one; only the holder
// of the schedules lease fires, and each fire is a submission whose idempotency key names the
// workflow and the tick (schedule.Key), so a second firer, a restart or a redelivery never starts
// a tick twice. Nothing polls: the firer sleeps until the earliest due tick, and wakes for the
// changes it watches (registrations, pauses, requests, the end of a run a buffered tick waits for).
type firer struct {
	s       *Service
	kv      jetstream.KeyValue // ork_schedules
	reg     jetstream.KeyValue // ork_workflows
	cl      *client.Client
	log     *zap.Logger
	entries map[string]*scheduleEntry
	due     dueHeap
	ended   chan runEnd
}

// scheduleEntry is one registered workflow with a schedule, as the lease holder keeps it.
type scheduleEntry struct {
	name    string
	plan    *workflow.Plan
	applied time.Time
	engine  *schedule.Engine
	ctl     *schedule.Control
	st      schedule.State
	rev     uint64    // revision of the stored state; 0 when none is stored
	at      time.Time // when the next tick is handled (its nominal time plus jitter); zero: none
	retry   time.Time // not before: set when a submission failed
	index   int       // in the heap; -1 when out
	watch   string    // the run whose end is watched
	stop    context.CancelFunc
}

type runEnd struct{ name, runID string }

// storedState is a schedule's State as stored, with what the firer compares on a new version.
type storedState struct {
	schedule.State
	Cron string `json:"cron"`
	Zone string `json:"zone"`
}

func (s *Service) newFirer(ctx context.Context) (*firer, error) {
	kv, err := s.b.Schedules(ctx)
	if err != nil {
		return nil, err
	}
	reg, err := s.b.Workflows(ctx)
	if err != nil {
		return nil, err
	}
	return &firer{s: s, kv: kv, reg: reg, cl: client.New(s.b), log: s.log.Named("schedules"),
		entries: map[string]*scheduleEntry{}, ended: make(chan runEnd, 64)}, nil
}

// run takes the lease whenever it is free and fires while it holds it, until ctx is done; then it
// releases the lease so that another instance takes over at once.
func (f *firer) run(ctx context.Context) {
	every := f.s.cfg.ScheduleLease
	ttl := 3 * every
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		rev, err := holdLease(ctx, f.s.kv, scheduleLeaseKey, f.s.cfg.Instance, ttl, time.Now())
		if err != nil && ctx.Err() == nil {
			f.log.Warn("taking the schedules lease", zap.Error(err))
		}
		if rev != 0 {
			f.log.Info("firing schedules", zap.String("instance", f.s.cfg.Instance))
			rev = f.lead(ctx, rev, t.C, every, ttl)
			if ctx.Err() != nil {
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.s.cfg.OpTimeout)
				if err := releaseLease(rctx, f.s.kv, scheduleLeaseKey, rev); err != nil {
					f.log.Warn("releasing the schedules lease", zap.Error(err))
				}
				cancel()
				return
			}
			f.log.Info("schedules lease lost: another instance fires them")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// lead fires the schedules while the lease is renewed at every tick of renew, and returns the
// lease's last revision once it is lost or ctx is done.
func (f *firer) lead(ctx context.Context, rev uint64, renew <-chan time.Time, every, ttl time.Duration) uint64 {
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer f.reset()
	regW, err := f.reg.WatchAll(lctx)
	if err != nil {
		f.log.Warn("watching the registry", zap.Error(err))
		return rev
	}
	defer func() { _ = regW.Stop() }()
	if err := f.loadStates(lctx); err != nil {
		f.log.Warn("reading schedule states", zap.Error(err))
		return rev
	}
	lastRenew := time.Now()
	// hold renews the lease; false once it is lost (or failed to renew for longer than it lasts).
	hold := func() bool {
		r, err := holdLease(lctx, f.s.kv, scheduleLeaseKey, f.s.cfg.Instance, ttl, time.Now())
		switch {
		case err != nil && time.Since(lastRenew) < ttl-every:
			f.log.Warn("renewing the schedules lease", zap.Error(err))
		case err != nil || r == 0:
			return false
		default:
			rev, lastRenew = r, time.Now()
		}
		return true
	}
	// Every registration first, so that controls and requests find their schedules (the lease is
	// renewed meanwhile: reading 10,000 of them takes seconds).
initial:
	for {
		select {
		case <-lctx.Done():
			return rev
		case <-renew:
			if !hold() {
				return rev
			}
		case e := <-regW.Updates():
			if e == nil {
				break initial
			}
			f.registered(lctx, e)
		}
	}
	ctlW, err := f.kv.Watch(lctx, "ctl.>")
	if err != nil {
		f.log.Warn("watching schedule controls", zap.Error(err))
		return rev
	}
	defer func() { _ = ctlW.Stop() }()
	reqW, err := f.kv.Watch(lctx, "req.>")
	if err != nil {
		f.log.Warn("watching schedule requests", zap.Error(err))
		return rev
	}
	defer func() { _ = reqW.Stop() }()

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		f.arm(timer)
		select {
		case <-lctx.Done():
			return rev
		case <-renew:
			if !hold() {
				return rev
			}
		case e := <-regW.Updates():
			if e != nil {
				f.registered(lctx, e)
			}
		case e := <-ctlW.Updates():
			if e != nil {
				f.control(lctx, e)
			}
		case e := <-reqW.Updates():
			if e != nil && e.Operation() == jetstream.KeyValuePut {
				f.request(lctx, e)
			}
		case end := <-f.ended:
			f.runEnded(lctx, end)
		case <-timer.C:
			f.fireDue(lctx)
		}
	}
}

// reset forgets the entries when the lease is lost: the next holder starts from the stored states.
func (f *firer) reset() {
	for _, e := range f.entries {
		if e.stop != nil {
			e.stop()
		}
	}
	f.entries = map[string]*scheduleEntry{}
	f.due = f.due[:0]
}

// arm sets timer to the earliest due entry.
func (f *firer) arm(timer *time.Timer) {
	timer.Stop()
	select {
	case <-timer.C:
	default:
	}
	if len(f.due) > 0 {
		timer.Reset(max(time.Until(f.due[0].at), 0))
	}
}

// loadStates reads every stored state into entries without a plan yet (the registry fills them).
func (f *firer) loadStates(ctx context.Context) error {
	w, err := f.kv.Watch(ctx, "state.>", jetstream.IgnoreDeletes())
	if err != nil {
		return err
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e := <-w.Updates():
			if e == nil {
				return nil
			}
			var st storedState
			name := e.Key()[len("state."):]
			if err := json.Unmarshal(e.Value(), &st); err != nil {
				f.log.Warn("undecodable schedule state: starting it afresh", zap.String("workflow", name), zap.Error(err))
				continue
			}
			f.entries[name] = &scheduleEntry{name: name, st: st.State, rev: e.Revision(), index: -1}
			f.entries[name].plan = &workflow.Plan{Schedule: &schedule.Spec{Cron: st.Cron, Timezone: st.Zone}} // compared on registration
		}
	}
}

// registered follows a change of the registry.
func (f *firer) registered(ctx context.Context, kve jetstream.KeyValueEntry) {
	name := kve.Key()
	e := f.entries[name]
	var reg client.Registered
	var sched *schedule.Schedule
	if kve.Operation() == jetstream.KeyValuePut {
		var err error
		if reg, err = client.DecodeRegistration(kve.Value(), kve.Revision()); err != nil {
			f.log.Warn("undecodable registration", zap.String("workflow", name), zap.Error(err))
		} else if reg.Plan.Schedule != nil {
			if sched, err = schedule.Compile(*reg.Plan.Schedule); err != nil {
				f.log.Warn("a registered schedule does not compile: not fired", zap.String("workflow", name), zap.Error(err))
			}
		}
	}
	if sched == nil {
		// Unregistered, or no schedule (any more): stop firing; the state stays for a later one.
		if e != nil {
			f.unqueue(e)
			if e.stop != nil {
				e.stop()
				e.stop, e.watch = nil, ""
			}
			e.engine = nil
		}
		return
	}
	applied := reg.AppliedAt
	if applied.IsZero() {
		applied = time.Now()
	}
	if e == nil {
		e = &scheduleEntry{name: name, index: -1}
		e.st.Since = applied
		f.entries[name] = e
	} else if e.plan != nil && e.plan.Schedule != nil &&
		(e.plan.Schedule.Cron != reg.Plan.Schedule.Cron || e.plan.Schedule.Zone() != reg.Plan.Schedule.Zone()) {
		// Another cron: its ticks count from the apply, not from the old cron's last one.
		if applied.After(e.st.Since) {
			e.st.Since = applied
		}
	}
	e.plan, e.applied = reg.Plan, applied
	e.engine = &schedule.Engine{Schedule: sched, RunID: func(nominal time.Time) string {
		return event.DeriveRunID(schedule.Key(name, nominal))
	}, Grace: f.s.cfg.ScheduleGrace}
	if e.rev == 0 {
		f.save(ctx, e)
	}
	f.requeue(e)
}

// control follows a pause or resume.
func (f *firer) control(ctx context.Context, kve jetstream.KeyValueEntry) {
	name := kve.Key()[len("ctl."):]
	var ctl *schedule.Control
	if kve.Operation() == jetstream.KeyValuePut {
		ctl = new(schedule.Control)
		if err := json.Unmarshal(kve.Value(), ctl); err != nil {
			f.log.Warn("undecodable schedule control", zap.String("workflow", name), zap.Error(err))
			return
		}
	}
	e := f.entries[name]
	if e == nil {
		e = &scheduleEntry{name: name, index: -1}
		f.entries[name] = e
	}
	if e.engine != nil && ctl != nil && !ctl.Paused && e.ctl != nil && e.ctl.Paused {
		// Resumed: the ticks of the pause are skipped, not caught up.
		d := e.engine.Tick(&e.st, ctl.At, true, true)
		f.s.cfg.Metrics.scheduleSkipped(d.Skipped)
		f.save(ctx, e)
	}
	e.ctl = ctl
	f.requeue(e)
}

// request handles a trigger or a backfill, then deletes it.
func (f *firer) request(ctx context.Context, kve jetstream.KeyValueEntry) {
	key := kve.Key()
	rest := key[len("req."):]
	var name string
	for i := len(rest) - 1; i >= 0; i-- {
		if rest[i] == '.' {
			name = rest[:i]
			break
		}
	}
	var req schedule.Request
	err := json.Unmarshal(kve.Value(), &req)
	e := f.entries[name]
	switch {
	case err != nil:
		f.log.Warn("undecodable schedule request: dropped", zap.String("key", key), zap.Error(err))
	case e == nil || e.engine == nil:
		f.log.Warn("schedule request for a workflow with no schedule: dropped", zap.String("workflow", name), zap.String("kind", req.Kind))
	default:
		now := time.Now()
		var d schedule.Decision
		kind := fireTrigger
		switch req.Kind {
		case schedule.RequestTrigger:
			d = e.engine.Trigger(&e.st, req.At, now)
		case schedule.RequestBackfill:
			kind = fireBackfill
			policy := req.Overlap
			if policy == "" {
				policy = schedule.OverlapBufferAll
			}
			d = e.engine.Backfill(&e.st, req.From, req.To, policy, f.running(ctx, e, now, policy), now)
		default:
			f.log.Warn("unknown schedule request: dropped", zap.String("key", key), zap.String("kind", req.Kind))
		}
		if !f.execute(ctx, e, d, kind, now) {
			return // kept: handled again on the next lease or restart (the same runs)
		}
		f.log.Info("schedule request handled", zap.String("workflow", name), zap.String("kind", req.Kind),
			logging.Count(len(d.Fire)), zap.String("by", req.By))
	}
	if err := f.kv.Delete(ctx, key, jetstream.LastRevision(kve.Revision())); err != nil {
		f.log.Warn("deleting a handled schedule request", zap.String("key", key), zap.Error(err))
	}
}

// fireDue handles every entry whose next tick is due. Entries are independent, so many due at
// once (every schedule at the top of the hour) are fired concurrently, fireConcurrency at a time:
// each fire waits for the stream to store its submission and for its state to be written.
func (f *firer) fireDue(ctx context.Context) {
	now := time.Now()
	var due []*scheduleEntry
	for len(f.due) > 0 && !f.due[0].at.After(now) {
		due = append(due, heap.Pop(&f.due).(*scheduleEntry))
	}
	fire := func(e *scheduleEntry) {
		paused := schedule.Paused(e.plan.Schedule, e.plan.Hash, e.ctl)
		d := e.engine.Tick(&e.st, now, f.running(ctx, e, now, e.engine.Schedule.Spec.OverlapPolicy()), paused)
		f.execute(ctx, e, d, fireCron, now)
	}
	if len(due) == 1 {
		fire(due[0])
	} else {
		var wg sync.WaitGroup
		sem := make(chan struct{}, fireConcurrency)
		for _, e := range due {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				fire(e)
			}()
		}
		wg.Wait()
	}
	for _, e := range due {
		f.requeue(e)
	}
}

// fireConcurrency bounds the fires in flight at once.
const fireConcurrency = 64

// runEnded fires what waited for a run.
func (f *firer) runEnded(ctx context.Context, end runEnd) {
	e := f.entries[end.name]
	if e == nil || e.engine == nil || e.st.Active != end.runID {
		return
	}
	if e.stop != nil {
		e.stop()
		e.stop, e.watch = nil, ""
	}
	now := time.Now()
	f.execute(ctx, e, e.engine.RunEnded(&e.st, now), fireCron, now)
}

// execute carries out a decision (cancel, then submit in order) and stores the state. If a
// submission fails, the state goes back to the stored one and the tick is tried again in a second.
func (f *firer) execute(ctx context.Context, e *scheduleEntry, d schedule.Decision, kind string, now time.Time) bool {
	f.s.cfg.Metrics.scheduleSkipped(d.Skipped)
	if d.Cancel != "" {
		_, err := f.cl.Cancel(ctx, client.ControlParams{RunID: d.Cancel, TriggeredBy: event.TriggeredBySchedule,
			Reason: "cancelled by the schedule's next tick (overlap cancel_other)", KnownWithin: time.Second})
		if err != nil && !errors.Is(err, client.ErrUnknownRun) {
			f.log.Warn("cancelling the previous scheduled run", zap.String("workflow", e.name), logging.RunID(d.Cancel), zap.Error(err))
		}
	}
	for _, nominal := range d.Fire {
		octx, cancel := context.WithTimeout(ctx, f.s.cfg.OpTimeout)
		runID, err := f.cl.Submit(octx, client.SubmitParams{Plan: e.plan, Params: e.plan.Schedule.Params,
			IdempotencyKey: schedule.Key(e.name, nominal), TriggeredBy: event.TriggeredBySchedule, ScheduledFor: nominal})
		cancel()
		if err != nil {
			f.log.Error("submitting a scheduled run", zap.String("workflow", e.name), zap.Time("nominal", nominal), zap.Error(err))
			f.reload(ctx, e)
			e.retry = time.Now().Add(time.Second)
			return false
		}
		late := time.Since(nominal) - e.engine.Schedule.Jitter(e.name, nominal)
		f.s.cfg.Metrics.scheduleFired(kind, late)
		f.log.Debug("schedule fired", zap.String("workflow", e.name), zap.Time("nominal", nominal), logging.RunID(runID),
			zap.Duration("late", late))
	}
	e.retry = time.Time{}
	f.save(ctx, e)
	f.watchEnd(ctx, e)
	return true
}

// running tells whether the schedule's last run has not ended, when policy needs to know.
func (f *firer) running(ctx context.Context, e *scheduleEntry, now time.Time, policy string) bool {
	if e.st.Active == "" || (policy == schedule.OverlapAllowAll && len(e.st.Pending) == 0) {
		return false // nothing to look at: allow_all does not care
	}
	kve, err := f.s.kv.Get(ctx, stateKey(e.st.Active))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return now.Sub(e.st.ActiveAt) < submitGrace
	}
	if err != nil {
		f.log.Warn("reading the state of a scheduled run: taken as running", logging.RunID(e.st.Active), zap.Error(err))
		return true
	}
	var st RunState
	if err := st.UnmarshalBinary(kve.Value()); err != nil {
		return false
	}
	return !st.Status.Terminal()
}

// watchEnd watches the active run while a tick waits for its end.
func (f *firer) watchEnd(ctx context.Context, e *scheduleEntry) {
	want := ""
	if len(e.st.Pending) > 0 || e.st.Cancelling {
		want = e.st.Active
	}
	if want == e.watch {
		return
	}
	if e.stop != nil {
		e.stop()
		e.stop = nil
	}
	e.watch = want
	if want == "" {
		return
	}
	wctx, cancel := context.WithCancel(ctx)
	e.stop = cancel
	w, err := f.s.kv.Watch(wctx, stateKey(want))
	if err != nil {
		f.log.Warn("watching a scheduled run", logging.RunID(want), zap.Error(err))
		cancel()
		e.stop, e.watch = nil, ""
		return
	}
	active, activeAt, name := want, e.st.ActiveAt, e.name
	go func() {
		defer func() { _ = w.Stop() }()
		for {
			select {
			case <-wctx.Done():
				return
			case kve := <-w.Updates():
				ended := false
				switch {
				case kve == nil: // the current value, if any, was delivered
					ended = !f.seen(wctx, active) && time.Since(activeAt) >= submitGrace
				case kve.Operation() != jetstream.KeyValuePut:
					ended = true
				default:
					var st RunState
					ended = st.UnmarshalBinary(kve.Value()) != nil || st.Status.Terminal()
				}
				if ended {
					select {
					case f.ended <- runEnd{name, active}:
					case <-wctx.Done():
					}
					return
				}
			}
		}
	}()
}

// seen tells whether a run's state exists.
func (f *firer) seen(ctx context.Context, runID string) bool {
	_, err := f.s.kv.Get(ctx, stateKey(runID))
	return err == nil
}

// save stores the entry's state with compare-and-swap. Losing the swap means another instance
// fires this schedule now: the stored state is read back.
func (f *firer) save(ctx context.Context, e *scheduleEntry) {
	st := storedState{State: e.st}
	if e.plan != nil && e.plan.Schedule != nil {
		st.Cron, st.Zone = e.plan.Schedule.Cron, e.plan.Schedule.Zone()
	}
	data, err := json.Marshal(st)
	if err != nil {
		f.log.Error("encoding a schedule state", zap.String("workflow", e.name), zap.Error(err))
		return
	}
	var rev uint64
	if e.rev == 0 {
		rev, err = f.kv.Create(ctx, schedule.StateKey(e.name), data)
	} else {
		rev, err = f.kv.Update(ctx, schedule.StateKey(e.name), data, e.rev)
	}
	if err != nil {
		f.log.Warn("storing a schedule state", zap.String("workflow", e.name), zap.Error(err))
		f.reload(ctx, e)
		return
	}
	e.rev = rev
}

// reload replaces the entry's state with the stored one.
func (f *firer) reload(ctx context.Context, e *scheduleEntry) {
	kve, err := f.kv.Get(ctx, schedule.StateKey(e.name))
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			e.rev = 0
			e.st = schedule.State{Since: e.applied}
		}
		return
	}
	var st storedState
	if json.Unmarshal(kve.Value(), &st) == nil {
		e.st, e.rev = st.State, kve.Revision()
	}
}

// requeue puts the entry in the heap at its next tick.
func (f *firer) requeue(e *scheduleEntry) {
	if e.engine == nil {
		f.unqueue(e)
		return
	}
	after := e.st.Last
	if e.st.Since.After(after) {
		after = e.st.Since
	}
	next := e.engine.Schedule.Next(after)
	if next.IsZero() {
		f.unqueue(e)
		return
	}
	e.at = next.Add(e.engine.Schedule.Jitter(e.name, next))
	if e.retry.After(e.at) {
		e.at = e.retry
	}
	if e.index >= 0 {
		heap.Fix(&f.due, e.index)
	} else {
		heap.Push(&f.due, e)
	}
}

func (f *firer) unqueue(e *scheduleEntry) {
	if e.index >= 0 {
		heap.Remove(&f.due, e.index)
	}
	e.at = time.Time{}
}

// dueHeap orders entries by their next tick.
type dueHeap []*scheduleEntry

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h dueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *dueHeap) Push(x any) {
	e := x.(*scheduleEntry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *dueHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.index = -1
	return e
}
