package recorder

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/ork-go/ork/pkg/client"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/logging"
	"github.com/ork-go/ork/pkg/retry"
	"github.com/ork-go/ork/pkg/store"
)

// RegistryStream is the stream of the registry bucket: the Stream of a Commit of registrations
// alone, and of a dead-lettered registration (whose Seq is its revision).
const RegistryStream = "KV_" + event.BucketWorkflows

// registrySubjectPrefix + workflow name is the subject of a registry entry. A registry entry's
// revision is its sequence in RegistryStream (logged as seq).
const registrySubjectPrefix = "$KV." + event.BucketWorkflows + "."

// registrations are the registry changes received and not yet committed, in revision order.
type registrations struct {
	mu      sync.Mutex
	pending []item
	// writing is set while a writer holds registrations it took: nobody else takes any until it is
	// done, so registrations commit in revision order and every version of a workflow is stored.
	writing bool
	limit   int
	// queued is signalled when there are registrations to take, room when the queue shrank below
	// its limit.
	queued chan struct{}
	room   chan struct{}
}

func newRegistrations(limit int) *registrations {
	return &registrations{limit: limit, queued: make(chan struct{}, 1), room: make(chan struct{}, 1)}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// add queues a registration. While the queue is full (the database is behind) it waits, which
// stops reading the watcher and so holds the server's deliveries back; it returns false when ctx
// ends first.
func (r *registrations) add(ctx context.Context, it item) bool {
	for {
		r.mu.Lock()
		if len(r.pending) < r.limit {
			r.pending = append(r.pending, it)
			r.mu.Unlock()
			signal(r.queued)
			return true
		}
		r.mu.Unlock()
		select {
		case <-r.room:
		case <-ctx.Done():
			return false
		}
	}
}

// take returns up to n queued registrations, oldest first, and nothing while another writer holds
// some. The caller must hand them back with done.
func (r *registrations) take(n int) []item {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.writing || n < 1 || len(r.pending) == 0 {
		return nil
	}
	n = min(n, len(r.pending))
	taken := make([]item, n)
	copy(taken, r.pending)
	r.pending = append(r.pending[:0], r.pending[n:]...)
	r.writing = true
	signal(r.room)
	return taken
}

// done hands back what take returned: committed, or to be queued again in front.
func (r *registrations) done(taken []item, committed bool) {
	if len(taken) == 0 {
		return
	}
	r.mu.Lock()
	if !committed {
		r.pending = append(taken, r.pending...)
	}
	r.writing = false
	more := len(r.pending) > 0
	r.mu.Unlock()
	if more {
		signal(r.queued)
	}
}

// registryWatch is one watcher of the registry. Its context ends when the connection is lost,
// which ends the watcher: a watcher's consumer may not survive a lost connection (a restarted
// server), and one created again resumes at once, where the client would only notice missed
// heartbeats after seconds.
type registryWatch struct {
	ctx  context.Context
	stop context.CancelFunc
	w    jetstream.KeyWatcher
}

// watchRegistry creates a watcher of every key of the registry, deletions included, from the
// revision after `after` (0: from the start). Its creation is bounded by the client's request
// timeout.
func (s *Service) watchRegistry(ctx context.Context, kv jetstream.KeyValue, after uint64) (*registryWatch, error) {
	opts := []jetstream.WatchOpt{jetstream.IncludeHistory()}
	if after > 0 {
		opts = append(opts, jetstream.ResumeFromRevision(after+1))
	}
	wctx, cancel := s.bus.OpContext(ctx)
	w, err := kv.WatchAll(wctx, opts...)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("watching the workflow registry: %w", err)
	}
	return &registryWatch{ctx: wctx, stop: cancel, w: w}, nil
}

// mirrorRegistry queues the changes rw delivers until ctx ends, creating the watcher again, with
// backoff, whenever it ends.
func (s *Service) mirrorRegistry(ctx context.Context, kv jetstream.KeyValue, rw *registryWatch) {
	var last uint64 // the last revision received
	bo := backoff{policy: retry.Backoff{Base: s.cfg.RetryMin, Max: s.cfg.RetryMax}}
	for {
		err := s.followRegistry(ctx, rw, &last, &bo)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("watching the workflow registry stopped, watching it again", logging.Seq(last), zap.Error(err))
		for {
			if !s.pause(ctx, &bo) || !s.waitConnected(ctx) {
				return
			}
			if rw, err = s.watchRegistry(ctx, kv, last); err == nil {
				break
			}
			s.log.Warn("watching the workflow registry failed", zap.Error(err))
		}
	}
}

