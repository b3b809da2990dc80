package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/logging"
)

// leaseKey is the KV entry naming the scheduler instance that sweeps.
const leaseKey = "lease.reconciler"

// AdvisoryMaxDeliveries is the core NATS subject of the server's advisories about ORK_TASKS messages
// delivered MaxDeliver times without an acknowledgement.
const AdvisoryMaxDeliveries = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + event.StreamTasks + ".*"

// advisoryQueue is the queue group of the advisory subscription: one instance handles each.
const advisoryQueue = "ork-scheduler"

// attemptKey names one attempt of one task.
type attemptKey struct {
	run     string
	task    int
	attempt int
}

// reconciler makes sure no run waits forever for a message that will not come. It holds no
// durable state: everything it decides is published as task.failed, which the scheduler applies
// like any failure, so a replay or a second reconciler is harmless.
type reconciler struct {
	s      *Service
	stream jetstream.Stream // ORK_TASKS
	events jetstream.Stream // ORK_EVENTS
	// since is when this instance first saw each in-flight attempt. A new holder of the lease
	// starts counting afresh, which only delays a verdict.
	since  map[attemptKey]time.Time
	graphs map[string]*Graph
	// progress tracks every active run seen by the last pass; idle is set when it saw none, and
	// leaseRev is the revision of this instance's last lease write.
	progress map[string]runProgress
	idle     bool
	leaseRev uint64
	now      func() time.Time

	advisories chan *nats.Msg
	sub        *nats.Subscription
}

// newReconciler opens ORK_TASKS and subscribes to the max-deliveries advisories, so that they are
// caught from the first dispatch on.
func (s *Service) newReconciler(ctx context.Context) (*reconciler, error) {
	stream, err := s.b.JS.Stream(ctx, event.StreamTasks)
	if err != nil {
		return nil, fmt.Errorf("opening stream %s: %w", event.StreamTasks, err)
	}
	events, err := s.b.JS.Stream(ctx, event.StreamEvents)
	if err != nil {
		return nil, fmt.Errorf("opening stream %s: %w", event.StreamEvents, err)
	}
	r := &reconciler{s: s, stream: stream, events: events, since: make(map[attemptKey]time.Time), graphs: make(map[string]*Graph),
		progress: make(map[string]runProgress), now: time.Now, advisories: make(chan *nats.Msg, 256)}
	if r.sub, err = s.b.NC.ChanQueueSubscribe(AdvisoryMaxDeliveries, advisoryQueue, r.advisories); err != nil {
		return nil, fmt.Errorf("subscribing to max-deliveries advisories: %w", err)
	}
	return r, nil
}

// run sweeps every ReconcileInterval while this instance holds the lease, and handles the
// max-deliveries advisories, until ctx is done.
func (r *reconciler) run(ctx context.Context) {
	s := r.s
	defer func() {
		if err := r.sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			s.log.Warn("unsubscribing from advisories", zap.Error(err))
		}
	}()
	tick := time.NewTicker(s.cfg.ReconcileInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-r.advisories:
			r.maxDeliveries(ctx, m)
		case <-tick.C:
			opCtx, cancel := context.WithTimeout(ctx, s.cfg.ReconcileInterval+s.cfg.OpTimeout)
			// A sweep cut short by a lost connection is done again at the next tick.
			opCtx, stop := s.b.OpContext(opCtx)
			if err := r.sweep(opCtx); err != nil && ctx.Err() == nil {
				s.log.Warn("reconciler sweep", zap.Error(err))
			}
			stop()
			cancel()
		}
	}
}

// sweep runs one pass if this instance holds (or takes) the lease.
func (r *reconciler) sweep(ctx context.Context) error {
	leaseRev, err := r.holdLease(ctx)
	if err != nil || leaseRev == 0 {
		return err
	}
	return errors.Join(r.noExecutor(ctx), r.liveness(ctx, leaseRev))
}

// holdLease renews this instance's reconciler lease or takes an expired one, and returns the
// revision it wrote when this instance holds it for the next three intervals, 0 when another
// instance does.
func (r *reconciler) holdLease(ctx context.Context) (uint64, error) {
	return holdLease(ctx, r.s.kv, leaseKey, r.s.cfg.Instance, 3*r.s.cfg.ReconcileInterval, r.now())
}

