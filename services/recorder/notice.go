package recorder

import (
	"context"
	"sync"

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
	return nil
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
