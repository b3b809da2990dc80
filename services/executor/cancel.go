package executor

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/logging"
)

// errCancelled is the cause of an attempt's context when the run or the task was cancelled.
var errCancelled = errors.New("cancelled")

// Cancellation needs no subject of its own: the executor listens (core NATS, no consumer) to the
// events that end an attempt from outside. task.cancelled stops that attempt of the task (attempt 0:
// every attempt), run.finished stops whatever of the run still runs. The attempt's process group is
// killed and its dispatch acknowledged without a terminal event, since the run's state already says
// how the attempt ended.
var cancelSubjects = []string{
	event.SubjectEventsOfType(event.TypeTaskCancelled),
	event.SubjectEventsOfType(event.TypeRunFinished),
}

// cancelledMemory bounds how many recent cancellations are remembered, so that a dispatch received
// after its cancellation (it was waiting in the stream or for a slot) does not run.
const cancelledMemory = 4096

// cancelledSet remembers recent cancellations, oldest forgotten first.
type cancelledSet struct {
	keys  map[attemptKey]struct{}
	order []attemptKey
	next  int
}

func (c *cancelledSet) add(k attemptKey) {
	if c.keys == nil {
		c.keys = make(map[attemptKey]struct{})
	}
	if _, ok := c.keys[k]; ok {
		return
	}
	if len(c.order) < cancelledMemory {
		c.order = append(c.order, k)
	} else {
		delete(c.keys, c.order[c.next])
		c.order[c.next] = k
		c.next = (c.next + 1) % cancelledMemory
	}
	c.keys[k] = struct{}{}
}

// has reports whether the attempt, its task (attempt 0) or its run (task "") was cancelled.
func (c *cancelledSet) has(k attemptKey) bool {
	_, a := c.keys[k]
	_, t := c.keys[attemptKey{run: k.run, task: k.task}]
	_, r := c.keys[attemptKey{run: k.run}]
	return a || t || r
}

// attemptKey identifies a running attempt.
type attemptKey struct {
	run, task string
	attempt   int
}

// trackStatus is what track found.
type trackStatus int

const (
	// tracked: the attempt is registered as running here.
	tracked trackStatus = iota
	// wasCancelled: the attempt was cancelled already; nothing is registered.
	wasCancelled
	// runningHere: this instance runs the attempt already (its dispatch was delivered again);
	// nothing is registered.
	runningHere
)

// track registers a running attempt and returns its context and a function to forget it. Unless the
// status is tracked, nothing is registered and ctx and untrack are nil.
func (s *Service) track(parent context.Context, d *event.Dispatch) (ctx context.Context, untrack func(), st trackStatus) {
	k := attemptKey{d.RunID, d.Task.Name, d.Attempt}
	s.runningMu.Lock()
	if s.cancelled.has(k) {
		s.runningMu.Unlock()
		return nil, nil, wasCancelled
	}
	if _, ok := s.running[k]; ok {
		s.runningMu.Unlock()
		return nil, nil, runningHere
	}
	ctx, cancel := context.WithCancelCause(parent)
	s.running[k] = cancel
	s.runningMu.Unlock()
	return ctx, func() {
		s.runningMu.Lock()
		delete(s.running, k)
		s.runningMu.Unlock()
		cancel(nil)
	}, tracked
}

// cancelMatching stops the running attempts an event ends.
func (s *Service) cancelMatching(e *event.Event) {
	s.runningMu.Lock()
	defer s.runningMu.Unlock()
	switch e.Type {
	case event.TypeTaskCancelled:
		s.cancelled.add(attemptKey{e.RunID, e.Task, e.Attempt})
	case event.TypeRunFinished:
		s.cancelled.add(attemptKey{run: e.RunID})
	}
	for k, cancel := range s.running {
		if k.run != e.RunID {
			continue
		}
		if e.Type == event.TypeTaskCancelled && (k.task != e.Task || (e.Attempt != 0 && e.Attempt != k.attempt)) {
			continue
		}
		s.log.Info("cancelling running task", logging.RunID(k.run), logging.Task(k.task), logging.Attempt(k.attempt),
			logging.EventType(e.Type))
		cancel(errCancelled)
	}
}

// subscribeCancels listens for the events that cancel running attempts.
func (s *Service) subscribeCancels() ([]*nats.Subscription, error) {
	subs := make([]*nats.Subscription, 0, len(cancelSubjects))
	for _, subj := range cancelSubjects {
		sub, err := s.bus.NC.Subscribe(subj, func(m *nats.Msg) {
			e, err := event.DecodeEvent(m.Data)
			if err != nil {
				s.log.Warn("undecodable event ignored", logging.Subject(m.Subject), zap.Error(err))
				return
			}
			s.cancelMatching(&e)
		})
		if err != nil {
			unsubscribe(subs)
			return nil, fmt.Errorf("executor: subscribing to %s: %w", subj, err)
		}
		subs = append(subs, sub)
	}
	return subs, nil
}

func unsubscribe(subs []*nats.Subscription) {
	for _, sub := range subs {
		_ = sub.Unsubscribe()
	}
}