// noExecutor fails the dispatches that have waited longer than NoExecutorTimeout for an executor
// type with no instance online: no consumer exec-<type>, or one with no pull waiting, nothing
// unacknowledged and nothing delivered within the timeout.
func (r *reconciler) noExecutor(ctx context.Context) error {
	s := r.s
	info, err := r.stream.Info(ctx, jetstream.WithSubjectFilter(event.SubjectTasksAll))
	if err != nil {
		return fmt.Errorf("reading %s info: %w", event.StreamTasks, err)
	}
	if len(info.State.Subjects) == 0 {
		return nil
	}
	consumers := make(map[string]*jetstream.ConsumerInfo)
	list := r.stream.ListConsumers(ctx)
	for ci := range list.Info() {
		consumers[ci.Name] = ci
	}
	if err := list.Err(); err != nil {
		return fmt.Errorf("listing consumers of %s: %w", event.StreamTasks, err)
	}
	now := r.now()
	var errs []error
	for subject := range info.State.Subjects {
		typ, ok := event.ExecutorTypeOfSubject(subject)
		if !ok {
			continue
		}
		ci := consumers[event.ConsumerExecutor(typ)]
		if ci != nil && (ci.NumWaiting > 0 || ci.NumAckPending > 0 ||
			ci.Delivered.Last != nil && now.Sub(*ci.Delivered.Last) < s.cfg.NoExecutorTimeout) {
			continue
		}
		reason := fmt.Sprintf("no executor of type %q came online within %s", typ, s.cfg.NoExecutorTimeout)
		errs = append(errs, r.failQueued(ctx, subject, info.State.FirstSeq, now.Add(-s.cfg.NoExecutorTimeout), reason))
	}
	return errors.Join(errs...)
}

// failQueued fails (reason no_executor) and deletes the dispatches on subject stored before cutoff.
func (r *reconciler) failQueued(ctx context.Context, subject string, seq uint64, cutoff time.Time, reason string) error {
	for {
		m, err := r.stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", subject, err)
		}
		if !m.Time.Before(cutoff) {
			return nil // later messages are younger still
		}
		if err := r.failMsg(ctx, m, event.ReasonNoExecutor, reason); err != nil {
			return err
		}
		seq = m.Sequence + 1
	}
}

// failMsg publishes task.failed for the attempt of a dispatch message, then deletes the message.
// A message that is not a dispatch is only deleted.
func (r *reconciler) failMsg(ctx context.Context, m *jetstream.RawStreamMsg, reason, text string) error {
	s := r.s
	d, err := event.DecodeDispatch(m.Data)
	if err == nil {
		f := event.New(event.TypeTaskFailed, d.RunID, d.Task.Name, d.Attempt)
		f.Reason, f.Error = reason, text
		msg, err := bus.EventMsg(&f)
		if err != nil {
			return err
		}
		if err := s.b.Publish(ctx, msg); err != nil {
			return fmt.Errorf("publishing task.failed: %w", err)
		}
		s.cfg.Metrics.reconcilerFailed(reason, 1)
		s.log.Warn("dispatch failed by the reconciler", logging.RunID(d.RunID), logging.Task(d.Task.Name),
			logging.Attempt(d.Attempt), zap.String("reason", reason), zap.String("error", text))
	} else {
		s.log.Warn("undecodable dispatch deleted", logging.Seq(m.Sequence), logging.Subject(m.Subject), zap.Error(err))
	}
	if err := r.stream.DeleteMsg(ctx, m.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("deleting dispatch %d: %w", m.Sequence, err)
	}
	return nil
}

// advisory is the part of a max-deliveries advisory the reconciler reads.
type advisory struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

// maxDeliveries fails the attempt of a dispatch delivered MaxDeliver times and deletes it.
func (r *reconciler) maxDeliveries(ctx context.Context, nm *nats.Msg) {
	s := r.s
	var a advisory
	if err := json.Unmarshal(nm.Data, &a); err != nil || a.StreamSeq == 0 {
		s.log.Warn("undecodable max-deliveries advisory", logging.Subject(nm.Subject), zap.Error(err))
		return
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.OpTimeout)
	defer cancel()
	ctx, stop := s.b.OpContext(ctx)
	defer stop()
	m, err := r.stream.GetMsg(ctx, a.StreamSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return // handled already, or acknowledged after all
	}
	if err == nil {
		text := fmt.Sprintf("the dispatch was delivered %d times to %s without a result", a.Deliveries, a.Consumer)
		err = r.failMsg(ctx, m, event.ReasonMaxDeliveries, text)
	}
	if err != nil {
		s.log.Warn("handling max-deliveries advisory", logging.Seq(a.StreamSeq), zap.Error(err))
	}
}

