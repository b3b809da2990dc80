// Command ork-scheduler runs the scheduler service: it consumes run submissions and task events from
// NATS JetStream and dispatches the tasks that become ready. Flags override the environment.
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
	"github.com/ork-go/ork/services/scheduler"
)

// options are the command line, each flag defaulting to its ORK_* environment variable.
type options struct {
	// bus holds the NATS URL and the stream limits the scheduler provisions.
	bus bus.Config
	// metricsAddr is where /metrics and /debug/pprof/ are served; empty: off.
	metricsAddr string
	logLevel    string
	scheduler   scheduler.Config
}

func main() {
	opts, err := parseFlags(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
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
	err = run(ctx, opts.bus, opts.metricsAddr, opts.scheduler, log)
	stop()
	if err != nil && !errors.Is(err, context.Canceled) {
		log.Error("scheduler failed", zap.Error(err))
		_ = log.Sync()
		os.Exit(1)
	}
	_ = log.Sync()
}

// parseFlags reads the command line; getenv supplies the ORK_* defaults and out receives the
// usage text.
func parseFlags(args []string, getenv func(string) string, out io.Writer) (options, error) {
	o := options{bus: bus.Config{Name: "ork-scheduler"}}
	fs := flag.NewFlagSet("ork-scheduler", flag.ContinueOnError)
	fs.SetOutput(out)
	busErr := o.bus.RegisterStreamFlags(fs, getenv)
	s := envflag.New(fs, getenv)
	s.StringVar(&o.bus.URL, "nats", "ORK_NATS_URL", bus.URLDefault, "NATS server URL")
	s.StringVar(&o.metricsAddr, "metrics-addr", metrics.AddrEnv, "",
		"serve /metrics and /debug/pprof/ on this address, e.g. "+metrics.SchedulerAddrSuggested+"; empty: off")
	s.StringVar(&o.logLevel, "log-level", "ORK_LOG_LEVEL", "info", "log level: debug, info, warn, error")
	s.IntVar(&o.scheduler.Concurrency, "concurrency", "ORK_SCHEDULER_CONCURRENCY", scheduler.ConcurrencyDefault,
		"events handled at once")
	s.IntVar(&o.scheduler.MaxLostAttempts, "max-lost-attempts", "ORK_SCHEDULER_MAX_LOST_ATTEMPTS", scheduler.MaxLostAttemptsDefault,
		"lost attempts of a task re-dispatched without using up retries")
	s.DurationVar(&o.scheduler.ReconcileInterval, "reconcile-interval", "ORK_SCHEDULER_RECONCILE_INTERVAL", scheduler.ReconcileIntervalDefault,
		"period of the reconciler's sweep; negative disables it")
	s.DurationVar(&o.scheduler.NoExecutorTimeout, "no-executor-timeout", "ORK_SCHEDULER_NO_EXECUTOR_TIMEOUT", scheduler.NoExecutorTimeoutDefault,
		"how long a dispatch waits for an executor type with no instance online")
	s.DurationVar(&o.scheduler.LostGrace, "lost-grace", "ORK_SCHEDULER_LOST_GRACE", scheduler.LostGraceDefault,
		"added to a task's timeout before an attempt whose dispatch is gone is lost")
	s.DurationVar(&o.scheduler.StallTimeout, "stall-timeout", "ORK_SCHEDULER_STALL_TIMEOUT", scheduler.StallTimeoutDefault,
		"how long a running run may go unchanged with nothing in flight before the reconciler re-drives it")
	if err := errors.Join(busErr, s.Err()); err != nil {
		return o, err
	}
	return o, fs.Parse(args)
}

// run connects, provisions the streams with busCfg's limits and runs the scheduler until ctx is
// done. The service finishes the events in hand before the connection is drained. With a
// metricsAddr it serves the scheduler's metrics there until the service has stopped.
func run(ctx context.Context, busCfg bus.Config, metricsAddr string, cfg scheduler.Config, log *zap.Logger) (err error) {
	if metricsAddr != "" {
		reg := metrics.NewRegistry()
		cfg.Metrics = scheduler.NewMetrics(reg)
		// Served through the drain: stopped when run returns, after the service.
		stop, err := metrics.Start(context.WithoutCancel(ctx), metricsAddr, reg, log.Named("metrics"))
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, stop()) }()
	}
	b, err := bus.Connect(busCfg, log.Named("bus"))
	if err != nil {
		return err
	}
	defer b.Close()
	if err := b.Provision(ctx); err != nil {
		return err
	}
	svc, err := scheduler.New(b, cfg, log.Named("scheduler"))
	if err != nil {
		return err
	}
	return svc.Run(ctx)
}
