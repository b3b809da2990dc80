package clusterbench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/ork-go/ork/deploy/processes"
	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/workflow"
)

// Backlog shape: complete successful runs of ceilingTasksPerRun noop tasks, i.e. run.submitted,
// run.started, three events per task (dispatched, started, succeeded) and run.finished.
const (
	ceilingTasksPerRun = 32
	eventsPerRun       = 2 + 3*ceilingTasksPerRun + 1
	// publishChunk is how many events are published before waiting for their acks.
	publishChunk = 4096
	// ceilingTimeout bounds one recorder measurement.
	ceilingTimeout = 10 * time.Minute
	// pollInterval is how often the consumer's ack floor is read.
	pollInterval = 10 * time.Millisecond
)

// CeilingPoint is one recorder measurement: a backlog of Events in ORK_EVENTS recorded into a
// fresh PostgreSQL database by a fresh recorder process.
type CeilingPoint struct {
	BatchSize int     `json:"batch_size"`
	Repeat    int     `json:"repeat"`
	Load1     float64 `json:"load1"`
	Events    int     `json:"events"`
	Runs      int     `json:"runs"`
	// Seconds runs from the recorder's "recorder started" line to its last "batch committed" line.
	Seconds      float64 `json:"seconds"`
	EventsPerSec float64 `json:"events_per_s"`
	Batches      int     `json:"batches"`
	MeanBatch    float64 `json:"mean_batch"`
	// CPU seconds over the same window: the recorder, nats-server, and the database's backends.
	RecorderCPU float64 `json:"recorder_cpu_s"`
	NATSCPU     float64 `json:"nats_cpu_s"`
	PostgresCPU float64 `json:"postgres_cpu_s"`
	// TasksRecorded and RunsRecorded are read from the database afterwards: every task and run of the
	// backlog must be a success.
	TasksRecorded int `json:"tasks_recorded_success"`
	RunsRecorded  int `json:"runs_recorded_success"`
	// CommitSeconds is the recorder's time inside ApplyBatch for ORK_EVENTS (its
	// ork_recorder_commit_seconds histogram's sum): the transactions' share of Seconds; -1 when the
	// metric could not be read.
	CommitSeconds float64 `json:"commit_s"`
	// Profile is the recorder's CPU profile file, when asked for.
	Profile string `json:"profile,omitempty"`
}

// ceiling measures every batch size Repeats times.
func (r *runner) ceiling(ctx context.Context) ([]CeilingPoint, error) {
	var out []CeilingPoint
	for rep := 1; rep <= r.cfg.Repeats; rep++ {
		for _, size := range r.cfg.BatchSizes {
			p, err := r.ceilingPoint(ctx, size, rep)
			if err != nil {
				return out, fmt.Errorf("recorder ceiling, batch size %d, repeat %d: %w", size, rep, err)
			}
			r.printf("  batch %4d #%d  %d events in %.2f s: %7.0f events/s, mean batch %.0f, CPU s recorder %.2f nats %.2f postgres %.2f, load %.1f\n",
				p.BatchSize, p.Repeat, p.Events, p.Seconds, p.EventsPerSec, p.MeanBatch, p.RecorderCPU, p.NATSCPU, p.PostgresCPU, p.Load1)
			out = append(out, p)
		}
	}
	return out, nil
}