// runProgress is what the reconciler knows of one active run: the revision of its state and when
// this instance first saw that revision.
type runProgress struct {
	rev   uint64
	since time.Time
}

// stalledRun is an active run whose state has not changed for StallTimeout.
type stalledRun struct {
	id string
	st RunState
}

// liveness is the run-level pass of a sweep. It reads every active run's state once and settles
// what nothing else will:
//
//   - an in-flight attempt whose dispatch is gone from ORK_TASKS and which has been in flight for
//     its task's timeout plus LostGrace (as seen by this instance) is settled: its result, if it is
//     on ORK_EVENTS, is applied; otherwise the attempt is failed with reason lost;
//   - a run that is running (not paused) and whose state has not changed for StallTimeout, and that
//     has nothing in flight (every dispatched attempt's dispatch is gone from ORK_TASKS: no delivery
//     pending, no executor heartbeating it, no retry waiting out its delay), is re-driven from its
//     stored state: the missing attempts are settled as above at once, then typeRedrive dispatches
//     what is ready and finishes what is finished. A run whose plan is gone is failed with the reason.
//
// ORK_TASKS and ORK_EVENTS are only read when some attempt is overdue or some run stalled, and at
// most MaxRedrives runs are re-driven per sweep. When the previous pass found no active run and no
// state was written since (the lease write is the only change in the bucket), nothing is read.
func (r *reconciler) liveness(ctx context.Context, leaseRev uint64) error {
	s := r.s
	if r.idle && r.leaseRev != 0 && leaseRev == r.leaseRev+1 {
		r.leaseRev = leaseRev
		return nil
	}
	r.leaseRev = leaseRev
	w, err := s.kv.Watch(ctx, "run.*", jetstream.IgnoreDeletes())
	if err != nil {
		return fmt.Errorf("watching run states: %w", err)
	}
	defer func() { _ = w.Stop() }()
	now := r.now()
	seen := make(map[attemptKey]bool, len(r.since))
	active := make(map[string]bool, len(r.progress))
	var overdue []attemptKey
	var stalled []stalledRun
	for entry := range w.Updates() {
		if entry == nil {
			break // the current values are all read
		}
		var st RunState
		// A finished run that is not compacted yet is in flight too: its handler publishes its end
		// and then compacts it.
		if err := st.UnmarshalBinary(entry.Value()); err != nil || st.Compacted || st.Status == RunNew {
			continue
		}
		runID := strings.TrimPrefix(entry.Key(), "run.")
		active[runID] = true
		p, ok := r.progress[runID]
		if !ok || p.rev != entry.Revision() {
			p = runProgress{rev: entry.Revision(), since: now}
			r.progress[runID] = p
		}
		if st.Status != RunPaused && now.Sub(p.since) >= s.cfg.StallTimeout && len(stalled) < s.cfg.MaxRedrives {
			stalled = append(stalled, stalledRun{id: runID, st: st})
		}
		for i, ts := range st.Tasks {
			if ts.Status != TaskDispatched {
				continue
			}
			k := attemptKey{run: runID, task: i, attempt: ts.Attempt}
			seen[k] = true
			first, ok := r.since[k]
			if !ok {
				r.since[k] = now
				continue
			}
			if now.Sub(first) >= s.cfg.LostGrace {
				overdue = append(overdue, k)
			}
		}
	}
	r.idle = len(active) == 0
	for k := range r.since {
		if !seen[k] {
			delete(r.since, k)
		}
	}
	for run := range r.progress {
		if !active[run] {
			delete(r.progress, run)
		}
	}
	for run := range r.graphs {
		if !active[run] {
			delete(r.graphs, run)
		}
	}
	// Keep only the overdue attempts past their task's timeout too.
	due := overdue[:0]
	for _, k := range overdue {
		g, err := r.graph(ctx, k.run)
		if err != nil {
			s.log.Warn("reconciler reading plan", logging.RunID(k.run), zap.Error(err))
			continue
		}
		if k.task >= g.Len() {
			continue
		}
		limit := time.Duration(g.Task(k.task).TimeoutSeconds)*time.Second + s.cfg.LostGrace
		if now.Sub(r.since[k]) >= limit {
			due = append(due, k)
		}
	}
	if len(due) == 0 && len(stalled) == 0 {
		return nil
	}
	queued, err := r.queuedAttempts(ctx)
	if err != nil {
		return err
	}
	missing := make(map[string][]attemptKey)
	for _, k := range due {
		if !queued[r.msgID(k)] {
			missing[k.run] = append(missing[k.run], k)
		}
	}
	var errs []error
	for run, ks := range missing {
		errs = append(errs, r.settle(ctx, run, ks))
	}
	for _, sr := range stalled {
		errs = append(errs, r.redrive(ctx, sr, queued, missing[sr.id] != nil))
	}
	return errors.Join(errs...)
}

