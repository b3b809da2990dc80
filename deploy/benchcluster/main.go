// Command benchcluster measures Ork's multi-process stack on this machine: the tasks/s curve as
// executor processes are added, and the recorder's ceiling into PostgreSQL. See package
// clusterbench and docs/benchmarks.md.
//
//	go run ./deploy/benchcluster -executors 1,2,4 -repeats 2
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/ork-go/ork/deploy/benchcluster/clusterbench"
	"github.com/ork-go/ork/deploy/processes"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		cfg                clusterbench.Config
		executors, batches string
		only, out          string
		keep               bool
	)
	fs := flag.NewFlagSet("benchcluster", flag.ContinueOnError)
	fs.StringVar(&executors, "executors", "1,2,4", "executor counts of the scaling curve")
	fs.IntVar(&cfg.Concurrency, "concurrency", clusterbench.ConcurrencyDefault, "--concurrency of every executor")
	fs.IntVar(&cfg.NoopTasks, "noop-tasks", clusterbench.NoopTasksDefault, "tasks of the wide noop scenario")
	fs.IntVar(&cfg.ProcessTasks, "process-tasks", clusterbench.ProcessTasksDefault, "tasks of the wide process (`true`) scenario")
	fs.IntVar(&cfg.Repeats, "repeats", clusterbench.RepeatsDefault, "measurements of each point, each on a fresh stack and database")
	fs.IntVar(&cfg.CeilingEvents, "events", clusterbench.CeilingEventsDefault, "recorder ceiling: events in the backlog")
	fs.StringVar(&batches, "batch-sizes", "500,1000,2000", "recorder ceiling: the recorder's --batch-size values")
	fs.BoolVar(&cfg.Profile, "cpuprofile", false, "recorder ceiling: save a 2 s CPU profile of the recorder (recorder.pprof in each measurement's directory; use with -keep or -dir)")
	fs.StringVar(&only, "only", "", "scaling or ceiling (default both)")
	fs.StringVar(&cfg.AdminURL, "db", envOr("TEST_DATABASE_URL", clusterbench.AdminURLDefault), "PostgreSQL URL allowed to create databases (env TEST_DATABASE_URL)")
	fs.StringVar(&cfg.Database, "database", clusterbench.DatabaseDefault, "name of the database created afresh for every measurement")
	fs.StringVar(&cfg.Dir, "dir", "", "work directory for binaries, logs and stores (default a temporary one, removed unless -keep)")
	fs.BoolVar(&keep, "keep", false, "keep the temporary work directory")
	fs.StringVar(&out, "out", "", "also write the results as JSON to this file")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return err
	}
	var err error
	if cfg.Executors, err = clusterbench.ParseInts(executors); err != nil {
		return fmt.Errorf("-executors: %w", err)
	}
	if cfg.BatchSizes, err = clusterbench.ParseInts(batches); err != nil {
		return fmt.Errorf("-batch-sizes: %w", err)
	}
	switch only {
	case "":
	case "scaling":
		cfg.Scaling = true
	case "ceiling":
		cfg.Ceiling = true
	default:
		return fmt.Errorf("-only must be scaling or ceiling, got %q", only)
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	if cfg.Root, err = processes.FindRoot(wd); err != nil {
		return err
	}
	if cfg.Dir == "" {
		if cfg.Dir, err = os.MkdirTemp("", "ork-benchcluster-"); err != nil {
			return err
		}
		if !keep {
			defer func() { _ = os.RemoveAll(cfg.Dir) }()
		}
	}
	cfg.Out = os.Stdout
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, runErr := clusterbench.Run(ctx, cfg)
	if out != "" && res != nil {
		data, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(out, data, 0o644); err != nil {
			return fmt.Errorf("writing results: %w", err)
		}
	}
	return runErr
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
