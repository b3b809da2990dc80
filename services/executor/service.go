package executor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/logging"
	"github.com/ork-go/ork/pkg/retry"
	"github.com/ork-go/ork/pkg/workflow"
)

// Timing of the service's own bus traffic.
const (
	publishTimeout  = 10 * time.Second
	publishAttempts = 3
	retryDelay      = time.Second
	// fetchMax bounds one pull request.
	fetchMax = 256
)

// Service pulls dispatches of its executor types and runs them.
type Service struct {
	bus    *bus.Bus
	cfg    Config
	log    *zap.Logger
	runner string // path of the python runner, when python is served
	// python is the interpreter python tasks run with, resolved on the first python task
	// (pythonPath): asking a version manager's shim costs hundreds of milliseconds, which a run
	// without python tasks should not pay.
	python     string
	pythonOnce sync.Once
	// roots are WorkflowRoots with symbolic links resolved.
	roots []string
	// runAs is the user tasks run as (Config.RunAs); nil: the executor's own.
	runAs *runAs
	// bundles serialises the fetch of each bundle.
	bundles bundles
	// zygoteScript is the path of zygote.py; zygotes holds the warm python interpreter.
	zygoteScript string
	zygotes      zygotes
	slots        *slots
	tasks        sync.WaitGroup // dispatches being handled
	ready        chan struct{}  // closed once the consumers exist

	runningMu sync.Mutex
	running   map[attemptKey]context.CancelCauseFunc // attempts being executed
	cancelled cancelledSet                           // recent cancellations

	// hard is cancelled by hardStop when the drain grace is over (or Run returns): running tasks are
	// killed and log shipping gives up. It exists from New on, so that attempts run without Run
	// (benchmarks) have one too.
	hard     context.Context
	hardStop context.CancelFunc

	// dupWindow is ORK_EVENTS's duplicate window, read when Run starts: how long a task.started
	// publish remembers that the attempt had started (see lost.go).
	dupWindow time.Duration
}

