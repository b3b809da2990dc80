package recorder

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/logging"
	"github.com/ork-go/ork/pkg/retry"
	"github.com/ork-go/ork/pkg/store"
)

// Commit describes one committed batch. It is passed to Service.OnCommit.
type Commit struct {
	// Stream is event.StreamEvents or event.StreamLogs, or RegistryStream for a batch of
	// registrations alone.
	Stream string
	// Messages is the number of messages acknowledged by the commit.
	Messages int
	// Registrations is the number of registry changes the commit wrote (applied, or older than the
	// store's and so ignored).
	Registrations int
	// DeadLetters is how many of them were stored as dead letters.
	DeadLetters int
	// FinishedRuns are the runs whose run.finished event the batch committed.
	FinishedRuns []string
}

// Service is the recorder.
type Service struct {
	bus *bus.Bus
	st  store.Store
	cfg Config
	log *zap.Logger

	notices notices
	regs    *registrations

	// OnCommit, when set before Run, is called after every committed and acknowledged batch, from
	// the consumer's goroutine (one per stream). It must not block.
	OnCommit func(Commit)
}

// New returns a recorder writing to st what it reads from b. cfg is completed with its defaults.
func New(b *bus.Bus, st store.Store, cfg Config, log *zap.Logger) (*Service, error) {
	if b == nil || st == nil || log == nil {
		return nil, errNilDependency
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Service{bus: b, st: st, cfg: cfg, log: log, regs: newRegistrations(registrationsQueued * cfg.BatchSize)}, nil
}

// registrationsQueued times BatchSize is the most registrations queued for a write: beyond it the
// registry watcher waits for room.
const registrationsQueued = 2

// Run consumes both streams and mirrors the workflow registry until ctx ends, then finishes the
// batches already pulled (a batch whose write fails after ctx ended is left unacknowledged for
// redelivery; registrations not committed are replayed by the next recorder) and returns nil.
func (s *Service) Run(ctx context.Context) error {
	events, err := s.bus.Consumer(ctx, s.spec(event.StreamEvents, event.ConsumerRecorderEvents))
	if err != nil {
		return fmt.Errorf("recorder: %w", err)
	}
	logs, err := s.bus.Consumer(ctx, s.spec(event.StreamLogs, event.ConsumerRecorderLogs))
	if err != nil {
		return fmt.Errorf("recorder: %w", err)
	}
	registry, err := s.bus.Workflows(ctx)
	if err != nil {
		return fmt.Errorf("recorder: %w", err)
	}
	watcher, err := s.watchRegistry(ctx, registry, 0)
	if err != nil {
		return fmt.Errorf("recorder: %w", err)
	}
	// Log lines committed by an earlier recorder count as committed: a notice must not wait for them.
	if info, err := logs.Info(ctx); err == nil {
		s.notices.logsCommitted(info.AckFloor.Stream)
	}
	s.cfg.Metrics.watch(s.bus.JS)
	s.log.Info("recorder started", zap.Int("batch_size", s.cfg.BatchSize), zap.Duration("batch_wait", s.cfg.BatchWait))
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		s.releaseByAckFloor(gctx, logs)
		return nil
	})
	g.Go(func() error {
		s.mirrorRegistry(gctx, registry, watcher)
		return nil
	})
	g.Go(func() error {
		s.writeRegistrations(gctx)
		return nil
	})
	for _, c := range []struct {
		stream string
		cons   jetstream.Consumer
	}{{event.StreamEvents, events}, {event.StreamLogs, logs}} {
		g.Go(func() error {
			err := bus.Batches(gctx, c.cons, s.cfg.BatchSize, s.cfg.BatchWait, func(msgs []jetstream.Msg) {
				s.handle(gctx, c.stream, msgs)
			})
			if err != nil {
				return fmt.Errorf("recorder: consuming %s: %w", c.stream, err)
			}
			return nil
		})
	}
	err = g.Wait()
	s.log.Info("recorder stopped")
	return err
}

func (s *Service) spec(stream, durable string) bus.ConsumerSpec {
	return bus.ConsumerSpec{
		Stream: stream, Durable: durable,
		AckWait: s.cfg.AckWait, MaxAckPending: s.cfg.MaxAckPending,
	}
}

// item is one message of a batch, decoded into exactly one of ev, logs and dead, or one registry
// change (reg; no msg, no seq).
type item struct {
	stream string
	msg    jetstream.Msg
	seq    uint64
	// delivered counts deliveries of the message, this one included.
	delivered uint64
	// stored is when the stream stored the message.
	stored time.Time
	// dup marks a second delivery of the same message in one batch (its first, fetched before a
	// redelivery, was still waiting): it is acknowledged but not written twice.
	dup       bool
	ev        *event.Event
	logs      *event.LogBatch
	dead      *store.DeadLetter
	deadClass string // the metrics' reason class of dead
	reg       *store.Registration
	data      []byte // reg's entry as stored in the bucket
}

