package processes

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/ork-go/ork/pkg/bus"
)

// Defaults of Config.
const (
	ExecutorsDefault           = 2
	ExecutorTypesDefault       = "process,python,noop,sleep"
	ExecutorConcurrencyDefault = 4
	// SchedulersDefault is two, as in docker-compose.yml and deploy/devstack.sh: every stack runs
	// the schedulers' races (the same run's events, the schedules lease) unless a test asks for one.
	SchedulersDefault = 2
)

// Config describes a whole stack of processes.
type Config struct {
	Binaries Binaries
	// Dir holds every process's log and the NATS server's store and configuration.
	Dir string
	// NATSBase is the text of deploy/nats-server.conf.
	NATSBase []byte
	// NATSPort is the client port; 0 means a free one.
	NATSPort int
	// NATSSyncInterval overrides the base's sync_interval when set.
	NATSSyncInterval string
	// DBURL is the PostgreSQL database of the recorder, which migrates it at start unless
	// MigrateFirst is set.
	DBURL string
	// MigrateFirst runs `ork migrate up` (Binaries.CLI) before starting the recorder with
	// --no-migrate, as docker-compose.yml's one-shot migrate service does.
	MigrateFirst bool
	// Executors is the number of executor processes, named executor-1, executor-2, ...; the name is
	// also the --instance recorded with every attempt.
	Executors           int
	ExecutorTypes       string
	ExecutorConcurrency int
	// Schedulers is the number of scheduler processes (scheduler, scheduler-2, ...), racing on the
	// same runs; the holder of the schedules lease fires the schedules. Default SchedulersDefault.
	Schedulers int
	// Recorders is the number of recorder processes (recorder, recorder-2, ...), sharing the
	// recorder's durable consumers; default 1.
	Recorders int
	// RecorderArgs, SchedulerArgs and ExecutorArgs are added to each process's command line, for
	// short timings in fault tests (--ack-wait, --reconcile-interval, ...).
	RecorderArgs  []string
	SchedulerArgs []string
	ExecutorArgs  []string
	// Env is added to the environment of every service.
	Env []string
	// WorkflowRoots are the executors' --workflow-roots; default the system's temporary directory,
	// where tests write their workflows.
	WorkflowRoots []string
	// NATSCluster, when above 1, starts that many nats-servers clustered over loopback instead of
	// one; the services get every node's URL. Give the services ORK_NATS_REPLICAS in Env.
	NATSCluster int
}

// WithDefaults returns the config with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Executors == 0 {
		c.Executors = ExecutorsDefault
	}
	if c.ExecutorTypes == "" {
		c.ExecutorTypes = ExecutorTypesDefault
	}
	if c.ExecutorConcurrency == 0 {
		c.ExecutorConcurrency = ExecutorConcurrencyDefault
	}
	if c.Schedulers == 0 {
		c.Schedulers = SchedulersDefault
	}
	if c.Recorders == 0 {
		c.Recorders = 1
	}
	if len(c.WorkflowRoots) == 0 {
		c.WorkflowRoots = []string{os.TempDir()}
	}
	return c
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.Binaries.NATSServer == "" || c.Binaries.Scheduler == "" || c.Binaries.Executor == "" || c.Binaries.Recorder == "":
		return errors.New("stack: Binaries must name nats-server, scheduler, executor and recorder")
	case c.Dir == "":
		return errors.New("stack: Dir is required")
	case len(c.NATSBase) == 0:
		return errors.New("stack: NATSBase is required")
	case c.DBURL == "":
		return errors.New("stack: DBURL is required")
	case c.MigrateFirst && c.Binaries.CLI == "":
		return errors.New("stack: MigrateFirst needs Binaries.CLI")
	case c.Executors < 1:
		return fmt.Errorf("stack: Executors must be positive, got %d", c.Executors)
	case c.ExecutorConcurrency < 1:
		return fmt.Errorf("stack: ExecutorConcurrency must be positive, got %d", c.ExecutorConcurrency)
	case c.Schedulers < 1:
		return fmt.Errorf("stack: Schedulers must be positive, got %d", c.Schedulers)
	case c.Recorders < 1:
		return fmt.Errorf("stack: Recorders must be positive, got %d", c.Recorders)
	}
	return nil
}

