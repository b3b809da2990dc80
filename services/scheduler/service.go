package scheduler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/logging"
	"github.com/ork-go/ork/pkg/workflow"
)

// Defaults of Config.
const (
	DurableDefault     = event.ConsumerScheduler
	ConcurrencyDefault = 64
	AckWaitDefault     = 30 * time.Second
	CASRetriesDefault  = 16
	CachedRunsDefault  = 4096
	OpTimeoutDefault   = 10 * time.Second

	ReconcileIntervalDefault = 10 * time.Second
	NoExecutorTimeoutDefault = time.Minute
	LostGraceDefault         = 30 * time.Second
	StallTimeoutDefault      = time.Minute
	MaxRedrivesDefault       = 1000
)

// Config configures a scheduler Service.
type Config struct {
	// Durable is the name of the consumer every scheduler instance shares.
	Durable string
	// Concurrency bounds the events handled at once by this instance.
	Concurrency int
	// AckWait is how long an event may stay unacknowledged before it is redelivered.
	AckWait time.Duration
	// Backoff is the retry delay policy of failed tasks.
	Backoff Backoff
	// CASRetries bounds the reloads after a compare-and-swap conflict on one event.
	CASRetries int
	// CachedRuns bounds the idle runs whose state and plan stay in memory. The cache saves a KV
	// read per event; a stale entry is caught by the compare-and-swap and reloaded.
	CachedRuns int
	// OpTimeout bounds the handling of one event, KV writes and publishes included. A request in
	// flight when the connection to NATS is lost does not wait for it: it is cancelled at once and
	// the event retried after the reconnect (bus.OpContext), so OpTimeout only bounds a server
	// that stays connected but does not answer.
	OpTimeout time.Duration
	// MaxLostAttempts bounds the lost attempts of one task that are re-dispatched without using
	// up its retries.
	MaxLostAttempts int
	// ReconcileInterval is the period of the reconciler's sweep; a negative value disables the
	// reconciler (and the max-deliveries advisories) in this instance.
	ReconcileInterval time.Duration
	// NoExecutorTimeout is how long a dispatch may wait for an executor type with no instance
	// online before the task fails (reason no_executor).
	NoExecutorTimeout time.Duration
	// LostGrace is added to a task's timeout before an in-flight attempt whose dispatch message is
	// gone, with no terminal event, is declared lost.
	LostGrace time.Duration
	// StallTimeout is how long a running run may go without a change of its state, with nothing
	// in flight, before the reconciler re-drives it from its stored state.
	StallTimeout time.Duration
	// MaxRedrives bounds the stalled runs re-driven by one sweep; the rest wait for the next.
	MaxRedrives int
	// Instance names this instance in the reconciler lease; a random id when empty.
	Instance string
	// Metrics, when set, records the scheduler's metrics (NewMetrics); nil records nothing.
	Metrics *Metrics
}