// subject is the subject of the item's message or registry entry.
func (it *item) subject() string {
	if it.msg == nil {
		return registrySubjectPrefix + it.reg.Name
	}
	return it.msg.Subject()
}

// handle writes one batch and acknowledges it after the commit.
func (s *Service) handle(ctx context.Context, stream string, msgs []jetstream.Msg) {
	items := make([]item, len(msgs))
	for i, m := range msgs {
		items[i] = s.decode(stream, m)
	}
	// Redelivered messages can arrive behind newer ones; the store applies events in order.
	slices.SortStableFunc(items, func(a, b item) int { return cmp.Compare(a.seq, b.seq) })
	for i := 1; i < len(items); i++ {
		items[i].dup = items[i].seq != 0 && items[i].seq == items[i-1].seq
	}
	// Registry changes waiting share the transaction, up to a batch in all.
	var regs []item
	if stream == event.StreamEvents {
		regs = s.regs.take(s.cfg.BatchSize - len(items))
		items = append(items, regs...)
	}
	// Until they are acknowledged or released, the batch's messages stay in progress.
	stopKeeping := bus.KeepInProgress(s.cfg.AckWait/3, msgs...)
	defer stopKeeping()
	res, ok := s.write(ctx, items)
	s.regs.done(regs, ok)
	if !ok {
		stopKeeping()
		s.release(msgs)
		return
	}
	s.cfg.Metrics.deadLetters(items)
	dead := countDead(items)
	var later map[uint64]bool
	if len(res.Orphans) > 0 {
		var orphans []item
		later, orphans = s.orphans(items, res.Orphans)
		if len(orphans) > 0 {
			if _, ok := s.write(ctx, orphans); !ok {
				stopKeeping()
				s.release(msgs)
				return
			}
			s.cfg.Metrics.deadLetters(orphans)
			dead += len(orphans)
		}
	}
	stopKeeping()
	acked := 0
	for _, it := range items {
		if it.msg == nil {
			continue // a registration: nothing to acknowledge
		}
		if later[it.seq] {
			// Its run.submitted may be behind it (a redelivery, another recorder): try again later.
			if err := it.msg.NakWithDelay(s.cfg.orphanDelay(it.delivered)); err != nil {
				s.log.Warn("delaying orphan event failed", logging.Seq(it.seq), zap.Error(err))
			}
			continue
		}
		if err := it.msg.Ack(); err != nil {
			// The commit stands; the message comes back and its replay changes nothing.
			s.log.Warn("acknowledging message failed", logging.Seq(it.seq), zap.Error(err))
		}
		acked++
	}
	s.cfg.Metrics.committed(stream, acked)
	if stream == event.StreamLogs {
		s.publishNotices(s.notices.logsCommitted(items[len(items)-1].seq))
	}
	s.notify(ctx, items, res.FinishedRuns)
	if dead > 0 {
		s.log.Warn("batch had dead letters", zap.String("stream", stream), logging.Count(dead))
	}
	s.log.Debug("batch committed", zap.String("stream", stream), logging.Count(acked))
	if s.OnCommit != nil {
		s.OnCommit(Commit{Stream: stream, Messages: acked, DeadLetters: dead, FinishedRuns: res.FinishedRuns, Registrations: len(regs)})
	}
}

// release hands back the messages of a batch given up at shutdown, so another recorder gets them
// now rather than after AckWait.
func (s *Service) release(msgs []jetstream.Msg) {
	s.log.Warn("stopping with an uncommitted batch, releasing it", logging.Count(len(msgs)))
	for _, m := range msgs {
		_ = m.Nak() // on failure the message comes back after AckWait instead
	}
}

// decode turns a message into an item; what cannot be applied becomes a dead letter.
func (s *Service) decode(stream string, m jetstream.Msg) item {
	it := item{stream: stream, msg: m}
	if meta, err := m.Metadata(); err == nil {
		it.seq = meta.Sequence.Stream
		it.delivered = meta.NumDelivered
		it.stored = meta.Timestamp
	}
	var err error
	class := deadUndecodable
	switch stream {
	case event.StreamEvents:
		var e event.Event
		if e, err = event.DecodeEvent(m.Data()); err == nil {
			class = deadInvalid
			if err = checkEvent(&e); err == nil {
				e.Seq = it.seq
				if e.Type == event.TypeRunSubmitted {
					e.RunID = event.SubmissionRunID(&e, it.seq)
				}
				it.ev = &e
				return it
			}
		}
	default:
		var lb event.LogBatch
		if lb, err = event.DecodeLogBatch(m.Data()); err == nil {
			if lb.Attempt < 1 {
				class = deadInvalid
				err = fmt.Errorf("log batch of attempt %d: attempts start at 1", lb.Attempt)
			} else {
				it.logs = &lb
				return it
			}
		}
	}
	s.log.Warn("dead-lettering message", logging.Seq(it.seq), logging.Subject(m.Subject()), zap.Error(err))
	return deadLetter(it, class, err.Error())
}

