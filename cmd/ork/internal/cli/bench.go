package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ork-go/ork/cmd/ork/internal/bench"
)

// benchOptions are the flags of ork bench.
type benchOptions struct {
	configName, shape, taskType, mode, db, out, cpuProfile, heapProfile, devstackDir, recorderMetrics string
	tasks, depth, runs, concurrency                                                                   int
	sleepSeconds                                                                                      float64
	idle                                                                                              time.Duration
	json, verbose, memory                                                                             bool
	nats                                                                                              natsFlags
}

// Sizes of a custom scenario whose size flags are not given.
const (
	benchTasksDefault = 1000
	benchDepthDefault = 100
	benchRunsDefault  = 100
)

func newBenchCmd() *cobra.Command {
	var o benchOptions
	cmd := &cobra.Command{
		Use:   "bench [" + strings.Join(bench.Names(), "|") + "]",
		Short: "Measure throughput, latency and resource use end to end",
		Long: `Run benchmark workflows and report tasks/s and runs/s (from the first submission until the
recorder has committed the last run), dependency-to-start and submit-to-first-task latencies
(p50/p95/p99, from the events' timestamps), the recorder's events/s and batch size, and the CPU time
and memory of the services, busy and idle.

Named configurations: quick (under a minute on 2 cores), standard, heavy, latency. Without a name,
--shape describes one custom scenario; without either, quick runs.

By default everything runs in this process with SQLite in a temporary directory (--mode embedded).
--mode cluster (implied by --nats) submits to running services, such as deploy/devstack.sh's, and
reads their CPU and memory through the pid files in --devstack-dir. See docs/benchmarks.md.`,
		Example: `  ork bench quick
  ork bench standard --json --out bench.json
  ork bench --shape chain --depth 1000 --cpuprofile chain.prof
  ork bench standard --nats nats://127.0.0.1:4223 --db postgres://postgres@127.0.0.1:5432/ork_dev`,
		Args: rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := o.config(cmd, args)
			if err != nil {
				return usageError(err)
			}
			return runBench(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), cfg, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.configName, "config", "", "a named configuration, as the argument: "+strings.Join(bench.Names(), ", "))
	f.StringVar(&o.shape, "shape", "", "custom scenario: "+strings.Join(bench.Shapes(), ", "))
	f.IntVar(&o.tasks, "tasks", 0, fmt.Sprintf("tasks of a wide run or of the middle of a fan-out (default %d)", benchTasksDefault))
	f.IntVar(&o.depth, "depth", 0, fmt.Sprintf("length of a chain (default %d)", benchDepthDefault))
	f.IntVar(&o.runs, "runs", 0, fmt.Sprintf("runs of the small diamond workflow, submitted concurrently (default %d)", benchRunsDefault))
	f.StringVar(&o.taskType, "task-type", bench.TaskTypeDefault, "task type of a custom scenario: "+strings.Join(bench.TaskTypes(), ", ")+" (process runs `true`)")
	f.Float64Var(&o.sleepSeconds, "sleep-seconds", bench.SleepSecondsDefault, "duration of a sleep task")
	f.IntVar(&o.concurrency, "concurrency", bench.ConcurrencyDefault, "tasks in flight in the embedded executor")
	f.StringVar(&o.mode, "mode", "", "embedded or cluster (default embedded, cluster with --nats)")
	addNATSFlags(cmd, &o.nats, "cluster mode: the cluster's NATS URL")
	f.StringVar(&o.db, "db", "", "cluster mode: the cluster's database, read back after each scenario; embedded: the database to use instead of a temporary SQLite file")
	f.StringVar(&o.devstackDir, "devstack-dir", bench.DevstackDirDefault, "cluster mode: where the services' <name>.pid files are")
	f.StringVar(&o.recorderMetrics, "recorder-metrics", bench.RecorderMetricsURLDefault, "cluster mode: a recorder's Prometheus endpoint, where the batches it commits are counted")
	f.DurationVar(&o.idle, "idle", -1, "how long to sample idle CPU and memory, before and again after the scenarios (default 3s for quick, 10s for the other named configurations, 0 for a custom one)")
	f.BoolVar(&o.memory, "memory", false, "embedded mode: keep the JetStream streams in memory instead of on disk")
	f.BoolVar(&o.json, "json", false, "print the report as JSON instead of a table")
	f.StringVar(&o.out, "out", "", "also write the JSON report to this file")
	f.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of this process (pprof) to this file")
	f.StringVar(&o.heapProfile, "heapprofile", "", "write a heap profile of this process (pprof) to this file at the end of the idle sample after the load")
	f.BoolVarP(&o.verbose, "verbose", "v", false, "show the services' debug logs")
	return cmd
}