// WithDefaults returns the config with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Durable == "" {
		c.Durable = DurableDefault
	}
	if c.Concurrency == 0 {
		c.Concurrency = ConcurrencyDefault
	}
	if c.AckWait == 0 {
		c.AckWait = AckWaitDefault
	}
	c.Backoff = backoffWithDefaults(c.Backoff)
	if c.CASRetries == 0 {
		c.CASRetries = CASRetriesDefault
	}
	if c.CachedRuns == 0 {
		c.CachedRuns = CachedRunsDefault
	}
	if c.OpTimeout == 0 {
		c.OpTimeout = OpTimeoutDefault
	}
	if c.MaxLostAttempts == 0 {
		c.MaxLostAttempts = MaxLostAttemptsDefault
	}
	if c.ReconcileInterval == 0 {
		c.ReconcileInterval = ReconcileIntervalDefault
	}
	if c.NoExecutorTimeout == 0 {
		c.NoExecutorTimeout = NoExecutorTimeoutDefault
	}
	if c.LostGrace == 0 {
		c.LostGrace = LostGraceDefault
	}
	if c.StallTimeout == 0 {
		c.StallTimeout = StallTimeoutDefault
	}
	if c.MaxRedrives == 0 {
		c.MaxRedrives = MaxRedrivesDefault
	}
	if c.Instance == "" {
		c.Instance = event.NewID()
	}
	return c
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.Durable == "":
		return errors.New("scheduler: Durable is required")
	case c.Concurrency < 1:
		return fmt.Errorf("scheduler: Concurrency must be positive, got %d", c.Concurrency)
	case c.AckWait < time.Second:
		return fmt.Errorf("scheduler: AckWait must be at least 1s, got %s", c.AckWait)
	case c.CASRetries < 1:
		return fmt.Errorf("scheduler: CASRetries must be positive, got %d", c.CASRetries)
	case c.CachedRuns < 0:
		return fmt.Errorf("scheduler: CachedRuns must not be negative, got %d", c.CachedRuns)
	case c.OpTimeout <= 0:
		return fmt.Errorf("scheduler: OpTimeout must be positive, got %s", c.OpTimeout)
	case c.MaxLostAttempts < 1:
		return fmt.Errorf("scheduler: MaxLostAttempts must be positive, got %d", c.MaxLostAttempts)
	case c.NoExecutorTimeout <= 0:
		return fmt.Errorf("scheduler: NoExecutorTimeout must be positive, got %s", c.NoExecutorTimeout)
	case c.LostGrace <= 0:
		return fmt.Errorf("scheduler: LostGrace must be positive, got %s", c.LostGrace)
	case c.StallTimeout <= 0:
		return fmt.Errorf("scheduler: StallTimeout must be positive, got %s", c.StallTimeout)
	case c.MaxRedrives < 1:
		return fmt.Errorf("scheduler: MaxRedrives must be positive, got %d", c.MaxRedrives)
	}
	if err := c.Backoff.Validate(); err != nil {
		return fmt.Errorf("scheduler: %w", err)
	}
	return nil
}

// Service consumes run submissions and task terminal events and schedules runs. Any number of
// instances may share one bus.
type Service struct {
	b   *bus.Bus
	cfg Config
	log *zap.Logger
	kv  jetstream.KeyValue

	mu   sync.Mutex
	runs map[string]*runEntry
}

// runEntry is the cached state of one run and the queue of its events. Every field but graph, state
// and rev is guarded by Service.mu; those three belong to the handler that leads the queue.
type runEntry struct {
	refs  int        // handlers holding the entry
	queue []*pending // events waiting for the leader
	busy  bool       // a handler leads the queue
	graph *Graph
	state *RunState // nil when it must be (re)loaded
	rev   uint64    // KV revision of state; 0 when the key does not exist yet
	done  bool      // compacted: drop from the cache when idle
}

// New returns a scheduler on b.
func New(b *bus.Bus, cfg Config, log *zap.Logger) (*Service, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if b == nil {
		return nil, errors.New("scheduler: no bus")
	}
	return &Service{b: b, cfg: cfg, log: log, runs: make(map[string]*runEntry)}, nil
}

// Filters are the subjects the scheduler consumes.
var Filters = []string{
	event.SubjectRunSubmitted,
	event.SubjectEventsOfType(event.TypeTaskSucceeded),
	event.SubjectEventsOfType(event.TypeTaskFailed),
	event.SubjectEventsOfType(event.TypeRunCancelRequested),
	event.SubjectEventsOfType(event.TypeRunPauseRequested),
	event.SubjectEventsOfType(event.TypeRunResumeRequested),
}

// Run consumes events until ctx is done, then stops pulling, finishes the events in hand and
// returns nil.
func (s *Service) Run(ctx context.Context) error {
	kv, err := s.b.Runs(ctx)
	if err != nil {
		return err
	}
	s.kv = kv
	cons, err := s.b.Consumer(ctx, bus.ConsumerSpec{
		Stream:  event.StreamEvents,
		Durable: s.cfg.Durable,
		Filters: Filters,
		AckWait: s.cfg.AckWait,
	})
	if err != nil {
		return err
	}
	s.cfg.Metrics.watch(s.b.JS, s.cfg.Durable)
	s.log.Info("scheduler started", zap.String("durable", s.cfg.Durable), logging.Count(s.cfg.Concurrency))
	// Handlers finish their event after ctx is done: the stop is soft.
	hctx := context.WithoutCancel(ctx)
	recDone := make(chan struct{})
	if s.cfg.ReconcileInterval > 0 {
		r, err := s.newReconciler(ctx)
		if err != nil {
			return err
		}
		go func() {
			defer close(recDone)
			r.run(ctx)
		}()
	} else {
		close(recDone)
	}
	err = bus.Work(ctx, cons, s.cfg.Concurrency, func(m jetstream.Msg) { s.handle(hctx, m) })
	<-recDone
	s.log.Info("scheduler stopped")
	return err
}