func (r *runner) ceilingPoint(ctx context.Context, batchSize, rep int) (_ CeilingPoint, err error) {
	ctx, cancel := context.WithTimeout(ctx, ceilingTimeout)
	defer cancel()
	dir := filepath.Join(r.cfg.Dir, fmt.Sprintf("ceiling-%d-%d", batchSize, rep))
	p := CeilingPoint{BatchSize: batchSize, Repeat: rep}
	dbURL, err := processes.CreateDatabase(ctx, r.cfg.AdminURL, r.cfg.Database)
	if err != nil {
		return p, err
	}
	nats, err := processes.StartNATS(ctx, processes.NATSConfig{Binary: r.bins.NATSServer, Dir: filepath.Join(dir, "nats"), Base: r.natsBase})
	if err != nil {
		return p, err
	}
	defer func() { err = errors.Join(err, nats.Stop(5*time.Second)) }()
	b, err := bus.Connect(bus.Config{URL: nats.URL, Name: "benchcluster", Auth: nats.Secrets.Auth(processes.RoleOperator)}, zap.NewNop())
	if err != nil {
		return p, err
	}
	defer b.Close()
	if err := b.Provision(ctx); err != nil {
		return p, err
	}
	lastSeq, runs, err := publishBacklog(ctx, b, r.cfg.CeilingEvents)
	if err != nil {
		return p, err
	}
	p.Runs, p.Events = runs, runs*eventsPerRun
	p.Load1 = loadAverage()

	metricsAddr, err := freeAddr()
	if err != nil {
		return p, err
	}
	logPath := filepath.Join(dir, "recorder.log")
	rec, err := processes.StartProcess(processes.ProcessSpec{
		Name: "recorder", Path: r.bins.Recorder, LogPath: logPath,
		Args: []string{"--nats", nats.URL, "--db", dbURL, "--batch-size", strconv.Itoa(batchSize), "--log-level", "debug",
			"--metrics-addr", metricsAddr},
		Env: nats.Secrets.ClientEnv(processes.RoleRecorder),
	})
	if err != nil {
		return p, err
	}
	defer func() { err = errors.Join(err, rec.Stop(5*time.Second)) }()
	if err := rec.WaitLog(ctx, recorderReadyLine); err != nil {
		return p, fmt.Errorf("waiting for the recorder: %w\n%s", err, rec.LogTail())
	}
	backends := postgresBackends(r.cfg.Database)
	recCPU0, _ := rec.CPUTime()
	natsCPU0, _ := nats.CPUTime()
	pgCPU0 := cpuOf(backends)
	var profiled <-chan error
	if r.cfg.Profile {
		p.Profile = filepath.Join(dir, "recorder.pprof")
		profiled = fetchProfile(ctx, "http://"+metricsAddr, p.Profile)
	}
	if err := waitAcked(ctx, b, lastSeq, rec); err != nil {
		return p, err
	}
	p.CommitSeconds = commitSeconds(ctx, "http://"+metricsAddr)
	recCPU1, _ := rec.CPUTime()
	natsCPU1, _ := nats.CPUTime()
	pgCPU1 := cpuOf(backends)
	p.RecorderCPU, p.NATSCPU, p.PostgresCPU = (recCPU1 - recCPU0).Seconds(), (natsCPU1 - natsCPU0).Seconds(), (pgCPU1 - pgCPU0).Seconds()

	w, err := commitWindow(logPath)
	if err != nil {
		return p, err
	}
	if w.events != p.Events {
		return p, fmt.Errorf("the recorder logged %d committed events, want %d", w.events, p.Events)
	}
	p.Seconds = w.last.Sub(w.started).Seconds()
	if p.Seconds <= 0 {
		return p, fmt.Errorf("recorder log: last commit at %s is not after the start at %s", w.last, w.started)
	}
	p.EventsPerSec = float64(p.Events) / p.Seconds
	p.Batches = w.batches
	p.MeanBatch = float64(w.events) / float64(w.batches)
	if p.RunsRecorded, p.TasksRecorded, err = countSucceeded(ctx, dbURL); err != nil {
		return p, err
	}
	if p.RunsRecorded != runs || p.TasksRecorded != runs*ceilingTasksPerRun {
		return p, fmt.Errorf("database holds %d succeeded runs and %d succeeded tasks, want %d and %d",
			p.RunsRecorded, p.TasksRecorded, runs, runs*ceilingTasksPerRun)
	}
	if profiled != nil {
		if err := <-profiled; err != nil {
			return p, err
		}
	}
	return p, nil
}

// backlogPlan is the workflow of every backlog run.
func backlogPlan() *workflow.Plan {
	p := &workflow.Plan{Name: "benchcluster", Dir: "/benchcluster", Hash: "benchcluster-" + strconv.Itoa(ceilingTasksPerRun)}
	for i := range ceilingTasksPerRun {
		p.Tasks = append(p.Tasks, workflow.Task{Name: fmt.Sprintf("t%03d", i), Index: i, Executor: workflow.ExecutorNoop, TimeoutSeconds: 300})
	}
	return p
}

// runEvents returns the events of one complete successful run of p, as the services publish them.
func runEvents(run string, p *workflow.Plan) []event.Event {
	sub := event.New(event.TypeRunSubmitted, run, "", 0)
	sub.Workflow, sub.Plan, sub.TriggeredBy, sub.IdempotencyKey = p.Name, p, "benchcluster", run
	evs := []event.Event{sub, event.New(event.TypeRunStarted, run, "", 0)}
	for _, tk := range p.Tasks {
		d := event.New(event.TypeTaskDispatched, run, tk.Name, 1)
		d.Executor = tk.Executor
		s := event.New(event.TypeTaskStarted, run, tk.Name, 1)
		s.Instance = "executor-1"
		ok := event.New(event.TypeTaskSucceeded, run, tk.Name, 1)
		ok.Instance, ok.Output, ok.DurationMS = "executor-1", json.RawMessage(`{"n":1}`), 1
		evs = append(evs, d, s, ok)
	}
	fin := event.New(event.TypeRunFinished, run, "", 0)
	fin.Status = event.RunSuccess
	return append(evs, fin)
}