// config builds the benchmark configuration from the arguments and flags.
func (o *benchOptions) config(cmd *cobra.Command, args []string) (bench.Config, error) {
	var cfg bench.Config
	if o.configName != "" {
		if len(args) == 1 && args[0] != o.configName {
			return cfg, fmt.Errorf("--config %s and the argument %s name two configurations", o.configName, args[0])
		}
		args = []string{o.configName}
	}
	switch {
	case len(args) == 1 && o.shape != "":
		return cfg, fmt.Errorf("give a configuration name or --shape, not both")
	case len(args) == 1:
		var err error
		if cfg, err = bench.Named(args[0]); err != nil {
			return cfg, err
		}
	case o.shape != "":
		cfg = bench.Config{Name: "custom", Scenarios: []bench.Scenario{{
			Shape:        o.shape,
			Tasks:        orDefault(o.tasks, benchTasksDefault),
			Depth:        orDefault(o.depth, benchDepthDefault),
			Runs:         orDefault(o.runs, benchRunsDefault),
			TaskType:     o.taskType,
			SleepSeconds: o.sleepSeconds,
		}}}
		s := &cfg.Scenarios[0]
		if s.Shape != bench.ShapeWide && s.Shape != bench.ShapeFanout {
			s.Tasks = 0
		}
		if s.Shape != bench.ShapeChain {
			s.Depth = 0
		}
		if s.Shape != bench.ShapeRuns {
			s.Runs = 0
		}
	default:
		cfg, _ = bench.Named("quick")
	}
	if o.idle >= 0 {
		cfg.Idle = o.idle
	}
	cfg.Concurrency = o.concurrency
	cfg.DevstackDir = o.devstackDir
	cfg.RecorderMetricsURL = o.recorderMetrics
	natsURL, err := o.nats.URL()
	if err != nil {
		return cfg, err
	}
	cfg.NATSURL = natsURL
	if natsURL != "" {
		bcfg, err := o.nats.config(natsURL, "ork-bench")
		if err != nil {
			return cfg, err
		}
		cfg.NATSAuth = bcfg.Auth
	}
	cfg.DBURL = o.db
	cfg.Memory = o.memory
	cfg.HeapProfile = o.heapProfile
	cfg.Mode = o.mode
	if cfg.Mode == "" && cfg.NATSURL != "" {
		cfg.Mode = bench.ModeCluster
	}
	if cfg.Mode == bench.ModeEmbedded || cfg.Mode == "" {
		cfg.NATSURL = ""
	}
	if !cmd.Flags().Changed("task-type") && !cmd.Flags().Changed("sleep-seconds") {
		return cfg.WithDefaults(), cfg.WithDefaults().Validate()
	}
	if o.shape == "" {
		return cfg, fmt.Errorf("--task-type and --sleep-seconds apply to a custom scenario (--shape)")
	}
	return cfg.WithDefaults(), cfg.WithDefaults().Validate()
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// runBench runs cfg and prints its report.
func runBench(ctx context.Context, stdout, stderr io.Writer, cfg bench.Config, o benchOptions) (err error) {
	log := quietLogger(o.verbose)
	defer func() { _ = log.Sync() }()
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return fmt.Errorf("creating CPU profile: %w", err)
		}
		defer func() {
			if cerr := f.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("writing CPU profile: %w", cerr)
			}
		}()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("starting CPU profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	progress := func(name string) { _, _ = fmt.Fprintf(stderr, "bench: %s\n", name) }
	rep, runErr := bench.Run(ctx, cfg, log, progress)
	if rep == nil {
		return runErr
	}
	if o.out != "" {
		data, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return fmt.Errorf("encoding report: %w", err)
		}
		if err := os.WriteFile(o.out, append(data, '\n'), 0o644); err != nil {
			return fmt.Errorf("writing report: %w", err)
		}
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return fmt.Errorf("encoding report: %w", err)
		}
	} else if err := rep.WriteTable(stdout); err != nil {
		return err
	}
	if runErr != nil {
		return runErr
	}
	if err := rep.Failures(); err != nil {
		return fmt.Errorf("the figures count only what succeeded, and some tasks did not: %w", err)
	}
	return nil
}