func (s *Service) handle(ctx context.Context, m jetstream.Msg) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.OpTimeout)
	defer cancel()
	ctx, stop := s.b.OpContext(ctx)
	defer stop()
	meta, err := m.Metadata()
	if err != nil {
		s.log.Error("reading message metadata", zap.Error(err))
		s.term(m)
		return
	}
	seq := meta.Sequence.Stream
	ev, err := event.DecodeEvent(m.Data())
	if err != nil {
		// The recorder consumes the same stream and dead-letters it.
		s.log.Warn("undecodable event", logging.Seq(seq), logging.Subject(m.Subject()), zap.Error(err))
		s.term(m)
		return
	}
	ev.Seq = seq
	if err := s.process(ctx, &ev, meta.NumDelivered > 1); err != nil {
		if errors.Is(context.Cause(ctx), bus.ErrConnectionLost) || errors.Is(err, nats.ErrDisconnected) {
			// Expected during a NATS restart: the nak waits in the reconnect buffer.
			s.log.Warn("connection lost while handling event, retrying it", logging.EventType(ev.Type), logging.RunID(ev.RunID),
				logging.Seq(seq), zap.Error(err))
		} else {
			s.log.Error("handling event", logging.EventType(ev.Type), logging.RunID(ev.RunID), logging.Task(ev.Task),
				logging.Attempt(ev.Attempt), logging.Seq(seq), zap.Uint64("delivered", meta.NumDelivered), zap.Error(err))
		}
		delay := min(time.Duration(meta.NumDelivered)*100*time.Millisecond, 5*time.Second)
		if err := m.NakWithDelay(delay); err != nil {
			s.log.Warn("nak failed", logging.Seq(seq), zap.Error(err))
		}
		return
	}
	if err := m.Ack(); err != nil {
		s.log.Warn("ack failed", logging.Seq(seq), zap.Error(err))
	}
}

func (s *Service) term(m jetstream.Msg) {
	if err := m.Term(); err != nil {
		s.log.Warn("term failed", logging.Subject(m.Subject()), zap.Error(err))
	}
}

func (s *Service) policy() Policy {
	return Policy{Backoff: s.cfg.Backoff, MaxLostAttempts: s.cfg.MaxLostAttempts}
}

// errUnknownRun is returned by load for a run without state.
var errUnknownRun = errors.New("unknown run")

// invalidPlanError is a submission whose plan cannot run.
type invalidPlanError struct{ err error }

func (e *invalidPlanError) Error() string { return "invalid workflow: " + e.err.Error() }
func (e *invalidPlanError) Unwrap() error { return e.err }

// pending is one event waiting for its run's turn.
type pending struct {
	ev          *event.Event
	redelivered bool
	res         chan result // capacity 1
}

type result struct {
	err  error
	lead bool // the receiver now handles its run's queue
}

// process handles one event. Events of one run queue on its entry: one handler at a time (the
// leader) takes the whole queue and applies it with one state write and one publish, so a busy run
// costs one KV round trip per batch instead of per event. The leader hands the queue on after one
// batch, so no handler holds its own message for long.
func (s *Service) process(ctx context.Context, ev *event.Event, redelivered bool) error {
	if ev.Type == event.TypeRunSubmitted {
		ev.RunID = event.SubmissionRunID(ev, ev.Seq)
		if ev.IdempotencyKey != "" {
			first, err := s.claimIdempotencyKey(ctx, ev)
			if err != nil || !first {
				return err
			}
		}
	}
	if !validToken(ev.RunID) {
		// Neither a KV key nor a subject can name it: nothing can be scheduled for it.
		s.log.Warn("event with an unusable run id ignored", logging.RunID(ev.RunID), logging.EventType(ev.Type), logging.Seq(ev.Seq))
		return nil
	}
	p := &pending{ev: ev, redelivered: redelivered, res: make(chan result, 1)}
	s.mu.Lock()
	e := s.runs[ev.RunID]
	if e == nil {
		e = &runEntry{}
		s.runs[ev.RunID] = e
	}
	e.refs++
	e.queue = append(e.queue, p)
	r := result{lead: !e.busy}
	e.busy = true
	s.mu.Unlock()

	if !r.lead {
		r = <-p.res
	}
	if r.lead {
		s.mu.Lock()
		batch := e.queue
		e.queue = nil
		s.mu.Unlock()
		s.handleBatch(ctx, e, batch)
		s.mu.Lock()
		if len(e.queue) > 0 {
			e.queue[0].res <- result{lead: true}
		} else {
			e.busy = false
		}
		s.mu.Unlock()
		r = <-p.res
	}

	s.mu.Lock()
	e.refs--
	if e.refs == 0 && (e.done || e.state == nil || len(s.runs) > s.cfg.CachedRuns) {
		delete(s.runs, ev.RunID)
	}
	s.mu.Unlock()
	return r.err
}