// checkEvent rejects well-formed events that cannot be applied.
func checkEvent(e *event.Event) error {
	switch e.Type {
	case event.TypeRunSubmitted:
		if e.Plan == nil || e.Plan.Name == "" {
			return errors.New("run.submitted without a plan")
		}
		if e.Workflow == "" {
			e.Workflow = e.Plan.Name
		}
	case event.TypeRunStarted, event.TypeRunPaused, event.TypeRunResumed,
		event.TypeRunCancelRequested, event.TypeRunPauseRequested, event.TypeRunResumeRequested:
	case event.TypeRunFinished:
		if !event.IsTerminalRun(e.Status) {
			return fmt.Errorf("run.finished with non-final status %q", e.Status)
		}
	case event.TypeTaskSucceeded:
		// A rerun's reused task succeeds at attempt 0: it did not run (reason reused).
		if e.Task == "" || e.Attempt < 1 && !(e.Attempt == 0 && e.Reason == event.ReasonReused) {
			return fmt.Errorf("%s without task or attempt", e.Type)
		}
	case event.TypeTaskDispatched, event.TypeTaskStarted, event.TypeTaskFailed:
		if e.Task == "" || e.Attempt < 1 {
			return fmt.Errorf("%s without task or attempt", e.Type)
		}
	case event.TypeTaskSkipped, event.TypeTaskCancelled:
		// A task skipped or cancelled before its first dispatch has no attempt.
		if e.Task == "" || e.Attempt < 0 {
			return fmt.Errorf("%s without task", e.Type)
		}
	default:
		return fmt.Errorf("unknown event type %q", e.Type)
	}
	return nil
}

// deadLetter returns it as a dead letter with the message's bytes (a registration's: its entry's,
// with its revision as the sequence); class is its metrics' reason class (dead* constants).
func deadLetter(it item, class, reason string) item {
	seq, data := it.seq, it.data
	if it.msg != nil {
		data = it.msg.Data()
	} else {
		seq = it.reg.Revision
	}
	return item{stream: it.stream, msg: it.msg, seq: it.seq, deadClass: class, dead: &store.DeadLetter{
		Stream: it.stream, Seq: seq, Subject: it.subject(), Reason: reason, Data: data,
		CreatedAt: time.Now().UTC(),
	}}
}

// orphans splits the events the store did not know into those to deliver again later (their run
// may not be recorded yet) and, once older than OrphanMaxAge (Config.orphanExpired), dead letters.
func (s *Service) orphans(items []item, orphans []event.Event) (later map[uint64]bool, dead []item) {
	bySeq := make(map[uint64]item, len(items))
	for _, it := range items {
		if it.ev != nil {
			bySeq[it.seq] = it
		}
	}
	later = make(map[uint64]bool)
	for i := range orphans {
		o := &orphans[i]
		it, ok := bySeq[o.Seq]
		if !ok {
			// A store returning an event it was not given is a store bug; the stream still holds
			// the message.
			s.log.Error("store returned an unknown orphan", logging.Seq(o.Seq), logging.RunID(o.RunID))
			continue
		}
		if !s.cfg.orphanExpired(it.delivered, time.Since(it.stored)) {
			later[it.seq] = true
			continue
		}
		reason := "orphan: unknown run " + o.RunID
		if o.Task != "" {
			reason += " or task " + o.Task
		}
		s.log.Warn("dead-lettering orphan event", logging.Seq(it.seq), logging.Subject(it.msg.Subject()), logging.RunID(o.RunID))
		dead = append(dead, deadLetter(it, deadOrphan, reason))
	}
	return later, dead
}

func countDead(items []item) int {
	n := 0
	for _, it := range items {
		if it.dead != nil {
			n++
		}
	}
	return n
}

