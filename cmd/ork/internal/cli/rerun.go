package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ork-go/ork/pkg/client"
	"github.com/ork-go/ork/pkg/httpapi"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/workflow"
)

type rerunOptions struct {
	run            runOptions
	api            apiFlags
	failed, dryRun bool
	wait           bool
}

func newRerunCmd() *cobra.Command {
	var o rerunOptions
	cmd := &cobra.Command{
		Use:   "rerun RUN_ID",
		Short: "Start a new run of a finished run's workflow version and parameters",
		Long: `Start a new run of the workflow version and parameters of a finished run. It records the run it
reruns. With --failed only the tasks that did not succeed (failed, skipped, cancelled) run again, with
what depends on them; the others are not run, their stored outputs are reused. --dry-run only says
what would run.

On a server (--api, ORK_API_URL, or the ` + "`ork serve`" + ` of this folder) the run is started there; --wait
follows it. On a cluster, give --nats and its database (--db). Otherwise it runs here, in this
process, to its end, from this folder's database.

` + runRefHelp,
		Example: `  ork rerun latest --failed
  ork rerun 01a23ecc --failed --dry-run`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return rerun(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), args[0], o)
		},
	}
	addAPIFlags(cmd, &o.api)
	addNATSFlags(cmd, &o.run.nats, "submit to the cluster at this NATS URL (with --db)")
	addDBFlag(cmd, &o.run.db)
	cmd.Flags().BoolVar(&o.failed, "failed", false, "run again only what did not succeed, and what depends on it; reuse the rest")
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "only print what would run and what would be reused")
	cmd.Flags().StringVar(&o.run.key, "idempotency-key", "", "rerunning twice with one key starts one run")
	cmd.Flags().BoolVar(&o.wait, "wait", false, "on a server or cluster, follow the new run to its end")
	cmd.Flags().BoolVar(&o.run.json, "json", false, "print JSON")
	cmd.Flags().BoolVarP(&o.run.verbose, "verbose", "v", false, "show the services' debug logs (in-process)")
	return cmd
}

func rerun(ctx context.Context, stdout, stderr io.Writer, ref string, o rerunOptions) error {
	begin := time.Now()
	mode := client.RerunAll
	if o.failed {
		mode = client.RerunFailed
	}
	api, _, err := o.api.server(ctx)
	if err != nil {
		return err
	}
	o.run.triggeredBy = "cli"
	if api == nil {
		natsURL, err := o.run.nats.URL()
		if err != nil {
			return err
		}
		if o.dryRun {
			return dryRunHere(ctx, stdout, ref, mode, o)
		}
		o.run.detach = natsURL != "" && !o.wait
		return executePlan(ctx, stdout, stderr, planSource{rerun: ref, rerunMode: mode}, o.run, begin)
	}
	id, err := resolveRunRefIn(ctx, apiRuns{api}, ref)
	if err != nil {
		return err
	}
	re, err := api.Rerun(ctx, id, httpapi.RerunRequest{Mode: mode, DryRun: o.dryRun}, o.run.key)
	if err != nil {
		return err
	}
	if o.run.json {
		return writeJSON(stdout, re)
	}
	printRerun(stdout, re.RerunOf, re.Run, re.Reused, o.dryRun)
	if o.dryRun {
		return nil
	}
	if !o.wait {
		_, err := fmt.Fprintln(stdout, re.RunID)
		return err
	}
	old, err := api.Run(ctx, re.RerunOf)
	if err != nil {
		return err
	}
	return followOnServer(ctx, stdout, api, re.RunID, planOfRun(ctx, api, old), begin, o.run)
}

// printRerun says what a rerun runs and reuses.
func printRerun(w io.Writer, of string, run, reused []string, dry bool) {
	verb := "reruns"
	if dry {
		verb = "would rerun"
	}
	fmt.Fprintf(w, "%s run %s: %s", verb, of, strings.Join(run, ", "))
	if len(reused) > 0 {
		fmt.Fprintf(w, "; reuses %s", strings.Join(reused, ", "))
	}
	fmt.Fprintln(w)
}

// dryRunHere says what a rerun would do, from this folder's (or --db's) database.
func dryRunHere(ctx context.Context, stdout io.Writer, ref, mode string, o rerunOptions) error {
	st, err := openStoreForReading(ctx, o.run.db)
	if err != nil {
		return err
	}
	defer st.Close()
	re, _, err := prepareRerun(ctx, st, ref, mode, "cli", "")
	if err != nil {
		return err
	}
	re.DryRun = true
	if o.run.json {
		return writeJSON(stdout, re)
	}
	printRerun(stdout, re.RerunOf, re.Run, re.Reused, true)
	return nil
}

// prepareRerun reads a finished run, its tasks and its plan from st and returns what the rerun
// does and the submission that starts it.
func prepareRerun(ctx context.Context, st store.Store, ref, mode, by, key string) (httpapi.Rerun, *client.SubmitParams, error) {
	re := httpapi.Rerun{Mode: mode}
	id, err := resolveRunRef(ctx, st, ref)
	if err != nil {
		return re, nil, err
	}
	re.RerunOf = id
	run, err := st.RunGet(ctx, store.RunGetParams{ID: id})
	if err != nil {
		return re, nil, err
	}
	tasks, err := st.TaskList(ctx, store.TaskListParams{RunID: id})
	if err != nil {
		return re, nil, err
	}
	version, err := st.WorkflowVersionGet(ctx, store.WorkflowVersionGetParams{Hash: run.WorkflowHash})
	if err != nil {
		return re, nil, fmt.Errorf("the workflow version of run %s: %w", id, err)
	}
	plan := new(workflow.Plan)
	if err := json.Unmarshal(version.Plan, plan); err != nil {
		return re, nil, fmt.Errorf("the workflow version of run %s: %w", id, err)
	}
	sp, rp, err := client.PrepareRerun(client.RerunParams{Run: run, Tasks: tasks, Plan: plan, Mode: mode, TriggeredBy: by, IdempotencyKey: key})
	if errors.Is(err, client.ErrRunNotFinished) || errors.Is(err, client.ErrNothingToRerun) {
		return re, nil, &ExitError{Code: ExitCodeFailure, Err: err}
	}
	if err != nil {
		return re, nil, err
	}
	re.Run, re.Reused = rp.Run, []string{}
	for _, t := range plan.Tasks {
		if _, ok := rp.Reuse[t.Name]; ok {
			re.Reused = append(re.Reused, t.Name)
		}
	}
	return re, &sp, nil
}
