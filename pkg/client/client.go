package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/workflow"
)

// ErrStop is returned by a Follow callback to end following without an error.
var ErrStop = errors.New("stop following")

// Client starts and follows runs over a bus connection. It is safe for concurrent use.
type Client struct {
	bus *bus.Bus
}

// New returns a client using b. The streams must have been provisioned (bus.Provision).
func New(b *bus.Bus) *Client { return &Client{bus: b} }

// SubmitParams describes one run to start.
type SubmitParams struct {
	// Plan is the compiled workflow to run. Required.
	Plan *workflow.Plan
	// RunID names the run. When empty it is derived from IdempotencyKey (event.DeriveRunID), so a
	// resubmission with the same key names the same run, or else a fresh event.NewID().
	RunID string
	// IdempotencyKey makes submitting twice harmless: the stream drops a second submission with the
	// same key within its duplicate window, and the store keeps one run per key after that.
	IdempotencyKey string
	// TriggeredBy says who or what started the run ("cli", "api", "schedule", a user name).
	TriggeredBy string
	// Params are the run's parameter values by name; the plan's defaults fill the others. They are
	// checked against the declared types before anything is published: a *workflow.ParamError.
	Params map[string]json.RawMessage
	// ScheduledFor is the nominal time of the schedule tick the run stands for (schedules only).
	ScheduledFor time.Time

	// rerunOf and reuse make the run a rerun (Rerun).
	rerunOf string
	reuse   map[string]json.RawMessage
}

// SubmitRunID returns the run id Submit will use for p.
func SubmitRunID(p SubmitParams) string {
	switch {
	case p.RunID != "":
		return p.RunID
	case p.IdempotencyKey != "":
		return event.DeriveRunID(p.IdempotencyKey)
	default:
		return event.NewID()
	}
}

// Submit publishes one run.submitted event and returns the run id once the stream has stored it.
// A publish whose acknowledgement is lost (the server restarted, the connection dropped) is sent
// again with the same deduplication id until ctx ends, so Submit never hangs on a lost reply and
// never starts the run twice.
func (c *Client) Submit(ctx context.Context, p SubmitParams) (string, error) {
	runID, _, err := c.submit(ctx, p)
	return runID, err
}

// submit is Submit, also telling whether the stream already held this submission (the same
// idempotency key or run id within its duplicate window).
func (c *Client) submit(ctx context.Context, p SubmitParams) (string, bool, error) {
	if p.Plan == nil {
		return "", false, errors.New("submitting run: plan is required")
	}
	params, err := p.Plan.BindParams(p.Params)
	if err != nil {
		return "", false, err
	}
	runID := SubmitRunID(p)
	e := event.New(event.TypeRunSubmitted, runID, "", 0)
	e.Params = params
	e.RerunOf, e.Reuse = p.rerunOf, p.reuse
	if err := event.CheckSizes(&e); err != nil {
		return "", false, fmt.Errorf("submitting run %s: %w (every consumer would refuse it)", runID, err)
	}
	e.Workflow = p.Plan.Name
	e.Plan = p.Plan
	e.IdempotencyKey = p.IdempotencyKey
	e.TriggeredBy = p.TriggeredBy
	if !p.ScheduledFor.IsZero() {
		at := p.ScheduledFor.UTC()
		e.ScheduledFor = &at
	}
	msg, err := bus.EventMsg(&e)
	if err != nil {
		return "", false, fmt.Errorf("submitting run %s: %w", runID, err)
	}
	ack, err := c.bus.PublishUntilStoredAck(ctx, msg)
	if err != nil {
		return "", false, fmt.Errorf("submitting run %s: %w", runID, err)
	}
	return runID, ack.Duplicate, nil
}

// Follow reads the events of one run from the start of the stream, in stream order, and calls fn
// for each. It returns nil when fn returns ErrStop, fn's error when it returns another one, and
// ctx's error when ctx ends. The run.submitted event is not delivered (its subject names no run).
// Undecodable events are skipped: the recorder keeps them as dead letters.
func (c *Client) Follow(ctx context.Context, runID string, fn func(event.Event) error) error {
	return c.follow(ctx, runID, event.SubjectRunEvents(runID), fn)
}

// FollowParams selects the events FollowFrom delivers.
type FollowParams struct {
	// RunID, when set, selects the events of one run; empty: the events of every run, run.submitted
	// included.
	RunID string
	// AfterSeq, when set, starts after that ORK_EVENTS sequence (an Event's Seq): a follower that
	// lost its connection resumes with no gap and no repeat.
	AfterSeq uint64
	// Ready, when set, is called once the server has the follower's consumer, before the first
	// event: a caller can tell "could not start" (an error before Ready) from "ended".
	Ready func()
	// FromNow starts with the events published from now on (ignored with AfterSeq).
	FromNow bool
	// UntilCaughtUp ends the follow (nil) once every event stored so far has been delivered: for a
	// run that has ended, whose events may be gone (past the stream's MaxAge) or already read.
	UntilCaughtUp bool
}

// FollowFrom is Follow with a choice of runs and of where to start.
func (c *Client) FollowFrom(ctx context.Context, p FollowParams, fn func(event.Event) error) error {
	filter := event.SubjectEventsAll
	if p.RunID != "" {
		filter = event.SubjectRunEvents(p.RunID)
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverAllPolicy}
	switch {
	case p.AfterSeq > 0:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, p.AfterSeq+1
	case p.FromNow:
		cfg.DeliverPolicy = jetstream.DeliverNewPolicy
	}
	return c.followCfg(ctx, p.RunID, cfg, p.Ready, p.UntilCaughtUp, fn)
}

