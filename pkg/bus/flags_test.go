package bus_test

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ork-go/ork/pkg/bus"
)

func parseStreamFlags(t *testing.T, base bus.Config, env map[string]string, args ...string) (bus.Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg := base
	if err := cfg.RegisterStreamFlags(fs, func(k string) string { return env[k] }); err != nil {
		return cfg, err
	}
	return cfg, fs.Parse(args)
}

func TestStreamFlagsPrecedence(t *testing.T) {
	t.Parallel()
	t.Run("defaults", func(t *testing.T) {
		t.Parallel()
		cfg, err := parseStreamFlags(t, bus.Config{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.EventsMaxBytes != bus.EventsMaxBytesDefault || cfg.LogsMaxBytes != bus.LogsMaxBytesDefault ||
			cfg.TasksMaxMsgs != bus.TasksMaxMsgsDefault || cfg.MaxAge != bus.MaxAgeDefault ||
			cfg.DuplicateWindow != bus.DuplicateWindowDefault {
			t.Errorf("defaults %+v", cfg)
		}
	})
	t.Run("config over default", func(t *testing.T) {
		t.Parallel()
		cfg, err := parseStreamFlags(t, bus.Config{TasksMaxMsgs: 7, MaxAge: time.Hour}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.TasksMaxMsgs != 7 || cfg.MaxAge != time.Hour || cfg.EventsMaxBytes != bus.EventsMaxBytesDefault {
			t.Errorf("config %+v", cfg)
		}
	})
	env := map[string]string{
		bus.EnvEventsMaxBytes: "64MiB", bus.EnvLogsMaxBytes: "1000", bus.EnvTasksMaxMsgs: "-1",
		bus.EnvStreamMaxAge: "48h", bus.EnvDuplicateWindow: "5m",
	}
	t.Run("env over config", func(t *testing.T) {
		t.Parallel()
		cfg, err := parseStreamFlags(t, bus.Config{TasksMaxMsgs: 7}, env)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.EventsMaxBytes != 64<<20 || cfg.LogsMaxBytes != 1000 || cfg.TasksMaxMsgs != bus.Unlimited ||
			cfg.MaxAge != 48*time.Hour || cfg.DuplicateWindow != 5*time.Minute {
			t.Errorf("env %+v", cfg)
		}
		if err := cfg.WithDefaults().Validate(); err != nil {
			t.Errorf("validate: %v", err)
		}
	})
	t.Run("flag over env", func(t *testing.T) {
		t.Parallel()
		cfg, err := parseStreamFlags(t, bus.Config{}, env, "--events-max-bytes=2GiB", "--logs-max-bytes", "3 KiB",
			"--tasks-max-msgs=10", "--max-age=1h", "--duplicate-window=30s")
		if err != nil {
			t.Fatal(err)
		}
		if cfg.EventsMaxBytes != 2<<30 || cfg.LogsMaxBytes != 3<<10 || cfg.TasksMaxMsgs != 10 ||
			cfg.MaxAge != time.Hour || cfg.DuplicateWindow != 30*time.Second {
			t.Errorf("flags %+v", cfg)
		}
	})
}

func TestStreamFlagsErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"bad env size", map[string]string{bus.EnvEventsMaxBytes: "lots"}, nil, bus.EnvEventsMaxBytes},
		{"bad env unit", map[string]string{bus.EnvLogsMaxBytes: "1GB"}, nil, bus.EnvLogsMaxBytes},
		{"bad env duration", map[string]string{bus.EnvDuplicateWindow: "5"}, nil, bus.EnvDuplicateWindow},
		{"two bad env", map[string]string{bus.EnvTasksMaxMsgs: "x", bus.EnvStreamMaxAge: "y"}, nil, bus.EnvStreamMaxAge},
		{"bad flag size", nil, []string{"--tasks-max-msgs=1.5"}, "tasks-max-msgs"},
		{"overflow", nil, []string{"--events-max-bytes=9000000000TiB"}, "too large"},
		{"bad flag duration", nil, []string{"--max-age=forever"}, "max-age"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseStreamFlags(t, bus.Config{}, tc.env, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one naming %s", err, tc.want)
			}
		})
	}
}

func TestConfigValidatesLimits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		cfg   bus.Config
		field string
	}{
		{"events", bus.Config{EventsMaxBytes: -2}, "EventsMaxBytes"},
		{"logs", bus.Config{LogsMaxBytes: -5}, "LogsMaxBytes"},
		{"tasks", bus.Config{TasksMaxMsgs: -3}, "TasksMaxMsgs"},
		{"age below window", bus.Config{MaxAge: time.Minute, DuplicateWindow: 2 * time.Minute}, "MaxAge"},
		{"negative age", bus.Config{MaxAge: -time.Hour}, "MaxAge"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.cfg.WithDefaults().Validate()
			if err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Errorf("error %v, want one naming %s", err, tc.field)
			}
		})
	}
	unlimited := bus.Config{EventsMaxBytes: bus.Unlimited, LogsMaxBytes: bus.Unlimited, TasksMaxMsgs: bus.Unlimited}
	if err := unlimited.WithDefaults().Validate(); err != nil {
		t.Errorf("unlimited: %v", err)
	}
}
