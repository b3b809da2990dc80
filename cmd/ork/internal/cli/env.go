package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/envflag"
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

// natsFlags are a command's connection to a cluster: --nats and the credential and TLS flags.
type natsFlags struct {
	url     string
	auth    bus.Auth
	authErr error // a bad ORK_NATS_* variable
}

// addNATSFlags adds --nats and bus.Auth's flags (the services' own, with the same variables) to a
// command.
func addNATSFlags(cmd *cobra.Command, n *natsFlags, what string) {
	cmd.Flags().StringVar(&n.url, "nats", "", what+" (env "+envNATSURL+")")
	fs := flag.NewFlagSet(cmd.Name(), flag.ContinueOnError)
	s := envflag.New(fs, os.Getenv)
	n.auth.RegisterAuthFlags(s)
	n.authErr = s.Err()
	cmd.Flags().AddGoFlagSet(fs)
}

// URL returns --nats, else ORK_NATS_URL, checked; "" when neither is set.
func (n *natsFlags) URL() (string, error) {
	u := resolve(n.url, envNATSURL, "")
	if u == "" {
		return "", nil
	}
	if err := checkNATSURL(u); err != nil {
		return "", usageError(err)
	}
	return u, nil
}

// config returns the bus configuration of the connection to url as client name.
func (n *natsFlags) config(url, name string) (bus.Config, error) {
	cfg := bus.Config{URL: url, Name: name, Auth: n.auth}
	if err := errors.Join(n.authErr, n.auth.Validate()); err != nil {
		return cfg, usageError(err)
	}
	return cfg, nil
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
func quietLogger(verbose bool) *zap.Logger { return consoleLogger("warn", verbose) }

// serviceLogger logs what a long-running server says: info and above (debug with verbose), as
// console lines on stderr.
func serviceLogger(verbose bool) *zap.Logger { return consoleLogger("info", verbose) }

// consoleLogger logs level and above (debug with verbose) as console lines on stderr.
func consoleLogger(level string, verbose bool) *zap.Logger {
	if verbose {
		level = "debug"
	}
	log, err := logging.New(logging.Config{Level: level, Format: "console"})
	if err != nil {
		return zap.NewNop()
	}
	return log
}