// follow is Follow restricted to the events of runID on subject filter.
func (c *Client) follow(ctx context.Context, runID, filter string, fn func(event.Event) error) error {
	return c.followAt(ctx, runID, filter, 0, nil, fn)
}

// followAt is follow from after stream sequence after (0: the start), calling ready (when set)
// once the consumer exists.
func (c *Client) followAt(ctx context.Context, runID, filter string, after uint64, ready func(), fn func(event.Event) error) error {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverAllPolicy}
	if after > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, after+1
	}
	return c.followCfg(ctx, runID, cfg, ready, false, fn)
}

// followCfg follows the events an ordered consumer of cfg delivers; with caughtUp it ends once it
// has delivered every event stored so far.
func (c *Client) followCfg(ctx context.Context, runID string, cfg jetstream.OrderedConsumerConfig, ready func(), caughtUp bool, fn func(event.Event) error) error {
	what := "run " + runID
	if runID == "" {
		what = "the events"
	}
	cons, err := c.bus.JS.OrderedConsumer(ctx, event.StreamEvents, cfg)
	if err != nil {
		return fmt.Errorf("following %s: %w", what, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("following %s: %w", what, err)
	}
	defer it.Stop()
	if ready != nil {
		ready()
	}
	if caughtUp {
		info, err := cons.Info(ctx)
		if err != nil {
			return fmt.Errorf("following %s: %w", what, err)
		}
		if info.NumPending == 0 && info.Delivered.Consumer == 0 {
			return nil // nothing stored after the start
		}
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("following %s: %w", what, err)
		}
		meta, merr := msg.Metadata()
		last := caughtUp && merr == nil && meta.NumPending == 0
		e, err := event.DecodeEvent(msg.Data())
		if err != nil {
			if last {
				return nil
			}
			continue
		}
		if merr == nil {
			e.Seq = meta.Sequence.Stream
		}
		if err := fn(e); err != nil {
			if errors.Is(err, ErrStop) {
				return nil
			}
			return err
		}
		if last {
			return nil
		}
	}
}

// WaitParams names the run to wait for.
type WaitParams struct {
	// RunID names the run. Required.
	RunID string
	// OnEvent, when set, is called for every event of the run in stream order, run.finished
	// included.
	OnEvent func(event.Event)
}

// Wait follows a run from the start of the stream until its run.finished event and returns that
// event, or ctx's error when ctx ends first.
func (c *Client) Wait(ctx context.Context, p WaitParams) (event.Event, error) {
	var final event.Event
	// A caller that wants only the end is sent only the end: the server filters the stream, so a
	// waiter costs one message per run instead of three per task.
	filter := event.SubjectRunEvents(p.RunID)
	if p.OnEvent == nil {
		filter = event.SubjectEvent(event.TypeRunFinished, p.RunID)
	}
	err := c.follow(ctx, p.RunID, filter, func(e event.Event) error {
		if p.OnEvent != nil {
			p.OnEvent(e)
		}
		if e.Type == event.TypeRunFinished {
			final = e
			return ErrStop
		}
		return nil
	})
	if err != nil {
		return event.Event{}, err
	}
	return final, nil
}

// pollInterval is how often Known looks again while it waits.
const pollInterval = 50 * time.Millisecond

// Known reports whether the cluster's scheduler knows run runID: whether its state is in the
// event.BucketRuns bucket, where it stays from the run's first event until the bucket's MaxAge after
// its last change. A run submitted a moment ago may not be there yet, so Known looks again until
// within ends (or ctx does) before it says no.
func (c *Client) Known(ctx context.Context, runID string, within time.Duration) (bool, error) {
	kv, err := c.bus.JS.KeyValue(ctx, event.BucketRuns)
	if err != nil {
		return false, fmt.Errorf("opening the %s bucket: %w", event.BucketRuns, err)
	}
	deadline := time.Now().Add(within)
	for {
		_, err := kv.Get(ctx, event.RunStateKey(runID))
		switch {
		case err == nil:
			return true, nil
		case !errors.Is(err, jetstream.ErrKeyNotFound):
			return false, fmt.Errorf("looking up run %s: %w", runID, err)
		case time.Now().After(deadline):
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(pollInterval):
		}
	}
}

// Recorded waits for the recorder's notice that a run's final state is committed to the database.
type Recorded struct {
	runID string
	sub   *nats.Subscription
}

// WatchRecorded subscribes to the recorder's core NATS notice for runID. The notice is not stored, so
// call it before submitting the run (or before the run can finish); the subscription is confirmed
// by the server when it returns.
func (c *Client) WatchRecorded(runID string) (*Recorded, error) {
	sub, err := c.bus.NC.SubscribeSync(event.SubjectRecordedPrefix + runID)
	if err != nil {
		return nil, fmt.Errorf("watching recorder notice of run %s: %w", runID, err)
	}
	if err := c.bus.NC.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("watching recorder notice of run %s: %w", runID, err)
	}
	return &Recorded{runID: runID, sub: sub}, nil
}

// Wait blocks until the recorder has committed the run's final event and returns the run's final
// status, or returns ctx's error.
func (r *Recorded) Wait(ctx context.Context) (string, error) {
	msg, err := r.sub.NextMsgWithContext(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fmt.Errorf("waiting for recorder notice of run %s: %w", r.runID, err)
	}
	return string(msg.Data), nil
}

// Close ends the subscription.
func (r *Recorded) Close() error {
	if err := r.sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
		return fmt.Errorf("closing recorder watch of run %s: %w", r.runID, err)
	}
	return nil
}