// msgID is the Nats-Msg-Id of the dispatch of attempt k (event.Dispatch.MsgID).
func (r *reconciler) msgID(k attemptKey) string {
	return k.run + "/" + r.graphs[k.run].Task(k.task).Name + "/" + strconv.Itoa(k.attempt)
}

// redrive re-drives a stalled run: unless it has a dispatch in ORK_TASKS (something is in flight,
// it is only slow), its in-flight attempts are settled and typeRedrive is applied to it.
func (r *reconciler) redrive(ctx context.Context, sr stalledRun, queued map[string]bool, settled bool) error {
	s := r.s
	g, err := r.graph(ctx, sr.id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return r.failStranded(ctx, sr.id, "the run stalled and its plan is gone from the "+event.BucketRuns+
			" bucket, so it cannot be re-driven")
	}
	if err != nil {
		return err
	}
	if len(sr.st.Tasks) != g.Len() {
		return fmt.Errorf("run %s: state has %d tasks, plan %d", sr.id, len(sr.st.Tasks), g.Len())
	}
	var ks []attemptKey
	for i, ts := range sr.st.Tasks {
		if ts.Status != TaskDispatched {
			continue
		}
		k := attemptKey{run: sr.id, task: i, attempt: ts.Attempt}
		if queued[r.msgID(k)] {
			// In flight: waiting for an executor, running, or a retry waiting out its delay.
			r.progress[sr.id] = runProgress{rev: r.progress[sr.id].rev, since: r.now()}
			return nil
		}
		ks = append(ks, k)
	}
	s.log.Warn("re-driving a stalled run", logging.RunID(sr.id), logging.Count(len(ks)),
		zap.Duration("unchanged_for", r.now().Sub(r.progress[sr.id].since)))
	s.cfg.Metrics.reconcilerRedriven()
	if !settled && len(ks) > 0 {
		if err := r.settle(ctx, sr.id, ks); err != nil {
			return err
		}
	}
	// As a redelivery: a finished run whose end was never published gets it published (Replay).
	ev := event.New(typeRedrive, sr.id, "", 0)
	if err := s.process(ctx, &ev, true); err != nil {
		return fmt.Errorf("re-driving run %s: %w", sr.id, err)
	}
	r.progress[sr.id] = runProgress{rev: r.progress[sr.id].rev, since: r.now()}
	return nil
}

// settle decides the in-flight attempts ks of one run whose dispatch is gone from ORK_TASKS. An
// executor acknowledges a dispatch only after publishing its terminal event, so the result of such
// an attempt is on ORK_EVENTS unless a message was lost: a result found there is applied (the
// scheduler missed it), and an attempt without one is failed with reason lost. ORK_TASKS was read
// before ORK_EVENTS, so a result published just before its dispatch was acknowledged is found.
func (r *reconciler) settle(ctx context.Context, runID string, ks []attemptKey) error {
	s := r.s
	found, err := r.results(ctx, runID, ks)
	if err != nil {
		return err
	}
	var lost []event.Event
	for _, k := range ks {
		if ev, ok := found[k]; ok {
			s.log.Warn("applying a result the scheduler missed", logging.RunID(runID), logging.Task(ev.Task),
				logging.Attempt(ev.Attempt), logging.EventType(ev.Type), logging.Seq(ev.Seq))
			if err := s.process(ctx, &ev, false); err != nil {
				return fmt.Errorf("applying %s of %s/%s: %w", ev.Type, runID, ev.Task, err)
			}
			s.cfg.Metrics.reconcilerApplied()
			continue
		}
		name := r.graphs[runID].Task(k.task).Name
		f := event.New(event.TypeTaskFailed, runID, name, k.attempt)
		f.Reason = event.ReasonLost
		f.Error = fmt.Sprintf("attempt %d was lost: its dispatch is gone and no result came", k.attempt)
		lost = append(lost, f)
		s.log.Warn("attempt lost", logging.RunID(runID), logging.Task(name), logging.Attempt(k.attempt))
	}
	if len(lost) == 0 {
		return nil
	}
	msgs := make([]bus.Msg, 0, len(lost))
	for i := range lost {
		m, err := bus.EventMsg(&lost[i])
		if err != nil {
			return err
		}
		msgs = append(msgs, m)
	}
	// Published for the recorder, and applied here at once: if the scheduler's consumer is what
	// stalls, the loss still moves the run on. Whichever comes second is a duplicate.
	if err := s.b.Publish(ctx, msgs...); err != nil {
		return fmt.Errorf("publishing lost attempts: %w", err)
	}
	s.cfg.Metrics.reconcilerFailed(event.ReasonLost, len(msgs))
	for i := range lost {
		if err := s.process(ctx, &lost[i], false); err != nil {
			return fmt.Errorf("applying the loss of %s/%s: %w", runID, lost[i].Task, err)
		}
	}
	return nil
}