func params(items []item) store.ApplyBatchParams {
	var events, logs, dead, regs int
	for _, it := range items {
		switch {
		case it.dup:
		case it.ev != nil:
			events++
		case it.logs != nil:
			logs++
		case it.dead != nil:
			dead++
		case it.reg != nil:
			regs++
		}
	}
	// Sized once: an event is a large struct, and growing the slice copied each one several times.
	p := store.ApplyBatchParams{Events: make([]event.Event, 0, events), Logs: make([]event.LogBatch, 0, logs), DeadLetters: make([]store.DeadLetter, 0, dead)}
	if regs > 0 {
		p.Registrations = make([]store.Registration, 0, regs)
	}
	for _, it := range items {
		switch {
		case it.dup:
		case it.ev != nil:
			p.Events = append(p.Events, *it.ev)
		case it.logs != nil:
			p.Logs = append(p.Logs, *it.logs)
		case it.dead != nil:
			p.DeadLetters = append(p.DeadLetters, *it.dead)
		case it.reg != nil:
			p.Registrations = append(p.Registrations, *it.reg)
		}
	}
	return p
}

// write commits items, retrying with backoff until it succeeds; it returns false when ctx ended
// first.
func (s *Service) write(ctx context.Context, items []item) (store.ApplyBatchResult, bool) {
	bo := backoff{policy: retry.Backoff{Base: s.cfg.RetryMin, Max: s.cfg.RetryMax}}
	return s.writeWith(ctx, items, &bo)
}

func (s *Service) writeWith(ctx context.Context, items []item, bo *backoff) (store.ApplyBatchResult, bool) {
	for failures := 1; ; failures++ {
		res, err := s.apply(ctx, items)
		if err == nil {
			bo.reset()
			return res, true
		}
		s.log.Warn("writing batch failed", logging.Count(len(items)), zap.Int("failures", failures), zap.Error(err))
		if failures >= s.cfg.IsolateAfter {
			if len(items) > 1 {
				return s.writeEach(ctx, items, bo)
			}
			if it := items[0]; it.dead == nil {
				// One message the store keeps refusing: if a dead letter of it commits, the store
				// is up and the message is the problem.
				rejected := []item{deadLetter(it, deadRejected, "store rejected: "+err.Error())}
				if _, err := s.apply(ctx, rejected); err == nil {
					s.cfg.Metrics.deadLetters(rejected)
					s.log.Error("store rejected message, dead-lettered it", logging.Seq(rejected[0].dead.Seq), logging.Subject(it.subject()))
					bo.reset()
					return store.ApplyBatchResult{}, true
				}
			}
		}
		if !s.pause(ctx, bo) {
			return store.ApplyBatchResult{}, false
		}
	}
}

// writeEach writes items one at a time, in order, merging their results.
func (s *Service) writeEach(ctx context.Context, items []item, bo *backoff) (store.ApplyBatchResult, bool) {
	s.log.Warn("writing batch one message at a time", logging.Count(len(items)))
	var all store.ApplyBatchResult
	for i := range items {
		res, ok := s.writeWith(ctx, items[i:i+1], bo)
		if !ok {
			return store.ApplyBatchResult{}, false
		}
		all.Orphans = append(all.Orphans, res.Orphans...)
		all.FinishedRuns = append(all.FinishedRuns, res.FinishedRuns...)
	}
	return all, true
}

// apply is one ApplyBatch. It is not cancelled with ctx, so a batch in hand at shutdown can still
// commit; WriteTimeout bounds it.
func (s *Service) apply(ctx context.Context, items []item) (store.ApplyBatchResult, error) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.WriteTimeout)
	defer cancel()
	begin := time.Now()
	res, err := s.st.ApplyBatch(wctx, params(items))
	s.cfg.Metrics.applied(items[0].stream, time.Since(begin), err != nil)
	if err != nil {
		return store.ApplyBatchResult{}, fmt.Errorf("applying batch: %w", err)
	}
	return res, nil
}

// pause waits for the next backoff step; it returns false when ctx ends first.
func (s *Service) pause(ctx context.Context, bo *backoff) bool {
	return retry.Sleep(ctx, bo.next())
}

// notify queues the recorded notice of every finished run of the batch behind the log lines
// published before it, and publishes those already covered.
func (s *Service) notify(ctx context.Context, items []item, finished []string) {
	if len(finished) == 0 {
		return
	}
	status := make(map[string]string, len(finished))
	for _, it := range items {
		if it.ev != nil && it.ev.Type == event.TypeRunFinished {
			status[it.ev.RunID] = it.ev.Status
		}
	}
	ns := make([]notice, 0, len(finished))
	for _, runID := range finished {
		ns = append(ns, notice{runID: runID, status: status[runID]})
	}
	s.publishNotices(s.notices.add(s.logsLastSeq(ctx), ns))
}

// backoff counts the consecutive failed writes and says how long to wait after each.
type backoff struct {
	policy   retry.Backoff
	failures int
}

func (b *backoff) next() time.Duration {
	b.failures++
	return b.policy.Delay(b.failures, 0)
}

func (b *backoff) reset() { b.failures = 0 }