// handleBatch applies queued events of one run and reports each one's result. A submission is
// handled alone; the events between submissions are applied together.
func (s *Service) handleBatch(ctx context.Context, e *runEntry, batch []*pending) {
	for len(batch) > 0 {
		n := 1
		if batch[0].ev.Type != event.TypeRunSubmitted {
			for n < len(batch) && batch[n].ev.Type != event.TypeRunSubmitted {
				n++
			}
		}
		err := s.handlePart(ctx, e, batch[:n])
		for _, p := range batch[:n] {
			p.res <- result{err: err}
		}
		batch = batch[n:]
	}
}

func (s *Service) handlePart(ctx context.Context, e *runEntry, part []*pending) error {
	first := part[0].ev
	cmds, err := s.apply(ctx, e, part)
	var invalid *invalidPlanError
	switch {
	case errors.Is(err, errUnknownRun):
		s.log.Debug("events of an unknown run ignored", logging.RunID(first.RunID), logging.EventType(first.Type),
			logging.Seq(first.Seq), logging.Count(len(part)))
		return nil
	case errors.As(err, &invalid):
		s.log.Warn("invalid workflow submitted", logging.RunID(first.RunID), zap.Error(err))
		return s.failInvalid(ctx, first, invalid)
	case err != nil:
		return err
	}
	for i, c := range cmds {
		s.cfg.Metrics.event(part[i].ev.Type, c.Outcome)
		if c.Outcome != Applied {
			ev := part[i].ev
			s.log.Debug("event not applied", logging.EventType(ev.Type), logging.RunID(ev.RunID), logging.Task(ev.Task),
				logging.Attempt(ev.Attempt), zap.Stringer("outcome", c.Outcome), zap.String("reason", c.Reason))
		}
	}
	if err := s.publish(ctx, e.graph, part, cmds); err != nil {
		return err
	}
	if e.state != nil && e.state.Status.Terminal() && !e.state.Compacted {
		s.compact(ctx, first.RunID, e)
	}
	return nil
}

// claimIdempotencyKey records the run of a submission's idempotency key. It reports false when the
// key already belongs to another run: the submission is a duplicate.
func (s *Service) claimIdempotencyKey(ctx context.Context, ev *event.Event) (bool, error) {
	sum := sha256.Sum256([]byte(ev.IdempotencyKey))
	key := "idem." + hex.EncodeToString(sum[:16])
	_, err := s.kv.Create(ctx, key, []byte(ev.RunID))
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return false, fmt.Errorf("claiming idempotency key: %w", err)
	}
	entry, err := s.kv.Get(ctx, key)
	if err != nil {
		return false, fmt.Errorf("reading idempotency key: %w", err)
	}
	if string(entry.Value()) != ev.RunID {
		s.log.Info("duplicate submission ignored", logging.RunID(ev.RunID), zap.String("existing_run_id", string(entry.Value())),
			zap.String("idempotency_key", ev.IdempotencyKey))
		return false, nil
	}
	// The same run: an earlier delivery of this submission claimed the key.
	return true, nil
}

func stateKey(runID string) string { return event.RunStateKey(runID) }
func planKey(runID string) string  { return "plan." + runID }

