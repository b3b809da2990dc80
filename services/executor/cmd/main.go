// Command executor runs Ork's executor service: it pulls dispatched tasks of its executor types from
// NATS JetStream, runs them and publishes their events and logs.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/envflag"
	"github.com/ork-go/ork/pkg/logging"
	"github.com/ork-go/ork/pkg/metrics"
	"github.com/ork-go/ork/services/executor"
)

// options are the command line, each flag defaulting to its ORK_* environment variable.
type options struct {
	natsURL     string
	types       string
	python      string
	concurrency int
	instance    string
	logLevel    string
	logFormat   string
	ackWait     time.Duration
	killGrace   time.Duration
	drainGrace  time.Duration
	logMaxBytes int64
	metricsAddr string
	// bus holds the stream limits the executor provisions (its URL and name are set in run).
	bus bus.Config
}

func main() {
	opts, err := parseFlags(os.Args[1:], os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(2)
	}
	log, err := logging.New(logging.Config{Level: opts.logLevel, Format: opts.logFormat})
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// The first signal starts a drain; a second one kills the executor at once (and, through
	// Pdeathsig, its tasks).
	context.AfterFunc(ctx, stop)
	if err := run(ctx, opts, log); err != nil {
		log.Error("executor failed", zap.Error(err))
		_ = log.Sync()
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	_ = log.Sync()
}

// parseFlags reads the command line; getenv supplies the ORK_* defaults.
func parseFlags(args []string, getenv func(string) string) (options, error) {
	var o options
	fs := flag.NewFlagSet("executor", flag.ContinueOnError)
	busErr := o.bus.RegisterStreamFlags(fs, getenv)
	s := envflag.New(fs, getenv)
	s.StringVar(&o.natsURL, "nats", "ORK_NATS_URL", bus.URLDefault, "NATS server URL")
	s.StringVar(&o.types, "types", "ORK_EXECUTOR_TYPES", strings.Join(executor.TypesDefault(), ","),
		"comma-separated executor types to serve: process, python, noop, sleep")
	s.StringVar(&o.python, "python", executor.PythonEnv, executor.PythonDefault,
		"the interpreter of python tasks (a path, or a name on PATH); asked for its real path on the first python task")
	s.IntVar(&o.concurrency, "concurrency", "ORK_EXECUTOR_CONCURRENCY", executor.ConcurrencyDefault,
		"tasks run at once by this instance")
	s.StringVar(&o.instance, "instance", "ORK_EXECUTOR_INSTANCE", "", "instance name; default hostname-pid-random")
	s.StringVar(&o.logLevel, "log-level", "ORK_LOG_LEVEL", "info", "debug, info, warn or error")
	s.StringVar(&o.logFormat, "log-format", "ORK_LOG_FORMAT", "json", "json or console")
	s.DurationVar(&o.ackWait, "ack-wait", "ORK_EXECUTOR_ACK_WAIT", executor.AckWaitDefault,
		"redelivery delay of an unacknowledged task; heartbeats every third of it")
	s.DurationVar(&o.drainGrace, "drain-grace", "ORK_EXECUTOR_DRAIN_GRACE", executor.DrainGraceDefault,
		"on stop, how long running tasks may finish before they are killed and reported lost")
	s.DurationVar(&o.killGrace, "kill-grace", "ORK_EXECUTOR_KILL_GRACE", executor.KillGraceDefault,
		"time between SIGTERM and SIGKILL of a task's process group")
	s.Int64Var(&o.logMaxBytes, "log-max-bytes", "ORK_EXECUTOR_LOG_MAX_BYTES", executor.LogMaxBytesDefault,
		"log bytes shipped per attempt; later lines are dropped but for a marker and the last lines")
	s.StringVar(&o.metricsAddr, "metrics-addr", metrics.AddrEnv, "",
		"serve /metrics and /debug/pprof/ on this address, e.g. "+metrics.ExecutorAddrSuggested+"; empty: off")
	if err := errors.Join(busErr, s.Err()); err != nil {
		return o, err
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if err := o.bus.WithDefaults().Validate(); err != nil {
		return o, err
	}
	return o, nil
}

// run connects, serves until ctx is done, then drains the executor before closing the connection.
// With a metrics address it serves the executor's metrics there until the executor has stopped.
func run(ctx context.Context, o options, log *zap.Logger) (err error) {
	var types []string
	for t := range strings.SplitSeq(o.types, ",") {
		if t = strings.TrimSpace(t); t != "" {
			types = append(types, t)
		}
	}
	cfg := executor.Config{Types: types, Concurrency: o.concurrency, Instance: o.instance, AckWait: o.ackWait, Python: o.python,
		KillGrace: o.killGrace, DrainGrace: o.drainGrace, LogMaxBytes: o.logMaxBytes}.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	if o.metricsAddr != "" {
		reg := metrics.NewRegistry()
		cfg.Metrics = executor.NewMetrics(reg)
		// Served through the drain: stopped when run returns, after the service.
		stop, err := metrics.Start(context.WithoutCancel(ctx), o.metricsAddr, reg, log.Named("metrics"))
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, stop()) }()
	}
	busCfg := o.bus
	busCfg.URL, busCfg.Name = o.natsURL, "ork-executor "+cfg.Instance
	b, err := bus.Connect(busCfg, log.Named("bus"))
	if err != nil {
		return err
	}
	defer b.Close()
	if err := b.Provision(ctx); err != nil {
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	}
	svc, err := executor.New(b, cfg, log.Named("executor"))
	if err != nil {
		return err
	}
	reapCtx, stopReaping := context.WithCancel(context.WithoutCancel(ctx))
	defer stopReaping()
	go executor.ReapOrphans(reapCtx, log)
	return svc.Run(ctx)
}
