package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/ork-go/ork/pkg/workflow"
)

func TestRunTinyConfigurationEndToEnd(t *testing.T) {
	t.Parallel()
	cfg := Config{
		Name:        "tiny",
		Concurrency: 4,
		Idle:        100 * time.Millisecond,
		Scenarios: []Scenario{
			{Shape: ShapeWide, Tasks: 20},
			{Shape: ShapeChain, Depth: 5},
			{Shape: ShapeFanout, Tasks: 6},
			{Shape: ShapeRuns, Runs: 5},
			{Shape: ShapeChain, Depth: 3, TaskType: TaskProcess},
			// Real Python functions passing a value: Run checks the last one returns the sum.
			{Shape: ShapeChain, Depth: 3, TaskType: TaskPython},
			{Shape: ShapeWide, Tasks: 3, TaskType: TaskPython},
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var progressed []string
	rep, err := Run(ctx, cfg, zaptest.NewLogger(t), func(name string) { progressed = append(progressed, name) })
	if err != nil {
		t.Fatalf("running the benchmark: %v", err)
	}
	if len(progressed) != len(cfg.Scenarios)+2 {
		t.Errorf("progress called for %v, want every scenario and the idle sample", progressed)
	}
	if len(rep.Scenarios) != len(cfg.Scenarios) {
		t.Fatalf("%d scenario results, want %d", len(rep.Scenarios), len(cfg.Scenarios))
	}
	// withDeps is the number of tasks with dependencies, over all runs of each scenario.
	withDeps := []int{0, 4, 7, 5 * 3, 2, 2, 0}
	wantTasks := []int{20, 5, 8, 20, 3, 3, 3}
	for i, s := range rep.Scenarios {
		t.Run(s.Scenario.Name, func(t *testing.T) {
			t.Parallel()
			checkScenario(t, s, wantTasks[i], withDeps[i])
		})
	}
	if len(rep.Idle) != 2 || rep.Idle[0].When != idleBefore || rep.Idle[1].When != idleAfter {
		t.Fatalf("idle samples %+v, want one before and one after the load", rep.Idle)
	}
	for _, idle := range rep.Idle {
		if len(idle.Resources) != 1 || idle.Resources[0].RSSMB <= 0 || idle.Resources[0].CPUSeconds < 0 || idle.Seconds != 0.1 {
			t.Errorf("idle sample %+v, want one process with its RSS over 0.1 s", idle)
		}
	}
	if rep.Machine.CPUs < 1 || rep.Machine.GoVersion == "" {
		t.Errorf("machine %+v is incomplete", rep.Machine)
	}

	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, s := range rep.Scenarios {
		if !strings.Contains(table.String(), s.Scenario.Name) {
			t.Errorf("table lacks scenario %s:\n%s", s.Scenario.Name, table.String())
		}
	}
	data, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(data, &back); err != nil || len(back.Scenarios) != len(rep.Scenarios) || back.Scenarios[3].DepToStart != rep.Scenarios[3].DepToStart {
		t.Errorf("the JSON report does not read back the same (%v): %s", err, data)
	}
}

func checkScenario(t *testing.T, s ScenarioResult, wantTasks, withDeps int) {
	t.Helper()
	if s.Tasks != wantTasks || s.Runs*s.TasksPerRun != s.Tasks {
		t.Errorf("tasks %d (%d runs x %d), want %d", s.Tasks, s.Runs, s.TasksPerRun, wantTasks)
	}
	if s.RunsSucceeded != s.Runs || s.RunsRecordedSuccess != s.Runs {
		t.Errorf("runs succeeded %d, recorded %d, want %d", s.RunsSucceeded, s.RunsRecordedSuccess, s.Runs)
	}
	if s.TasksStarted != s.Tasks || s.TasksSucceeded != s.Tasks || s.TasksRecordedSuccess != s.Tasks || s.TasksFailed != 0 {
		t.Errorf("tasks started %d, succeeded %d, recorded %d, failed %d; want %d of each and none failed",
			s.TasksStarted, s.TasksSucceeded, s.TasksRecordedSuccess, s.TasksFailed, s.Tasks)
	}
	if s.DurationSeconds <= 0 || s.TasksPerSecond <= 0 || s.RunsPerSecond <= 0 {
		t.Errorf("duration %v s, %v tasks/s, %v runs/s: want positive numbers", s.DurationSeconds, s.TasksPerSecond, s.RunsPerSecond)
	}
	if s.CPUPerTask <= 0 {
		t.Errorf("CPU per task %v, want a positive number", s.CPUPerTask)
	}
	checkLatency(t, "dependency to start", s.DepToStart, withDeps)
	checkLatency(t, "submit to first task", s.SubmitToFirstTask, s.Runs)
	// Every run emits at least its submission, start, finish and per task dispatched, started and
	// succeeded; all of them are committed before the last run's notice.
	if min := s.Runs*3 + s.Tasks*3; s.Recorder.EventMessages < min || s.Recorder.EventBatches < 1 {
		t.Errorf("recorder committed %d events in %d batches, want at least %d events", s.Recorder.EventMessages, s.Recorder.EventBatches, min)
	}
	if s.Recorder.MeanBatch <= 0 || s.Recorder.EventsPerSec <= 0 {
		t.Errorf("recorder stats %+v: want a positive batch size and rate", s.Recorder)
	}
	if len(s.Resources) != 1 || s.Resources[0].CPUSeconds <= 0 || s.Resources[0].PeakRSSMB <= 0 || s.Resources[0].PeakRSSMB < s.Resources[0].RSSMB*0.99 {
		t.Errorf("resources %+v: want one process with CPU time and a peak RSS at least its RSS", s.Resources)
	}
}

func checkLatency(t *testing.T, what string, l Latency, count int) {
	t.Helper()
	if l.Count != count {
		t.Errorf("%s: %d samples, want %d", what, l.Count, count)
	}
	if count == 0 {
		return
	}
	if l.P50 < 0 || l.P50 > l.P95 || l.P95 > l.P99 || l.P99 > l.Max || l.Mean < 0 || l.Mean > l.Max {
		t.Errorf("%s: %+v, want 0 <= p50 <= p95 <= p99 <= max and mean within", what, l)
	}
}

func TestBuildPlanShapes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		s     Scenario
		tasks int
		last  []string // depends_on of the last task
	}{
		{Scenario{Shape: ShapeWide, Tasks: 3}, 3, nil},
		{Scenario{Shape: ShapeChain, Depth: 4}, 4, []string{"c2"}},
		{Scenario{Shape: ShapeFanout, Tasks: 2}, 4, []string{"f0", "f1"}},
		{Scenario{Shape: ShapeRuns, Runs: 9}, 4, []string{"b", "c"}},
		{Scenario{Shape: ShapeWide, Tasks: 1, TaskType: TaskSleep, SleepSeconds: 0.5}, 1, nil},
	}
	for _, c := range cases {
		t.Run(c.s.WithDefaults().Name, func(t *testing.T) {
			t.Parallel()
			p, err := BuildPlan(c.s, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Tasks) != c.tasks || c.s.WithDefaults().TasksPerRun() != c.tasks {
				t.Fatalf("%d tasks (TasksPerRun %d), want %d", len(p.Tasks), c.s.WithDefaults().TasksPerRun(), c.tasks)
			}
			if got := p.Tasks[len(p.Tasks)-1].DependsOn; strings.Join(got, ",") != strings.Join(c.last, ",") {
				t.Errorf("last task depends on %v, want %v", got, c.last)
			}
			if p.Hash == "" {
				t.Error("no hash")
			}
			if c.s.TaskType == TaskSleep && string(p.Tasks[0].Inputs["seconds"].Const) != "0.5" {
				t.Errorf("sleep input %s, want 0.5", p.Tasks[0].Inputs["seconds"].Const)
			}
		})
	}
}

