package clusterbench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ork-go/ork/deploy/processes"
)

// readyTimeout bounds the wait for a started stack's services to log that they are ready.
const readyTimeout = 60 * time.Second

// Service readiness lines (the services' "… started" info logs).
const (
	recorderReadyLine  = "recorder started"
	schedulerReadyLine = "scheduler started"
)

// ScenarioTask is the task type of a scaling scenario.
type ScenarioTask struct {
	TaskType string
	Tasks    int
}

// ServiceCPU is the CPU one service used during a scenario.
type ServiceCPU struct {
	Service string `json:"service"`
	// CPUSeconds is utime + stime over the scenario (10 ms ticks).
	CPUSeconds float64 `json:"cpu_s"`
	// MsPerTask is CPUSeconds per task, in milliseconds.
	MsPerTask float64 `json:"cpu_ms_per_task"`
	// Percent is CPUSeconds over the scenario's wall time, in % of one core (200 % = both cores of
	// the reference machine).
	Percent float64 `json:"cpu_percent"`
}

// ScalePoint is one scenario measured at one executor count.
type ScalePoint struct {
	Executors   int     `json:"executors"`
	Concurrency int     `json:"concurrency"`
	Repeat      int     `json:"repeat"`
	Scenario    string  `json:"scenario"`
	Tasks       int     `json:"tasks"`
	Load1       float64 `json:"load1"`
	Seconds     float64 `json:"seconds"`
	TasksPerSec float64 `json:"tasks_per_s"`
	// TasksRecorded is what ork bench read back from the database as succeeded.
	TasksRecorded int     `json:"tasks_recorded_success"`
	RecorderEvS   float64 `json:"recorder_events_per_s"`
	MeanBatch     float64 `json:"recorder_mean_batch"`
	// Services are the stack's processes (executors summed into one "executors" entry, each one
	// also listed) and the PostgreSQL backends of the database.
	Services []ServiceCPU `json:"services"`
	// TotalMsPerTask and TotalPercent add up Services (executors counted once).
	TotalMsPerTask float64 `json:"total_cpu_ms_per_task"`
	TotalPercent   float64 `json:"total_cpu_percent"`
	// BenchCPUSeconds is the whole `ork bench` command's CPU (start, submission, event follower,
	// read-back), outside the services' figures.
	BenchCPUSeconds float64 `json:"bench_cpu_s"`
}

// benchReport is the part of `ork bench --json` output read here.
type benchReport struct {
	Scenarios []struct {
		Tasks                int     `json:"tasks"`
		DurationSeconds      float64 `json:"duration_s"`
		TasksPerSecond       float64 `json:"tasks_per_s"`
		TasksRecordedSuccess int     `json:"tasks_recorded_success"`
		TasksRecordedFailed  int     `json:"tasks_recorded_failed"`
		TasksRecordedSkipped int     `json:"tasks_recorded_skipped"`
		Recorder             struct {
			EventsPerSec float64 `json:"events_per_s"`
			MeanBatch    float64 `json:"mean_batch"`
		} `json:"recorder"`
		Resources []struct {
			Service    string  `json:"service"`
			CPUSeconds float64 `json:"cpu_s"`
		} `json:"resources"`
	} `json:"scenarios"`
}

// scaling measures every executor count Repeats times, each on a fresh database and stack.
func (r *runner) scaling(ctx context.Context) ([]ScalePoint, error) {
	var out []ScalePoint
	for rep := 1; rep <= r.cfg.Repeats; rep++ {
		for _, n := range r.cfg.Executors {
			pts, err := r.scalePoint(ctx, n, rep)
			if err != nil {
				return out, fmt.Errorf("%d executors, repeat %d: %w", n, rep, err)
			}
			for _, p := range pts {
				r.printf("  %d executor(s) #%d %-14s %6.2f s %7.0f tasks/s  %.3f CPU ms/task  load %.1f\n",
					p.Executors, p.Repeat, p.Scenario, p.Seconds, p.TasksPerSec, p.TotalMsPerTask, p.Load1)
			}
			out = append(out, pts...)
		}
	}
	return out, nil
}

