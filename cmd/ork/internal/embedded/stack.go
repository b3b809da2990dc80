// Package embedded composes Ork's services in one process: an embedded NATS server with JetStream, the
// recorder, the scheduler and the executors, over one store. `ork run` and `ork bench`
// use it; on a cluster the same services run as separate processes instead.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gofrs/flock"
	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/zap"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/store/schema"
	"github.com/ork-go/ork/pkg/store/storeopen"
	"github.com/ork-go/ork/services/executor"
	"github.com/ork-go/ork/services/recorder"
	"github.com/ork-go/ork/services/scheduler"
)

// Defaults of Config.
const (
	DataDirDefault     = ".ork"
	ConcurrencyDefault = 16
	StopTimeoutDefault = 30 * time.Second
)

// Config configures an in-process embedded.
type Config struct {
	// DataDir holds the embedded NATS store (DataDir/nats) and the default SQLite database.
	DataDir string
	// DBURL selects the store; empty means sqlite://DataDir/ork.db.
	DBURL string
	// Port makes the embedded NATS server listen for other processes (0: in-process only), on
	// Host (127.0.0.1 when empty).
	Port int
	Host string
	// NATSConfig, when set, is the NATS server's configuration (users and permissions: the shipped
	// deploy/nats-server.conf with its passwords), and Bus.Auth the credentials the stack's own
	// services connect with.
	NATSConfig string
	// ExecutorTypes run in this process; empty means process, python, noop and sleep.
	ExecutorTypes []string
	// Concurrency is the number of tasks in flight in the in-process executor.
	Concurrency int
	// Python is the interpreter of python tasks; empty means $ORK_PYTHON, else python3.
	Python string
	// PythonCold runs each python task in an interpreter of its own instead of a fork of a warm one.
	PythonCold bool
	// OnRecorderCommit, when set, is called after every batch the recorder committed and
	// acknowledged (recorder.Service.OnCommit), from the recorder's goroutine: keep it short.
	OnRecorderCommit func(RecorderCommit)
	// IdleRelease is how long the stack must be quiet before it returns freed memory to the
	// system (0: IdleReleaseDefault; negative: never).
	IdleRelease time.Duration
	// Schedules makes the stack's scheduler fire the registered workflows' schedules (ork serve).
	// Off, a short-lived stack (ork run, ork workflows apply) never fires a run nobody asked for.
	Schedules bool
	// Recorder, Scheduler and Executor override service settings (zero values take their defaults).
	Recorder  recorder.Config
	Scheduler scheduler.Config
	Executor  executor.Config
	// Bus overrides stream settings (e.g. Memory for benchmarks).
	Bus bus.Config
}

// RecorderCommit describes one batch the recorder committed.
type RecorderCommit = recorder.Commit

// PythonEnv and PythonDefault are where the in-process executor finds its interpreter when
// Config.Python is empty.
const (
	PythonEnv     = executor.PythonEnv
	PythonDefault = executor.PythonDefault
)

// WithDefaults fills zero fields.
func (c Config) WithDefaults() Config {
	if c.DataDir == "" {
		c.DataDir = DataDirDefault
	}
	if c.DBURL == "" {
		c.DBURL = "sqlite://" + filepath.Join(c.DataDir, "ork.db")
	}
	if len(c.ExecutorTypes) == 0 {
		c.ExecutorTypes = []string{"process", "python", "noop", "sleep"}
	}
	if c.Concurrency == 0 {
		c.Concurrency = ConcurrencyDefault
	}
	if c.IdleRelease == 0 {
		c.IdleRelease = IdleReleaseDefault
	}
	return c
}

// Stack is a running in-process deployment.
type Stack struct {
	Server *server.Server
	Bus    *bus.Bus
	Store  store.Store

	log      *zap.Logger
	lock     *flock.Flock
	tempDir  string
	idle     *idleRelease // nil when Config.IdleRelease is negative
	services []*service   // in start order: recorder, scheduler, executor
}

type service struct {
	name   string
	cancel context.CancelFunc
	done   chan error
}

