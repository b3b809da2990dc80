package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// ExecutorConsumer is the durable consumer executors of a type share ("exec-<type>").
func ExecutorConsumer(executorType string) string { return "exec-" + executorType }

// lease is the value of leaseKey.
type lease struct {
	Holder string    `json:"holder"`
	Until  time.Time `json:"until"`
}

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
	stream jetstream.Stream
	// since is when this instance first saw each in-flight attempt. A new holder of the lease
	// starts counting afresh, which only delays a verdict.
	since  map[attemptKey]time.Time
	graphs map[string]*Graph
	now    func() time.Time

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
	r := &reconciler{s: s, stream: stream, since: make(map[attemptKey]time.Time), graphs: make(map[string]*Graph),
		now: time.Now, advisories: make(chan *nats.Msg, 256)}
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
	leader, err := r.holdLease(ctx)
	if err != nil || !leader {
		return err
	}
	return errors.Join(r.noExecutor(ctx), r.lost(ctx))
}

// holdLease renews this instance's lease or takes an expired one, with compare-and-swap, and
// reports whether this instance holds it for the next three intervals.
func (r *reconciler) holdLease(ctx context.Context) (bool, error) {
	s := r.s
	now := r.now()
	data, err := json.Marshal(lease{Holder: s.cfg.Instance, Until: now.Add(3 * s.cfg.ReconcileInterval)})
	if err != nil {
		return false, fmt.Errorf("encoding lease: %w", err)
	}
	entry, err := s.kv.Get(ctx, leaseKey)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		_, err = s.kv.Create(ctx, leaseKey, data)
	case err != nil:
		return false, fmt.Errorf("reading lease: %w", err)
	default:
		var l lease
		if json.Unmarshal(entry.Value(), &l) == nil && l.Holder != s.cfg.Instance && now.Before(l.Until) {
			return false, nil
		}
		_, err = s.kv.Update(ctx, leaseKey, data, entry.Revision())
	}
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch):
		return false, nil // another instance took it first
	}
	return false, fmt.Errorf("writing lease: %w", err)
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
		typ := strings.TrimPrefix(subject, "ork.tasks.")
		ci := consumers[ExecutorConsumer(typ)]
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

// lost fails (reason lost) the in-flight attempts whose dispatch message is gone from ORK_TASKS and
// whose result has not come within the task's timeout plus LostGrace since this instance first saw
// them in flight. An acknowledged dispatch had its terminal event published first, so a message
// missing for that long was lost (purged, or acknowledged without a result).
//
// It reads the run states, not the event path: the scheduler's hot path keeps no dispatch times.
// ORK_TASKS is only scanned when some attempt is overdue.
func (r *reconciler) lost(ctx context.Context) error {
	s := r.s
	w, err := s.kv.Watch(ctx, "run.*", jetstream.IgnoreDeletes())
	if err != nil {
		return fmt.Errorf("watching run states: %w", err)
	}
	defer func() { _ = w.Stop() }()
	now := r.now()
	seen := make(map[attemptKey]bool, len(r.since))
	active := make(map[string]bool)
	var overdue []attemptKey
	for entry := range w.Updates() {
		if entry == nil {
			break // the current values are all read
		}
		var st RunState
		if err := st.UnmarshalBinary(entry.Value()); err != nil || st.Compacted || !st.Status.Started() {
			continue
		}
		runID := strings.TrimPrefix(entry.Key(), "run.")
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
				active[runID] = true
			}
		}
	}
	for k := range r.since {
		if !seen[k] {
			delete(r.since, k)
		}
	}
	for run := range r.graphs {
		if !active[run] {
			delete(r.graphs, run)
		}
	}
	// Keep only those past their task's timeout too.
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
	if len(due) == 0 {
		return nil
	}
	queued, err := r.queuedAttempts(ctx)
	if err != nil {
		return err
	}
	var msgs []bus.Msg
	for _, k := range due {
		name := r.graphs[k.run].Task(k.task).Name
		if queued[k.run+"/"+name+"/"+fmt.Sprint(k.attempt)] {
			continue
		}
		f := event.New(event.TypeTaskFailed, k.run, name, k.attempt)
		f.Reason = event.ReasonLost
		f.Error = fmt.Sprintf("attempt %d was lost: its dispatch is gone and no result came", k.attempt)
		m, err := bus.EventMsg(&f)
		if err != nil {
			return err
		}
		msgs = append(msgs, m)
		s.log.Warn("attempt lost", logging.RunID(k.run), logging.Task(name), logging.Attempt(k.attempt))
	}
	if len(msgs) == 0 {
		return nil
	}
	if err := s.b.Publish(ctx, msgs...); err != nil {
		return fmt.Errorf("publishing lost attempts: %w", err)
	}
	s.cfg.Metrics.reconcilerFailed(event.ReasonLost, len(msgs))
	return nil
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
