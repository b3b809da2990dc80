package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/event"
)

// ErrUnknownRun is returned by a control request for a run the cluster's scheduler does not know
// (never submitted, or forgotten a week after its last change): no scheduler would answer it.
var ErrUnknownRun = errors.New("no such run on the cluster")

// KnownWithinDefault is how long a control request looks for a run that may have been submitted a
// moment ago before it returns ErrUnknownRun.
const KnownWithinDefault = time.Second

// ControlParams is one control request (cancel, pause or resume) for a run.
type ControlParams struct {
	// RunID names the run. Required.
	RunID string
	// Reason says why; a cancelled run keeps it as its error.
	Reason string
	// TriggeredBy says who asks ("cli", "api", a user name).
	TriggeredBy string
	// KnownWithin is how long to look for the run before ErrUnknownRun; KnownWithinDefault when 0.
	KnownWithin time.Duration
}

// Cancel asks the scheduler to cancel a run: every task that has not ended is cancelled (running
// ones are killed) and the run ends as cancelled. It returns the request once the stream has
// stored it; AwaitAnswer waits for the outcome.
func (c *Client) Cancel(ctx context.Context, p ControlParams) (event.Event, error) {
	return c.control(ctx, event.TypeRunCancelRequested, p)
}

// Pause asks the scheduler to start no new task of a run until it is resumed.
func (c *Client) Pause(ctx context.Context, p ControlParams) (event.Event, error) {
	return c.control(ctx, event.TypeRunPauseRequested, p)
}

// Resume asks the scheduler to go on with a paused run.
func (c *Client) Resume(ctx context.Context, p ControlParams) (event.Event, error) {
	return c.control(ctx, event.TypeRunResumeRequested, p)
}

func (c *Client) control(ctx context.Context, typ string, p ControlParams) (event.Event, error) {
	if p.RunID == "" {
		return event.Event{}, fmt.Errorf("%s: a run id is required", typ)
	}
	known, err := c.Known(ctx, p.RunID, orDefault(p.KnownWithin, KnownWithinDefault))
	if err != nil {
		return event.Event{}, err
	}
	if !known {
		return event.Event{}, fmt.Errorf("%s for run %s: %w", typ, p.RunID, ErrUnknownRun)
	}
	req := event.New(typ, p.RunID, "", 0)
	req.TriggeredBy = p.TriggeredBy
	req.Error = p.Reason
	msg, err := bus.EventMsg(&req)
	if err != nil {
		return event.Event{}, err
	}
	if err := c.bus.PublishUntilStored(ctx, msg); err != nil {
		return event.Event{}, fmt.Errorf("sending %s for run %s: %w", typ, p.RunID, err)
	}
	return req, nil
}

// answerType is the event that answers each control request.
var answerType = map[string]string{
	event.TypeRunCancelRequested: event.TypeRunFinished,
	event.TypeRunPauseRequested:  event.TypeRunPaused,
	event.TypeRunResumeRequested: event.TypeRunResumed,
}

// AwaitAnswer follows the run of control request req until the scheduler answers it and returns
// the answer: run.finished for a cancel, run.paused or run.resumed (the one whose id is
// event.AnswerID of req's), or run.finished when the run ended before the request was applied
// (the caller compares its status). It returns ctx's error when ctx ends first.
func (c *Client) AwaitAnswer(ctx context.Context, req event.Event) (event.Event, error) {
	typ, ok := answerType[req.Type]
	if !ok {
		return event.Event{}, fmt.Errorf("%s is not a control request", req.Type)
	}
	want := event.AnswerID(req.ID, typ)
	var answer event.Event
	err := c.Follow(ctx, req.RunID, func(e event.Event) error {
		if e.Type == event.TypeRunFinished || (e.Type == typ && e.ID == want) {
			answer = e
			return ErrStop
		}
		return nil
	})
	if err != nil {
		return event.Event{}, err
	}
	return answer, nil
}
