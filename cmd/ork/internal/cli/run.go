package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/ork-go/ork/cmd/ork/internal/embedded"
	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/client"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/store/storeopen"
	"github.com/ork-go/ork/pkg/workflow"
)

type runOptions struct {
	db, key, triggeredBy string
	nats                 natsFlags
	python               string
	pythonCold           bool
	params               []string // NAME=VALUE
	json, verbose, all   bool
	detach               bool
	bundle               bundleFlag
	concurrency          int
}

func newRunCmd() *cobra.Command {
	var o runOptions
	cmd := &cobra.Command{
		Use:   "run FILE",
		Short: "Run a workflow to completion and show its progress",
		Long: `Run a workflow to completion.

By default everything runs in this process: an embedded NATS server (store under ./.ork/nats), the
scheduler, the executors and the recorder, writing to SQLite at ./.ork/ork.db. Nothing else needs to be
running. With --nats, the run is submitted to a running cluster instead and followed until it ends;
with --db as well, the result is read back from that database once the cluster's recorder has
written it.

The result is a table of the tasks (for more than 50 tasks a summary: counts by status, the failed
tasks, the slowest; --all lists every task) or, with --json, one JSON object (docs/run.schema.json).

Exit status: 0 when the run succeeded, 1 when it failed or was cancelled or the workflow is invalid
(then nothing is stored), 2 for usage errors, 130 when interrupted (Ctrl-C cancels an in-process run).`,
		Example: `  ork run examples/hello.yaml
  ork run examples/typed_chain.yaml --param city=Paris --param day=2024-08-01
  ork run flow.yaml --db postgres://localhost/ork
  ork run flow.yaml --nats nats://127.0.0.1:4222 --json`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runWorkflow(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), args[0], o)
		},
	}
	addDBFlag(cmd, &o.db)
	addNATSFlags(cmd, &o.nats, "submit to a running cluster at this NATS URL instead of running in-process")
	cmd.Flags().BoolVar(&o.json, "json", false, "print one JSON object with the result instead of the table (docs/run.schema.json)")
	cmd.Flags().BoolVar(&o.all, "all", false, "list every task in the final table, however many")
	addParamFlag(cmd, &o.params)
	cmd.Flags().StringVar(&o.key, "idempotency-key", "", "submitting twice with one key starts one run")
	cmd.Flags().StringVar(&o.triggeredBy, "triggered-by", "cli", "who started the run, stored with it")
	cmd.Flags().IntVar(&o.concurrency, "concurrency", embedded.ConcurrencyDefault, "tasks in flight at once (in-process mode)")
	cmd.Flags().StringVar(&o.python, "python", "", "interpreter of python tasks in-process (env "+embedded.PythonEnv+", default "+embedded.PythonDefault+")")
	cmd.Flags().BoolVar(&o.pythonCold, "python-cold", false, "start one interpreter per python task instead of forking each from a warm one")
	cmd.Flags().BoolVarP(&o.verbose, "verbose", "v", false, "show the services' debug logs")
	addBundleFlag(cmd, &o.bundle)
	cmd.Flags().BoolVar(&o.detach, "detach", false, "with --nats: print the run id once it is submitted and return, leaving the run to the cluster")
	return cmd
}

func runWorkflow(ctx context.Context, stdout, stderr io.Writer, file string, o runOptions) error {
	begin := time.Now()
	plan, err := workflow.Load(file)
	if err != nil {
		return err
	}
	return executePlan(ctx, stdout, stderr, planSource{plan: plan}, o, begin)
}

// planSource is what a run runs: a loaded plan, or the registered workflow of that name (read
// from the registry of the stack the run goes to).
type planSource struct {
	plan       *workflow.Plan
	registered string
	// rerun, when set, reruns a finished run of the database (mode client.RerunAll or RerunFailed).
	rerun     string
	rerunMode string
}

