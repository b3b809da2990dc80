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

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/client"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/httpapi"
)

// controlTimeoutDefault bounds the wait for the scheduler's answer to a control request.
const controlTimeoutDefault = time.Minute

// controlSpec describes one control command.
type controlSpec struct {
	use, short, long, example string
	request                   string // the event type published, for messages
	// send is the client's step that publishes the request (client.Client.Cancel, Pause, Resume).
	send        func(*client.Client, context.Context, client.ControlParams) (event.Event, error)
	done        string // what the answer means, "cancelled"
	waitDefault bool
}

type controlOptions struct {
	api        apiFlags
	nats       natsFlags
	db         string // where a RUN_ID other than a whole id is looked up
	reason     string
	wait, json bool
	timeout    time.Duration
}

func newCancelCmd() *cobra.Command {
	return newControlCmd(controlSpec{
		use:   "cancel RUN_ID",
		short: "Cancel a run: kill its running tasks and end it as cancelled",
		long: `Cancel a run on a cluster. The scheduler cancels every task that has not ended (executors kill
the running ones' process groups) and ends the run with status cancelled. Results that arrive later
are ignored. A run that has already finished is left as it is.

By default the command waits until the run has ended; --wait=false only sends the request.`,
		example:     "  ork cancel 0193a4c2-7f1e-7c3a-9d2b-5e8f00c1a2b3 --nats nats://127.0.0.1:4222",
		request:     event.TypeRunCancelRequested,
		send:        (*client.Client).Cancel,
		done:        "cancelled",
		waitDefault: true,
	})
}

func newPauseCmd() *cobra.Command {
	return newControlCmd(controlSpec{
		use:   "pause RUN_ID",
		short: "Pause a run: start no new tasks until it is resumed",
		long: `Pause a run on a cluster. Tasks already running finish and their results are kept, but no task
starts until the run is resumed (ork resume). A paused run can still be cancelled.

With --wait the command waits for the scheduler's confirmation.`,
		example: "  ork pause 0193a4c2-7f1e-7c3a-9d2b-5e8f00c1a2b3 --nats nats://127.0.0.1:4222 --wait",
		request: event.TypeRunPauseRequested,
		send:    (*client.Client).Pause,
		done:    "paused",
	})
}

func newResumeCmd() *cobra.Command {
	return newControlCmd(controlSpec{
		use:   "resume RUN_ID",
		short: "Resume a paused run: start the tasks that became ready meanwhile",
		long: `Resume a paused run on a cluster. Every task that became ready while the run was paused starts.

With --wait the command waits for the scheduler's confirmation.`,
		example: "  ork resume 0193a4c2-7f1e-7c3a-9d2b-5e8f00c1a2b3 --nats nats://127.0.0.1:4222 --wait",
		request: event.TypeRunResumeRequested,
		send:    (*client.Client).Resume,
		done:    "resumed",
	})
}

func newControlCmd(spec controlSpec) *cobra.Command {
	o := controlOptions{wait: spec.waitDefault}
	cmd := &cobra.Command{
		Use:     spec.use,
		Short:   spec.short,
		Long:    spec.long,
		Example: spec.example,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runControl(cmd.Context(), cmd.OutOrStdout(), spec, args[0], o)
		},
	}
	cmd.Long += "\n\n" + runRefHelp + ` Anything but a whole id is looked up in the cluster's database,
so it needs --db (or ` + envDBURL + `).`
	addAPIFlags(cmd, &o.api)
	addNATSFlags(cmd, &o.nats, "NATS URL of the cluster running the run")
	cmd.Flags().StringVar(&o.db, "db", "", "the cluster's database, to look up a RUN_ID that is not a whole id (env "+envDBURL+")")
	cmd.Flags().BoolVar(&o.wait, "wait", spec.waitDefault, "wait for the scheduler's answer and print it")
	cmd.Flags().DurationVar(&o.timeout, "timeout", controlTimeoutDefault, "how long --wait waits for the answer")
	cmd.Flags().BoolVar(&o.json, "json", false, "print the answer event as JSON")
	if spec.request == event.TypeRunCancelRequested {
		cmd.Flags().StringVar(&o.reason, "reason", "", "why the run is cancelled, kept in the run's error")
	}
	return cmd
}