// scalePoint starts a stack with n executors on a fresh database and runs the wide noop and the
// wide process scenario against it.
func (r *runner) scalePoint(ctx context.Context, n, rep int) (_ []ScalePoint, err error) {
	dir := filepath.Join(r.cfg.Dir, fmt.Sprintf("scale-%d-%d", n, rep))
	dbURL, err := processes.CreateDatabase(ctx, r.cfg.AdminURL, r.cfg.Database)
	if err != nil {
		return nil, err
	}
	s, err := processes.StartStack(ctx, processes.Config{
		Binaries:            r.bins,
		Dir:                 dir,
		NATSBase:            r.natsBase,
		DBURL:               dbURL,
		Executors:           n,
		ExecutorTypes:       "noop,process",
		ExecutorConcurrency: r.cfg.Concurrency,
		// One scheduler, as the published results had, and the one whose CPU the pid files count.
		Schedulers: 1,
		// ork bench counts the recorder's batches from its debug lines (one per transaction).
		RecorderArgs: []string{"--log-level", "debug"},
	})
	if err != nil {
		return nil, err
	}
	defer func() {
		err = errors.Join(err, s.Stop(5*time.Second))
	}()
	if err := waitReady(ctx, s); err != nil {
		return nil, err
	}
	pids := map[string]int{"nats-server": s.NATS.Pid(), "recorder": s.Recorder.Pid(), "scheduler": s.Scheduler.Pid()}
	for _, e := range s.Executors {
		pids[e.Name()] = e.Pid()
	}
	// The recorder's pool connections exist once it has migrated and started.
	for i, pid := range postgresBackends(r.cfg.Database) {
		pids["postgres-"+strconv.Itoa(i+1)] = pid
	}
	if err := writePIDFiles(dir, pids); err != nil {
		return nil, err
	}
	var out []ScalePoint
	for _, sc := range []ScenarioTask{{"noop", r.cfg.NoopTasks}, {"process", r.cfg.ProcessTasks}} {
		p, err := r.runBench(ctx, dir, s.NATS.URL, s.Secrets, dbURL, sc)
		if err != nil {
			return out, err
		}
		p.Executors, p.Concurrency, p.Repeat = n, r.cfg.Concurrency, rep
		out = append(out, p)
	}
	if ex := s.Exited(); len(ex) > 0 {
		return out, fmt.Errorf("%s exited during the benchmark:\n%s", ex[0].Name(), s.Logs())
	}
	return out, nil
}

// waitReady waits until the recorder, the scheduler and every executor logged their start line.
func waitReady(ctx context.Context, s *processes.Stack) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	if err := s.Recorder.WaitLog(ctx, recorderReadyLine); err != nil {
		return fmt.Errorf("waiting for the recorder: %w\n%s", err, s.Logs())
	}
	if err := s.Scheduler.WaitLog(ctx, schedulerReadyLine); err != nil {
		return fmt.Errorf("waiting for the scheduler: %w\n%s", err, s.Logs())
	}
	if err := s.WaitExecutors(ctx); err != nil {
		return fmt.Errorf("waiting for the executors: %w\n%s", err, s.Logs())
	}
	return nil
}

