package client

import (
	"context"
	"fmt"
	"time"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/view"
)

// Defaults of RunParams.
const (
	RecordedWaitDefault = 60 * time.Second
	CancelGraceDefault  = 15 * time.Second
)

// RunParams describes one run to start and follow to its end.
type RunParams struct {
	// Submit is the run. Its RunID is filled in (SubmitRunID) when empty.
	Submit SubmitParams
	// OnEvent, when set, is called for every event of the run in stream order, run.finished
	// included, from Run's goroutine.
	OnEvent func(event.Event)
	// Store, when set, is the database the cluster's recorder writes: Run waits until the run's end
	// is recorded there (up to RecordedWait) and returns the run as read from it. Without it the
	// run is built from its events.
	Store store.Store
	// RecordedWait bounds the wait for the recorder; RecordedWaitDefault when 0.
	RecordedWait time.Duration
	// CancelOnInterrupt cancels the run when ctx ends before the run does, and waits up to
	// CancelGrace (CancelGraceDefault when 0) for its end: for a run that would otherwise die with
	// the caller, such as one in an in-process stack. OnInterrupt, when set, is called first.
	CancelOnInterrupt bool
	CancelGrace       time.Duration
	OnInterrupt       func()
}

// RunResult is what Run saw.
type RunResult struct {
	RunID string
	// Final is the run's run.finished event; zero when the run did not end.
	Final event.Event
	// Run is the run and its tasks: read from RunParams.Store when set, else built from the events.
	Run *view.Run
	// Interrupted is true when ctx ended before the run did.
	Interrupted bool
}

// Run submits a run, follows its events until it ends and returns what it ended as. The recorder's
// notice is watched before the submission, so a run that ends at once is not missed. When ctx ends
// first, Run returns ctx's error with Interrupted set (and, with CancelOnInterrupt, the run
// cancelled: the result then holds its end and the error is nil).
func (c *Client) Run(ctx context.Context, p RunParams) (RunResult, error) {
	if p.Submit.Plan == nil {
		return RunResult{}, fmt.Errorf("running: plan is required")
	}
	if p.Submit.RunID == "" {
		p.Submit.RunID = SubmitRunID(p.Submit)
	}
	res := RunResult{RunID: p.Submit.RunID}
	recorded, err := c.WatchRecorded(res.RunID)
	if err != nil {
		return res, err
	}
	defer func() { _ = recorded.Close() }()

	params, err := p.Submit.Plan.BindParams(p.Submit.Params)
	if err != nil {
		return res, err
	}
	follower := view.NewFollower(p.Submit.Plan, res.RunID, time.Now(), params)
	onEvent := func(e event.Event) {
		follower.Event(&e)
		if p.OnEvent != nil {
			p.OnEvent(e)
		}
	}
	if _, err := c.Submit(ctx, p.Submit); err != nil {
		return res, err
	}
	res.Final, err = c.Wait(ctx, WaitParams{RunID: res.RunID, OnEvent: onEvent})
	if err != nil && ctx.Err() != nil {
		res.Interrupted = true
		if !p.CancelOnInterrupt {
			return res, err
		}
		if p.OnInterrupt != nil {
			p.OnInterrupt()
		}
		ctx = context.Background()
		if res.Final, err = c.cancelAndWait(ctx, res.RunID, p.Submit.TriggeredBy, orDefault(p.CancelGrace, CancelGraceDefault), onEvent); err != nil {
			return res, err
		}
	}
	if err != nil {
		return res, err
	}
	res.Run = follower.Run()
	if p.Store == nil {
		return res, nil
	}
	if !recordedEnd(ctx, p.Store, res.RunID) {
		wait := orDefault(p.RecordedWait, RecordedWaitDefault)
		wctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		if _, err := recorded.Wait(wctx); err != nil {
			return res, fmt.Errorf("run %s finished %s, but no recorder wrote it to the database within %s: %w",
				res.RunID, res.Final.Status, wait, err)
		}
	}
	if res.Run, err = view.Read(ctx, p.Store, res.RunID); err != nil {
		return res, err
	}
	return res, nil
}

// cancelAndWait cancels a run and follows it until its end, within grace.
func (c *Client) cancelAndWait(ctx context.Context, runID, by string, grace time.Duration, onEvent func(event.Event)) (event.Event, error) {
	ctx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	if _, err := c.Cancel(ctx, ControlParams{RunID: runID, Reason: "interrupted", TriggeredBy: by, KnownWithin: grace / 3}); err != nil {
		return event.Event{}, fmt.Errorf("cancelling run %s: %w", runID, err)
	}
	final, err := c.Wait(ctx, WaitParams{RunID: runID, OnEvent: onEvent})
	if err != nil {
		return event.Event{}, fmt.Errorf("cancelling run %s: %w", runID, err)
	}
	return final, nil
}

// recordedEnd tells whether st already holds the run's end (its notice may have come before the
// watch did, for a resubmission of a finished run).
func recordedEnd(ctx context.Context, st store.Store, runID string) bool {
	run, err := st.RunGet(ctx, store.RunGetParams{ID: runID})
	return err == nil && event.IsTerminalRun(run.Status)
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}
