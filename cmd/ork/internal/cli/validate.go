package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/ork-go/ork/pkg/workflow"
)

func newValidateCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "validate FILE...",
		Aliases: []string{"validate-workflow"},
		Short:   "Check workflow files and report every error",
		Long: `Check workflow files without running anything: structure, names, executors, dependencies and
cycles, types, const and ref bindings, task files and size limits. Every error is reported, each as
FILE:LINE:COL: message.

Exit status: 0 when every file is valid, 1 when any is not, 2 for usage errors.`,
		Example: `  ork validate flow.yaml
  ork validate examples/*.yaml
  ork validate --json flow.yaml | jq '.errors[].message'`,
		Args: minimumArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return validateFiles(cmd.OutOrStdout(), cmd.ErrOrStderr(), args, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object with the files and their errors on stdout")
	return cmd
}

// validateResult is the --json output.
type validateResult struct {
	Valid     bool                `json:"valid"`
	Workflows []validatedWorkflow `json:"workflows"`
	Errors    []*workflow.Error   `json:"errors"`
}

type validatedWorkflow struct {
	File  string `json:"file"`
	Valid bool   `json:"valid"`
	Name  string `json:"name,omitempty"`
	Tasks int    `json:"tasks,omitempty"`
	Hash  string `json:"hash,omitempty"`
}

func validateFiles(stdout, stderr io.Writer, files []string, asJSON bool) error {
	res := validateResult{Valid: true, Errors: []*workflow.Error{}}
	invalid := 0
	for _, file := range files {
		plan, err := workflow.Load(file)
		if err != nil {
			res.Valid = false
			invalid++
			res.Workflows = append(res.Workflows, validatedWorkflow{File: file})
			var list workflow.ErrorList
			if errors.As(err, &list) {
				res.Errors = append(res.Errors, list...)
			} else {
				res.Errors = append(res.Errors, &workflow.Error{File: file, Message: err.Error()})
			}
			continue
		}
		res.Workflows = append(res.Workflows, validatedWorkflow{
			File: file, Valid: true, Name: plan.Name, Tasks: len(plan.Tasks), Hash: plan.Hash,
		})
		if !asJSON {
			if _, err := fmt.Fprintf(stdout, "✓ workflow %q is valid (%s)\n", plan.Name, plural(len(plan.Tasks), "task")); err != nil {
				return err
			}
		}
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(res); err != nil {
			return err
		}
		if !res.Valid {
			return &ExitError{Code: ExitCodeFailure}
		}
		return nil
	}
	if res.Valid {
		return nil
	}
	for _, e := range res.Errors {
		fmt.Fprintln(stderr, e.Error())
	}
	return &ExitError{Code: ExitCodeFailure, Err: fmt.Errorf("%s in %d of %s",
		plural(len(res.Errors), "error"), invalid, plural(len(files), "file"))}
}
