package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/event"
)

// observedSubjects are the events the collector reads: the dispatches are left out, since no
// measurement needs them and decoding them would take CPU from the system under test.
var observedSubjects = []string{
	event.SubjectEventsOfType(event.TypeTaskStarted),
	event.SubjectEventsOfType(event.TypeTaskSucceeded),
	event.SubjectEventsOfType(event.TypeTaskFailed),
	event.SubjectEventsOfType(event.TypeTaskSkipped),
	event.SubjectEventsOfType(event.TypeRunFinished),
}

// runTrace is what the collector saw of one run.
type runTrace struct {
	submitted time.Time
	started   map[string]time.Time // latest attempt's task.started
	succeeded map[string]time.Time
	failed    int // task.failed events, retried attempts included
	skipped   int
	status    string // run.finished status, "" until then
	recorded  time.Time
}

// collector follows the events and recorder notices of a known set of runs.
type collector struct {
	mu      sync.Mutex
	runs    map[string]*runTrace
	pending int // runs not yet both finished and recorded
	done    chan struct{}
	last    time.Time // arrival of the last recorder notice
	decode  int       // events that could not be decoded
}

func newCollector(runIDs []string, tasksPerRun int) *collector {
	c := &collector{runs: make(map[string]*runTrace, len(runIDs)), pending: len(runIDs), done: make(chan struct{})}
	for _, id := range runIDs {
		c.runs[id] = &runTrace{started: make(map[string]time.Time, tasksPerRun), succeeded: make(map[string]time.Time, tasksPerRun)}
	}
	return c
}

func (c *collector) submitted(runID string, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.runs[runID].submitted = at
}

func (c *collector) event(e *event.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.runs[e.RunID]
	if r == nil {
		return
	}
	switch e.Type {
	case event.TypeTaskStarted:
		r.started[e.Task] = e.Time
	case event.TypeTaskSucceeded:
		r.succeeded[e.Task] = e.Time
	case event.TypeTaskFailed:
		r.failed++
	case event.TypeTaskSkipped:
		r.skipped++
	case event.TypeRunFinished:
		if r.status == "" {
			r.status = e.Status
			c.settle(r)
		}
	}
}

func (c *collector) notice(runID string, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.runs[runID]
	if r == nil || !r.recorded.IsZero() {
		return
	}
	r.recorded = at
	c.last = at
	c.settle(r)
}

// settle counts r as done once it is both finished and recorded. Called with mu held.
func (c *collector) settle(r *runTrace) {
	if r.status == "" || r.recorded.IsZero() {
		return
	}
	c.pending--
	if c.pending == 0 {
		close(c.done)
	}
}

// follow starts reading the events published after startSeq and the recorder notices. stop ends
// both.
func (c *collector) follow(ctx context.Context, b *bus.Bus, startSeq uint64) (stop func(), err error) {
	sub, err := b.NC.Subscribe(event.SubjectRecordedPrefix+"*", func(m *nats.Msg) {
		c.notice(m.Subject[len(event.SubjectRecordedPrefix):], time.Now())
	})
	if err != nil {
		return nil, fmt.Errorf("subscribing to recorder notices: %w", err)
	}
	if err := b.NC.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("subscribing to recorder notices: %w", err)
	}
	cons, err := b.JS.OrderedConsumer(ctx, event.StreamEvents, jetstream.OrderedConsumerConfig{
		FilterSubjects: observedSubjects,
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    startSeq,
	})
	if err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("following events: %w", err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		e, err := event.DecodeEvent(m.Data())
		if err != nil {
			c.mu.Lock()
			c.decode++
			c.mu.Unlock()
			return
		}
		c.event(&e)
	})
	if err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("following events: %w", err)
	}
	return sync.OnceFunc(func() {
		cc.Stop()
		<-cc.Closed()
		_ = sub.Unsubscribe()
	}), nil
}

// wait blocks until every run is finished and recorded, or ctx ends.
func (c *collector) wait(ctx context.Context) error {
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		c.mu.Lock()
		defer c.mu.Unlock()
		return fmt.Errorf("%d of %d runs not finished and recorded: %w", c.pending, len(c.runs), ctx.Err())
	}
}

// nextSeq is the sequence the next event of ORK_EVENTS will get.
func nextSeq(ctx context.Context, b *bus.Bus) (uint64, error) {
	st, err := b.JS.Stream(ctx, event.StreamEvents)
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", event.StreamEvents, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", event.StreamEvents, err)
	}
	return info.State.LastSeq + 1, nil
}