func TestValidateRejects(t *testing.T) {
	t.Parallel()
	bad := map[string]Config{
		"no scenarios":      {},
		"unknown shape":     {Scenarios: []Scenario{{Shape: "ring", Tasks: 1}}},
		"no tasks":          {Scenarios: []Scenario{{Shape: ShapeWide}}},
		"too many tasks":    {Scenarios: []Scenario{{Shape: ShapeWide, Tasks: workflow.MaxTasks + 1}}},
		"unknown task type": {Scenarios: []Scenario{{Shape: ShapeWide, Tasks: 1, TaskType: "java"}}},
		"cluster sans nats": {Mode: ModeCluster, Scenarios: []Scenario{{Shape: ShapeWide, Tasks: 1}}},
		"unknown mode":      {Mode: "remote", Scenarios: []Scenario{{Shape: ShapeWide, Tasks: 1}}},
	}
	for name, cfg := range bad {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if err := cfg.WithDefaults().Validate(); err == nil {
				t.Errorf("%+v validated", cfg)
			}
		})
	}
	for _, name := range Names() {
		cfg, err := Named(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := cfg.WithDefaults().Validate(); err != nil {
			t.Errorf("configuration %s: %v", name, err)
		}
	}
	if _, err := Named("nope"); err == nil {
		t.Error("an unknown configuration name was accepted")
	}
}

func TestSummarizePercentiles(t *testing.T) {
	t.Parallel()
	ds := make([]time.Duration, 100)
	for i := range ds {
		ds[i] = time.Duration(100-i) * time.Millisecond
	}
	got := summarize(ds)
	want := Latency{Count: 100, Mean: 50.5, P50: 50, P95: 95, P99: 99, Max: 100}
	if got != want {
		t.Errorf("summarize = %+v, want %+v", got, want)
	}
	if (summarize(nil) != Latency{}) {
		t.Error("an empty set has a summary")
	}
}