// Start brings the stack up. The caller must call Stop.
func Start(ctx context.Context, cfg Config, log *zap.Logger) (_ *Stack, err error) {
	cfg = cfg.WithDefaults()
	s := &Stack{log: log}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.Stop())
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating data directory: %w", err)
	}
	natsDir, err := s.natsDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	s.Server, err = bus.StartEmbedded(bus.EmbeddedConfig{StoreDir: natsDir, Port: cfg.Port, Host: cfg.Host, Config: cfg.NATSConfig})
	if err != nil {
		return nil, err
	}
	bcfg := cfg.Bus
	bcfg.InProcess = s.Server
	bcfg.Name = "ork"
	if s.Bus, err = bus.Connect(bcfg, log.Named("bus")); err != nil {
		return nil, err
	}
	if err := s.Bus.Provision(ctx); err != nil {
		return nil, err
	}
	if err := schema.Up(ctx, cfg.DBURL); err != nil {
		return nil, err
	}
	if s.Store, err = storeopen.Open(ctx, cfg.DBURL); err != nil {
		return nil, err
	}

	rec, err := recorder.New(s.Bus, s.Store, cfg.Recorder, log.Named("recorder"))
	if err != nil {
		return nil, err
	}
	rec.OnCommit = cfg.OnRecorderCommit
	if cfg.IdleRelease > 0 {
		s.idle = newIdleRelease(cfg.IdleRelease, bcfg.WithDefaults().DuplicateWindow+cfg.IdleRelease)
		rec.OnCommit = func(c RecorderCommit) {
			s.idle.active()
			if cfg.OnRecorderCommit != nil {
				cfg.OnRecorderCommit(c)
			}
		}
	}
	s.start("recorder", rec.Run)
	schCfg := cfg.Scheduler
	if !cfg.Schedules {
		schCfg.ScheduleLease = -1
	}
	sch, err := scheduler.New(s.Bus, schCfg, log.Named("scheduler"))
	if err != nil {
		return nil, err
	}
	s.start("scheduler", sch.Run)
	ecfg := cfg.Executor
	if cfg.Python != "" {
		ecfg.Python = cfg.Python
	}
	ecfg.PythonCold = ecfg.PythonCold || cfg.PythonCold
	ecfg.Types = cfg.ExecutorTypes
	ecfg.Concurrency = cfg.Concurrency
	exe, err := executor.New(s.Bus, ecfg, log.Named("executor"))
	if err != nil {
		return nil, err
	}
	s.start("executor", exe.Run)
	return s, nil
}

// natsDir returns DataDir/nats, locked for this process. When another process holds it (two `ork
// run` in one directory), it falls back to a private temporary store: an in-process run does not
// need the shared one, and two servers must never share a JetStream directory.
func (s *Stack) natsDir(dataDir string) (string, error) {
	dir := filepath.Join(dataDir, "nats")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating nats store directory: %w", err)
	}
	s.lock = flock.New(filepath.Join(dataDir, "nats.lock"))
	ok, err := s.lock.TryLock()
	if err != nil {
		return "", fmt.Errorf("locking %s: %w", dir, err)
	}
	if ok {
		return dir, nil
	}
	s.lock = nil
	tmp, err := os.MkdirTemp(dataDir, "nats-")
	if err != nil {
		return "", fmt.Errorf("creating private nats store: %w", err)
	}
	s.tempDir = tmp
	return tmp, nil
}

func (s *Stack) start(name string, run func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	svc := &service{name: name, cancel: cancel, done: make(chan error, 1)}
	go func() { svc.done <- run(ctx) }()
	s.services = append(s.services, svc)
}

// Stop stops the services in reverse order (executors drain, then the scheduler, then the recorder
// records what is left), then the connection, the server and the store. It is safe to call twice.
func (s *Stack) Stop() error {
	var errs []error
	for i := len(s.services) - 1; i >= 0; i-- {
		svc := s.services[i]
		svc.cancel()
		select {
		case err := <-svc.done:
			if err != nil && !errors.Is(err, context.Canceled) {
				errs = append(errs, fmt.Errorf("%s: %w", svc.name, err))
			}
		case <-time.After(StopTimeoutDefault):
			errs = append(errs, fmt.Errorf("%s did not stop within %s", svc.name, StopTimeoutDefault))
		}
	}
	s.services = nil
	if s.idle != nil {
		s.idle.stop()
	}
	if s.Bus != nil {
		s.Bus.Close()
		s.Bus = nil
	}
	if s.Server != nil {
		s.Server.Shutdown()
		s.Server.WaitForShutdown()
		s.Server = nil
	}
	if s.Store != nil {
		if err := s.Store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing store: %w", err))
		}
		s.Store = nil
	}
	if s.lock != nil {
		_ = s.lock.Unlock()
		s.lock = nil
	}
	if s.tempDir != "" {
		_ = os.RemoveAll(s.tempDir)
		s.tempDir = ""
	}
	return errors.Join(errs...)
}
