package executor

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	c := Config{}.WithDefaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if strings.Join(c.Types, ",") != "process,python" || c.Concurrency != ConcurrencyDefault ||
		c.OutputMaxBytes != 1<<20 || c.LogMaxBytes != 8<<20 || c.KillGrace != 5*time.Second ||
		c.AckWait != 30*time.Second || c.LogFlushInterval != 100*time.Millisecond {
		t.Errorf("defaults = %+v", c)
	}
	if want := os.Getenv(PythonEnv); want != "" && c.Python != want || want == "" && c.Python != PythonDefault {
		t.Errorf("python = %q", c.Python)
	}
	host, _ := os.Hostname()
	if !strings.HasPrefix(c.Instance, host+"-") || c.Instance == (Config{}).WithDefaults().Instance {
		t.Errorf("instance = %q, want hostname-pid-random, different each time", c.Instance)
	}
}

func TestConfigValidateNamesTheField(t *testing.T) {
	t.Parallel()
	cases := map[string]func(*Config){
		"Types: unknown":     func(c *Config) { c.Types = []string{"process", "rust"} },
		"Types: \"noop\" is": func(c *Config) { c.Types = []string{"noop", "noop"} },
		"Concurrency":        func(c *Config) { c.Concurrency = -1 },
		"KillGrace":          func(c *Config) { c.KillGrace = -time.Second },
		"AckWait":            func(c *Config) { c.AckWait = time.Millisecond },
		"DrainGrace":         func(c *Config) { c.DrainGrace = -1 },
		"MaxAckPending":      func(c *Config) { c.MaxAckPending = 2 },
		"OutputMaxBytes":     func(c *Config) { c.OutputMaxBytes = -1 },
		"LogMaxBytes":        func(c *Config) { c.LogMaxBytes = -1 },
		"LogLineMaxBytes":    func(c *Config) { c.LogLineMaxBytes = 10 },
		"LogFlushInterval":   func(c *Config) { c.LogFlushInterval = -1 },
		"LogBatchLines":      func(c *Config) { c.LogBatchLines = -1 },
	}
	for field, mutate := range cases {
		t.Run(field, func(t *testing.T) {
			t.Parallel()
			c := Config{}.WithDefaults()
			mutate(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), field) {
				t.Errorf("Validate() = %v, want an error naming %s", err, field)
			}
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	h := setup(t)
	if _, err := New(h.bus, Config{Types: []string{"bash"}}, nil); err == nil {
		t.Error("New accepted an unknown type")
	}
	if _, err := New(nil, Config{}, nil); err == nil {
		t.Error("New accepted no bus")
	}
}

func TestFormatBytes(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{100: "100 bytes", 1024: "1 KiB", 1536: "1.5 KiB", 1 << 20: "1 MiB", 3 << 19: "1.5 MiB"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
