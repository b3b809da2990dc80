package scheduler

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/logging"
)

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
	fireDone := make(chan struct{})
	if s.cfg.ScheduleLease > 0 {
		f, err := s.newFirer(ctx)
		if err != nil {
			return err
		}
		go func() {
			defer close(fireDone)
			f.run(ctx)
		}()
	} else {
		close(fireDone)
	}
	err = bus.Work(ctx, cons, s.cfg.Concurrency, func(m jetstream.Msg) { s.handle(hctx, m) })
	<-recDone
	<-fireDone
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