// outKey is "out.<run>.<task>"; a task name that is not a valid key token is hex encoded.
func outKey(runID, task string) string {
	if !validToken(task) {
		return "out." + runID + ".=" + hex.EncodeToString([]byte(task))
	}
	return "out." + runID + "." + task
}

// validToken reports whether s can be one token of a KV key and of a subject.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// apply runs Apply on the events of one run in order, against the stored state, and writes the
// result with compare-and-swap, reloading and re-applying on conflict. A verdict other than Applied is
// only trusted on a freshly loaded state.
func (s *Service) apply(ctx context.Context, e *runEntry, part []*pending) ([]Commands, error) {
	runID := part[0].ev.RunID
	cmds := make([]Commands, len(part))
	fresh := false
	for range s.cfg.CASRetries {
		if e.state == nil {
			if err := s.load(ctx, e, part[0].ev); err != nil {
				return nil, err
			}
			fresh = true
		}
		now := time.Now().UTC()
		applied, verified := false, true
		var outputs []Output
		for i, p := range part {
			c, err := Apply(e.graph, e.state, p.ev, now, s.policy())
			if err != nil {
				e.state = nil
				return nil, err
			}
			cmds[i] = c
			if c.Outcome == Applied {
				applied = true
				outputs = append(outputs, c.Outputs...)
			} else if !fresh {
				verified = false
			}
		}
		if !verified {
			e.state = nil
			continue
		}
		for i, p := range part {
			// A redelivered event may be the one whose handling wrote this state and died before
			// publishing what it caused, run.finished included: an event of a finished run is Stale,
			// not Duplicate, yet it must re-publish the end too, or the run never ends downstream.
			if p.redelivered && (cmds[i].Outcome == Duplicate || cmds[i].Outcome == Stale && e.state.Status.Terminal()) {
				reason := cmds[i].Reason
				cmds[i] = Replay(e.graph, e.state, p.ev, now, s.policy())
				cmds[i].Reason = reason
			}
		}
		if !applied {
			return cmds, nil
		}
		if err := s.putOutputs(ctx, runID, e.graph, outputs); err != nil {
			e.state = nil
			return nil, err
		}
		data, err := e.state.MarshalBinary()
		if err != nil {
			e.state = nil
			return nil, fmt.Errorf("encoding run state: %w", err)
		}
		var rev uint64
		if e.rev == 0 {
			rev, err = s.kv.Create(ctx, stateKey(runID), data)
		} else {
			rev, err = s.kv.Update(ctx, stateKey(runID), data, e.rev)
		}
		if err == nil {
			e.rev = rev
			return cmds, nil
		}
		e.state, fresh = nil, false
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, fmt.Errorf("writing run state: %w", err)
		}
		s.cfg.Metrics.casConflict()
	}
	return nil, fmt.Errorf("writing run state: %d compare-and-swap conflicts in a row", s.cfg.CASRetries)
}

// load reads a run's state (and its plan, unless it is cached or the run is compacted). For a
// submission of a run without state it creates the plan entry and a new state.
func (s *Service) load(ctx context.Context, e *runEntry, ev *event.Event) error {
	entry, err := s.kv.Get(ctx, stateKey(ev.RunID))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound) && ev.Type == event.TypeRunSubmitted:
		return s.initRun(ctx, e, ev)
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return errUnknownRun
	case err != nil:
		return fmt.Errorf("reading run state: %w", err)
	}
	st := new(RunState)
	if err := st.UnmarshalBinary(entry.Value()); err != nil {
		return fmt.Errorf("run %s: %w", ev.RunID, err)
	}
	if !st.Compacted && e.graph == nil {
		pe, err := s.kv.Get(ctx, planKey(ev.RunID))
		if err != nil {
			return fmt.Errorf("reading plan: %w", err)
		}
		if e.graph, err = decodeGraph(pe.Value()); err != nil {
			return fmt.Errorf("stored plan of run %s: %w", ev.RunID, err)
		}
	}
	e.state, e.rev = st, entry.Revision()
	return nil
}