// publishBacklog publishes complete runs until at least n events are in ORK_EVENTS and returns the
// stream's last sequence and the number of runs.
func publishBacklog(ctx context.Context, b *bus.Bus, n int) (lastSeq uint64, runs int, err error) {
	plan := backlogPlan()
	runs = (n + eventsPerRun - 1) / eventsPerRun
	batch := b.NewBatch(publishChunk)
	for range runs {
		for _, e := range runEvents(event.NewID(), plan) {
			m, err := bus.EventMsg(&e)
			if err != nil {
				return 0, 0, err
			}
			batch.Add(m)
		}
		if batch.Len() >= publishChunk {
			if err := batch.Wait(ctx); err != nil {
				return 0, 0, err
			}
			batch = b.NewBatch(publishChunk)
		}
	}
	if err := batch.Wait(ctx); err != nil {
		return 0, 0, err
	}
	st, err := b.JS.Stream(ctx, event.StreamEvents)
	if err != nil {
		return 0, 0, fmt.Errorf("reading %s: %w", event.StreamEvents, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("reading %s: %w", event.StreamEvents, err)
	}
	if got := info.State.Msgs; got != uint64(runs*eventsPerRun) {
		return 0, 0, fmt.Errorf("%s holds %d messages, want %d", event.StreamEvents, got, runs*eventsPerRun)
	}
	return info.State.LastSeq, runs, nil
}

// waitAcked waits until the recorder's consumer acknowledged every message up to lastSeq.
func waitAcked(ctx context.Context, b *bus.Bus, lastSeq uint64, rec *processes.Process) error {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		cons, err := b.JS.Consumer(ctx, event.StreamEvents, event.ConsumerRecorderEvents)
		if err == nil {
			info, err := cons.Info(ctx)
			if err == nil && info.AckFloor.Stream >= lastSeq {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the recorder's acks: %w\n%s", ctx.Err(), rec.LogTail())
		case <-rec.Done():
			return fmt.Errorf("the recorder exited: %w\n%s", rec.Err(), rec.LogTail())
		case <-t.C:
		}
	}
}

// window is what commitWindow reads from a recorder log.
type window struct {
	started time.Time // the "recorder started" line
	last    time.Time // the last "batch committed" line of ORK_EVENTS
	batches int
	events  int
}

// logLine is the part of a JSON log line of ork-recorder read here.
type logLine struct {
	TS     string `json:"ts"`
	Msg    string `json:"msg"`
	Stream string `json:"stream"`
	Count  *int   `json:"count"`
}

// logTimeLayout is zap's ISO8601 time encoding used by pkg/logging.
const logTimeLayout = "2006-01-02T15:04:05.000Z0700"

// commitWindow reads a recorder's debug log: when it started and when, in how many batches, it
// committed how many ORK_EVENTS messages.
func commitWindow(path string) (window, error) {
	f, err := os.Open(path)
	if err != nil {
		return window{}, fmt.Errorf("reading recorder log: %w", err)
	}
	defer func() { _ = f.Close() }()
	var w window
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var l logLine
		if !strings.HasPrefix(sc.Text(), "{") || json.Unmarshal(sc.Bytes(), &l) != nil {
			continue
		}
		ts, err := time.Parse(logTimeLayout, l.TS)
		if err != nil {
			continue
		}
		switch {
		case l.Msg == recorderReadyLine:
			w.started = ts
		case l.Msg == "batch committed" && l.Stream == event.StreamEvents && l.Count != nil:
			w.batches++
			w.events += *l.Count
			w.last = ts
		}
	}
	if err := sc.Err(); err != nil {
		return window{}, fmt.Errorf("reading recorder log: %w", err)
	}
	if w.started.IsZero() || w.batches == 0 {
		return window{}, fmt.Errorf("recorder log %s: no %q line or no committed batch (is it at debug level?)", path, recorderReadyLine)
	}
	return w, nil
}

// countSucceeded counts the succeeded runs and tasks in the database.
func countSucceeded(ctx context.Context, dbURL string) (runs, tasks int, err error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return 0, 0, fmt.Errorf("connecting to the database: %w", err)
	}
	defer func() { _ = conn.Close(ctx) }()
	err = conn.QueryRow(ctx,
		`SELECT (SELECT count(*) FROM runs WHERE status = 'success'), (SELECT count(*) FROM tasks WHERE status = 'success')`,
	).Scan(&runs, &tasks)
	if err != nil {
		return 0, 0, fmt.Errorf("counting recorded runs and tasks: %w", err)
	}
	return runs, tasks, nil
}
