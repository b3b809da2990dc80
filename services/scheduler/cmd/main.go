// Command ork-scheduler runs the scheduler service: it consumes run submissions and task events from
// NATS JetStream and dispatches the tasks that become ready. Flags override the environment.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/logging"
	"github.com/ork-go/ork/pkg/metrics"
	"github.com/ork-go/ork/services/scheduler"
)

const natsURLDefault = "nats://127.0.0.1:4222"

func main() {
	concurrency, err := envInt("ORK_SCHEDULER_CONCURRENCY", scheduler.ConcurrencyDefault)
	maxLost, err2 := envInt("ORK_SCHEDULER_MAX_LOST_ATTEMPTS", scheduler.MaxLostAttemptsDefault)
	interval, err3 := envDuration("ORK_SCHEDULER_RECONCILE_INTERVAL", scheduler.ReconcileIntervalDefault)
	noExecutor, err4 := envDuration("ORK_SCHEDULER_NO_EXECUTOR_TIMEOUT", scheduler.NoExecutorTimeoutDefault)
	lostGrace, err5 := envDuration("ORK_SCHEDULER_LOST_GRACE", scheduler.LostGraceDefault)
	if err := errors.Join(err, err2, err3, err4, err5); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(2)
	}
	busCfg := bus.Config{Name: "ork-scheduler"}
	if err := busCfg.RegisterStreamFlags(flag.CommandLine, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(2)
	}
	flag.StringVar(&busCfg.URL, "nats", envOr("ORK_NATS_URL", natsURLDefault), "NATS server URL (env ORK_NATS_URL)")
	metricsAddr := flag.String("metrics-addr", os.Getenv(metrics.AddrEnv),
		"serve /metrics and /debug/pprof/ on this address, e.g. "+metrics.SchedulerAddrSuggested+"; empty: off (env "+metrics.AddrEnv+")")
	logLevel := flag.String("log-level", envOr("ORK_LOG_LEVEL", "info"), "log level: debug, info, warn, error (env ORK_LOG_LEVEL)")
	flag.IntVar(&concurrency, "concurrency", concurrency, "events handled at once (env ORK_SCHEDULER_CONCURRENCY)")
	flag.IntVar(&maxLost, "max-lost-attempts", maxLost, "lost attempts of a task re-dispatched without using up retries (env ORK_SCHEDULER_MAX_LOST_ATTEMPTS)")
	flag.DurationVar(&interval, "reconcile-interval", interval, "period of the reconciler's sweep; negative disables it (env ORK_SCHEDULER_RECONCILE_INTERVAL)")
	flag.DurationVar(&noExecutor, "no-executor-timeout", noExecutor, "how long a dispatch waits for an executor type with no instance online (env ORK_SCHEDULER_NO_EXECUTOR_TIMEOUT)")
	flag.DurationVar(&lostGrace, "lost-grace", lostGrace, "added to a task's timeout before an attempt whose dispatch is gone is lost (env ORK_SCHEDULER_LOST_GRACE)")
	flag.Parse()

	log, err := logging.New(logging.Config{Level: *logLevel})
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	cfg := scheduler.Config{Concurrency: concurrency, MaxLostAttempts: maxLost, ReconcileInterval: interval,
		NoExecutorTimeout: noExecutor, LostGrace: lostGrace}
	err = run(ctx, busCfg, *metricsAddr, cfg, log)
	stop()
	if err != nil && !errors.Is(err, context.Canceled) {
		log.Error("scheduler failed", zap.Error(err))
		_ = log.Sync()
		os.Exit(1)
	}
	_ = log.Sync()
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

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func envInt(key string, def int) (int, error) {
	v := os.Getenv(key)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%s=%q: not an integer", key, v)
	}
	return n, nil
}

func envDuration(key string, def time.Duration) (time.Duration, error) {
	v := os.Getenv(key)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s=%q: not a duration (e.g. 10s)", key, v)
	}
	return d, nil
}