func (s *Service) initRun(ctx context.Context, e *runEntry, ev *event.Event) error {
	if ev.Plan == nil {
		return &invalidPlanError{errors.New("the submission carries no plan")}
	}
	if err := ev.Plan.Validate(); err != nil {
		return &invalidPlanError{err}
	}
	g, err := NewGraph(ev.Plan)
	if err != nil {
		return &invalidPlanError{err}
	}
	data, err := json.Marshal(ev.Plan)
	if err != nil {
		return fmt.Errorf("encoding plan: %w", err)
	}
	if _, err := s.kv.Create(ctx, planKey(ev.RunID), data); err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("writing plan: %w", err)
		}
		// An earlier delivery wrote it: schedule with the stored plan.
		pe, err := s.kv.Get(ctx, planKey(ev.RunID))
		if err != nil {
			return fmt.Errorf("reading plan: %w", err)
		}
		if g, err = decodeGraph(pe.Value()); err != nil {
			return fmt.Errorf("stored plan of run %s: %w", ev.RunID, err)
		}
	}
	e.graph, e.state, e.rev = g, NewRunState(g), 0
	return nil
}

func decodeGraph(data []byte) (*Graph, error) {
	p := new(workflow.Plan)
	if err := json.Unmarshal(data, p); err != nil {
		return nil, fmt.Errorf("decoding plan: %w", err)
	}
	return NewGraph(p)
}

func (s *Service) putOutputs(ctx context.Context, runID string, g *Graph, outs []Output) error {
	for _, o := range outs {
		if _, err := s.kv.Put(ctx, outKey(runID, g.Task(o.Task).Name), o.Value); err != nil {
			return fmt.Errorf("storing output of %q: %w", g.Task(o.Task).Name, err)
		}
	}
	return nil
}

// publish sends the dispatches and events caused by the events of part in one batch. A dispatch
// whose inputs cannot be resolved becomes a task.failed event (reason input), which the scheduler
// then applies like any failure.
func (s *Service) publish(ctx context.Context, g *Graph, part []*pending, cmds []Commands) error {
	n := 0
	for _, c := range cmds {
		n += len(c.Dispatches) + len(c.Events)
	}
	if n == 0 {
		return nil
	}
	runID := part[0].ev.RunID
	now := time.Now().UTC()
	// Messages are published as they are encoded: the first dispatch of a wide run is on its way
	// before the last one is encoded.
	batch := s.b.NewBatch(n)
	var sent []sentDispatch
	if s.cfg.Metrics != nil {
		sent = make([]sentDispatch, 0, n)
	}
	var outputs map[int]json.RawMessage
	for _, c := range cmds {
		for _, o := range c.Outputs {
			if c.Outcome == Applied {
				if outputs == nil {
					outputs = make(map[int]json.RawMessage)
				}
				outputs[o.Task] = o.Value
			}
		}
	}
	for ci, c := range cmds {
		for i := range c.Events {
			e := &c.Events[i]
			if e.ID == "" {
				e.ID = event.NewID()
			}
			m, err := bus.EventMsg(e)
			if err != nil {
				return err
			}
			batch.Add(m)
		}
		for _, d := range c.Dispatches {
			task := g.Task(d.Task)
			inputs, err := s.resolveInputs(ctx, runID, g, task, &outputs)
			if err != nil {
				s.log.Warn("resolving inputs", logging.RunID(runID), logging.Task(task.Name), logging.Attempt(d.Attempt), zap.Error(err))
				f := event.Event{V: event.SchemaVersion, ID: event.NewID(), Type: event.TypeTaskFailed, Time: now,
					RunID: runID, Task: task.Name, Attempt: d.Attempt, Error: err.Error(), Reason: event.ReasonInput}
				m, err := bus.EventMsg(&f)
				if err != nil {
					return err
				}
				batch.Add(m)
				continue
			}
			dm := event.Dispatch{
				V: event.SchemaVersion, RunID: runID, Workflow: g.Plan.Name, Task: *task, Attempt: d.Attempt,
				Dir: g.Plan.Dir, Inputs: inputs, NotBefore: d.NotBefore, DispatchedAt: now,
			}
			m, err := bus.DispatchMsg(&dm)
			if err != nil {
				return err
			}
			batch.Add(m)
			if sent != nil {
				sd := sentDispatch{typ: task.Executor}
				if !part[ci].redelivered {
					sd.since = part[ci].ev.Time
				}
				sent = append(sent, sd)
			}
		}
	}
	if err := batch.Wait(ctx); err != nil {
		return fmt.Errorf("publishing %d messages: %w", batch.Len(), err)
	}
	s.cfg.Metrics.published(sent, cmds)
	return nil
}

