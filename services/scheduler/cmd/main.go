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

	"go.uber.org/zap"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/logging"
	"github.com/ork-go/ork/services/scheduler"
)

const natsURLDefault = "nats://127.0.0.1:4222"

func main() {
	concurrency, err := envInt("ORK_SCHEDULER_CONCURRENCY", scheduler.ConcurrencyDefault)
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(2)
	}
	natsURL := flag.String("nats", envOr("ORK_NATS_URL", natsURLDefault), "NATS server URL (env ORK_NATS_URL)")
	logLevel := flag.String("log-level", envOr("ORK_LOG_LEVEL", "info"), "log level: debug, info, warn, error (env ORK_LOG_LEVEL)")
	flag.IntVar(&concurrency, "concurrency", concurrency, "events handled at once (env ORK_SCHEDULER_CONCURRENCY)")
	flag.Parse()

	log, err := logging.New(logging.Config{Level: *logLevel})
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, *natsURL, scheduler.Config{Concurrency: concurrency}, log)
	stop()
	if err != nil && !errors.Is(err, context.Canceled) {
		log.Error("scheduler failed", zap.Error(err))
		_ = log.Sync()
		os.Exit(1)
	}
	_ = log.Sync()
}

// run connects, provisions and runs the scheduler until ctx is done. The service finishes the
// events in hand before the connection is drained.
func run(ctx context.Context, natsURL string, cfg scheduler.Config, log *zap.Logger) error {
	b, err := bus.Connect(bus.Config{URL: natsURL, Name: "ork-scheduler"}, log.Named("bus"))
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
