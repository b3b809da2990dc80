package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ork-go/ork/cmd/ork/internal/embedded"
	"github.com/ork-go/ork/cmd/ork/internal/serve"
	"github.com/ork-go/ork/pkg/store/storeopen"
	"github.com/ork-go/ork/services/api"
)

type serveOptions struct {
	addr, db, root, python string
	concurrency            int
	pythonCold, verbose    bool
	tokens                 bool
	rate                   float64
	natsListen             string
	executorTypes          string
}

func newServeCmd() *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run every role in this process with the HTTP API, until stopped",
		Long: `Run an Ork server in this process: the embedded NATS server (store under ./.ork/nats), the scheduler,
an executor, the recorder (SQLite at ./.ork/ork.db unless --db) and the HTTP API on ` + api.AddrDefault + `.

Other ork commands started in this folder find the server by themselves (./.ork/serve.json): ork
workflows apply, ork trigger, ... go through its API. Elsewhere, give them --api URL.

The API listens on a loopback address and takes every request; with --tokens it requires a token
(ork token create) on each, with the scope of what it does. An address other machines reach is
refused without --tokens.

Ctrl-C (SIGINT or SIGTERM) stops it in order: the API stops taking requests and ends its event
streams, running tasks finish within the executor's drain grace, then the recorder writes what is
left.`,
		Example: `  ork serve
  ork serve --addr 127.0.0.1:8080 --db postgres://localhost/ork`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServe(cmd.Context(), cmd.OutOrStdout(), o)
		},
	}
	addDBFlag(cmd, &o.db)
	cmd.Flags().StringVar(&o.addr, "addr", api.AddrDefault, "address of the HTTP API")
	cmd.Flags().StringVar(&o.root, "workflows-root", "", "folder registered workflows' folders are relative to and must lie in (default: this folder)")
	cmd.Flags().IntVar(&o.concurrency, "concurrency", embedded.ConcurrencyDefault, "tasks in flight at once in the executor")
	cmd.Flags().StringVar(&o.python, "python", "", "interpreter of python tasks (env "+embedded.PythonEnv+", default "+embedded.PythonDefault+")")
	cmd.Flags().BoolVar(&o.pythonCold, "python-cold", false, "start one interpreter per python task instead of forking each from a warm one")
	cmd.Flags().StringVar(&o.natsListen, "nats-listen", "", "let other processes (executors on other machines) reach the embedded NATS at host:port, with a user per role: their passwords in .ork/nats-secrets.env, an executor's settings in .ork/executor.env")
	cmd.Flags().StringVar(&o.executorTypes, "executor-types", "process,python,noop,sleep", "the task types this process's executor runs (others are left to external executors)")
	cmd.Flags().BoolVar(&o.tokens, "tokens", false, "require an API token (ork token create) on every request; needed on an address other machines reach")
	cmd.Flags().Float64Var(&o.rate, "rate-limit", api.RatePerSecondDefault, "API requests per second per token (or client address); negative: no limit")
	cmd.Flags().BoolVarP(&o.verbose, "verbose", "v", false, "show the services' debug logs")
	return cmd
}

func runServe(ctx context.Context, stdout io.Writer, o serveOptions) error {
	dbURL := resolve(o.db, envDBURL, "")
	if dbURL != "" {
		if _, err := storeopen.ParseURL(dbURL); err != nil {
			return usageError(err)
		}
	}
	if info, ok := serve.ReadInfo(embedded.DataDirDefault); ok && processAlive(info.PID) {
		return fmt.Errorf("an ork serve (pid %d) already serves this folder at %s", info.PID, info.API)
	}
	log := serviceLogger(o.verbose)
	defer func() { _ = log.Sync() }()
	begin := time.Now()
	s, err := serve.Start(ctx, serve.Config{
		Stack: embedded.Config{DBURL: dbURL, Concurrency: o.concurrency, Python: o.python, PythonCold: o.pythonCold,
			ExecutorTypes: splitTypes(o.executorTypes), Schedules: true},
		API:           api.Config{Addr: o.addr, WorkflowsRoot: o.root, RatePerSecond: o.rate},
		RequireTokens: o.tokens,
		NATSListen:    o.natsListen,
	}, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "ork serve: the API is on %s (started in %s); Ctrl-C stops\n", s.URL(), time.Since(begin).Round(time.Millisecond))
	fmt.Fprintf(stdout, "  ork workflows apply examples/    then    ork trigger NAME    from this folder\n")
	if o.natsListen != "" {
		fmt.Fprintf(stdout, "  NATS for other processes on %s: an executor connects with the settings in .ork/%s\n", o.natsListen, serve.ExecutorFile)
	}
	err = s.Serve(ctx)
	fmt.Fprintln(stdout, "ork serve: stopped")
	return err
}

// processAlive reports whether pid is a running process.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	p, err := os.FindProcess(pid)
	return err == nil && p.Signal(sigZero) == nil
}

// splitTypes splits a comma-separated list of executor types.
func splitTypes(s string) []string {
	var out []string
	for _, t := range strings.Split(s, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}
