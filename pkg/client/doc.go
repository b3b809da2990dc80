// Package client is the small Go client of Ork: it starts runs by publishing run.submitted events,
// follows a run's events live from the ORK_EVENTS stream, and waits for the recorder's notice that a
// run's final state is in the database.
//
// A typical caller (the ork CLI does this) watches the notice before submitting, so it cannot miss it:
//
//	rec, err := c.WatchRecorded(runID)
//	...
//	defer rec.Close()
//	runID, err = c.Submit(ctx, client.SubmitParams{Plan: plan, RunID: runID})
//	final, err := c.Wait(ctx, runID, nil)
//	status, err := rec.Wait(ctx)
package client
