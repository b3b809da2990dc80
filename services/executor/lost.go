package executor

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/event"
)

// Lost attempts. When an executor dies (kill -9, a crash, a partition) while it runs an attempt, the
// attempt's dispatch is neither acknowledged nor heartbeated, and JetStream delivers it again after
// AckWait to some instance. Running attempt N a second time would repeat its side effects under the
// same number and reuse its log lines' ids, so the receiving executor reports the attempt lost
// (task.failed, reason lost, without running it) and the scheduler starts attempt N+1.
//
// Whether a delivered attempt had started is learnt for free from task.started itself: its
// Nats-Msg-Id is "<run>/<task>/<attempt>/task.started", so the stream acknowledges a second publish
// as a Duplicate. The answer is consulted on every delivery, not only on redeliveries: a nats-server
// killed with SIGKILL can lose the consumer's delivery state (written asynchronously) while the
// stream keeps the task.started, and the dispatch then comes back with a delivery count of 1 while
// its attempt runs, or ran, elsewhere. A Duplicate always means the attempt started before, whatever
// the delivery count, so the attempt is reported lost; the executor still running the original goes
// on, publishes its result normally, and the scheduler fences it (the attempt is over for it).
//
// A Duplicate answer is only possible within ORK_EVENTS's duplicate window (bus.Config.
// DuplicateWindow, 2 min by default): a task.started published earlier is forgotten, so "not a
// duplicate" is authoritative only when the attempt could not have started before the window began.
// Any task.started of a dispatch is published after the dispatch was stored and after its NotBefore,
// so for a redelivery, when the later of the two is recent enough, the answer is authoritative. When
// it is not (an attempt that ran for longer than the window, then lost its executor), the executor
// cannot tell whether the attempt ran and reports it lost all the same: attempts run at most once,
// and a needless new attempt is cheaper than a silent second run. A redelivery that never started
// (a NotBefore delay, a drain before the start, a nak after a failed task.started publish) is recent
// and not a duplicate, so it runs. A first delivery that is not a duplicate runs whatever its age: a
// dispatch waiting long in a backlog is normal, and only a server crash that lost the delivery state
// of an attempt started longer than the window ago could make it a second run.
//
// The executor never re-runs an attempt itself either: a running attempt stopped by a drain is
// reported lost by the stopping executor, and a dispatch delivered again to the instance that is
// running its attempt (the server lost its delivery state) is left to that attempt, which
// heartbeats, acknowledges or terminates the dispatch (by stream sequence) when it ends.

// dupWindowSlack is how much of the duplicate window is not trusted, for clock skew between the
// server's timestamps and this host.
const dupWindowSlack = 4 // a quarter

// eventsDuplicateWindow reads ORK_EVENTS's duplicate window from the server, since the stream may
// have been provisioned by another process with another configuration.
func (s *Service) eventsDuplicateWindow(ctx context.Context) (time.Duration, error) {
	st, err := s.bus.JS.Stream(ctx, event.StreamEvents)
	if err != nil {
		return 0, fmt.Errorf("executor: reading stream %s: %w", event.StreamEvents, err)
	}
	w := st.CachedInfo().Config.Duplicates
	if w <= 0 {
		w = bus.DuplicateWindowDefault
	}
	return w, nil
}

// lostBefore returns why a dispatch whose task.started was just published must not run, or "" when
// it may run. duplicate tells whether the stream already held that task.started.
func (s *Service) lostBefore(msg jetstream.Msg, d *event.Dispatch, duplicate bool) string {
	attempt := "attempt " + strconv.Itoa(d.Attempt)
	meta, err := msg.Metadata()
	if duplicate {
		if err == nil && meta.NumDelivered <= 1 {
			return attempt + " was lost: it had started before (its task.started was already on the events stream) " +
				"although this is its first delivery: the NATS server lost the dispatch's delivery state, so it is not run twice"
		}
		return attempt + " was lost: its executor stopped (redelivered after the ack wait)"
	}
	if err != nil || meta.NumDelivered <= 1 {
		return ""
	}
	since := meta.Timestamp
	if d.NotBefore != nil && d.NotBefore.After(since) {
		since = *d.NotBefore
	}
	age := time.Since(since)
	if age < s.dupWindow-s.dupWindow/dupWindowSlack {
		return ""
	}
	return attempt + " was lost: it was delivered again (delivery " + strconv.FormatUint(meta.NumDelivered, 10) +
		") " + age.Round(time.Second).String() + " after it became due, past the " + s.dupWindow.String() +
		" duplicate window that tells whether it had started, so it is not run twice"
}

// reportLost publishes task.failed with reason lost for the attempt and terminates its dispatch. If
// the event cannot be published the dispatch is returned, and its next delivery finds it lost again.
func (s *Service) reportLost(d *event.Dispatch, msg jetstream.Msg, log *zap.Logger, why string) {
	ev := event.New(event.TypeTaskFailed, d.RunID, d.Task.Name, d.Attempt)
	ev.Instance = s.cfg.Instance
	ev.Reason = event.ReasonLost
	ev.Error = why
	m, err := bus.EventMsg(&ev)
	if err == nil {
		err = s.publishMsg(m, publishAttempts)
	}
	if err != nil {
		log.Error("publishing a lost attempt; the dispatch will be redelivered", zap.Error(err))
		s.nak(log, msg, retryDelay)
		return
	}
	s.cfg.Metrics.lostAttempt(d.Task.Executor)
	log.Warn("attempt lost", zap.String("error", why))
	if err := msg.Term(); err != nil {
		log.Warn("terminating dispatch", zap.Error(err))
	}
}
