package recorder

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/logging"
)

// notice is a recorded notice waiting for the log lines published before it to be committed.
type notice struct {
	runID, status string
	logSeq        uint64 // ORK_LOGS sequence that must be committed first
}

// notices holds recorded notices until the log stream's commits catch up with them. Executors
// publish a task's log lines before its terminal event, so once ORK_LOGS is committed up to its
// last sequence as of a run's run.finished commit, every line of that run is in the database: a
// client told "recorded" can read the logs too.
type notices struct {
	mu        sync.Mutex
	committed uint64 // highest ORK_LOGS sequence committed
	pending   []notice
	// held is signalled when a notice is queued: with more than one recorder, the log lines it
	// waits for may be committed by another instance, which only the consumer's ack floor tells.
	held chan struct{}
}

// heldSignal returns the channel signalled when notices are queued.
func (n *notices) heldSignal() chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.held == nil {
		n.held = make(chan struct{}, 1)
	}
	return n.held
}

// waiting reports whether notices are queued.
func (n *notices) waiting() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.pending) > 0
}

// logsCommitted records a committed log batch and returns the notices it releases.
func (n *notices) logsCommitted(maxSeq uint64) []notice {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.committed = max(n.committed, maxSeq)
	keep := n.pending[:0]
	var ready []notice
	for _, p := range n.pending {
		if p.logSeq <= n.committed {
			ready = append(ready, p)
		} else {
			keep = append(keep, p)
		}
	}
	n.pending = keep
	return ready
}

// add queues notices needing the logs up to logSeq and returns those already releasable.
func (n *notices) add(logSeq uint64, ns []notice) []notice {
	n.mu.Lock()
	defer n.mu.Unlock()
	if logSeq <= n.committed {
		return ns
	}
	for i := range ns {
		ns[i].logSeq = logSeq
	}
	n.pending = append(n.pending, ns...)
	if n.held != nil {
		select {
		case n.held <- struct{}{}:
		default:
		}
	}
	return nil
}

// ackFloorPoll is how often a recorder holding notices reads the log consumer's ack floor.
const ackFloorPoll = 50 * time.Millisecond

// releaseByAckFloor releases held notices once the log consumer's ack floor (every line up to it
// acknowledged, so committed, by any recorder instance) reaches them. It reads the floor only while
// notices are held, so an idle recorder sends nothing.
func (s *Service) releaseByAckFloor(ctx context.Context, logs jetstream.Consumer) {
	held := s.notices.heldSignal()
	tick := time.NewTicker(ackFloorPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-held:
		}
		for s.notices.waiting() {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			info, err := logs.Info(ctx)
			if err != nil {
				continue
			}
			s.publishNotices(s.notices.logsCommitted(info.AckFloor.Stream))
		}
	}
}

// logsLastSeq returns the last sequence in ORK_LOGS, or 0 when it cannot be read (the notice is
// then not held back: the run's events are committed, which is what the notice promises first).
func (s *Service) logsLastSeq(ctx context.Context) uint64 {
	st, err := s.bus.JS.Stream(ctx, event.StreamLogs)
	if err != nil {
		s.log.Warn("reading the log stream's state failed", zap.Error(err))
		return 0
	}
	info, err := st.Info(ctx)
	if err != nil {
		s.log.Warn("reading the log stream's state failed", zap.Error(err))
		return 0
	}
	return info.State.LastSeq
}

// publishNotices sends the recorded notices.
func (s *Service) publishNotices(ns []notice) {
	for _, n := range ns {
		if err := s.bus.NC.Publish(event.SubjectRecordedPrefix+n.runID, []byte(n.status)); err != nil {
			s.log.Warn("publishing recorded notice failed", logging.RunID(n.runID), zap.Error(err))
		}
	}
}