// connectedPoll is how often a recorder that lost its connection looks whether it is back.
const connectedPoll = 50 * time.Millisecond

// waitConnected waits until the connection to NATS is up, and returns false when ctx ends first.
// A watcher must not be created before: the client, not knowing the server's version until it has
// reconnected, asks for the consumer on the old API subject ($JS.API.CONSUMER.CREATE.<stream>),
// which the shipped permissions refuse.
func (s *Service) waitConnected(ctx context.Context) bool {
	tick := time.NewTicker(connectedPoll)
	defer tick.Stop()
	for !s.bus.NC.IsConnected() {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// errWatchClosed is a watcher whose updates ended (its subscription was closed).
var errWatchClosed = errors.New("watcher closed")

// followRegistry queues what rw delivers until ctx or rw's context ends or its updates do, then
// stops it. last is the revision of the last entry received; a received entry resets bo.
func (s *Service) followRegistry(ctx context.Context, rw *registryWatch, last *uint64, bo *backoff) error {
	stopWith := context.AfterFunc(ctx, rw.stop)
	defer func() {
		stopWith()
		rw.stop()
		_ = rw.w.Stop()
		for range rw.w.Updates() { // let the subscription hand over what it holds and close
		}
	}()
	for {
		var e jetstream.KeyValueEntry
		var ok bool
		select {
		case <-rw.ctx.Done():
			return context.Cause(rw.ctx)
		case e, ok = <-rw.w.Updates():
		}
		if !ok {
			if err := context.Cause(rw.ctx); err != nil {
				return err
			}
			return errWatchClosed
		}
		if e == nil { // the values present at the start have been delivered
			continue
		}
		if e.Revision() <= *last {
			continue // delivered again by a consumer the client recreated
		}
		bo.reset()
		if it, ok := s.registration(e); ok && !s.regs.add(rw.ctx, it) {
			return context.Cause(rw.ctx)
		}
		*last = e.Revision()
	}
}

// registration turns a registry entry into a registration item; an entry that is not a
// registration is logged and skipped (false).
func (s *Service) registration(e jetstream.KeyValueEntry) (item, bool) {
	r := store.Registration{Name: e.Key(), Revision: e.Revision(), AppliedAt: e.Created().UTC()}
	if op := e.Operation(); op != jetstream.KeyValueDelete && op != jetstream.KeyValuePurge {
		reg, err := client.DecodeRegistration(e.Value(), e.Revision())
		if err == nil && reg.Plan.Name != e.Key() {
			err = fmt.Errorf("its plan is named %q", reg.Plan.Name)
		}
		if err != nil {
			s.log.Warn("skipping a registry entry that is no registration", logging.Workflow(e.Key()),
				logging.Seq(e.Revision()), zap.Error(err))
			return item{}, false
		}
		r.Plan, r.AppliedBy = reg.Plan, reg.AppliedBy
		if !reg.AppliedAt.IsZero() {
			r.AppliedAt = reg.AppliedAt.UTC()
		}
	}
	return item{stream: RegistryStream, reg: &r, data: e.Value()}, true
}

// writeRegistrations writes the queued registrations that no event batch took, in batches of up
// to BatchSize gathered for BatchWait, until ctx ends. What is still queued then is replayed from
// the bucket by the next recorder.
func (s *Service) writeRegistrations(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.regs.queued:
		}
		if !retry.Sleep(ctx, s.cfg.BatchWait) {
			return
		}
		taken := s.regs.take(s.cfg.BatchSize)
		if len(taken) == 0 {
			continue // an event batch has them; it signals when it is done
		}
		_, ok := s.write(ctx, taken)
		s.regs.done(taken, ok)
		if !ok {
			return
		}
		s.log.Debug("registrations committed", logging.Count(len(taken)))
		if s.OnCommit != nil {
			s.OnCommit(Commit{Stream: RegistryStream, Registrations: len(taken)})
		}
	}
}
