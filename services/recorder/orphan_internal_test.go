package recorder

import (
	"testing"
	"time"
)

func TestOrphanDelayGrows(t *testing.T) {
	t.Parallel()
	c := Config{OrphanDelay: 100 * time.Millisecond, OrphanDelayMax: time.Second}.WithDefaults()
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second}
	for i, w := range want {
		if got := c.orphanDelay(uint64(i + 1)); got != w {
			t.Errorf("delay after delivery %d: %s, want %s", i+1, got, w)
		}
	}
}

func TestOrphanExpiresByAgeAndDeliveries(t *testing.T) {
	t.Parallel()
	// Delays 1s, 2s, 4s, 5s, 5s...: the deliveries before the 7th took at least 1+2+4+5+5+5 = 22s.
	c := Config{AckWait: 5 * time.Second, OrphanDelay: time.Second, OrphanDelayMax: 5 * time.Second}.WithDefaults()
	if c.OrphanMaxAge != 40*time.Second {
		t.Fatalf("OrphanMaxAge %s, want 2*AckWait+30s", c.OrphanMaxAge)
	}
	for _, tc := range []struct {
		name      string
		delivered uint64
		age       time.Duration
		want      bool
	}{
		{"young, first delivery", 1, time.Second, false},
		// Stuck behind a submission a crashed recorder holds: three deliveries are not enough.
		{"young, third delivery", 3, 8 * time.Second, false},
		{"young, many deliveries", 50, 39 * time.Second, false},
		// A backlog's old event on its first delivery: its submission may be on its way back.
		{"old, first delivery", 1, time.Hour, false},
		{"old, deliveries short of the age", 9, time.Hour, false}, // 1+2+4+5*5 = 32s
		{"old, deliveries past the age", 11, time.Hour, true},     // 1+2+4+5*7 = 42s
		{"at the age, deliveries past it", 11, 40 * time.Second, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := c.orphanExpired(tc.delivered, tc.age); got != tc.want {
				t.Errorf("orphanExpired(%d, %s) = %v, want %v", tc.delivered, tc.age, got, tc.want)
			}
		})
	}
}
