package bench

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the result of Run.
type Report struct {
	Config    string           `json:"config"`
	Mode      string           `json:"mode"`
	Store     string           `json:"store"`
	Machine   Machine          `json:"machine"`
	StartedAt time.Time        `json:"started_at"`
	Scenarios []ScenarioResult `json:"scenarios"`
	// Idle holds the idle samples: one before the scenarios (fresh services) and one after them;
	// empty when the idle sample was skipped.
	Idle []Idle `json:"idle,omitempty"`
	// Notes say how the numbers were taken.
	Notes []string `json:"notes"`
}

// Machine describes where the benchmark ran.
type Machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model"`
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
}

// ScenarioResult is the measurement of one Scenario.
type ScenarioResult struct {
	Scenario    Scenario `json:"scenario"`
	Runs        int      `json:"runs"`
	TasksPerRun int      `json:"tasks_per_run"`
	Tasks       int      `json:"tasks"`
	// Counts seen in the events. TasksFailed counts failed attempts, retried ones included.
	RunsSucceeded  int `json:"runs_succeeded"`
	TasksStarted   int `json:"tasks_started"`
	TasksSucceeded int `json:"tasks_succeeded"`
	TasksFailed    int `json:"tasks_failed"`
	TasksSkipped   int `json:"tasks_skipped"`
	// Counts read back from the database after the measurement (-1 when no database was given).
	RunsRecordedSuccess  int `json:"runs_recorded_success"`
	TasksRecordedSuccess int `json:"tasks_recorded_success"`
	TasksRecordedFailed  int `json:"tasks_recorded_failed"`
	TasksRecordedSkipped int `json:"tasks_recorded_skipped"`
	// Seconds from the first submission to the last run's recorder notice.
	DurationSeconds float64 `json:"duration_s"`
	// TasksPerSecond and RunsPerSecond count only what succeeded: tasks and runs recorded as
	// success in the database (seen succeeding in the events when no database was given).
	TasksPerSecond float64 `json:"tasks_per_s"`
	RunsPerSecond  float64 `json:"runs_per_s"`
	// DepToStart: for each task with dependencies, its task.started time minus the latest
	// task.succeeded time of its dependencies.
	DepToStart Latency `json:"dep_to_start"`
	// SubmitToFirstTask: for each run, its first task.started time minus the time it was submitted.
	SubmitToFirstTask Latency       `json:"submit_to_first_task"`
	Recorder          RecorderStats `json:"recorder"`
	Resources         []Resource    `json:"resources"`
	// CPUPerTask is the CPU time of all measured processes per task, in milliseconds: unlike
	// tasks/s it does not depend on what else the machine runs.
	CPUPerTask float64 `json:"cpu_ms_per_task"`
}

