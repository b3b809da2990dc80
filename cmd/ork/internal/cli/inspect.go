package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ork-go/ork/pkg/store"
)

func newStatusCmd() *cobra.Command {
	var (
		db       string
		asJSON   bool
		limit    int
		workflow string
	)
	cmd := &cobra.Command{
		Use:   "status [RUN_ID]",
		Short: "Show one run, or the most recent runs (newest first)",
		Args:  cobra.MaximumNArgs(1),
		RunE: withStore(&db, func(ctx context.Context, st store.Store, out io.Writer, args []string) error {
			if len(args) == 1 {
				run, err := st.RunGet(ctx, store.RunGetParams{ID: args[0]})
				if err != nil {
					return runNotFound(args[0], err)
				}
				if asJSON {
					return writeJSON(out, runJSON(run))
				}
				printRun(out, run)
				return nil
			}
			runs, err := st.RunList(ctx, store.RunListParams{Limit: limit, Workflow: workflow})
			if err != nil {
				return err
			}
			if asJSON {
				list := make([]map[string]any, 0, len(runs))
				for _, r := range runs {
					list = append(list, runJSON(r))
				}
				return writeJSON(out, list)
			}
			if len(runs) == 0 {
				fmt.Fprintln(out, "no runs yet")
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
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().IntVar(&limit, "limit", 20, "how many recent runs to list")
	cmd.Flags().StringVar(&workflow, "workflow", "", "only runs of this workflow")
	return cmd
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
	fmt.Fprintf(tw, "created\t%s\n", r.CreatedAt.Local().Format(time.DateTime))
	fmt.Fprintf(tw, "duration\t%s\n", runDuration(r))
	_ = tw.Flush()
}

func runJSON(r store.Run) map[string]any {
	m := map[string]any{
		"run_id": r.ID, "workflow": r.Workflow, "workflow_hash": r.WorkflowHash, "status": r.Status,
		"triggered_by": r.TriggeredBy, "tasks": r.TaskCount, "created_at": r.CreatedAt,
		"started_at": r.StartedAt, "finished_at": r.FinishedAt,
	}
	if r.Error != "" {
		m["error"] = r.Error
	}
	if r.IdempotencyKey != "" {
		m["idempotency_key"] = r.IdempotencyKey
	}
	return m
}

func runDuration(r store.Run) string {
	if r.StartedAt == nil {
		return "-"
	}
	end := time.Now()
	if r.FinishedAt != nil {
		end = *r.FinishedAt
	}
	return end.Sub(*r.StartedAt).Round(time.Millisecond).String()
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
	)
	cmd := &cobra.Command{
		Use:   "tasks RUN_ID",
		Short: "Show the tasks of a run with their status, attempts and errors",
		Args:  exactArgs(1),
		RunE: withStore(&db, func(ctx context.Context, st store.Store, out io.Writer, args []string) error {
			if _, err := st.RunGet(ctx, store.RunGetParams{ID: args[0]}); err != nil {
				return runNotFound(args[0], err)
			}
			tasks, err := st.TaskList(ctx, store.TaskListParams{RunID: args[0]})
			if err != nil {
				return err
			}
			if asJSON {
				list := make([]map[string]any, 0, len(tasks))
				for _, t := range tasks {
					list = append(list, map[string]any{
						"name": t.Name, "executor": t.Executor, "status": t.Status, "attempts": t.Attempt,
						"depends_on": t.DependsOn, "output": t.Output, "error": t.Error, "reason": t.Reason,
						"started_at": t.StartedAt, "finished_at": t.FinishedAt,
					})
				}
				return writeJSON(out, list)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TASK\tEXECUTOR\tSTATUS\tATTEMPTS\tDURATION\tOUTPUT / ERROR")
			for _, t := range tasks {
				dur := "-"
				if t.StartedAt != nil && t.FinishedAt != nil {
					dur = t.FinishedAt.Sub(*t.StartedAt).Round(time.Millisecond).String()
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
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newLogsCmd() *cobra.Command {
	var (
		db      string
		attempt int
	)
	cmd := &cobra.Command{
		Use:   "logs RUN_ID [TASK]",
		Short: "Print the stdout and stderr lines of a run's tasks",
		Args:  cobra.RangeArgs(1, 2),
		RunE: withStore(&db, func(ctx context.Context, st store.Store, out io.Writer, args []string) error {
			p := store.LogListParams{RunID: args[0]}
			if len(args) == 2 {
				p.Task = args[1]
			}
			lines, err := st.LogList(ctx, p)
			if err != nil {
				return err
			}
			for _, l := range lines {
				if attempt > 0 && l.Attempt != attempt {
					continue
				}
				prefix := l.Task
				if l.Attempt > 1 {
					prefix = fmt.Sprintf("%s#%d", l.Task, l.Attempt)
				}
				if l.Stream == "stderr" {
					prefix += "!"
				}
				fmt.Fprintf(out, "%s | %s\n", prefix, l.Line)
			}
			return nil
		}),
	}
	addDBFlag(cmd, &db)
	cmd.Flags().IntVar(&attempt, "attempt", 0, "only this attempt (default: all)")
	return cmd
}

func newWorkflowsCmd() *cobra.Command {
	var (
		db     string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "workflows",
		Short: "List the workflows that have been run",
		Args:  cobra.NoArgs,
		RunE: withStore(&db, func(ctx context.Context, st store.Store, out io.Writer, _ []string) error {
			wfs, err := st.WorkflowList(ctx, store.WorkflowListParams{})
			if err != nil {
				return err
			}
			if asJSON {
				list := make([]map[string]any, 0, len(wfs))
				for _, w := range wfs {
					list = append(list, map[string]any{"name": w.Name, "description": w.Description, "version": w.CurrentHash, "schedule": w.Schedule, "runs": w.RunCount, "updated_at": w.UpdatedAt})
				}
				return writeJSON(out, list)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "WORKFLOW\tVERSION\tRUNS\tSCHEDULE\tDESCRIPTION")
			for _, w := range wfs {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", w.Name, shortHash(w.CurrentHash), w.RunCount, w.Schedule, firstLine(w.Description))
			}
			return tw.Flush()
		}),
	}
	addDBFlag(cmd, &db)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
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
		st, err := openStoreForReading(cmd.Context(), *db)
		if err != nil {
			return err
		}
		defer st.Close()
		return body(cmd.Context(), st, cmd.OutOrStdout(), args)
	}
}
