package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/bus/bustest"
	"github.com/ork-go/ork/pkg/logging"
	"github.com/ork-go/ork/pkg/metrics/metricstest"
	"github.com/ork-go/ork/pkg/servicecmd"
	"github.com/ork-go/ork/services/scheduler"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, bustest.ServerLeftovers()...) }

func TestMetricsAddrServesMetrics(t *testing.T) {
	t.Parallel()
	srv := bustest.Start(t)
	log, addrs := metricstest.LoggedAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		cfg := scheduler.Config{ReconcileInterval: -1}
		done <- command(&cfg).Serve(ctx, servicecmd.Common{Bus: bus.Config{URL: srv.ClientURL()}, MetricsAddr: "127.0.0.1:0"}, log)
	}()
	addr := metricstest.WaitAddr(t, addrs)
	body := metricstest.Scrape(t, addr)
	metricstest.Want(t, body, "ork_scheduler_cas_conflicts_total", metricstest.Equal(0), "0")
	metricstest.Want(t, body, `ork_scheduler_tasks_dispatched_total{type="process"}`, metricstest.Equal(0), "0")
	metricstest.Want(t, body, "process_cpu_seconds_total", metricstest.AtLeast(0), "present")
	cancel()
	select {
	case err := <-done:
		// A stop during the start is a cancelled provisioning, which main does not report.
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
	if c, err := net.DialTimeout("tcp", addr, 5*time.Second); err == nil {
		_ = c.Close()
		t.Error("the metrics endpoint is still up after run returned")
	}
}

// options is what the command line sets: the common settings and the scheduler's.
type options struct {
	common    servicecmd.Common
	scheduler scheduler.Config
}

func parseFlags(args []string, getenv func(string) string, out io.Writer) (options, error) {
	var o options
	var err error
	o.common, err = command(&o.scheduler).Parse(args, getenv, out)
	return o, err
}

func TestFlagsOverrideEnvOverrideDefaults(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"ORK_NATS_URL": "nats://env:4222", "ORK_METRICS_ADDR": ":9101", "ORK_LOG_LEVEL": "warn",
		"ORK_SCHEDULER_CONCURRENCY": "5", "ORK_SCHEDULER_MAX_LOST_ATTEMPTS": "2",
		"ORK_SCHEDULER_RECONCILE_INTERVAL": "-1s", "ORK_SCHEDULER_NO_EXECUTOR_TIMEOUT": "2m",
		"ORK_SCHEDULER_LOST_GRACE": "45s", bus.EnvTasksMaxMsgs: "10",
		"ORK_SCHEDULER_STALL_TIMEOUT": "90s", "ORK_SCHEDULER_SCHEDULE_LEASE": "-1s", bus.EnvReplicas: "3",
	}
	getenv := func(k string) string { return env[k] }
	for _, tc := range []struct {
		name   string
		getenv func(string) string
		args   []string
		want   options
	}{
		{"defaults", func(string) string { return "" }, nil, options{
			common: servicecmd.Common{Bus: bus.Config{Name: "ork-scheduler", URL: bus.URLDefault, EventsMaxBytes: bus.EventsMaxBytesDefault,
				LogsMaxBytes: bus.LogsMaxBytesDefault, TasksMaxMsgs: bus.TasksMaxMsgsDefault, MaxAge: bus.MaxAgeDefault,
				DuplicateWindow: bus.DuplicateWindowDefault, Replicas: 1}, Log: logging.Config{Level: "info", Format: "json"}},
			scheduler: scheduler.Config{Concurrency: scheduler.ConcurrencyDefault, MaxLostAttempts: scheduler.MaxLostAttemptsDefault,
				ReconcileInterval: scheduler.ReconcileIntervalDefault, NoExecutorTimeout: scheduler.NoExecutorTimeoutDefault,
				LostGrace: scheduler.LostGraceDefault, StallTimeout: scheduler.StallTimeoutDefault, ScheduleLease: scheduler.ScheduleLeaseDefault},
		}},
		{"environment", getenv, nil, options{
			common: servicecmd.Common{Bus: bus.Config{Name: "ork-scheduler", URL: "nats://env:4222", EventsMaxBytes: bus.EventsMaxBytesDefault,
				LogsMaxBytes: bus.LogsMaxBytesDefault, TasksMaxMsgs: 10, MaxAge: bus.MaxAgeDefault,
				DuplicateWindow: bus.DuplicateWindowDefault, Replicas: 3}, MetricsAddr: ":9101", Log: logging.Config{Level: "warn", Format: "json"}},
			scheduler: scheduler.Config{Concurrency: 5, MaxLostAttempts: 2, ReconcileInterval: -time.Second,
				NoExecutorTimeout: 2 * time.Minute, LostGrace: 45 * time.Second, StallTimeout: 90 * time.Second, ScheduleLease: -time.Second},
		}},
		{"flags", getenv, []string{"--nats", "nats://flag:1", "--metrics-addr", "", "--log-level", "debug",
			"--concurrency", "7", "--max-lost-attempts", "0", "--reconcile-interval", "1s", "--no-executor-timeout", "3s",
			"--lost-grace", "4s", "--tasks-max-msgs", "20", "--stall-timeout", "5s", "--replicas", "2", "--schedule-lease", "250ms", "--instance", "sched-a"}, options{
			common: servicecmd.Common{Bus: bus.Config{Name: "ork-scheduler", URL: "nats://flag:1", EventsMaxBytes: bus.EventsMaxBytesDefault,
				LogsMaxBytes: bus.LogsMaxBytesDefault, TasksMaxMsgs: 20, MaxAge: bus.MaxAgeDefault,
				DuplicateWindow: bus.DuplicateWindowDefault, Replicas: 2}, Log: logging.Config{Level: "debug", Format: "json"}},
			scheduler: scheduler.Config{Concurrency: 7, MaxLostAttempts: 0, ReconcileInterval: time.Second,
				NoExecutorTimeout: 3 * time.Second, LostGrace: 4 * time.Second, StallTimeout: 5 * time.Second, ScheduleLease: 250 * time.Millisecond, Instance: "sched-a"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o, err := parseFlags(tc.args, tc.getenv, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if o != tc.want {
				t.Errorf("got %+v\nwant %+v", o, tc.want)
			}
		})
	}
}

func TestFlagErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{"bad int env", map[string]string{"ORK_SCHEDULER_CONCURRENCY": "many"}, nil,
			[]string{`ORK_SCHEDULER_CONCURRENCY="many"`}},
		{"bad duration env", map[string]string{"ORK_SCHEDULER_LOST_GRACE": "soon"}, nil,
			[]string{`ORK_SCHEDULER_LOST_GRACE="soon"`}},
		{"bad env of the scheduler and the streams", map[string]string{"ORK_SCHEDULER_MAX_LOST_ATTEMPTS": "x",
			bus.EnvStreamMaxAge: "y"}, nil, []string{"ORK_SCHEDULER_MAX_LOST_ATTEMPTS", bus.EnvStreamMaxAge}},
		{"bad flag", nil, []string{"--concurrency", "x"}, []string{"-concurrency"}},
		{"help", nil, []string{"-h"}, []string{flag.ErrHelp.Error()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseFlags(tc.args, func(k string) string { return tc.env[k] }, io.Discard)
			if err == nil {
				t.Fatalf("no error, want one naming %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %v, want one naming %s", err, w)
				}
			}
		})
	}
}