// New checks the config, installs the python runner when python is served, and returns a service
// ready to Run.
func New(b *bus.Bus, cfg Config, log *zap.Logger) (*Service, error) {
	if b == nil {
		return nil, errors.New("executor: a bus is required")
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	s := &Service{bus: b, cfg: cfg, log: log.With(logging.Instance(cfg.Instance)), slots: newSlots(cfg.Concurrency),
		ready: make(chan struct{}), running: make(map[attemptKey]context.CancelCauseFunc)}
	s.hard, s.hardStop = context.WithCancel(context.Background())
	roots, err := resolveRoots(cfg.WorkflowRoots)
	if err != nil {
		return nil, err
	}
	s.roots = roots
	if s.runAs, err = resolveRunAs(cfg.RunAs, os.Geteuid()); err != nil {
		return nil, err
	}
	if slices.Contains(cfg.Types, workflow.ExecutorPython) {
		if s.cfg.CacheDir, err = privateDir(cfg.CacheDir); err != nil {
			return nil, fmt.Errorf("executor: %w", err)
		}
		cfg = s.cfg
		path, err := installScript(cfg.CacheDir, "runner", runnerSource)
		if err != nil {
			return nil, fmt.Errorf("executor: %w", err)
		}
		s.runner = path
		if s.zygoteScript, err = installScript(cfg.CacheDir, "zygote", zygoteSource); err != nil {
			return nil, fmt.Errorf("executor: %w", err)
		}
	}
	if s.cfg.BundleDir == "" {
		if s.cfg.BundleDir, err = os.MkdirTemp("", "ork-bundles-"); err != nil {
			return nil, fmt.Errorf("executor: creating a bundle directory: %w", err)
		}
	}
	if s.cfg.BundleDir, err = bundleRoot(s.cfg.BundleDir); err != nil {
		return nil, fmt.Errorf("executor: %w", err)
	}
	return s, nil
}

// Config returns the service's config, defaults applied.
func (s *Service) Config() Config { return s.cfg }

// Ready is closed once Run has set up the consumers, so dispatches published from then on are
// delivered (earlier ones are too, since the consumers start from the oldest message).
func (s *Service) Ready() <-chan struct{} { return s.ready }

// Run serves until ctx is done, then drains: it stops pulling, naks dispatches still waiting for a
// slot, lets running tasks finish for up to DrainGrace, then kills their process groups and naks
// their dispatches. It returns nil after a drain (or when ctx ends during setup), or an error when
// the consumers cannot be set up. Run may be called once.
func (s *Service) Run(ctx context.Context) error {
	consumers := make([]jetstream.Consumer, len(s.cfg.Types))
	for i, typ := range s.cfg.Types {
		c, err := s.consumer(ctx, typ)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		consumers[i] = c
		s.cfg.Metrics.watch(s.bus.JS, typ)
	}
	window, err := s.eventsDuplicateWindow(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	s.dupWindow = window
	if s.cfg.AckWait >= window-window/dupWindowSlack {
		s.log.Warn("the ack wait is not well below the events stream's duplicate window: attempts redelivered after it may be reported lost even when they had not started",
			zap.Duration("ack_wait", s.cfg.AckWait), zap.Duration("duplicate_window", window))
	}
	subs, err := s.subscribeCancels()
	if err != nil {
		return err
	}
	defer unsubscribe(subs)
	close(s.ready)
	s.log.Info("executor started", zap.Strings("types", s.cfg.Types), zap.Int("concurrency", s.cfg.Concurrency))

	hard, hardStop := s.hard, s.hardStop
	defer hardStop()
	var pullers sync.WaitGroup
	for i, typ := range s.cfg.Types {
		pullers.Go(func() { s.pull(ctx, hard, typ, consumers[i]) })
	}
	pullers.Wait()

	done := make(chan struct{})
	go func() { s.tasks.Wait(); close(done) }()
	grace := time.NewTimer(s.cfg.DrainGrace)
	defer grace.Stop()
	select {
	case <-done:
	case <-grace.C:
		s.log.Warn("drain grace over, killing running tasks", zap.Duration("grace", s.cfg.DrainGrace))
		hardStop()
		<-done
	}
	s.closeZygotes()
	s.log.Info("executor stopped")
	return nil
}

func (s *Service) consumer(ctx context.Context, typ string) (jetstream.Consumer, error) {
	c, err := s.bus.Consumer(ctx, bus.ConsumerSpec{
		Stream:        event.StreamTasks,
		Durable:       event.ConsumerExecutor(typ),
		Filters:       []string{event.SubjectTasks(typ)},
		AckWait:       s.cfg.AckWait,
		MaxAckPending: s.cfg.MaxAckPending,
	})
	if err != nil {
		return nil, fmt.Errorf("executor: %w", err)
	}
	return c, nil
}

// pull fetches dispatches of one type while there are free slots, until ctx is done. Handlers run
// tasks under hard, which is cancelled only when the drain grace is over.
func (s *Service) pull(ctx, hard context.Context, typ string, cons jetstream.Consumer) {
	log := s.log.With(logging.Executor(typ))
	for ctx.Err() == nil {
		n, changed := s.slots.free()
		if n <= 0 {
			select {
			case <-changed:
			case <-ctx.Done():
			}
			continue
		}
		batch, err := cons.Fetch(min(n, fetchMax), jetstream.FetchContext(ctx))
		if err == nil {
			for msg := range batch.Messages() {
				s.slots.claim()
				s.tasks.Go(func() { s.handle(ctx, hard, typ, msg) })
			}
			err = batch.Error()
		}
		if err == nil || ctx.Err() != nil {
			continue
		}
		log.Warn("pulling dispatches", zap.Error(err))
		if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
			if c, cerr := s.consumer(ctx, typ); cerr == nil {
				cons = c
			} else {
				log.Warn("recreating consumer", zap.Error(cerr))
			}
		}
		retry.Sleep(ctx, retryDelay)
	}
}

// handle takes one received dispatch to its end. The dispatch holds a claim on a slot.
func (s *Service) handle(ctx, hard context.Context, typ string, msg jetstream.Msg) {
	d, err := event.DecodeDispatch(msg.Data())
	if err != nil {
		s.slots.unclaim()
		s.log.Error("undecodable dispatch dropped", logging.Subject(msg.Subject()), zap.Error(err))
		if err := msg.Term(); err != nil {
			s.log.Warn("terminating dispatch", zap.Error(err))
		}
		return
	}
	log := s.log.With(logging.RunID(d.RunID), logging.Task(d.Task.Name), logging.Attempt(d.Attempt), logging.Executor(typ))
	if d.NotBefore != nil {
		if wait := time.Until(*d.NotBefore); wait > 0 {
			s.slots.unclaim()
			if err := msg.NakWithDelay(wait); err != nil {
				log.Warn("delaying dispatch", zap.Error(err))
			}
			return
		}
	}
	if ctx.Err() != nil {
		s.slots.unclaim()
		s.nak(log, msg, 0)
		return
	}
	stopBeat := bus.KeepInProgress(s.cfg.AckWait/3, msg)
	defer stopBeat()
	if err := s.slots.acquire(ctx); err != nil {
		s.nak(log, msg, 0)
		return
	}
	defer s.slots.release()
	s.attempt(hard, typ, &d, msg, log)
}

// attempt runs an attempt between its task.started and its terminal event, then acks the dispatch.
func (s *Service) attempt(hard context.Context, typ string, d *event.Dispatch, msg jetstream.Msg, log *zap.Logger) {
	taskCtx, untrack, st := s.track(hard, d)
	switch st {
	case wasCancelled:
		log.Info("dispatch of a cancelled task dropped")
		if err := msg.Ack(); err != nil {
			log.Warn("acknowledging dispatch", zap.Error(err))
		}
		return
	case runningHere:
		// The server lost the dispatch's delivery state (a crash) and delivered it again to the
		// instance that runs it. Acks and heartbeats go by stream sequence, so the running attempt
		// keeps this delivery alive and settles it when it ends: leave it alone (see lost.go).
		log.Warn("dispatch delivered again while its attempt runs here; left to the running attempt")
		return
	}
	defer untrack()
	started := event.New(event.TypeTaskStarted, d.RunID, d.Task.Name, d.Attempt)
	started.Instance = s.cfg.Instance
	dup, err := s.publishStarted(&started)
	if err != nil {
		log.Error("publishing task.started", zap.Error(err))
		s.nak(log, msg, retryDelay)
		return
	}
	if why := s.lostBefore(msg, d, dup); why != "" {
		s.reportLost(d, msg, log, why)
		return
	}
	begin := time.Now()
	s.cfg.Metrics.start(typ, d, begin)
	o := s.execute(taskCtx, typ, d)
	cancelled := errors.Is(context.Cause(taskCtx), errCancelled)
	switch {
	case o.aborted && cancelled:
		s.cfg.Metrics.finish(typ, event.TaskCancelled, "", time.Since(begin))
		log.Info("task cancelled")
		if err := msg.Ack(); err != nil {
			log.Warn("acknowledging dispatch", zap.Error(err))
		}
		return
	case o.aborted:
		s.cfg.Metrics.finish(typ, event.TaskLost, event.ReasonLost, time.Since(begin))
		// The attempt ran partly: running it again under the same number would repeat its side
		// effects and its log lines' ids. Report it lost, so the scheduler starts a new attempt.
		s.reportLost(d, msg, log, "attempt "+strconv.Itoa(d.Attempt)+
			" was lost: its executor stopped before it finished (drain grace of "+s.cfg.DrainGrace.String()+" over)")
		return
	}
	typEv := event.TypeTaskSucceeded
	if !o.ok {
		typEv = event.TypeTaskFailed
	}
	ev := event.New(typEv, d.RunID, d.Task.Name, d.Attempt)
	ev.Instance = s.cfg.Instance
	ev.DurationMS = time.Since(begin).Milliseconds()
	ev.ExitCode = o.exitCode
	if o.ok {
		ev.Output = o.output
	} else {
		// Bounded, so that no consumer refuses the event (event.MaxErrorBytes).
		ev.Error, ev.Reason = shorten(o.err, event.TaskErrorBytes-len("…")), o.reason
	}
	m, err := bus.EventMsg(&ev)
	if err == nil && int64(len(m.Data)) > s.bus.NC.MaxPayload() {
		// Publishing could never succeed: fail the attempt instead of retrying it forever.
		size := len(m.Data)
		ev.Type, ev.Output, ev.Reason = event.TypeTaskFailed, nil, event.ReasonOutput
		ev.Error = "the output is " + formatBytes(int64(size)) + " as an event, over the " +
			formatBytes(s.bus.NC.MaxPayload()) + " message limit of the NATS server"
		typEv = ev.Type
		m, err = bus.EventMsg(&ev)
	}
	if ev.Type == event.TypeTaskSucceeded {
		s.cfg.Metrics.finish(typ, event.TaskSuccess, "", time.Since(begin))
	} else {
		s.cfg.Metrics.finish(typ, event.TaskFailed, ev.Reason, time.Since(begin))
	}
	if err == nil {
		err = s.publishMsg(m, publishAttempts)
	}
	if err != nil {
		// Without the terminal event the scheduler would never learn the result: leave the dispatch
		// unacknowledged so it is delivered again.
		log.Error("publishing terminal task event; the dispatch will be redelivered", logging.EventType(typEv), zap.Error(err))
		return
	}
	if err := msg.Ack(); err != nil {
		log.Warn("acknowledging dispatch", zap.Error(err))
	}
	log.Debug("task done", logging.EventType(typEv), zap.Int64("duration_ms", ev.DurationMS))
}

// publishStarted publishes task.started once and reports whether the stream already held it.
func (s *Service) publishStarted(e *event.Event) (duplicate bool, err error) {
	m, err := bus.EventMsg(e)
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	ack, err := s.bus.PublishAck(ctx, m)
	if err != nil {
		return false, err
	}
	return ack.Duplicate, nil
}

// publishMsg publishes a message, trying up to attempts times.
func (s *Service) publishMsg(m bus.Msg, attempts int) error {
	for i := 1; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
		err := s.bus.Publish(ctx, m)
		cancel()
		if err == nil || i >= attempts {
			return err
		}
		t := time.NewTimer(retryDelay)
		<-t.C
	}
}

func (s *Service) nak(log *zap.Logger, msg jetstream.Msg, delay time.Duration) {
	var err error
	if delay > 0 {
		err = msg.NakWithDelay(delay)
	} else {
		err = msg.Nak()
	}
	if err != nil {
		log.Warn("returning dispatch", zap.Error(err))
	}
}
