package main

import (
	"testing"
	"time"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/services/executor"
)

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
	if o.natsURL != "nats://127.0.0.1:4222" || o.types != "process,python" || o.concurrency != executor.ConcurrencyDefault || o.ackWait != executor.AckWaitDefault ||
		o.killGrace != executor.KillGraceDefault || o.drainGrace != executor.DrainGraceDefault || o.logMaxBytes != executor.LogMaxBytesDefault {
		t.Errorf("defaults: %+v", o)
	}
	o, err = parseFlags(nil, getenv)
	if err != nil {
		t.Fatal(err)
	}
	if o.natsURL != "nats://env:4222" || o.types != "noop" || o.concurrency != 3 || o.ackWait != 12*time.Second ||
		o.killGrace != 2*time.Second || o.drainGrace != 3*time.Second || o.logMaxBytes != 4096 {
		t.Errorf("env: %+v", o)
	}
	o, err = parseFlags([]string{"--nats", "nats://flag:1", "--types", "sleep,noop", "--concurrency", "5", "--ack-wait", "1m", "--instance", "i1",
		"--kill-grace", "100ms", "--drain-grace", "1s", "--log-max-bytes", "1000"}, getenv)
	if err != nil {
		t.Fatal(err)
	}
	if o.natsURL != "nats://flag:1" || o.types != "sleep,noop" || o.concurrency != 5 || o.ackWait != time.Minute || o.instance != "i1" ||
		o.killGrace != 100*time.Millisecond || o.drainGrace != time.Second || o.logMaxBytes != 1000 {
		t.Errorf("flags: %+v", o)
	}
	o, err = parseFlags([]string{"--tasks-max-msgs", "50", "--max-age", "24h"}, func(k string) string {
		return map[string]string{bus.EnvTasksMaxMsgs: "10", bus.EnvLogsMaxBytes: "1MiB"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	if o.bus.TasksMaxMsgs != 50 || o.bus.LogsMaxBytes != 1<<20 || o.bus.MaxAge != 24*time.Hour ||
		o.bus.EventsMaxBytes != bus.EventsMaxBytesDefault || o.bus.DuplicateWindow != bus.DuplicateWindowDefault {
		t.Errorf("stream limits: %+v", o.bus)
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
