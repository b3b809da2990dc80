// Package servicecmd is what the service commands (ork-scheduler, ork-executor, ork-recorder and
// ork-api) share: the common flags (--nats and its credential and TLS flags, --provision, the
// stream limits, --log-level, --log-format, --metrics-addr), each defaulting to its ORK_* variable;
// the logger; the metrics server; the connection to NATS and the provisioning of the streams (or,
// with --provision=false, the check that they exist); signal handling (the first SIGINT or SIGTERM
// drains the service, a second one kills it); and the exit codes (2 for bad flags or environment, 1
// when the service fails). A service's main only adds its own flags and runs it.
package servicecmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/envflag"
	"github.com/ork-go/ork/pkg/logging"
	"github.com/ork-go/ork/pkg/metrics"
)

// Common is what every service command reads from its flags and environment.
type Common struct {
	// Bus holds the NATS URL, the client name and the stream limits the service provisions.
	Bus bus.Config
	// CheckOnly makes the service only check at start that the streams and the run-state bucket
	// exist (its role may not create them: docs/security.md) instead of creating or updating them
	// (--provision=false).
	CheckOnly bool
	// MetricsAddr is where /metrics and /debug/pprof/ are served; empty: off.
	MetricsAddr string
	Log         logging.Config
}

// Command describes one service binary.
type Command struct {
	// Name names the binary ("ork-scheduler"): its flag set, its NATS client, its error log.
	Name string
	// MetricsAddrSuggested is the address the --metrics-addr help suggests.
	MetricsAddrSuggested string
	// Flags defines the service's own flags on s.
	Flags func(s *envflag.Set)
	// Check, when set, validates the service's settings once the flags are parsed.
	Check func() error
	// ClientName, when set, names the NATS connection instead of Name (called after Check).
	ClientName func() string
	// Metrics, when set, registers the service's metrics on reg; it is called, before anything
	// starts, only when --metrics-addr is set.
	Metrics func(reg *prometheus.Registry)
	// Run runs the service over the connected bus, whose streams are provisioned, until ctx ends,
	// then drains it.
	Run func(ctx context.Context, b *bus.Bus, log *zap.Logger) error
}

// Parse reads args over the environment (getenv) over the defaults, into the common settings it
// returns and into the variables c.Flags bound. Usage goes to out; -h returns flag.ErrHelp.
func (c Command) Parse(args []string, getenv func(string) string, out io.Writer) (Common, error) {
	o := Common{Bus: bus.Config{Name: c.Name}}
	fs := flag.NewFlagSet(c.Name, flag.ContinueOnError)
	fs.SetOutput(out)
	busErr := o.Bus.RegisterStreamFlags(fs, getenv)
	s := envflag.New(fs, getenv)
	s.StringVar(&o.Bus.URL, "nats", "ORK_NATS_URL", bus.URLDefault, "NATS server URL (nats:// or tls://; several comma-separated)")
	o.Bus.Auth.RegisterAuthFlags(s)
	provision := true
	s.BoolVar(&provision, "provision", bus.EnvProvision, true,
		"create or update the streams and the run-state bucket at start; false: only check they exist (a role without the right to create them)")
	s.StringVar(&o.Log.Level, "log-level", "ORK_LOG_LEVEL", "info", "log level: debug, info, warn, error")
	s.StringVar(&o.Log.Format, "log-format", "ORK_LOG_FORMAT", "json", "log format: json or console")
	s.StringVar(&o.MetricsAddr, "metrics-addr", metrics.AddrEnv, "",
		"serve /metrics and /debug/pprof/ on this address, e.g. "+c.MetricsAddrSuggested+"; empty: off")
	if c.Flags != nil {
		c.Flags(s)
	}
	if err := errors.Join(busErr, s.Err()); err != nil {
		return o, err
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	o.CheckOnly = !provision
	if err := o.Bus.WithDefaults().Validate(); err != nil {
		return o, err
	}
	if err := o.Log.Validate(); err != nil {
		return o, err
	}
	if c.Check != nil {
		if err := c.Check(); err != nil {
			return o, err
		}
	}
	if c.ClientName != nil {
		o.Bus.Name = c.ClientName()
	}
	return o, nil
}

// Serve serves the metrics (when asked), connects to NATS, provisions the streams and runs the
// service until ctx ends. It stops in order: the service drains (Run returns), the connection
// drains, the metrics server stops last. A stop during the provisioning is not an error.
func (c Command) Serve(ctx context.Context, o Common, log *zap.Logger) (err error) {
	if o.MetricsAddr != "" {
		reg := metrics.NewRegistry()
		if c.Metrics != nil {
			c.Metrics(reg)
		}
		// Served through the drain: stopped when Serve returns, after the service.
		stop, err := metrics.Start(context.WithoutCancel(ctx), o.MetricsAddr, reg, log.Named("metrics"))
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, stop()) }()
	}
	b, err := bus.Connect(o.Bus, log.Named("bus"))
	if err != nil {
		return err
	}
	defer b.Close()
	provision := b.Provision
	if o.CheckOnly {
		provision = b.Check
	}
	if err := provision(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	return c.Run(ctx, b, log)
}

// Main is the whole command: parse os.Args and the environment, build the logger, serve until the
// first SIGINT or SIGTERM (a second one kills the process), and exit 2 on bad input, 1 when the
// service failed, 0 otherwise.
func (c Command) Main() {
	o, err := c.Parse(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: error: %v\n", c.Name, err)
		os.Exit(2)
	}
	log, err := logging.New(o.Log)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: error: %v\n", c.Name, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	// The first signal starts the drain; restoring the default handling lets a second one kill.
	context.AfterFunc(ctx, stop)
	err = c.Serve(ctx, o, log)
	stop()
	if err != nil && !errors.Is(err, context.Canceled) {
		log.Error(c.Name+" failed", zap.Error(err))
		_ = log.Sync()
		fmt.Fprintf(os.Stderr, "%s: error: %v\n", c.Name, err)
		os.Exit(1)
	}
	_ = log.Sync()
}
