package bench

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/ork-go/ork/cmd/ork/internal/embedded"
	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/client"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/store/storeopen"
	"github.com/ork-go/ork/pkg/workflow"
)

// env is what the scenarios run against.
type env struct {
	cfg     Config
	bus     *bus.Bus
	store   store.Store // nil in cluster mode without a database
	procs   []process
	counter *batchCounter // embedded mode: the recorder's batches, through its commit hook
	// cluster mode: the recorder's metrics endpoint, and its counts before the scenario
	recMetrics string
	recBefore  RecorderStats
	recErr     error
	dir        string // the plans' directory
	log        *zap.Logger
}

// Run executes cfg and reports what it measured. progress, when not nil, is called before each
// scenario with its name.
func Run(ctx context.Context, cfg Config, log *zap.Logger, progress func(string)) (_ *Report, err error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "ork-bench-")
	if err != nil {
		return nil, fmt.Errorf("creating temporary directory: %w", err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	e := &env{cfg: cfg, dir: filepath.Join(dir, "plans"), log: log}
	if err := os.Mkdir(e.dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating temporary directory: %w", err)
	}
	if err := os.WriteFile(filepath.Join(e.dir, PythonTaskFile), []byte(pythonTaskSource), 0o644); err != nil {
		return nil, fmt.Errorf("writing the python task: %w", err)
	}
	rep := &Report{Config: cfg.Name, Mode: cfg.Mode, Machine: machine(), StartedAt: time.Now().UTC()}

	switch cfg.Mode {
	case ModeEmbedded:
		e.counter = &batchCounter{}
		stk, err := embedded.Start(ctx, embedded.Config{
			DataDir: filepath.Join(dir, "data"), DBURL: cfg.DBURL, Concurrency: cfg.Concurrency, Bus: bus.Config{Memory: cfg.Memory},
			OnRecorderCommit: func(c embedded.RecorderCommit) { e.counter.add(c.Stream, c.Messages) },
		}, log)
		if err != nil {
			return nil, fmt.Errorf("starting the in-process stack: %w", err)
		}
		defer func() {
			if stopErr := stk.Stop(); stopErr != nil && err == nil {
				err = fmt.Errorf("stopping the in-process stack: %w", stopErr)
			}
		}()
		e.bus, e.store = stk.Bus, stk.Store
		e.procs = []process{{service: "ork (all)"}}
		rep.Store = "sqlite in a temporary directory"
		if cfg.DBURL != "" {
			rep.Store = redact(cfg.DBURL)
		}
		rep.Notes = append(rep.Notes,
			"embedded: NATS, recorder, scheduler, executor and the benchmark's event follower share one process; its CPU and RSS are reported as \"ork (all)\"",
			"recorder batches: counted by the in-process recorder's commit hook (one per committed transaction)",
			fmt.Sprintf("executor concurrency %d", cfg.Concurrency))
		if cfg.Memory {
			rep.Notes = append(rep.Notes, "JetStream streams in memory (--memory), not on disk")
		}
	case ModeCluster:
		b, err := bus.Connect(bus.Config{URL: cfg.NATSURL, Name: "ork-bench", Auth: cfg.NATSAuth}, log.Named("bus"))
		if err != nil {
			return nil, err
		}
		defer b.Close()
		// A submitter's credentials suffice: the cluster's services provisioned the streams.
		if err := b.Ensure(ctx); err != nil {
			return nil, err
		}
		e.bus = b
		rep.Store = "not read (no --db)"
		if cfg.DBURL != "" {
			st, err := storeopen.Open(ctx, cfg.DBURL)
			if err != nil {
				return nil, fmt.Errorf("opening database: %w", err)
			}
			defer func() { _ = st.Close() }()
			e.store = st
			rep.Store = redact(cfg.DBURL)
		}
		if e.procs, err = devstackProcesses(cfg.DevstackDir); err != nil {
			return nil, err
		}
		if len(e.procs) == 0 {
			rep.Notes = append(rep.Notes, "cluster: no live process in "+cfg.DevstackDir+"/*.pid, so no CPU or memory figures")
		} else {
			rep.Notes = append(rep.Notes, "cluster: CPU from /proc/<pid>/stat and RSS from /proc/<pid>/status of the pids in "+cfg.DevstackDir+"/*.pid")
		}
		e.recMetrics = cfg.RecorderMetricsURL
		rep.Notes = append(rep.Notes, "recorder batches: from the recorder's "+batchSizeMetric+" histogram at "+cfg.RecorderMetricsURL+", read before and after each scenario (with several recorders, the one scraped)")
	}
	rep.Notes = append(rep.Notes,
		"throughput: from just before the first submission to the arrival of the last run's recorder notice (sent after its run.finished is committed)",
		"latencies: from the Time of the events, stamped by their publishers (executor: task.started, task.succeeded) on this machine's clock")

	idle := cfg.Idle > 0 && len(e.procs) > 0
	if idle {
		if err := e.sampleIdle(ctx, rep, idleBefore, progress); err != nil {
			return rep, err
		}
	}
	for _, sc := range cfg.Scenarios {
		if progress != nil {
			progress(sc.Name)
		}
		res, err := e.scenario(ctx, sc)
		if err != nil {
			return rep, fmt.Errorf("scenario %s: %w", sc.Name, err)
		}
		rep.Scenarios = append(rep.Scenarios, res)
	}
	if idle {
		if err := e.sampleIdle(ctx, rep, idleAfter, progress); err != nil {
			return rep, err
		}
		if cfg.Mode == ModeEmbedded {
			rep.Notes = append(rep.Notes, "idle after load: sampled after a garbage collection that returns the benchmark's own freed memory to the system")
		}
	}
	return rep, nil
}

// scenario runs one scenario and measures it.
func (e *env) scenario(ctx context.Context, sc Scenario) (ScenarioResult, error) {
	res := ScenarioResult{Scenario: sc, Runs: sc.RunCount(), TasksPerRun: sc.TasksPerRun(), RunsRecordedSuccess: -1, TasksRecordedSuccess: -1}
	res.Tasks = res.Runs * res.TasksPerRun
	plan, err := BuildPlan(sc, e.dir)
	if err != nil {
		return res, err
	}
	runIDs := make([]string, res.Runs)
	for i := range runIDs {
		runIDs[i] = event.NewID()
	}
	ctx, cancel := context.WithTimeout(ctx, e.cfg.ScenarioTimeout)
	defer cancel()

	col := newCollector(runIDs, res.TasksPerRun)
	seq, err := nextSeq(ctx, e.bus)
	if err != nil {
		return res, err
	}
	stop, err := col.follow(ctx, e.bus, seq)
	if err != nil {
		return res, err
	}
	defer stop()
	if e.counter != nil {
		e.counter.take()
	}
	if e.recMetrics != "" {
		e.recBefore, e.recErr = scrapeBatches(ctx, e.recMetrics)
	}
	m, err := startMeter(e.procs)
	if err != nil {
		return res, err
	}

	start := time.Now()
	if err := e.submit(ctx, plan, runIDs, col); err != nil {
		return res, err
	}
	if err := col.wait(ctx); err != nil {
		return res, err
	}
	if res.Resources, err = m.stop(); err != nil {
		return res, err
	}
	for _, r := range res.Resources {
		res.CPUPerTask += r.CPUSeconds * 1000 / float64(res.Tasks)
	}
	col.mu.Lock()
	end := col.last
	col.mu.Unlock()
	res.DurationSeconds = end.Sub(start).Seconds()
	// Every run commits at least run.submitted, run.started and run.finished, and every task
	// task.dispatched, task.started and a terminal event.
	res.Recorder = e.recorderStats(start, end, res.DurationSeconds, 3*res.Runs+3*res.Tasks)
	stop()
	col.mu.Lock()
	col.fill(&res, plan)
	col.mu.Unlock()
	if e.store != nil {
		if err := e.readBack(ctx, &res, sc, runIDs); err != nil {
			return res, err
		}
	}
	if res.DurationSeconds > 0 {
		tasks, runs := res.Succeeded()
		res.TasksPerSecond = float64(tasks) / res.DurationSeconds
		res.RunsPerSecond = float64(runs) / res.DurationSeconds
	}
	return res, nil
}

// submit publishes the runs, from cfg.Submitters goroutines when there are several.
func (e *env) submit(ctx context.Context, plan *workflow.Plan, runIDs []string, col *collector) error {
	cl := client.New(e.bus)
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(e.cfg.Submitters)
	for _, id := range runIDs {
		g.Go(func() error {
			col.submitted(id, time.Now())
			_, err := cl.Submit(ctx, client.SubmitParams{Plan: plan, RunID: id, TriggeredBy: "ork-bench"})
			return err
		})
	}
	return g.Wait()
}

// lastBatchWait bounds the wait for the recorder's report of a scenario's last batch.
const lastBatchWait = 200 * time.Millisecond

// recorderStats reads the recorder's batches committed between start and end.
func (e *env) recorderStats(start, end time.Time, seconds float64, minEvents int) RecorderStats {
	var st RecorderStats
	switch {
	case e.counter != nil:
		e.counter.waitEvents(minEvents, lastBatchWait)
		st = e.counter.take()
		st.Source = "in-process recorder commit hook"
	case e.recMetrics != "":
		if e.recErr != nil {
			return RecorderStats{Unavailable: true, UnavailableWhy: e.recErr.Error()}
		}
		// The recorder reports a batch just after publishing its notices: look again until the
		// scenario's events are all counted, for a moment.
		deadline := time.Now().Add(lastBatchWait)
		for {
			after, err := scrapeBatches(context.Background(), e.recMetrics)
			if err != nil {
				return RecorderStats{Unavailable: true, UnavailableWhy: err.Error()}
			}
			st = after.since(e.recBefore)
			if st.EventMessages >= minEvents || time.Now().After(deadline) {
				break
			}
			t := time.NewTimer(lastBatchWait / 10)
			<-t.C
		}
		st.Source = e.recMetrics
	default:
		return RecorderStats{Unavailable: true, UnavailableWhy: "no recorder to count"}
	}
	if st.EventBatches > 0 {
		st.MeanBatch = float64(st.EventMessages) / float64(st.EventBatches)
	}
	if seconds > 0 {
		st.EventsPerSec = float64(st.EventMessages) / seconds
	}
	return st
}

// fill computes the counts and latencies of res from what c saw. Called with c.mu held.
func (c *collector) fill(res *ScenarioResult, plan *workflow.Plan) {
	var dep, first []time.Duration
	for _, r := range c.runs {
		if r.status == event.RunSuccess {
			res.RunsSucceeded++
		}
		res.TasksStarted += len(r.started)
		res.TasksSucceeded += len(r.succeeded)
		res.TasksFailed += r.failed
		res.TasksSkipped += r.skipped
		var earliest time.Time
		for _, t := range r.started {
			if earliest.IsZero() || t.Before(earliest) {
				earliest = t
			}
		}
		if !earliest.IsZero() && !r.submitted.IsZero() {
			first = append(first, earliest.Sub(r.submitted))
		}
		for i := range plan.Tasks {
			t := &plan.Tasks[i]
			if len(t.DependsOn) == 0 {
				continue
			}
			started, ok := r.started[t.Name]
			if !ok {
				continue
			}
			var ready time.Time
			complete := true
			for _, d := range t.DependsOn {
				done, ok := r.succeeded[d]
				if !ok {
					complete = false
					break
				}
				if done.After(ready) {
					ready = done
				}
			}
			if complete {
				dep = append(dep, started.Sub(ready))
			}
		}
	}
	res.DepToStart = summarize(dep)
	res.SubmitToFirstTask = summarize(first)
}

// readBack counts the successful runs and tasks the database holds for runIDs.
func (e *env) readBack(ctx context.Context, res *ScenarioResult, sc Scenario, runIDs []string) error {
	res.RunsRecordedSuccess, res.TasksRecordedSuccess, res.TasksRecordedFailed, res.TasksRecordedSkipped = 0, 0, 0, 0
	for _, id := range runIDs {
		run, err := e.store.RunGet(ctx, store.RunGetParams{ID: id})
		if err != nil {
			return fmt.Errorf("reading run %s back: %w", id, err)
		}
		if run.Status == event.RunSuccess {
			res.RunsRecordedSuccess++
		}
		tasks, err := e.store.TaskList(ctx, store.TaskListParams{RunID: id})
		if err != nil {
			return fmt.Errorf("reading tasks of run %s back: %w", id, err)
		}
		for _, t := range tasks {
			if sc.TaskType == TaskPython && sc.Shape == ShapeChain && t.Status == event.TaskSuccess && t.Name == taskName("c", sc.Depth-1) {
				// The value went through every task: the last one returns the sum of all.
				if want := strconv.Itoa(PythonChainResult(sc.Depth)); string(t.Output) != want {
					return fmt.Errorf("run %s: the last task of the python chain returned %s, want %s", id, t.Output, want)
				}
			}
			switch t.Status {
			case event.TaskSuccess:
				res.TasksRecordedSuccess++
			case event.TaskFailed, event.TaskLost:
				res.TasksRecordedFailed++
			case event.TaskSkipped:
				res.TasksRecordedSkipped++
			}
		}
	}
	return nil
}

// The two idle samples.
const (
	idleBefore = "before load"
	idleAfter  = "after load"
)

// sampleIdle adds an idle sample to rep.
func (e *env) sampleIdle(ctx context.Context, rep *Report, when string, progress func(string)) error {
	if progress != nil {
		progress(fmt.Sprintf("idle %s (%s)", when, e.cfg.Idle))
	}
	idle, err := e.idle(ctx)
	if err != nil {
		return fmt.Errorf("sampling idle %s: %w", when, err)
	}
	idle.When = when
	rep.Idle = append(rep.Idle, *idle)
	if when == idleAfter && e.cfg.HeapProfile != "" {
		return writeHeapProfile(e.cfg.HeapProfile)
	}
	return nil
}

// idle measures the services with nothing to do for cfg.Idle.
func (e *env) idle(ctx context.Context) (*Idle, error) {
	if e.cfg.Mode == ModeEmbedded {
		runtime.GC()
		debug.FreeOSMemory()
	}
	m, err := startMeter(e.procs)
	if err != nil {
		return nil, err
	}
	t := time.NewTimer(e.cfg.Idle)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	res, err := m.stop()
	if err != nil {
		return nil, err
	}
	return &Idle{Seconds: e.cfg.Idle.Seconds(), Resources: res}, nil
}

// writeHeapProfile writes the live heap, after a collection, to path.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("creating heap profile: %w", err)
	}
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		_ = f.Close()
		return fmt.Errorf("writing heap profile: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing heap profile: %w", err)
	}
	return nil
}

// redact hides the password of a database URL.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