// Latency summarises a set of durations, in milliseconds.
type Latency struct {
	Count int     `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P95   float64 `json:"p95_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

// RecorderStats are the recorder's committed batches during a scenario.
type RecorderStats struct {
	// Source says where the numbers come from; empty counts mean unknown.
	Source         string  `json:"source"`
	EventBatches   int     `json:"event_batches"`
	EventMessages  int     `json:"event_messages"`
	EventsPerSec   float64 `json:"events_per_s"`
	MeanBatch      float64 `json:"mean_batch"`
	LogBatches     int     `json:"log_batches"`
	LogMessages    int     `json:"log_messages"`
	Unavailable    bool    `json:"unavailable,omitempty"`
	UnavailableWhy string  `json:"unavailable_why,omitempty"`
}

// Resource is the CPU and memory of one service process over a measurement.
type Resource struct {
	Service    string  `json:"service"`
	PID        int     `json:"pid"`
	CPUSeconds float64 `json:"cpu_s"`
	CPUPercent float64 `json:"cpu_percent"` // of one core, over the measurement's wall time
	RSSMB      float64 `json:"rss_mb"`      // at the end
	PeakRSSMB  float64 `json:"peak_rss_mb"`
	// PeakSinceBoot is true when the peak could not be reset and covers the process's whole life.
	PeakSinceBoot bool `json:"peak_since_start,omitempty"`
}

// Idle is the cost of the services with nothing to do.
type Idle struct {
	// When is "before load" or "after load".
	When      string     `json:"when"`
	Seconds   float64    `json:"seconds"`
	Resources []Resource `json:"resources"`
}

// summarize computes the latency summary of ds (nearest-rank percentiles).
func summarize(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	slices.Sort(ds)
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	pct := func(p float64) float64 {
		i := int(math.Ceil(p/100*float64(len(ds)))) - 1
		return ms(ds[max(i, 0)])
	}
	return Latency{
		Count: len(ds),
		Mean:  ms(sum / time.Duration(len(ds))),
		P50:   pct(50),
		P95:   pct(95),
		P99:   pct(99),
		Max:   ms(ds[len(ds)-1]),
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Succeeded returns the tasks and runs of the scenario that succeeded: as recorded in the
// database when it was read back, else as seen in the events.
func (s *ScenarioResult) Succeeded() (tasks, runs int) {
	if s.TasksRecordedSuccess >= 0 {
		return s.TasksRecordedSuccess, s.RunsRecordedSuccess
	}
	return s.TasksSucceeded, s.RunsSucceeded
}

// Failures says what went wrong in the report's scenarios, or nil: every benchmark scenario's
// tasks are meant to succeed, so a task that failed or was skipped, or a run that did not succeed,
// makes the figures meaningless and the command fail.
func (r *Report) Failures() error {
	var errs []error
	for i := range r.Scenarios {
		s := &r.Scenarios[i]
		tasks, runs := s.Succeeded()
		if tasks != s.Tasks || runs != s.Runs || s.TasksFailed > 0 || s.TasksSkipped > 0 {
			errs = append(errs, fmt.Errorf("scenario %s: %d of %d tasks and %d of %d runs succeeded (%d failed attempts, %d tasks skipped)",
				s.Scenario.Name, tasks, s.Tasks, runs, s.Runs, s.TasksFailed, s.TasksSkipped))
		}
	}
	return errors.Join(errs...)
}

// WriteTable prints r for a person.
func (r *Report) WriteTable(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "ork bench %s: mode %s, store %s\n", r.Config, r.Mode, r.Store)
	fmt.Fprintf(&b, "machine: %d CPUs, %s, %s, %s\n\n", r.Machine.CPUs, r.Machine.CPUModel, r.Machine.GoVersion, r.Machine.OS)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	_, _ = fmt.Fprintln(tw, "scenario\truns\ttasks\tfailed\tskipped\tseconds\ttasks/s\truns/s\tdep→start p50\tp95\tp99\tmax ms\tsubmit→1st p50\tp99 ms\trec ev/s\tbatch\tCPU s\tCPU ms/task\tpeak RSS MB\t")
	for _, s := range r.Scenarios {
		var cpu, peak float64
		for _, res := range s.Resources {
			cpu += res.CPUSeconds
			peak += res.PeakRSSMB
		}
		recRate, batch := "-", "-"
		if !s.Recorder.Unavailable {
			recRate, batch = fmt.Sprintf("%.0f", s.Recorder.EventsPerSec), fmt.Sprintf("%.1f", s.Recorder.MeanBatch)
		}
		failed, skipped := s.TasksFailed, s.TasksSkipped
		if s.TasksRecordedSuccess >= 0 {
			failed, skipped = s.TasksRecordedFailed, s.TasksRecordedSkipped
		}
		_, _ = fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%.2f\t%.0f\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.2f\t%.3f\t%.0f\t\n",
			s.Scenario.Name, s.Runs, s.Tasks, failed, skipped, s.DurationSeconds, s.TasksPerSecond, s.RunsPerSecond,
			latencyCell(s.DepToStart, s.DepToStart.P50), latencyCell(s.DepToStart, s.DepToStart.P95),
			latencyCell(s.DepToStart, s.DepToStart.P99), latencyCell(s.DepToStart, s.DepToStart.Max),
			latencyCell(s.SubmitToFirstTask, s.SubmitToFirstTask.P50), latencyCell(s.SubmitToFirstTask, s.SubmitToFirstTask.P99),
			recRate, batch, cpu, s.CPUPerTask, peak)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Scenarios) > 0 && len(r.Scenarios[0].Resources) > 1 {
		b.WriteString("\nCPU s and peak RSS above are sums over the processes; per service (CPU s / peak RSS MB):\n")
		for _, s := range r.Scenarios {
			fmt.Fprintf(&b, "  %s:", s.Scenario.Name)
			for _, res := range s.Resources {
				fmt.Fprintf(&b, " %s %.2f/%.0f", res.Service, res.CPUSeconds, res.PeakRSSMB)
			}
			b.WriteString("\n")
		}
	}
	for _, idle := range r.Idle {
		fmt.Fprintf(&b, "\nidle for %.0f s, %s:\n", idle.Seconds, idle.When)
		for _, res := range idle.Resources {
			fmt.Fprintf(&b, "  %-14s CPU %.3f s (%.2f%% of a core), RSS %.1f MB\n", res.Service, res.CPUSeconds, res.CPUPercent, res.RSSMB)
		}
	}
	if len(r.Notes) > 0 {
		b.WriteString("\nnotes:\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "  - %s\n", n)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func latencyCell(l Latency, v float64) string {
	if l.Count == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", v)
}
