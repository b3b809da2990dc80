package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/httpapi"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/view"
)

func newStatusCmd() *cobra.Command {
	var (
		db       string
		asJSON   bool
		limit    int
		workflow string
		status   string
		apiF     apiFlags
	)
	cmd := &cobra.Command{
		Use:   "status [RUN_ID]",
		Short: "Show one run, or the most recent runs (newest first)",
		Long: `Show one run, or list the most recent runs, newest first. With --json, one run is printed as the
JSON object of docs/run.schema.json (its tasks included), a list as an array of them.

` + runRefHelp,
		Example: `  ork status                      list the recent runs
  ork status --status failed      list the recent failed runs
  ork status latest               show the newest run
  ork status 0193a4c2             show the run whose id starts with 0193a4c2`,
		Args: rangeArgs(0, 1),
		PreRunE: func(*cobra.Command, []string) error {
			return checkRunStatus(status)
		},
		RunE: withStore(&db, func(ctx context.Context, st store.Store, out io.Writer, args []string) error {
			if len(args) == 1 {
				runID, err := resolveRunRef(ctx, st, args[0])
				if err != nil {
					return err
				}
				if asJSON {
					v, err := readRun(ctx, st, runID)
					if err != nil {
						return err
					}
					return writeJSON(out, v)
				}
				run, err := st.RunGet(ctx, store.RunGetParams{ID: runID})
				if err != nil {
					return runNotFound(runID, err)
				}
				printRun(out, run)
				return nil
			}
			runs, err := st.RunList(ctx, store.RunListParams{Limit: limit, Workflow: workflow, Status: status})
			if err != nil {
				return err
			}
			if asJSON {
				list := make([]*view.Run, 0, len(runs))
				for _, r := range runs {
					tasks, err := st.TaskList(ctx, store.TaskListParams{RunID: r.ID})
					if err != nil {
						return fmt.Errorf("reading the tasks of run %s: %w", r.ID, err)
					}
					list = append(list, view.FromStore(r, tasks))
				}
				return writeJSON(out, list)
			}
			if len(runs) == 0 {
				if workflow != "" || status != "" {
					fmt.Fprintln(out, "no matching runs")
				} else {
					fmt.Fprintln(out, "no runs yet")
				}
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "RUN\tWORKFLOW\tSTATUS\tTASKS\tCREATED\tDURATION")
			for _, r := range runs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", r.ID, r.Workflow, r.Status, r.TaskCount, r.CreatedAt.Local().Format(time.DateTime), runDuration(r))
			}
			return tw.Flush()
		}),
	}
	addDBFlag(cmd, &db)
	addAPIFlags(cmd, &apiF)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().IntVar(&limit, "limit", 20, "how many recent runs to list")
	cmd.Flags().StringVar(&workflow, "workflow", "", "only runs of this workflow")
	cmd.Flags().StringVar(&status, "status", "", "only runs in this status: "+strings.Join(runStatuses, ", "))
	return cmd
}

// runRefHelp tells, in a command's long help, how RUN_ID names a run.
const runRefHelp = `RUN_ID is a run id, a prefix of one that no other run's id starts with (at least 4 characters),
or latest for the newest run.`

// runStatuses are the statuses a run can be in, in the order a run moves through them.
var runStatuses = []string{event.RunPending, event.RunRunning, event.RunPaused, event.RunSuccess, event.RunFailed, event.RunCancelled}

// checkRunStatus rejects a --status that no run can have; "" means any.
func checkRunStatus(s string) error {
	if s == "" || slices.Contains(runStatuses, s) {
		return nil
	}
	return usageError(fmt.Errorf("unknown run status %q for --status: want one of %s", s, strings.Join(runStatuses, ", ")))
}

// readRun reads one run and its tasks from the database as the JSON view.
func readRun(ctx context.Context, st store.Store, runID string) (*view.Run, error) {
	v, err := view.Read(ctx, st, runID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, runNotFound(runID, err)
	}
	if err != nil {
		return nil, err
	}
	return v, nil
}