// Stack is a running set of processes: nats-server, recorder, scheduler and executors.
type Stack struct {
	// NATS is the (first) nats-server; NATSNodes holds every node of a cluster (Config.NATSCluster).
	NATS *NATS
	// Secrets are the role passwords (deploy/nats-server.conf): Auth and Connect use them.
	Secrets   Secrets
	NATSNodes []*NATS
	// Recorder is the first recorder; Recorders holds all of them (Config.Recorders).
	Recorder  *Process
	Recorders []*Process
	// Scheduler is the first scheduler; Schedulers holds all of them (Config.Schedulers).
	Scheduler  *Process
	Schedulers []*Process
	Executors  []*Process
	cfg        Config
}

// StartStack starts nats-server, waits until it is healthy, then starts the recorders, the
// schedulers and the executors. The services connect on their own; StartStack does not wait for
// them. On error, whatever was started is killed.
func StartStack(ctx context.Context, cfg Config) (*Stack, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating stack directory: %w", err)
	}
	s := &Stack{cfg: cfg}
	nc := NATSConfig{
		Binary:       cfg.Binaries.NATSServer,
		Dir:          filepath.Join(cfg.Dir, "nats"),
		Base:         cfg.NATSBase,
		Port:         cfg.NATSPort,
		SyncInterval: cfg.NATSSyncInterval,
	}
	if cfg.NATSCluster > 1 {
		nodes, err := StartNATSCluster(ctx, nc, cfg.NATSCluster)
		if err != nil {
			return nil, err
		}
		s.NATS, s.NATSNodes = nodes[0], nodes
	} else {
		n, err := StartNATS(ctx, nc)
		if err != nil {
			return nil, err
		}
		s.NATS, s.NATSNodes = n, []*NATS{n}
	}
	s.Secrets = s.NATS.Secrets
	if err := s.provision(ctx); err != nil {
		return nil, errors.Join(err, s.Kill())
	}
	if cfg.MigrateFirst {
		if err := s.migrate(ctx); err != nil {
			return nil, errors.Join(err, s.Kill())
		}
	}
	for i := 1; i <= cfg.Recorders; i++ {
		p, err := StartProcess(s.recorderSpec(i))
		if err != nil {
			return nil, errors.Join(err, s.Kill())
		}
		s.Recorders = append(s.Recorders, p)
	}
	s.Recorder = s.Recorders[0]
	for i := 1; i <= cfg.Schedulers; i++ {
		p, err := StartProcess(s.schedulerSpec(i))
		if err != nil {
			return nil, errors.Join(err, s.Kill())
		}
		s.Schedulers = append(s.Schedulers, p)
	}
	s.Scheduler = s.Schedulers[0]
	for i := 1; i <= cfg.Executors; i++ {
		p, err := StartProcess(s.ExecutorSpec("executor-" + strconv.Itoa(i)))
		if err != nil {
			return nil, errors.Join(err, s.Kill())
		}
		s.Executors = append(s.Executors, p)
	}
	return s, nil
}

// provision creates the streams and the bucket as the operator, with the stream limits of the
// services' environment (Config.Env), as `ork nats provision` does in the shipped stacks: the
// services' own roles may not, and they start with provisioning off.
func (s *Stack) provision(ctx context.Context) error {
	cfg := bus.Config{Name: "stack-provision"}
	getenv := func(name string) string {
		v := ""
		for _, kv := range s.cfg.Env {
			if k, val, ok := strings.Cut(kv, "="); ok && k == name {
				v = val // later entries win, as in a process's environment
			}
		}
		return v
	}
	if err := cfg.RegisterStreamFlags(flag.NewFlagSet("provision", flag.ContinueOnError), getenv); err != nil {
		return fmt.Errorf("stack: stream limits in Env: %w", err)
	}
	b, err := s.Connect(RoleOperator, cfg)
	if err != nil {
		return err
	}
	defer b.Close()
	return b.Provision(ctx)
}

// Auth returns the credentials of role on the stack's NATS (the Role* constants).
func (s *Stack) Auth(role string) bus.Auth { return s.Secrets.Auth(role) }

// Connect connects to the stack's NATS as role, with cfg's other settings (its URL and Auth are
// set here; an empty Name becomes the role).
func (s *Stack) Connect(role string, cfg bus.Config) (*bus.Bus, error) {
	cfg.URL, cfg.Auth = s.NATSURL(), s.Auth(role)
	if cfg.Name == "" {
		cfg.Name = role
	}
	return bus.Connect(cfg, zap.NewNop())
}