// runBench runs one wide scenario with `ork bench` in cluster mode and reads its JSON report.
func (r *runner) runBench(ctx context.Context, dir, natsURL string, secrets processes.Secrets, dbURL string, sc ScenarioTask) (ScalePoint, error) {
	name := fmt.Sprintf("wide-%d-%s", sc.Tasks, sc.TaskType)
	out := filepath.Join(dir, name+".json")
	load := loadAverage()
	cmd := exec.CommandContext(ctx, r.bins.CLI, "bench",
		"--nats", natsURL, "--db", dbURL, "--devstack-dir", dir, "--idle", "0",
		"--shape", "wide", "--tasks", strconv.Itoa(sc.Tasks), "--task-type", sc.TaskType,
		"--out", out)
	cmd.Env = append(os.Environ(), secrets.ClientEnv(processes.RoleSubmitter)...)
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Run(); err != nil {
		return ScalePoint{}, fmt.Errorf("ork bench %s: %w\n%s", name, err, output.String())
	}
	if err := os.WriteFile(filepath.Join(dir, name+".txt"), output.Bytes(), 0o644); err != nil {
		return ScalePoint{}, fmt.Errorf("writing ork bench output: %w", err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		return ScalePoint{}, fmt.Errorf("reading ork bench report: %w", err)
	}
	p, err := pointFromReport(data)
	if err != nil {
		return ScalePoint{}, fmt.Errorf("ork bench %s: %w", name, err)
	}
	p.Scenario, p.Load1 = name, load
	p.BenchCPUSeconds = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	return p, nil
}

// pointFromReport turns ork bench's JSON report of one scenario into a ScalePoint: per-service
// CPU, the executors also summed, PostgreSQL backends summed into "postgres".
func pointFromReport(data []byte) (ScalePoint, error) {
	var rep benchReport
	if err := json.Unmarshal(data, &rep); err != nil {
		return ScalePoint{}, fmt.Errorf("decoding ork bench report: %w", err)
	}
	if len(rep.Scenarios) != 1 {
		return ScalePoint{}, fmt.Errorf("ork bench report has %d scenarios, want 1", len(rep.Scenarios))
	}
	sc := rep.Scenarios[0]
	if sc.Tasks < 1 || sc.DurationSeconds <= 0 {
		return ScalePoint{}, fmt.Errorf("ork bench report: %d tasks in %g s", sc.Tasks, sc.DurationSeconds)
	}
	// The figures count only what succeeded; a point with failures is no measurement of the stack.
	if sc.TasksRecordedSuccess != sc.Tasks {
		return ScalePoint{}, fmt.Errorf("ork bench report: %d of %d tasks recorded as succeeded (%d failed, %d skipped)",
			sc.TasksRecordedSuccess, sc.Tasks, sc.TasksRecordedFailed, sc.TasksRecordedSkipped)
	}
	p := ScalePoint{
		Tasks: sc.Tasks, Seconds: sc.DurationSeconds, TasksPerSec: sc.TasksPerSecond,
		TasksRecorded: sc.TasksRecordedSuccess,
		RecorderEvS:   sc.Recorder.EventsPerSec, MeanBatch: sc.Recorder.MeanBatch,
	}
	sums := map[string]float64{}
	var order []string
	add := func(name string, cpu float64) {
		if _, ok := sums[name]; !ok {
			order = append(order, name)
		}
		sums[name] += cpu
	}
	var executors []ServiceCPU
	for _, res := range sc.Resources {
		group := serviceGroup(res.Service)
		if group == "executors" {
			executors = append(executors, p.cpu(res.Service, res.CPUSeconds))
		}
		add(group, res.CPUSeconds)
	}
	slices.SortFunc(order, func(a, b string) int { return groupRank(a) - groupRank(b) })
	for _, name := range order {
		c := p.cpu(name, sums[name])
		p.Services = append(p.Services, c)
		p.TotalMsPerTask += c.MsPerTask
		p.TotalPercent += c.Percent
	}
	if len(executors) > 1 {
		p.Services = append(p.Services, executors...)
	}
	return p, nil
}

// cpu builds the ServiceCPU of cpuSeconds spent during p.
func (p ScalePoint) cpu(service string, cpuSeconds float64) ServiceCPU {
	return ServiceCPU{
		Service:    service,
		CPUSeconds: cpuSeconds,
		MsPerTask:  1000 * cpuSeconds / float64(p.Tasks),
		Percent:    100 * cpuSeconds / p.Seconds,
	}
}

// serviceGroup maps a pid file's name to the column it is counted in.
func serviceGroup(service string) string {
	switch {
	case strings.HasPrefix(service, "executor-"):
		return "executors"
	case strings.HasPrefix(service, "postgres-"):
		return "postgres"
	}
	return service
}

// groupRank orders the columns: the event path from nats-server to the database.
func groupRank(group string) int {
	return slices.Index([]string{"nats-server", "scheduler", "executors", "recorder", "postgres"}, group)
}