// runNotFound words a failed run lookup for a person.
func runNotFound(id string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no run %s in this database (ork status lists the recent runs)", id)
	}
	return fmt.Errorf("reading run %s: %w", id, err)
}

func printRun(w io.Writer, r store.Run) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "run\t%s\n", r.ID)
	fmt.Fprintf(tw, "workflow\t%s (%s)\n", r.Workflow, shortHash(r.WorkflowHash))
	fmt.Fprintf(tw, "status\t%s\n", r.Status)
	if r.Error != "" {
		fmt.Fprintf(tw, "error\t%s\n", r.Error)
	}
	fmt.Fprintf(tw, "tasks\t%d\n", r.TaskCount)
	fmt.Fprintf(tw, "triggered by\t%s\n", r.TriggeredBy)
	if r.ScheduledFor != nil {
		fmt.Fprintf(tw, "scheduled for\t%s\n", r.ScheduledFor.Local().Format(time.DateTime))
	}
	if len(r.Params) > 0 {
		fmt.Fprintf(tw, "params\t%s\n", compactJSON(r.Params))
	}
	fmt.Fprintf(tw, "created\t%s\n", r.CreatedAt.Local().Format(time.DateTime))
	fmt.Fprintf(tw, "duration\t%s\n", runDuration(r))
	_ = tw.Flush()
}