// results returns the first terminal event (task.succeeded or task.failed) on ORK_EVENTS of each
// attempt in ks of one run.
func (r *reconciler) results(ctx context.Context, runID string, ks []attemptKey) (map[attemptKey]event.Event, error) {
	want := make(map[attemptKey]bool, len(ks))
	for _, k := range ks {
		want[k] = true
	}
	g := r.graphs[runID]
	found := make(map[attemptKey]event.Event)
	info, err := r.events.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading %s info: %w", event.StreamEvents, err)
	}
	for _, typ := range []string{event.TypeTaskSucceeded, event.TypeTaskFailed} {
		subject := event.SubjectEvent(typ, runID)
		for seq := info.State.FirstSeq; ; {
			m, err := r.events.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("reading %s: %w", subject, err)
			}
			seq = m.Sequence + 1
			ev, err := event.DecodeEvent(m.Data)
			if err != nil {
				continue // the recorder dead-letters it
			}
			i, ok := g.Index(ev.Task)
			if !ok {
				continue
			}
			k := attemptKey{run: runID, task: i, attempt: ev.Attempt}
			if prev, dup := found[k]; !want[k] || dup && prev.Seq < m.Sequence {
				continue
			}
			ev.Seq = m.Sequence
			found[k] = ev
		}
	}
	return found, nil
}

// failStranded ends a run that cannot be re-driven: its state becomes a failed tombstone (with
// compare-and-swap, so a run that moved on meanwhile is left alone) and run.finished says why.
func (r *reconciler) failStranded(ctx context.Context, runID, reason string) error {
	s := r.s
	entry, err := s.kv.Get(ctx, stateKey(runID))
	if err != nil {
		return fmt.Errorf("reading run state: %w", err)
	}
	st := RunState{Status: RunFailed, Error: reason, Compacted: true}
	data, err := st.MarshalBinary()
	if err != nil {
		return fmt.Errorf("encoding run state: %w", err)
	}
	if entry.Revision() != r.progress[runID].rev {
		return nil // it moved on since the pass read it
	}
	if _, err := s.kv.Update(ctx, stateKey(runID), data, entry.Revision()); err != nil {
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
			return nil
		}
		return fmt.Errorf("writing run state: %w", err)
	}
	s.log.Error("stalled run failed", logging.RunID(runID), zap.String("reason", reason))
	f := event.New(event.TypeRunFinished, runID, "", 0)
	f.Status, f.Error = event.RunFailed, reason
	m, err := bus.EventMsg(&f)
	if err != nil {
		return err
	}
	s.cfg.Metrics.reconcilerFailed(event.ReasonStalled, 1)
	return s.b.Publish(ctx, m)
}

// graph returns the plan of a run, read once per run while it has overdue attempts.
func (r *reconciler) graph(ctx context.Context, runID string) (*Graph, error) {
	if g := r.graphs[runID]; g != nil {
		return g, nil
	}
	pe, err := r.s.kv.Get(ctx, planKey(runID))
	if err != nil {
		return nil, fmt.Errorf("reading plan: %w", err)
	}
	g, err := decodeGraph(pe.Value())
	if err != nil {
		return nil, err
	}
	r.graphs[runID] = g
	return g, nil
}

// queuedAttempts returns the Nats-Msg-Id (run/task/attempt) of every message in ORK_TASKS.
func (r *reconciler) queuedAttempts(ctx context.Context) (map[string]bool, error) {
	info, err := r.stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading %s info: %w", event.StreamTasks, err)
	}
	ids := make(map[string]bool, info.State.Msgs)
	if info.State.Msgs == 0 {
		return ids, nil
	}
	for seq := info.State.FirstSeq; ; {
		m, err := r.stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(event.SubjectTasksAll))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", event.StreamTasks, err)
		}
		ids[m.Header.Get(jetstream.MsgIDHeader)] = true
		seq = m.Sequence + 1
	}
	return ids, nil
}