// executePlan runs a plan in-process, or submits it to a cluster, and follows it to its end.
func executePlan(ctx context.Context, stdout, stderr io.Writer, src planSource, o runOptions, begin time.Time) error {
	var err error
	dbURL := resolve(o.db, envDBURL, "")
	if dbURL != "" {
		if _, err := storeopen.ParseURL(dbURL); err != nil {
			return usageError(err)
		}
	}
	natsURL, err := o.nats.URL()
	if err != nil {
		return err
	}
	var bcfg bus.Config
	if natsURL != "" {
		if bcfg, err = o.nats.config(natsURL, "ork-cli"); err != nil {
			return err
		}
	} else if o.detach {
		return usageError(fmt.Errorf("--detach needs a cluster (--nats URL) or a server (ork trigger --api URL): in-process, the run would end with this command"))
	}
	plan := src.plan
	var values map[string]json.RawMessage
	if plan != nil {
		if values, err = bindParamArgs(plan, o.params); err != nil {
			return err
		}
	}
	log := quietLogger(o.verbose)
	defer func() { _ = log.Sync() }()

	var (
		b  *bus.Bus
		st store.Store
	)
	if natsURL == "" {
		stk, err := embedded.Start(ctx, embedded.Config{DBURL: dbURL, Concurrency: o.concurrency,
			Python: o.python, PythonCold: o.pythonCold}, log)
		if err != nil {
			return err
		}
		defer func() { _ = stk.Stop() }()
		b, st = stk.Bus, stk.Store
	} else {
		if dbURL != "" {
			// The cluster's database, to read the result back from: opened first, so that a wrong
			// --db is said before anything is submitted.
			if st, err = openStoreForReading(ctx, dbURL); err != nil {
				return err
			}
			defer st.Close()
		}
		b, err = bus.Connect(bcfg, log.Named("bus"))
		if err != nil {
			return err
		}
		defer b.Close()
		// Create what is missing, change nothing the services provisioned.
		if err := b.Ensure(ctx); err != nil {
			return err
		}
	}
	var rerunSubmit *client.SubmitParams
	if src.rerun != "" {
		if st == nil {
			return usageError(fmt.Errorf("ork rerun --nats needs the cluster's database as well (--db URL): the run and its outputs are read from it"))
		}
		re, sp, err := prepareRerun(ctx, st, src.rerun, src.rerunMode, o.triggeredBy, o.key)
		if err != nil {
			return err
		}
		if !o.json {
			printRerun(stdout, re.RerunOf, re.Run, re.Reused, false)
		}
		rerunSubmit, plan = sp, sp.Plan
	} else if plan == nil {
		reg, err := client.New(b).Workflow(ctx, src.registered)
		if errors.Is(err, client.ErrNotRegistered) {
			return fmt.Errorf("%w (ork workflows apply FILE registers it; ork workflows list shows what is registered)", err)
		}
		if err != nil {
			return err
		}
		plan = reg.Plan
		if values, err = bindParamArgs(plan, o.params); err != nil {
			return err
		}
	}
	if src.plan != nil && natsURL != "" && o.bundle.want(true) {
		// The cluster's executors may not share this disk: the workflow's folder goes along.
		if plan, err = client.New(b).Bundled(ctx, plan); err != nil {
			return err
		}
	}
	key := o.key
	if src.registered != "" {
		key = client.TriggerKey(plan.Name, key)
	}
	params := client.SubmitParams{Plan: plan, IdempotencyKey: key, TriggeredBy: o.triggeredBy, Params: values}
	if rerunSubmit != nil {
		params = *rerunSubmit
	}
	// With a key the run id derives from it, so submitting again follows the run it started.
	runID := client.SubmitRunID(params)
	params.RunID = runID
	if o.detach {
		if _, err := client.New(b).Submit(ctx, params); err != nil {
			return err
		}
		if o.json {
			return writeJSON(stdout, map[string]string{"run_id": runID, "workflow": plan.Name})
		}
		_, err := fmt.Fprintln(stdout, runID)
		return err
	}
	if !o.json {
		fmt.Fprintf(stdout, "run %s of workflow %q (%s)\n", runID, plan.Name, plural(len(plan.Tasks), "task"))
	}

	progress := newProgress(stdout, plan, !o.json && isTerminal(stdout), begin)
	res, err := client.New(b).Run(ctx, client.RunParams{
		Submit: params,
		Store:  st,
		OnEvent: func(e event.Event) {
			if !o.json {
				progress.event(e)
			}
		},
		// In-process, the run would die with this command: cancel it so the database says so.
		CancelOnInterrupt: natsURL == "",
		OnInterrupt:       func() { fmt.Fprintf(stderr, "\ninterrupted: cancelling run %s\n", runID) },
	})
	if res.Interrupted && natsURL != "" {
		return &ExitError{Code: ExitCodeInterrupted, Err: fmt.Errorf("interrupted; run %s goes on in the cluster (ork cancel %s --nats %s stops it)", runID, runID, natsURL)}
	}
	if err != nil {
		return err
	}
	progress.done()
	final, interrupted := res.Final, res.Interrupted

	if o.json {
		if err := writeJSON(stdout, res.Run); err != nil {
			return err
		}
	} else {
		printResult(stdout, plan, res.Run, o.all)
	}
	if final.Status != event.RunSuccess {
		code := ExitCodeFailure
		if interrupted {
			code = ExitCodeInterrupted
		}
		return &ExitError{Code: code, Err: errRunNotSuccessful{status: final.Status, msg: final.Error}}
	}
	return nil
}

type errRunNotSuccessful struct{ status, msg string }

func (e errRunNotSuccessful) Error() string {
	if strings.HasPrefix(e.msg, "run "+e.status) {
		return e.msg
	}
	if e.msg != "" {
		return "run " + e.status + ": " + e.msg
	}
	return "run " + e.status
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