// resolveInputs builds the JSON object of a task's inputs: constants as given, refs read from the
// upstream outputs (cached in outputs for the other dispatches of the same event).
func (s *Service) resolveInputs(ctx context.Context, runID string, g *Graph, task *workflow.Task, outputs *map[int]json.RawMessage) (json.RawMessage, error) {
	if len(task.Inputs) == 0 {
		return nil, nil
	}
	obj := make(map[string]json.RawMessage, len(task.Inputs))
	for name, b := range task.Inputs {
		if b.Ref == nil {
			v := b.Const
			if len(v) == 0 {
				v = json.RawMessage("null")
			}
			obj[name] = v
			continue
		}
		j, ok := g.Index(b.Ref.Task)
		if !ok {
			return nil, fmt.Errorf("input %q refers to unknown task %q", name, b.Ref.Task)
		}
		out, ok := (*outputs)[j]
		if !ok {
			entry, err := s.kv.Get(ctx, outKey(runID, b.Ref.Task))
			if err != nil {
				return nil, fmt.Errorf("input %q: reading the output of %q: %w", name, b.Ref.Task, err)
			}
			out = entry.Value()
			if *outputs == nil {
				*outputs = make(map[int]json.RawMessage)
			}
			(*outputs)[j] = out
		}
		v, err := lookupPath(out, b.Ref.Path)
		if err != nil {
			return nil, fmt.Errorf("input %q: the output of %q: %w", name, b.Ref.Task, err)
		}
		obj[name] = v
	}
	data, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encoding inputs: %w", err)
	}
	return data, nil
}

// lookupPath walks object fields down from v.
func lookupPath(v json.RawMessage, path []string) (json.RawMessage, error) {
	for i, f := range path {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(v, &obj); err != nil || obj == nil {
			return nil, fmt.Errorf("%s is not an object", pathText(path[:i]))
		}
		next, ok := obj[f]
		if !ok {
			return nil, fmt.Errorf("%s has no field %q", pathText(path[:i]), f)
		}
		v = next
	}
	return v, nil
}

func pathText(path []string) string {
	s := "output"
	for _, f := range path {
		s += "." + f
	}
	return s
}

// failInvalid ends a run whose submission cannot be scheduled.
func (s *Service) failInvalid(ctx context.Context, ev *event.Event, invalid *invalidPlanError) error {
	f := event.Event{V: event.SchemaVersion, ID: event.NewID(), Type: event.TypeRunFinished, Time: time.Now().UTC(),
		RunID: ev.RunID, Status: event.RunFailed, Error: invalid.Error()}
	if ev.Plan != nil {
		f.Workflow = ev.Plan.Name
	}
	m, err := bus.EventMsg(&f)
	if err != nil {
		return err
	}
	return s.b.Publish(ctx, m)
}

// compact replaces a finished run's state by its tombstone and deletes its plan and outputs. A
// failure only leaves them to the bucket's TTL.
func (s *Service) compact(ctx context.Context, runID string, e *runEntry) {
	g, st := e.graph, e.state
	data, err := st.Tombstone().MarshalBinary()
	if err == nil {
		var rev uint64
		rev, err = s.kv.Update(ctx, stateKey(runID), data, e.rev)
		if err == nil {
			e.state, e.rev, e.graph, e.done = st.Tombstone(), rev, nil, true
		}
	}
	if err != nil {
		e.state = nil
		s.log.Warn("compacting run state", logging.RunID(runID), zap.Error(err))
		return
	}
	for i := range st.Tasks {
		if g.referenced[i] && st.Tasks[i].Status == TaskSucceeded {
			if err := s.kv.Delete(ctx, outKey(runID, g.Task(i).Name)); err != nil {
				s.log.Warn("deleting output", logging.RunID(runID), logging.Task(g.Task(i).Name), zap.Error(err))
			}
		}
	}
	if err := s.kv.Delete(ctx, planKey(runID)); err != nil {
		s.log.Warn("deleting plan", logging.RunID(runID), zap.Error(err))
	}
}