func runDuration(r store.Run) string {
	if r.StartedAt == nil {
		return "-"
	}
	end := time.Now()
	if r.FinishedAt != nil {
		end = *r.FinishedAt
	}
	return formatDuration(end.Sub(*r.StartedAt))
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func newTasksCmd() *cobra.Command {
	var (
		db     string
		asJSON bool
		apiF   apiFlags
	)
	cmd := &cobra.Command{
		Use:   "tasks RUN_ID",
		Short: "Show the tasks of a run with their status, attempts and errors",
		Long: `Show the tasks of a run with their status, attempts, duration and output or error. With --json, the
run is printed as the JSON object of docs/run.schema.json, its tasks keyed by name.

` + runRefHelp,
		Args: exactArgs(1),
		RunE: withStore(&db, func(ctx context.Context, st store.Store, out io.Writer, args []string) error {
			runID, err := resolveRunRef(ctx, st, args[0])
			if err != nil {
				return err
			}
			if asJSON {
				v, err := readRun(ctx, st, runID)
				if err != nil {
					return err
				}
				return writeJSON(out, v)
			}
			tasks, err := st.TaskList(ctx, store.TaskListParams{RunID: runID})
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TASK\tEXECUTOR\tSTATUS\tATTEMPTS\tDURATION\tOUTPUT / ERROR")
			for _, t := range tasks {
				dur := "-"
				if t.StartedAt != nil && t.FinishedAt != nil {
					dur = formatDuration(t.FinishedAt.Sub(*t.StartedAt))
				}
				detail := string(t.Output)
				if t.Error != "" {
					detail = t.Error
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", t.Name, t.Executor, t.Status, t.Attempt, dur, firstLine(detail))
			}
			return tw.Flush()
		}),
	}
	addDBFlag(cmd, &db)
	addAPIFlags(cmd, &apiF)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newLogsCmd() *cobra.Command {
	var (
		db      string
		attempt int
		asJSON  bool
		follow  bool
		api     apiFlags
		nats    natsFlags
	)
	cmd := &cobra.Command{
		Use:   "logs RUN_ID [TASK]",
		Short: "Print the stdout and stderr lines of a run's tasks",
		Long: `Print the stdout and stderr lines of a run's tasks, in order: "task | line", "task#2 | line" for
attempt 2, "task! | line" for stderr. With --json, one JSON object per line:
{"run_id", "task", "attempt", "seq", "stream", "line", "time"}.

` + runRefHelp,
		Args: rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if follow {
				task := ""
				if len(args) == 2 {
					task = args[1]
				}
				return followLogs(cmd.Context(), cmd.OutOrStdout(), args[0], task, logsFollow{api: &api, nats: &nats, attempt: attempt, json: asJSON})
			}
			return withStore(&db, printStoredLogs(&attempt, &asJSON))(cmd, args)
		},
	}
	addDBFlag(cmd, &db)
	addAPIFlags(cmd, &api)
	addNATSFlags(cmd, &nats, "with -f, the cluster's NATS URL")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "follow the run live until it ends (on a server, or a cluster with --nats): the lines so far, then each as it is printed")
	cmd.Flags().IntVar(&attempt, "attempt", 0, "only this attempt (default: all)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per line")
	return cmd
}

// printStoredLogs prints the lines the database holds.
func printStoredLogs(attemptFlag *int, asJSONFlag *bool) func(ctx context.Context, st store.Store, out io.Writer, args []string) error {
	return func(ctx context.Context, st store.Store, out io.Writer, args []string) error {
		attempt, asJSON := *attemptFlag, *asJSONFlag
		runID, err := resolveRunRef(ctx, st, args[0])
		if err != nil {
			return err
		}
		p := store.LogListParams{RunID: runID}
		if len(args) == 2 {
			p.Task = args[1]
			tasks, err := st.TaskList(ctx, store.TaskListParams{RunID: runID})
			if err != nil {
				return err
			}
			if !slices.ContainsFunc(tasks, func(t store.Task) bool { return t.Name == p.Task }) {
				return fmt.Errorf("run %s has no task %s (ork tasks %s lists them)", runID, p.Task, runID)
			}
		}
		lines, err := st.LogList(ctx, p)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(out)
		for _, l := range lines {
			if attempt > 0 && l.Attempt != attempt {
				continue
			}
			if err := printLogLine(out, enc, asJSON, logJSON{RunID: l.RunID, Task: l.Task, Attempt: l.Attempt, Seq: l.Seq, Stream: l.Stream, Line: l.Line, Time: l.Time.UTC()}); err != nil {
				return err
			}
		}
		return nil
	}
}

// printLogLine prints one line as `ork logs` does: "task | line", "task#2 | line" for attempt 2,
// "task! | line" for stderr, or one JSON object.
func printLogLine(out io.Writer, enc *json.Encoder, asJSON bool, l logJSON) error {
	if asJSON {
		return enc.Encode(l)
	}
	prefix := l.Task
	if l.Attempt > 1 {
		prefix = fmt.Sprintf("%s#%d", l.Task, l.Attempt)
	}
	if l.Stream == "stderr" {
		prefix += "!"
	}
	_, err := fmt.Fprintf(out, "%s | %s\n", prefix, l.Line)
	return err
}

// logJSON is one line of `ork logs --json`.
type logJSON struct {
	RunID   string    `json:"run_id"`
	Task    string    `json:"task"`
	Attempt int       `json:"attempt"`
	Seq     int64     `json:"seq"`
	Stream  string    `json:"stream"`
	Line    string    `json:"line"`
	Time    time.Time `json:"time"`
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// withStore makes the RunE of a read command: it opens the database named by --db (or the
// environment, or the default), runs body and closes the database.
func withStore(db *string, body func(ctx context.Context, st store.Store, out io.Writer, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		// --api (or ORK_API_URL): read through the server's API instead of a database.
		if f := cmd.Flags().Lookup("api"); f != nil {
			tok := ""
			if t := cmd.Flags().Lookup("token"); t != nil {
				tok = t.Value.String()
			}
			if u := resolve(f.Value.String(), envAPIURL, ""); u != "" {
				return body(cmd.Context(), apiStore{api: httpapi.NewClient(u, resolve(tok, envAPIToken, ""))}, cmd.OutOrStdout(), args)
			}
		}
		st, err := openStoreForReading(cmd.Context(), *db)
		if err != nil {
			return err
		}
		defer st.Close()
		return body(cmd.Context(), st, cmd.OutOrStdout(), args)
	}
}
