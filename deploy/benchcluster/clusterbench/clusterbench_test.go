package clusterbench

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseInts(t *testing.T) {
	t.Parallel()
	got, err := ParseInts(" 1, 2,4 ")
	if err != nil || len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 4 {
		t.Fatalf("ParseInts = %v, %v", got, err)
	}
	for _, bad := range []string{"", ",", "1,x", "0", "-2"} {
		if _, err := ParseInts(bad); err == nil {
			t.Errorf("ParseInts(%q) accepted", bad)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	ok := Config{Root: "/r", Dir: "/d"}.WithDefaults()
	if err := ok.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if !ok.Scaling || !ok.Ceiling {
		t.Error("neither measurement chosen should mean both")
	}
	for name, c := range map[string]Config{
		"root":      {Dir: "/d"},
		"dir":       {Root: "/r"},
		"executors": {Root: "/r", Dir: "/d", Executors: []int{1, 0}},
		"batches":   {Root: "/r", Dir: "/d", BatchSizes: []int{-1}},
	} {
		if err := c.WithDefaults().Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestIsBackendOf(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		cmdline string
		want    bool
	}{
		{"postgres: 15/main: postgres ork_benchcluster 127.0.0.1(40312) idle\x00", true},
		{"postgres: postgres ork_benchcluster [local] INSERT", true},
		{"postgres: 15/main: postgres ork_benchcluster_2 127.0.0.1(1) idle", false},
		{"postgres: 15/main: walwriter", false},
		{"/usr/lib/postgresql/15/bin/postgres\x00-D\x00ork_benchcluster\x00", false},
	} {
		if got := isBackendOf(c.cmdline, "ork_benchcluster"); got != c.want {
			t.Errorf("isBackendOf(%q) = %v, want %v", c.cmdline, got, c.want)
		}
	}
}

// report is an `ork bench --json` report of one wide scenario of 1,000 tasks in 0.5 s.
const report = `{"config":"custom","mode":"cluster","scenarios":[{"tasks":1000,"duration_s":0.5,"tasks_per_s":2000,
"tasks_recorded_success":1000,"recorder":{"events_per_s":6000,"mean_batch":300},
"resources":[{"service":"executor-1","cpu_s":0.1},{"service":"executor-2","cpu_s":0.3},{"service":"nats-server","cpu_s":0.4},
{"service":"postgres-1","cpu_s":0.05},{"service":"postgres-2","cpu_s":0.05},{"service":"recorder","cpu_s":0.2},{"service":"scheduler","cpu_s":0.1}]}]}`

func TestPointFromReport(t *testing.T) {
	t.Parallel()
	failed := strings.Replace(report, `"tasks_recorded_success":1000`, `"tasks_recorded_success":990,"tasks_recorded_failed":10`, 1)
	if _, err := pointFromReport([]byte(failed)); err == nil || !strings.Contains(err.Error(), "990 of 1000 tasks") {
		t.Errorf("a report with failed tasks: %v, want it refused", err)
	}
	p, err := pointFromReport([]byte(report))
	if err != nil {
		t.Fatal(err)
	}
	if p.Tasks != 1000 || p.TasksPerSec != 2000 || p.TasksRecorded != 1000 || p.MeanBatch != 300 {
		t.Errorf("point %+v", p)
	}
	var names []string
	for _, s := range p.Services {
		names = append(names, s.Service)
	}
	if got := strings.Join(names, ","); got != "nats-server,scheduler,executors,recorder,postgres,executor-1,executor-2" {
		t.Errorf("services %s", got)
	}
	ex, _ := p.service("executors")
	if !near(ex.CPUSeconds, 0.4) || !near(ex.MsPerTask, 0.4) || !near(ex.Percent, 80) {
		t.Errorf("executors %+v", ex)
	}
	pg, _ := p.service("postgres")
	if !near(pg.CPUSeconds, 0.1) {
		t.Errorf("postgres %+v", pg)
	}
	// Executors counted once in the totals: 0.4 + 0.1 + 0.4 + 0.2 + 0.1 = 1.2 CPU s.
	if !near(p.TotalMsPerTask, 1.2) || !near(p.TotalPercent, 240) {
		t.Errorf("totals %.3f ms/task, %.1f %%", p.TotalMsPerTask, p.TotalPercent)
	}
	// nats-server (80 %) ties the executors' sum, but the busiest process is nats-server: no single
	// executor is above 60 %.
	if b := p.Busiest(); b.Service != "nats-server" {
		t.Errorf("busiest %+v", b)
	}
	var out bytes.Buffer
	WriteScalingTable(&out, []ScalePoint{p})
	if !strings.Contains(out.String(), "0.400 (80)") || !strings.Contains(out.String(), "nats-server 80%") {
		t.Errorf("table:\n%s", out.String())
	}
}

func TestPointFromReportRejects(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{`{`, `{"scenarios":[]}`, `{"scenarios":[{"tasks":0,"duration_s":1}]}`} {
		if _, err := pointFromReport([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

func TestCommitWindow(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "recorder.log")
	log := strings.Join([]string{
		`not json`,
		`{"level":"info","ts":"2026-11-25T20:00:00.100Z","logger":"recorder","msg":"recorder started","batch_size":500}`,
		`{"level":"debug","ts":"2026-11-25T20:00:00.300Z","logger":"recorder","msg":"batch committed","stream":"ORK_EVENTS","count":500}`,
		`{"level":"debug","ts":"2026-11-25T20:00:00.400Z","logger":"recorder","msg":"batch committed","stream":"ORK_LOGS","count":7}`,
		`{"level":"debug","ts":"2026-11-25T20:00:00.600Z","logger":"recorder","msg":"batch committed","stream":"ORK_EVENTS","count":100}`,
	}, "\n")
	if err := os.WriteFile(path, []byte(log), 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := commitWindow(path)
	if err != nil {
		t.Fatal(err)
	}
	if w.batches != 2 || w.events != 600 || !near(w.last.Sub(w.started).Seconds(), 0.5) {
		t.Errorf("window %+v", w)
	}
	empty := filepath.Join(t.TempDir(), "empty.log")
	if err := os.WriteFile(empty, []byte(`{"ts":"2026-11-25T20:00:00.100Z","msg":"recorder started"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := commitWindow(empty); err == nil {
		t.Error("a log without committed batches accepted")
	}
}

func TestRunEvents(t *testing.T) {
	t.Parallel()
	evs := runEvents("r1", backlogPlan())
	if len(evs) != eventsPerRun {
		t.Fatalf("%d events, want %d", len(evs), eventsPerRun)
	}
	if evs[0].Plan == nil || len(evs[0].Plan.Tasks) != ceilingTasksPerRun || evs[len(evs)-1].Status != "success" {
		t.Errorf("first %+v, last %+v", evs[0], evs[len(evs)-1])
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

func TestMetricValue(t *testing.T) {
	t.Parallel()
	text := `# HELP ork_recorder_commit_seconds Duration of one successful write transaction.
ork_recorder_commit_seconds_bucket{stream="ORK_EVENTS",le="0.001"} 0
ork_recorder_commit_seconds_sum{stream="ORK_EVENTS"} 2.5
ork_recorder_commit_seconds_sum{stream="ORK_LOGS"} 0.1
`
	if v := metricValue(text, `ork_recorder_commit_seconds_sum{stream="ORK_EVENTS"}`); v != 2.5 {
		t.Errorf("events sum %v", v)
	}
	if v := metricValue(text, `ork_recorder_commit_seconds_count{stream="ORK_EVENTS"}`); v != -1 {
		t.Errorf("missing sample %v", v)
	}
}
