package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/store/schema"
	"github.com/ork-go/ork/pkg/store/storeopen"
	"github.com/ork-go/ork/services/api"
)

func newTokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke API tokens",
		Long: `API tokens let programs and people use an Ork server's HTTP API (ork serve --tokens, ork-api). A
token has a scope: read (workflows, runs, logs, events), submit (also trigger, cancel, pause, resume,
rerun) or admin (also register and delete workflows). The database keeps only its hash: the token
is printed once, when it is created.`,
		Args: rootArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newTokenCreateCmd(), newTokenListCmd(), newTokenRevokeCmd())
	return cmd
}

func newTokenCreateCmd() *cobra.Command {
	var (
		db, name, scope string
		expires         time.Duration
	)
	cmd := &cobra.Command{
		Use:     "create",
		Short:   "Create a token and print it (once)",
		Example: "  ork token create --scope submit --name ci --expires 720h",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			sc, err := api.ParseScope(scope)
			if err != nil {
				return usageError(err)
			}
			if expires < 0 {
				return usageError(fmt.Errorf("--expires must be positive, got %s", expires))
			}
			if len(name) > 200 {
				return usageError(fmt.Errorf("--name is %d bytes, over 200", len(name)))
			}
			return withTokens(cmd.Context(), db, true, func(ctx context.Context, ts store.Tokens) error {
				secret, row, err := api.NewToken(name, sc, expires, time.Now())
				if err != nil {
					return err
				}
				if err := ts.TokenCreate(ctx, store.TokenCreateParams{Token: row}); err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				fmt.Fprintf(out, "token %s (%s, for %s, expires %s):\n\n  %s\n\n", row.ID, row.Scope, orDash(row.Name), expiry(row), secret)
				_, err = fmt.Fprintln(out, "It is shown this once: keep it, e.g. export ORK_API_TOKEN=... for the ork commands.")
				return err
			})
		},
	}
	addDBFlag(cmd, &db)
	cmd.Flags().StringVar(&scope, "scope", "", "read, submit or admin (required)")
	cmd.Flags().StringVar(&name, "name", "", "who or what the token is for, kept with it")
	cmd.Flags().DurationVar(&expires, "expires", 0, "lifetime (720h = 30 days); 0: never expires")
	_ = cmd.MarkFlagRequired("scope")
	return cmd
}

func newTokenListCmd() *cobra.Command {
	var db string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the tokens (never their secrets)",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withTokens(cmd.Context(), db, false, func(ctx context.Context, ts store.Tokens) error {
				all, err := ts.TokenList(ctx, store.TokenListParams{})
				if err != nil {
					return err
				}
				return printTokens(cmd.OutOrStdout(), all)
			})
		},
	}
	addDBFlag(cmd, &db)
	return cmd
}

func newTokenRevokeCmd() *cobra.Command {
	var db string
	cmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token: the server refuses it from now on",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withTokens(cmd.Context(), db, false, func(ctx context.Context, ts store.Tokens) error {
				err := ts.TokenRevoke(ctx, store.TokenRevokeParams{ID: args[0], At: time.Now()})
				if errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("no token %s (ork token list shows them)", args[0])
				}
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "token %s revoked\n", args[0])
				return err
			})
		},
	}
	addDBFlag(cmd, &db)
	return cmd
}

// withTokens opens the database's token table; create migrates the database first (a token can be
// made before the server's first start).
func withTokens(ctx context.Context, db string, create bool, fn func(context.Context, store.Tokens) error) error {
	url := resolve(db, envDBURL, dbURLDefault)
	if _, err := storeopen.ParseURL(url); err != nil {
		return usageError(err)
	}
	if create {
		if err := schema.Up(ctx, url); err != nil {
			return err
		}
	}
	st, err := openStoreForReading(ctx, url)
	if err != nil {
		return err
	}
	defer st.Close()
	ts, ok := st.(store.Tokens)
	if !ok {
		return errors.New("this database keeps no tokens")
	}
	return fn(ctx, ts)
}

func expiry(t store.Token) string {
	if t.ExpiresAt == nil {
		return "never"
	}
	return t.ExpiresAt.Local().Format(time.DateTime)
}

func printTokens(w io.Writer, all []store.Token) error {
	if len(all) == 0 {
		_, err := fmt.Fprintln(w, "no tokens (ork token create --scope read|submit|admin makes one)")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSCOPE\tNAME\tCREATED\tEXPIRES\tLAST USED\tSTATE")
	now := time.Now()
	for _, t := range all {
		state := "valid"
		switch {
		case t.RevokedAt != nil:
			state = "revoked"
		case t.ExpiresAt != nil && !now.Before(*t.ExpiresAt):
			state = "expired"
		}
		used := "-"
		if t.LastUsedAt != nil {
			used = t.LastUsedAt.Local().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Scope, orDash(t.Name), t.CreatedAt.Local().Format(time.DateTime), expiry(t), used, state)
	}
	return tw.Flush()
}