// serviceEnv is the environment of a service of role: its credentials, then Config.Env (which
// wins, so a test can give a service other ones).
func (s *Stack) serviceEnv(role string) []string {
	return append(s.Secrets.ClientEnv(role), s.cfg.Env...)
}

// NATSURL is the URL the services connect to: the server's, or every node's, comma-separated.
func (s *Stack) NATSURL() string {
	urls := make([]string, len(s.NATSNodes))
	for i, n := range s.NATSNodes {
		urls[i] = n.URL
	}
	return strings.Join(urls, ",")
}

// migrate runs `ork migrate up` to completion.
func (s *Stack) migrate(ctx context.Context) error {
	p, err := StartProcess(ProcessSpec{
		Name:    "migrate",
		Path:    s.cfg.Binaries.CLI,
		Args:    []string{"migrate", "up", "--db", s.cfg.DBURL},
		LogPath: filepath.Join(s.cfg.Dir, "migrate.log"),
	})
	if err != nil {
		return err
	}
	if err := p.Wait(ctx); err != nil {
		_ = p.Kill()
		return fmt.Errorf("ork migrate up: %w\n%s", err, p.LogTail())
	}
	return nil
}

// RecorderSpec returns how the stack starts its recorder: it applies the migrations at start,
// unless the stack ran them first.
func (s *Stack) RecorderSpec() ProcessSpec { return s.recorderSpec(1) }

// recorderSpec returns how the stack starts recorder i (1-based): "recorder", "recorder-2", ...
func (s *Stack) recorderSpec(i int) ProcessSpec {
	args := []string{"--nats", s.NATSURL(), "--db", s.cfg.DBURL}
	if s.cfg.MigrateFirst {
		args = append(args, "--no-migrate")
	}
	name := "recorder"
	if i > 1 {
		name += "-" + strconv.Itoa(i)
	}
	return ProcessSpec{
		Name:    name,
		Path:    s.cfg.Binaries.Recorder,
		Args:    append(args, s.cfg.RecorderArgs...),
		Env:     s.serviceEnv(RoleRecorder),
		LogPath: filepath.Join(s.cfg.Dir, name+".log"),
	}
}

// SchedulerSpec returns how the stack starts its (first) scheduler.
func (s *Stack) SchedulerSpec() ProcessSpec { return s.schedulerSpec(1) }

// schedulerSpec returns how the stack starts its i-th scheduler (1-based).
func (s *Stack) schedulerSpec(i int) ProcessSpec {
	name := "scheduler"
	if i > 1 {
		name += "-" + strconv.Itoa(i)
	}
	return ProcessSpec{
		Name:    name,
		Path:    s.cfg.Binaries.Scheduler,
		Args:    append([]string{"--nats", s.NATSURL()}, s.cfg.SchedulerArgs...),
		Env:     s.serviceEnv(RoleScheduler),
		LogPath: filepath.Join(s.cfg.Dir, name+".log"),
	}
}

// ExecutorSpec returns how the stack starts an executor with the given instance name; use it to add
// executors or to start a killed one again.
func (s *Stack) ExecutorSpec(instance string) ProcessSpec {
	return ProcessSpec{
		Name: instance,
		Path: s.cfg.Binaries.Executor,
		Args: append([]string{
			"--nats", s.NATSURL(),
			"--types", s.cfg.ExecutorTypes,
			"--concurrency", strconv.Itoa(s.cfg.ExecutorConcurrency),
			"--instance", instance,
			"--workflow-roots", strings.Join(s.cfg.WorkflowRoots, ","),
		}, s.cfg.ExecutorArgs...),
		Env:     s.serviceEnv(RoleExecutor),
		LogPath: filepath.Join(s.cfg.Dir, instance+".log"),
	}
}

// APISpec returns how to start the HTTP API (ork-api) over the stack: as the submitter role, on
// addr, reading the stack's database, requiring tokens, with registered workflows' folders
// relative to workflowsRoot.
func (s *Stack) APISpec(addr, workflowsRoot string) ProcessSpec {
	return ProcessSpec{
		Name: "api",
		Path: s.cfg.Binaries.API,
		Args: []string{"--nats", s.NATSURL(), "--db", s.cfg.DBURL, "--addr", addr, "--workflows-root", workflowsRoot,
			"--provision=false"},
		Env:     s.serviceEnv(RoleSubmitter),
		LogPath: filepath.Join(s.cfg.Dir, "api.log"),
	}
}