// runControl publishes one control request for the run ref names and, with --wait, follows the
// run until the answer.
func runControl(ctx context.Context, stdout io.Writer, spec controlSpec, ref string, o controlOptions) error {
	name, _, _ := strings.Cut(spec.use, " ")
	api, _, err := o.api.server(ctx)
	if err != nil {
		return err
	}
	if api != nil {
		return controlOnServer(ctx, stdout, api, spec, ref, o)
	}
	natsURL, err := o.nats.URL()
	if err != nil {
		return err
	}
	if natsURL == "" {
		return usageError(fmt.Errorf("ork %s acts on a run of a server or a cluster: pass --api URL or --nats URL (or set %s or %s), "+
			"or run it where ork serve runs; a run started by `ork run` without --nats lives only as long as that command", name, envAPIURL, envNATSURL))
	}
	if o.timeout <= 0 {
		return usageError(fmt.Errorf("--timeout must be positive, got %s", o.timeout))
	}
	runID, err := controlRunID(ctx, name, ref, o.db)
	if err != nil {
		return err
	}
	log := quietLogger(false)
	defer func() { _ = log.Sync() }()
	bcfg, err := o.nats.config(natsURL, "ork-cli")
	if err != nil {
		return err
	}
	b, err := bus.Connect(bcfg, log.Named("bus"))
	if err != nil {
		return err
	}
	defer b.Close()

	cl := client.New(b)
	req, err := spec.send(cl, ctx, client.ControlParams{RunID: runID, Reason: o.reason, TriggeredBy: "cli"})
	if errors.Is(err, client.ErrUnknownRun) {
		return fmt.Errorf("no run %s on the cluster at %s (its scheduler keeps runs for a week after their last change)", runID, natsURL)
	}
	if err != nil {
		return err
	}
	if !o.wait {
		if o.json {
			return printEventJSON(stdout, req)
		}
		_, err := fmt.Fprintf(stdout, "run %s: %s sent\n", runID, spec.request)
		return err
	}

	wctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	answer, err := cl.AwaitAnswer(wctx, req)
	switch {
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		return fmt.Errorf("no answer to %s within %s: is a scheduler running, and does run %s exist?", spec.request, o.timeout, runID)
	case err != nil:
		return err
	}
	if o.json {
		if err := printEventJSON(stdout, answer); err != nil {
			return err
		}
	}
	if answer.Type == event.TypeRunFinished && answer.Status != spec.done {
		return &ExitError{Code: ExitCodeFailure, Err: fmt.Errorf("run %s has already finished: %s", runID, answer.Status)}
	}
	if !o.json {
		_, err = fmt.Fprintf(stdout, "run %s %s\n", runID, spec.done)
	}
	return err
}

// controlRunID returns the run id a control command's RUN_ID names. A whole id is taken as it is:
// the scheduler knows a run before the recorder has stored it. Anything else is resolved in the
// database named by --db or the environment; a cluster has no default one.
func controlRunID(ctx context.Context, cmdName, ref, db string) (string, error) {
	if isFullRunID(ref) {
		return ref, nil
	}
	url := resolve(db, envDBURL, "")
	if url == "" {
		return "", usageError(fmt.Errorf("ork %s needs a whole run id when no database is given, and %q is not one: "+
			"pass the full id, or --db URL (or set %s) to look it up in the cluster's database", cmdName, ref, envDBURL))
	}
	st, err := openStoreForReading(ctx, url)
	if err != nil {
		return "", err
	}
	defer st.Close()
	return resolveRunRef(ctx, st, ref)
}

func printEventJSON(w io.Writer, e event.Event) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(e); err != nil {
		return fmt.Errorf("printing json: %w", err)
	}
	return nil
}

// controlOnServer sends a control request through a server's API; with --wait a cancel follows the
// run to its end (pause and resume are acknowledged by the server, acted on by the scheduler).
func controlOnServer(ctx context.Context, stdout io.Writer, api *httpapi.Client, spec controlSpec, ref string, o controlOptions) error {
	runID, err := resolveRunRefIn(ctx, apiRuns{api}, ref)
	if err != nil {
		return err
	}
	var acc httpapi.ControlAccepted
	switch spec.request {
	case event.TypeRunCancelRequested:
		acc, err = api.Cancel(ctx, runID, o.reason)
	case event.TypeRunPauseRequested:
		acc, err = api.Pause(ctx, runID)
	default:
		acc, err = api.Resume(ctx, runID)
	}
	if err != nil {
		return err
	}
	if o.json {
		return writeJSON(stdout, acc)
	}
	if !o.wait || spec.request != event.TypeRunCancelRequested {
		_, err := fmt.Fprintf(stdout, "run %s: %s sent\n", runID, spec.request)
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	var final event.Event
	if err := api.FollowRun(wctx, runID, 0, func(e event.Event) error {
		if e.Type == event.TypeRunFinished {
			final = e
		}
		return nil
	}); err != nil {
		return fmt.Errorf("waiting for run %s to end: %w", runID, err)
	}
	if final.Status != spec.done {
		return &ExitError{Code: ExitCodeFailure, Err: fmt.Errorf("run %s has already finished: %s", runID, final.Status)}
	}
	_, err = fmt.Fprintf(stdout, "run %s %s\n", runID, spec.done)
	return err
}
