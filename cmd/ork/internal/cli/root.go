// Package cli is the ork command line: the root command, its subcommands (one constructor each,
// registered in newRootCmd), and the mapping of errors to "error: <sentence>" and exit statuses.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/ork-go/ork/pkg/workflow"
)

// Execute runs the ork command line with the process arguments and returns the exit status.
func Execute(ctx context.Context) int {
	return Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
}

// Run runs the ork command line with args (without the program name), writing to stdout and stderr,
// and returns the exit status. Errors are printed as "error: <sentence>" on stderr.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err != nil {
		printError(stderr, err)
	}
	return exitCode(err, ctx.Err() != nil)
}

// newRootCmd builds the ork command and its subcommands.
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "ork",
		Short: "Ork runs workflows of tasks in dependency order",
		Long: `Ork is a workflow orchestrator. A workflow is a YAML file naming tasks (Python functions or any
program), their dependencies, typed inputs and outputs passed between them, retries, timeouts and an
optional schedule (which ` + "`ork serve`" + ` fires; ork schedules steers it). Ork runs the tasks in
dependency order, in parallel where it can, and keeps every run, task, attempt and log line.

On a laptop everything runs in one process with SQLite under ./.ork; on a cluster the same roles run
as separate services over NATS JetStream and PostgreSQL.

The workflow language is described in docs/workflow-language.md; examples/ holds workflows to start
from.`,
		Example: `  ork validate flow.yaml          check a workflow and report every error
  ork run flow.yaml               run it to completion here and show its progress
  ork serve                       run a server with the HTTP API on 127.0.0.1:4000
  ork workflows apply examples/   register workflows by name (on the server of this folder)
  ork trigger NAME -p k=v         start a run of a registered workflow
  ork schedules                   list the schedules: next fire, last fire and its run
  ork status                      list recent runs
  ork tasks RUN_ID                show the tasks of a run
  ork logs RUN_ID [TASK]          show the log lines of a run`,
		Args:          rootArgs,
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageError(fmt.Errorf("%w (see %s --help)", err, cmd.CommandPath()))
	})
	root.CompletionOptions.HiddenDefaultCmd = true
	root.SuggestionsMinimumDistance = 2

	root.AddCommand(newValidateCmd())
	root.AddCommand(newRunCmd())
	root.AddCommand(newServeCmd())
	root.AddCommand(newTriggerCmd())
	root.AddCommand(newRerunCmd())
	root.AddCommand(newTokenCmd())
	root.AddCommand(newStatusCmd())
	root.AddCommand(newTasksCmd())
	root.AddCommand(newLogsCmd())
	root.AddCommand(newWorkflowsCmd())
	root.AddCommand(newSchedulesCmd())
	root.AddCommand(newInitCmd())
	root.AddCommand(newMigrateCmd())
	root.AddCommand(newVersionCmd())
	root.AddCommand(newBenchCmd())
	root.AddCommand(newCancelCmd())
	root.AddCommand(newPauseCmd())
	root.AddCommand(newResumeCmd())
	root.AddCommand(newNATSCmd())
	return root
}

// rootArgs rejects unknown subcommands with the usage exit status and a suggestion.
func rootArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %q?", s[0])
	}
	return usageError(fmt.Errorf("%s (see %s --help)", msg, cmd.CommandPath()))
}

// printError prints err for a user. A workflow's errors are printed one per line as
// FILE:LINE:COL: message, the way compilers do, followed by a one-line summary.
func printError(w io.Writer, err error) {
	var ee *ExitError
	if errors.As(err, &ee) && ee.Err == nil {
		return
	}
	var list workflow.ErrorList
	if errors.As(err, &list) {
		for _, e := range list {
			fmt.Fprintln(w, e.Error())
		}
		fmt.Fprintf(w, "error: the workflow is invalid (%s)\n", plural(len(list), "error"))
		return
	}
	fmt.Fprintf(w, "error: %v\n", err)
}

// plural renders "1 error", "3 errors".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
