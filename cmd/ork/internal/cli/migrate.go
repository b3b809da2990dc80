package cli

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/ork-go/ork/pkg/store/schema"
	"github.com/ork-go/ork/pkg/store/storeopen"
)

func newInitCmd() *cobra.Command {
	var db string
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create the database and apply every migration",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			url := resolve(db, envDBURL, dbURLDefault)
			if path, ok := sqlitePath(url); ok {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					return fmt.Errorf("creating %s: %w", filepath.Dir(path), err)
				}
			}
			if err := schema.Up(cmd.Context(), url); err != nil {
				return err
			}
			v, _, err := schema.Version(cmd.Context(), url)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "database %s ready (schema version %d)\n", storeopen.Redact(url), v)
			return nil
		},
	}
	addDBFlag(cmd, &db)
	return cmd
}

func newMigrateCmd() *cobra.Command {
	var db string
	cmd := &cobra.Command{
		Use:       "migrate up|down|version",
		Short:     "Apply, revert or show the database schema migrations",
		Args:      exactArgs(1),
		ValidArgs: []string{"up", "down", "version"},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			url := resolve(db, envDBURL, dbURLDefault)
			out := cmd.OutOrStdout()
			switch args[0] {
			case "up":
				if err := schema.Up(ctx, url); err != nil {
					return err
				}
			case "down":
				if err := schema.Down(ctx, url); err != nil {
					return err
				}
			case "version":
			default:
				return usageError(fmt.Errorf("unknown migrate action %q: want up, down or version", args[0]))
			}
			v, dirty, err := schema.Version(ctx, url)
			if err != nil {
				return err
			}
			state := ""
			if dirty {
				state = " (dirty: a migration failed half-way; fix it and force the version)"
			}
			fmt.Fprintf(out, "schema version %d%s\n", v, state)
			return nil
		},
	}
	addDBFlag(cmd, &db)
	return cmd
}
