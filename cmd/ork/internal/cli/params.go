package cli

import (
	"bytes"
	"encoding/json"

	"github.com/spf13/cobra"

	"github.com/ork-go/ork/pkg/workflow"
)

// addParamFlag adds --param NAME=VALUE, repeatable.
func addParamFlag(cmd *cobra.Command, params *[]string) {
	cmd.Flags().StringArrayVarP(params, "param", "p", nil,
		"a run parameter, NAME=VALUE (repeatable): text types as written, others as JSON (count=3, tags='[\"a\"]')")
}

// bindParamArgs reads --param arguments for plan and checks them against its declared params, so a
// bad one is a usage error (exit 2) naming it, before anything starts or is submitted.
func bindParamArgs(plan *workflow.Plan, args []string) (map[string]json.RawMessage, error) {
	values, err := plan.ParseParamArgs(args)
	if err != nil {
		return nil, usageError(err)
	}
	if _, err := plan.BindParams(values); err != nil {
		return nil, usageError(err)
	}
	return values, nil
}

// compactJSON prints a JSON value on one line (as stored, when it is not valid JSON).
func compactJSON(raw json.RawMessage) string {
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		return string(raw)
	}
	return buf.String()
}
