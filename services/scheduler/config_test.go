package scheduler

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestConfig(t *testing.T) {
	t.Parallel()
	c := Config{}.WithDefaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if c.Durable != DurableDefault || c.Concurrency != ConcurrencyDefault || c.Backoff.Base != BackoffBaseDefault ||
		c.Backoff.Max != BackoffMaxDefault || c.MaxLostAttempts != MaxLostAttemptsDefault || c.ReconcileInterval != ReconcileIntervalDefault ||
		c.NoExecutorTimeout != NoExecutorTimeoutDefault || c.LostGrace != LostGraceDefault || c.Instance == "" {
		t.Fatalf("defaults: %+v", c)
	}
	bad := map[string]func(*Config){
		"Concurrency":       func(c *Config) { c.Concurrency = -1 },
		"AckWait":           func(c *Config) { c.AckWait = time.Millisecond },
		"CASRetries":        func(c *Config) { c.CASRetries = -2 },
		"Jitter":            func(c *Config) { c.Backoff.Jitter = 2 },
		"Max":               func(c *Config) { c.Backoff.Max = time.Millisecond },
		"MaxLostAttempts":   func(c *Config) { c.MaxLostAttempts = -1 },
		"NoExecutorTimeout": func(c *Config) { c.NoExecutorTimeout = -time.Second },
		"LostGrace":         func(c *Config) { c.LostGrace = -time.Second },
	}
	for field, mutate := range bad {
		c := Config{}.WithDefaults()
		mutate(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: Validate() = %v, want an error naming it", field, err)
		}
	}
	if _, err := New(nil, Config{}, nil); err == nil {
		t.Fatal("New accepted a nil bus")
	}
}

func FuzzRunStateDecode(f *testing.F) {
	g, err := NewGraph(benchPlan("wide", 20))
	if err != nil {
		f.Fatal(err)
	}
	st := NewRunState(g)
	seed, _ := st.MarshalBinary()
	f.Add(seed)
	tomb, _ := st.Tombstone().MarshalBinary()
	f.Add(tomb)
	f.Add([]byte{1, 1, 0, 3, 0, 0, 3, 1, 1})
	f.Add([]byte{StateVersion, 4, 0, 3, 0, 5, 0, 3, 0x81, 2, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		var st RunState
		if err := st.UnmarshalBinary(data); err != nil {
			return
		}
		enc, err := st.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var again RunState
		if err := again.UnmarshalBinary(enc); err != nil {
			t.Fatalf("re-decoding %x: %v", enc, err)
		}
		enc2, _ := again.MarshalBinary()
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable: %x then %x", enc, enc2)
		}
	})
}