// APIReadyLine is what the API logs once it listens.
const APIReadyLine = "api listening"

// ExecutorReadyLine is what an executor logs once its consumers exist and it is pulling.
const ExecutorReadyLine = "executor started"

// WaitExecutors waits until every executor has logged ExecutorReadyLine since it last started.
func (s *Stack) WaitExecutors(ctx context.Context) error {
	for _, e := range s.Executors {
		if err := e.WaitLog(ctx, ExecutorReadyLine); err != nil {
			return err
		}
	}
	return nil
}

// Restart starts a service of the stack again with the spec it was started with (kill it first)
// and puts the new process in its place. Its log continues in the same file.
func (s *Stack) Restart(p *Process) (*Process, error) {
	if !p.Exited() {
		return nil, fmt.Errorf("restarting %s: it is still running", p.Name())
	}
	np, err := StartProcess(p.Spec())
	if err != nil {
		return nil, err
	}
	switch {
	case slices.Contains(s.Recorders, p):
		s.Recorders[slices.Index(s.Recorders, p)] = np
		s.Recorder = s.Recorders[0]
	case slices.Contains(s.Schedulers, p):
		s.Schedulers[slices.Index(s.Schedulers, p)] = np
		s.Scheduler = s.Schedulers[0]
	default:
		i := slices.Index(s.Executors, p)
		if i < 0 {
			_ = np.Kill()
			return nil, fmt.Errorf("restarting %s: not a service of this stack", p.Name())
		}
		s.Executors[i] = np
	}
	return np, nil
}

// Services returns the service processes in start order: recorder, schedulers, executors.
func (s *Stack) Services() []*Process {
	ps := slices.Clone(s.Recorders)
	ps = append(ps, s.Schedulers...)
	return append(ps, s.Executors...)
}

// Exited returns the services that have exited, for a test to check that none crashed.
func (s *Stack) Exited() []*Process {
	var out []*Process
	for _, p := range s.Services() {
		if p.Exited() {
			out = append(out, p)
		}
	}
	return out
}

// Stop stops the services in reverse start order, then nats-server, each with SIGTERM and
// timeout (StopTimeoutDefault when zero) before SIGKILL. It returns every process's error.
func (s *Stack) Stop(timeout time.Duration) error {
	var errs []error
	ps := s.Services()
	for i := len(ps) - 1; i >= 0; i-- {
		if err := ps[i].Stop(timeout); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ps[i].Name(), err))
		}
	}
	for _, n := range s.NATSNodes {
		if n.Process == nil {
			continue
		}
		if err := n.Stop(timeout); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n.Name(), err))
		}
	}
	return errors.Join(errs...)
}

// Kill sends SIGKILL to every process group of the stack and waits for them.
func (s *Stack) Kill() error {
	var errs []error
	for _, p := range s.Services() {
		errs = append(errs, p.Kill())
	}
	for _, n := range s.NATSNodes {
		if n.Process != nil {
			errs = append(errs, n.Kill())
		}
	}
	return errors.Join(errs...)
}

// KeepLogs copies every process's whole log into dir (created if needed) and returns the paths
// copied, so that a failed test's logs outlive its temporary directory.
func (s *Stack) KeepLogs(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	ps := s.Services()
	for _, n := range s.NATSNodes {
		if n.Process != nil {
			ps = append(ps, n.Process)
		}
	}
	seen := make(map[string]bool)
	var kept []string
	for _, p := range ps {
		src := p.LogPath()
		if seen[src] {
			continue
		}
		seen[src] = true
		data, err := os.ReadFile(src)
		if err != nil {
			return kept, err
		}
		dst := filepath.Join(dir, p.Name()+".log")
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			return kept, err
		}
		kept = append(kept, dst)
	}
	return kept, nil
}

// Logs returns the end of every process's log, for a failing test's message.
func (s *Stack) Logs() string {
	var out string
	ps := s.Services()
	for _, n := range s.NATSNodes {
		if n.Process != nil {
			ps = append(ps, n.Process)
		}
	}
	for _, p := range ps {
		out += "----- " + p.Name() + " (" + p.LogPath() + ")\n" + p.LogTail() + "\n"
	}
	return out
}
