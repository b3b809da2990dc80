// Command ork-recorder runs the recorder service: it consumes ORK_EVENTS and ORK_LOGS and writes
// them in batched transactions to the database, the only process that does. Flags override the
// environment, which overrides the defaults.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/envflag"
	"github.com/ork-go/ork/pkg/logging"
	"github.com/ork-go/ork/pkg/metrics"
	"github.com/ork-go/ork/pkg/store/schema"
	"github.com/ork-go/ork/pkg/store/storeopen"
	"github.com/ork-go/ork/services/recorder"
)

// options is the command's configuration.
type options struct {
	// bus holds the NATS URL and the stream limits the recorder provisions.
	bus       bus.Config
	dbURL     string
	noMigrate bool
	logLevel  string
	// metricsAddr is where /metrics and /debug/pprof/ are served; empty: off.
	metricsAddr string
	recorder    recorder.Config
}

func main() {
	opts, err := parseOptions(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(2)
	}
	log, err := logging.New(logging.Config{Level: opts.logLevel})
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, opts, log)
	stop()
	if err != nil && !errors.Is(err, context.Canceled) {
		log.Error("recorder failed", zap.Error(err))
		_ = log.Sync()
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	_ = log.Sync()
}

// parseOptions reads flags over environment variables over defaults.
func parseOptions(args []string, getenv func(string) string, out io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("ork-recorder", flag.ContinueOnError)
	fs.SetOutput(out)
	o.bus.Name = "ork-recorder"
	busErr := o.bus.RegisterStreamFlags(fs, getenv)
	s := envflag.New(fs, getenv)
	s.StringVar(&o.bus.URL, "nats", "ORK_NATS_URL", bus.URLDefault, "NATS server URL")
	s.StringVar(&o.dbURL, "db", "ORK_DB_URL", storeopen.DefaultURL, "database URL: sqlite://PATH, postgres://..., file://DIR")
	s.BoolVar(&o.noMigrate, "no-migrate", "ORK_NO_MIGRATE", false, "do not apply schema migrations at start")
	s.IntVar(&o.recorder.BatchSize, "batch-size", "ORK_RECORDER_BATCH_SIZE", recorder.BatchSizeDefault,
		"most messages written in one transaction")
	s.DurationVar(&o.recorder.BatchWait, "batch-wait", "ORK_RECORDER_BATCH_WAIT", recorder.BatchWaitDefault,
		"wait for more messages after a batch's first")
	s.StringVar(&o.logLevel, "log-level", "ORK_LOG_LEVEL", "info", "log level: debug, info, warn, error")
	s.StringVar(&o.metricsAddr, "metrics-addr", metrics.AddrEnv, "",
		"serve /metrics and /debug/pprof/ on this address, e.g. "+metrics.RecorderAddrSuggested+"; empty: off")
	if err := errors.Join(busErr, s.Err()); err != nil {
		return o, err
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if err := o.recorder.WithDefaults().Validate(); err != nil {
		return o, err
	}
	if err := o.bus.WithDefaults().Validate(); err != nil {
		return o, err
	}
	return o, nil
}

// run migrates and opens the database, connects to NATS and records until ctx is done. It stops in
// order: the consumers drain (Run returns), the connection drains, the database closes last.
func run(ctx context.Context, o options, log *zap.Logger) (err error) {
	log.Info("recorder starting", zap.String("db", schema.Redact(o.dbURL)), zap.String("nats", schema.Redact(o.bus.URL)),
		zap.Bool("migrate", !o.noMigrate))
	if o.metricsAddr != "" {
		reg := metrics.NewRegistry()
		o.recorder.Metrics = recorder.NewMetrics(reg)
		// Served through the drain: stopped when run returns, after the service.
		stop, err := metrics.Start(context.WithoutCancel(ctx), o.metricsAddr, reg, log.Named("metrics"))
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, stop()) }()
	}
	if !o.noMigrate {
		if err := storeopen.Migrate(ctx, o.dbURL); err != nil {
			return err
		}
	}
	st, err := storeopen.Open(ctx, o.dbURL)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := st.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("closing database: %w", cerr))
		}
	}()
	b, err := bus.Connect(o.bus, log.Named("bus"))
	if err != nil {
		return err
	}
	defer b.Close()
	if err := b.Provision(ctx); err != nil {
		return err
	}
	svc, err := recorder.New(b, st, o.recorder, log.Named("recorder"))
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}
