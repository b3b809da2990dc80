package retry_test

import (
	"context"
	"testing"
	"time"

	"github.com/ork-go/ork/pkg/retry"
)

func TestBackoffDoublesUpToMax(t *testing.T) {
	b := retry.Backoff{Base: time.Second, Max: 5 * time.Second}
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 5 * time.Second, 100: 5 * time.Second} {
		if got := b.Delay(n, 0); got != want {
			t.Errorf("Delay(%d) = %s, want %s", n, got, want)
		}
	}
	j := retry.Backoff{Base: time.Second, Max: time.Minute, Jitter: 0.5}
	if d := j.Delay(1, ^uint64(0)); d > time.Second || d < time.Second/2 {
		t.Errorf("jittered delay %s outside [0.5s, 1s]", d)
	}
	if j.Delay(3, 42) != j.Delay(3, 42) {
		t.Error("the same seed gave two delays")
	}
	for _, bad := range []retry.Backoff{{}, {Base: time.Second, Max: time.Millisecond}, {Base: 1, Max: 1, Jitter: 2}} {
		if bad.Validate() == nil {
			t.Errorf("%+v validated", bad)
		}
	}
}

func TestSleepEndsWithItsContext(t *testing.T) {
	if !retry.Sleep(context.Background(), time.Millisecond) {
		t.Error("a whole sleep reported cut short")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if retry.Sleep(ctx, time.Hour) {
		t.Error("a sleep on an ended context reported whole")
	}
}
