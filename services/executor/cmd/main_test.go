package main

import (
	"io"
	"testing"
	"time"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/servicecmd"
	"github.com/ork-go/ork/services/executor"
)

// parsed is what the command line sets: the common settings and the executor's.
type parsed struct {
	servicecmd.Common
	cfg   executor.Config
	types string
}

func parseFlags(args []string, getenv func(string) string) (parsed, error) {
	var o options
	common, err := command(&o).Parse(args, getenv, io.Discard)
	return parsed{Common: common, cfg: o.cfg, types: o.types}, err
}

func TestFlagsOverrideEnvOverrideDefaults(t *testing.T) {
	t.Parallel()
	envs := map[string]string{
		"ORK_NATS_URL":               "nats://env:4222",
		"ORK_EXECUTOR_TYPES":         "noop",
		"ORK_EXECUTOR_CONCURRENCY":   "3",
		"ORK_EXECUTOR_ACK_WAIT":      "12s",
		"ORK_EXECUTOR_KILL_GRACE":    "2s",
		"ORK_EXECUTOR_DRAIN_GRACE":   "3s",
		"ORK_EXECUTOR_LOG_MAX_BYTES": "4096",
	}
	getenv := func(k string) string { return envs[k] }

	o, err := parseFlags(nil, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if o.Bus.URL != "nats://127.0.0.1:4222" || o.types != "process,python" || o.cfg.Concurrency != executor.ConcurrencyDefault || o.cfg.AckWait != executor.AckWaitDefault ||
		o.cfg.KillGrace != executor.KillGraceDefault || o.cfg.DrainGrace != executor.DrainGraceDefault || o.cfg.LogMaxBytes != executor.LogMaxBytesDefault {
		t.Errorf("defaults: %+v", o)
	}
	o, err = parseFlags(nil, getenv)
	if err != nil {
		t.Fatal(err)
	}
	if o.Bus.URL != "nats://env:4222" || o.types != "noop" || o.cfg.Concurrency != 3 || o.cfg.AckWait != 12*time.Second ||
		o.cfg.KillGrace != 2*time.Second || o.cfg.DrainGrace != 3*time.Second || o.cfg.LogMaxBytes != 4096 {
		t.Errorf("env: %+v", o)
	}
	o, err = parseFlags([]string{"--nats", "nats://flag:1", "--types", "sleep,noop", "--concurrency", "5", "--ack-wait", "1m", "--instance", "i1",
		"--kill-grace", "100ms", "--drain-grace", "1s", "--log-max-bytes", "1000"}, getenv)
	if err != nil {
		t.Fatal(err)
	}
	if o.Bus.URL != "nats://flag:1" || o.types != "sleep,noop" || o.cfg.Concurrency != 5 || o.cfg.AckWait != time.Minute || o.cfg.Instance != "i1" ||
		o.cfg.KillGrace != 100*time.Millisecond || o.cfg.DrainGrace != time.Second || o.cfg.LogMaxBytes != 1000 {
		t.Errorf("flags: %+v", o)
	}
	o, err = parseFlags([]string{"--tasks-max-msgs", "50", "--max-age", "24h"}, func(k string) string {
		return map[string]string{bus.EnvTasksMaxMsgs: "10", bus.EnvLogsMaxBytes: "1MiB"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	if o.Bus.TasksMaxMsgs != 50 || o.Bus.LogsMaxBytes != 1<<20 || o.Bus.MaxAge != 24*time.Hour ||
		o.Bus.EventsMaxBytes != bus.EventsMaxBytesDefault || o.Bus.DuplicateWindow != bus.DuplicateWindowDefault {
		t.Errorf("stream limits: %+v", o.Bus)
	}
	if _, err := parseFlags(nil, func(k string) string {
		if k == "ORK_EXECUTOR_CONCURRENCY" {
			return "many"
		}
		return ""
	}); err == nil {
		t.Error("a bad ORK_EXECUTOR_CONCURRENCY was accepted")
	}
	for _, k := range []string{"ORK_EXECUTOR_KILL_GRACE", "ORK_EXECUTOR_LOG_MAX_BYTES"} {
		if _, err := parseFlags(nil, func(key string) string {
			if key == k {
				return "lots"
			}
			return ""
		}); err == nil {
			t.Errorf("a bad %s was accepted", k)
		}
	}
}
