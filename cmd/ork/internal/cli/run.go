package cli

import (
	"context"
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
	"github.com/ork-go/ork/pkg/store/schema"
	"github.com/ork-go/ork/pkg/view"
	"github.com/ork-go/ork/pkg/workflow"
)

// recordedWaitDefault bounds how long `ork run --nats` waits for the cluster's recorder to commit a
// finished run before saying so and returning.
const recordedWaitDefault = 60 * time.Second

type runOptions struct {
	db, nats, key, triggeredBy string
	python                     string
	json, verbose, all         bool
	concurrency                int
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
  ork run flow.yaml --db postgres://localhost/ork
  ork run flow.yaml --nats nats://127.0.0.1:4222 --json`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runWorkflow(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), args[0], o)
		},
	}
	addDBFlag(cmd, &o.db)
	addNATSFlag(cmd, &o.nats, "submit to a running cluster at this NATS URL instead of running in-process")
	cmd.Flags().BoolVar(&o.json, "json", false, "print one JSON object with the result instead of the table (docs/run.schema.json)")
	cmd.Flags().BoolVar(&o.all, "all", false, "list every task in the final table, however many")
	cmd.Flags().StringVar(&o.key, "idempotency-key", "", "submitting twice with one key starts one run")
	cmd.Flags().StringVar(&o.triggeredBy, "triggered-by", "cli", "who started the run, stored with it")
	cmd.Flags().IntVar(&o.concurrency, "concurrency", embedded.ConcurrencyDefault, "tasks in flight at once (in-process mode)")
	cmd.Flags().StringVar(&o.python, "python", "", "interpreter of python tasks in-process (env "+embedded.PythonEnv+", default "+embedded.PythonDefault+")")
	cmd.Flags().BoolVarP(&o.verbose, "verbose", "v", false, "show the services' debug logs")
	return cmd
}

func runWorkflow(ctx context.Context, stdout, stderr io.Writer, file string, o runOptions) error {
	begin := time.Now()
	plan, err := workflow.Load(file)
	if err != nil {
		return err
	}
	dbURL := resolve(o.db, envDBURL, "")
	if dbURL != "" {
		if _, err := schema.ParseURL(dbURL); err != nil {
			return usageError(err)
		}
	}
	natsURL := resolve(o.nats, envNATSURL, "")
	if natsURL != "" {
		if err := checkNATSURL(natsURL); err != nil {
			return usageError(err)
		}
	}
	params := client.SubmitParams{Plan: plan, IdempotencyKey: o.key, TriggeredBy: o.triggeredBy}
	// With a key the run id derives from it, so submitting again follows the run it started.
	runID := client.SubmitRunID(params)
	params.RunID = runID
	if !o.json {
		fmt.Fprintf(stdout, "run %s of workflow %q (%s)\n", runID, plan.Name, plural(len(plan.Tasks), "task"))
	}
	log := quietLogger(o.verbose)
	defer func() { _ = log.Sync() }()

	var (
		b  *bus.Bus
		st store.Store
	)
	if natsURL == "" {
		stk, err := embedded.Start(ctx, embedded.Config{DBURL: dbURL, Concurrency: o.concurrency,
			Python: o.python}, log)
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
		b, err = bus.Connect(bus.Config{URL: natsURL, Name: "ork-cli"}, log.Named("bus"))
		if err != nil {
			return err
		}
		defer b.Close()
		// Create what is missing, change nothing the services provisioned.
		if err := b.Ensure(ctx); err != nil {
			return err
		}
	}

	cl := client.New(b)
	recorded, err := cl.WatchRecorded(runID)
	if err != nil {
		return err
	}
	defer func() { _ = recorded.Close() }()

	progress := newProgress(stdout, plan, !o.json && isTerminal(stdout), begin)
	follower := view.NewFollower(plan, runID, time.Now())
	if _, err := cl.Submit(ctx, params); err != nil {
		return err
	}
	onEvent := func(e event.Event) {
		follower.Event(&e)
		if !o.json {
			progress.event(e)
		}
	}
	final, err := cl.Wait(ctx, runID, onEvent)
	interrupted := err != nil && ctx.Err() != nil
	if interrupted {
		if natsURL != "" {
			return &ExitError{Code: ExitCodeInterrupted, Err: fmt.Errorf("interrupted; run %s goes on in the cluster (ork cancel %s --nats %s stops it)", runID, runID, natsURL)}
		}
		// In-process, the run would die with this command: cancel it so the database says so.
		fmt.Fprintf(stderr, "\ninterrupted: cancelling run %s\n", runID)
		final, err = cancelRun(cl, runID, onEvent)
		ctx = context.Background()
	}
	if err != nil {
		return err
	}
	progress.done()

	res := follower.Run()
	if st != nil {
		if !alreadyRecorded(ctx, st, runID) {
			waitCtx, cancel := context.WithTimeout(ctx, recordedWaitDefault)
			defer cancel()
			if _, err := recorded.Wait(waitCtx); err != nil {
				return fmt.Errorf("run %s finished %s, but no recorder wrote it to the database within %s: %w",
					runID, final.Status, recordedWaitDefault, err)
			}
		}
		if res, err = readRun(ctx, st, runID); err != nil {
			return err
		}
	}
	if o.json {
		if err := writeJSON(stdout, res); err != nil {
			return err
		}
	} else {
		printResult(stdout, plan, res, o.all)
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

// readRun reads one run and its tasks from the database as the JSON view.
func readRun(ctx context.Context, st store.Store, runID string) (*view.Run, error) {
	run, err := st.RunGet(ctx, store.RunGetParams{ID: runID})
	if err != nil {
		return nil, runNotFound(runID, err)
	}
	tasks, err := st.TaskList(ctx, store.TaskListParams{RunID: runID})
	if err != nil {
		return nil, fmt.Errorf("reading the tasks of run %s: %w", runID, err)
	}
	return view.FromStore(run, tasks), nil
}

// interruptGraceDefault bounds how long an interrupted in-process run may take to cancel.
const interruptGraceDefault = 15 * time.Second

// cancelRun asks the scheduler to cancel a run and waits until it has finished.
func cancelRun(cl *client.Client, runID string, onEvent func(event.Event)) (event.Event, error) {
	ctx, cancel := context.WithTimeout(context.Background(), interruptGraceDefault)
	defer cancel()
	if _, err := cl.Cancel(ctx, client.ControlParams{RunID: runID, Reason: "interrupted", TriggeredBy: "cli", KnownWithin: interruptGraceDefault / 3}); err != nil {
		return event.Event{}, fmt.Errorf("cancelling run %s: %w", runID, err)
	}
	final, err := cl.Wait(ctx, runID, onEvent)
	if err != nil {
		return event.Event{}, fmt.Errorf("cancelling run %s: %w", runID, err)
	}
	return final, nil
}

// alreadyRecorded reports whether the database already holds the run as finished: a submission
// repeated with the same idempotency key follows the earlier run, whose notice went out long ago.
func alreadyRecorded(ctx context.Context, st store.Store, runID string) bool {
	if st == nil {
		return false
	}
	run, err := st.RunGet(ctx, store.RunGetParams{ID: runID})
	return err == nil && event.IsTerminalRun(run.Status)
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
