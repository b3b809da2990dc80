package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/httpapi"
	"github.com/ork-go/ork/pkg/workflow"
)

type triggerOptions struct {
	run  runOptions
	api  apiFlags
	wait bool
}

func newTriggerCmd() *cobra.Command {
	var o triggerOptions
	cmd := &cobra.Command{
		Use:   "trigger NAME",
		Short: "Start a run of a registered workflow",
		Long: `Start a run of a registered workflow (ork workflows apply registers one) with its parameters.

On a server (--api, ORK_API_URL, or the ` + "`ork serve`" + ` running in this folder) or a cluster (--nats) the run is
submitted and its id printed; --wait follows it to its end like ork run. Without either, the workflow
of this folder's registry runs here, in this process, to its end.

A repeat with the same --idempotency-key starts nothing and names the same run.`,
		Example: `  ork trigger typed_chain --param city=Paris --param day=2024-08-01
  ork trigger nightly --idempotency-key nightly-2024-08-01 --wait`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return trigger(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), args[0], o)
		},
	}
	addAPIFlags(cmd, &o.api)
	addNATSFlags(cmd, &o.run.nats, "submit to the cluster at this NATS URL")
	addDBFlag(cmd, &o.run.db)
	addParamFlag(cmd, &o.run.params)
	cmd.Flags().StringVar(&o.run.key, "idempotency-key", "", "triggering twice with one key starts one run")
	cmd.Flags().BoolVar(&o.wait, "wait", false, "follow the run to its end and show its tasks (always so without a server or cluster)")
	cmd.Flags().BoolVar(&o.run.json, "json", false, "print JSON")
	cmd.Flags().BoolVar(&o.run.all, "all", false, "with --wait, list every task in the final table")
	cmd.Flags().BoolVarP(&o.run.verbose, "verbose", "v", false, "show the services' debug logs (in-process)")
	return cmd
}

func trigger(ctx context.Context, stdout, stderr io.Writer, name string, o triggerOptions) error {
	begin := time.Now()
	api, _, err := o.api.server(ctx)
	if err != nil {
		return err
	}
	if api == nil {
		natsURL, err := o.run.nats.URL()
		if err != nil {
			return err
		}
		o.run.triggeredBy = "cli"
		o.run.detach = natsURL != "" && !o.wait
		return executePlan(ctx, stdout, stderr, planSource{registered: name}, o.run, begin)
	}
	wf, err := api.Workflow(ctx, name)
	if httpapi.IsProblem(err, "not-found") {
		return fmt.Errorf("no registered workflow %q on the server at %s (ork workflows apply FILE registers it)", name, api.Base())
	}
	if err != nil {
		return err
	}
	values, err := bindParamArgs(wf.Plan, o.run.params)
	if err != nil {
		return err
	}
	tr, err := api.Trigger(ctx, name, values, o.run.key)
	if err != nil {
		return err
	}
	if !o.wait {
		if o.run.json {
			return writeJSON(stdout, tr)
		}
		if tr.Repeat {
			fmt.Fprintf(stderr, "the idempotency key had already started this run\n")
		}
		_, err := fmt.Fprintln(stdout, tr.RunID)
		return err
	}
	return followOnServer(ctx, stdout, api, tr.RunID, wf.Plan, begin, o.run)
}

// followOnServer follows a run on a server to its end with the progress lines of ork run, then
// prints its tasks (or its JSON) and exits as ork run does.
func followOnServer(ctx context.Context, stdout io.Writer, api *httpapi.Client, runID string, plan *workflow.Plan, begin time.Time, o runOptions) error {
	if !o.json {
		fmt.Fprintf(stdout, "run %s of workflow %q (%s) on %s\n", runID, plan.Name, plural(len(plan.Tasks), "task"), api.Base())
	}
	progress := newProgress(stdout, plan, !o.json && isTerminal(stdout), begin)
	var final event.Event
	err := api.FollowRun(ctx, runID, 0, func(e event.Event) error {
		if !o.json {
			progress.event(e)
		}
		if e.Type == event.TypeRunFinished {
			final = e
		}
		return nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return &ExitError{Code: ExitCodeInterrupted, Err: fmt.Errorf("interrupted; run %s goes on on the server", runID)}
		}
		return err
	}
	progress.done()
	run, err := waitRecorded(ctx, api, runID)
	if err != nil {
		return err
	}
	if o.json {
		if err := writeJSON(stdout, run); err != nil {
			return err
		}
	} else {
		printResult(stdout, plan, run.Run, o.all)
	}
	if final.Status != event.RunSuccess {
		return &ExitError{Code: ExitCodeFailure, Err: errRunNotSuccessful{status: final.Status, msg: final.Error}}
	}
	return nil
}

// planOfRun is the plan a run ran, for the progress lines and the table: the registered one when
// it is the run's version, else one made of the run's tasks.
func planOfRun(ctx context.Context, api *httpapi.Client, run httpapi.RunDetail) *workflow.Plan {
	if wf, err := api.Workflow(ctx, run.Workflow); err == nil && wf.Version == run.Version {
		return wf.Plan
	}
	return planFromView(run)
}

// planFromView is a plan with the run's tasks, for a run whose workflow version the client does
// not have.
func planFromView(run httpapi.RunDetail) *workflow.Plan {
	p := &workflow.Plan{Name: run.Workflow}
	for name, t := range run.Tasks {
		p.Tasks = append(p.Tasks, workflow.Task{Name: name, Executor: t.Executor})
	}
	slices.SortFunc(p.Tasks, func(a, b workflow.Task) int { return strings.Compare(a.Name, b.Name) })
	return p
}

// waitRecorded reads a finished run back from the server: its event stream ended once the
// server's database had the end, so one read is enough (a second one covers a recorder slower
// than the stream's wait).
func waitRecorded(ctx context.Context, api *httpapi.Client, id string) (httpapi.RunDetail, error) {
	run, err := api.Run(ctx, id)
	if err != nil || event.IsTerminalRun(run.Status) {
		return run, err
	}
	return run, fmt.Errorf("run %s ended, but the server's database does not say so yet (ork status %s shows it once it does)", id, id)
}
