package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/ork-go/ork/pkg/logging"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/store/storeopen"
)

// Environment variables the CLI reads. Flags override them; they override the defaults.
const (
	envDBURL   = "ORK_DB_URL"
	envNATSURL = "ORK_NATS_URL"
)

// dbURLDefault is the embedded default database.
const dbURLDefault = storeopen.DefaultURL

// addDBFlag adds --db to a command.
func addDBFlag(cmd *cobra.Command, target *string) {
	cmd.Flags().StringVar(target, "db", "", "database URL: sqlite://PATH, postgres://..., file://DIR (env "+envDBURL+", default "+dbURLDefault+")")
}

// addNATSFlag adds --nats to a command.
func addNATSFlag(cmd *cobra.Command, target *string, what string) {
	cmd.Flags().StringVar(target, "nats", "", what+" (env "+envNATSURL+")")
}

// resolve returns the flag value, else the environment variable, else the default.
func resolve(flag, env, def string) string {
	if flag != "" {
		return flag
	}
	if v := os.Getenv(env); v != "" {
		return v
	}
	return def
}

// openStoreForReading opens the database named by --db/ORK_DB_URL for a read command. A missing
// default SQLite file is reported as such instead of silently creating an empty database.
func openStoreForReading(ctx context.Context, flag string) (store.Store, error) {
	url := resolve(flag, envDBURL, dbURLDefault)
	if _, err := storeopen.ParseURL(url); err != nil {
		return nil, usageError(err)
	}
	if path, ok := sqlitePath(url); ok {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no database at %s: run a workflow first (ork run FILE) or pass --db", path)
		}
	}
	st, err := storeopen.Open(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("opening database: %w", err)
	}
	return st, nil
}

// sqlitePath returns the file of a SQLite URL.
func sqlitePath(url string) (string, bool) {
	if p, ok := strings.CutPrefix(url, "sqlite://"); ok {
		return p, true
	}
	if !strings.Contains(url, "://") && strings.HasSuffix(url, ".db") {
		return url, true
	}
	return "", false
}

// quietLogger logs warnings and errors of the in-process services to stderr, human-readable.
func quietLogger(verbose bool) *zap.Logger {
	level := "warn"
	if verbose {
		level = "debug"
	}
	log, err := logging.New(logging.Config{Level: level, Format: "console"})
	if err != nil {
		return zap.NewNop()
	}
	return log
}
