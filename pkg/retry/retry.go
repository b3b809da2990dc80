// Package retry holds the one backoff policy and the one context-aware sleep that Ork's services
// use when they try something again: the scheduler's delay before a failed task's next attempt,
// the recorder's wait before rewriting a batch the database refused, the executor's wait before
// pulling again.
package retry

import (
	"context"
	"fmt"
	"time"
)

// Backoff doubles a delay: try n+1 after failed try n (1-based) waits Base·2^(n-1), at most Max,
// minus a share of at most Jitter of it chosen by a seed, so the same seed gives the same delay.
type Backoff struct {
	Base   time.Duration
	Max    time.Duration
	Jitter float64 // 0..1
}

// Validate names the first bad field.
func (b Backoff) Validate() error {
	switch {
	case b.Base <= 0:
		return fmt.Errorf("backoff: Base must be positive, got %s", b.Base)
	case b.Max < b.Base:
		return fmt.Errorf("backoff: Max (%s) must be at least Base (%s)", b.Max, b.Base)
	case b.Jitter < 0 || b.Jitter > 1:
		return fmt.Errorf("backoff: Jitter must be within 0..1, got %g", b.Jitter)
	}
	return nil
}

// Delay returns the wait after failed try n (1-based); seed chooses the jitter.
func (b Backoff) Delay(n int, seed uint64) time.Duration {
	d := b.Max
	if shift := n - 1; shift >= 0 && shift < 62 && b.Base <= b.Max>>shift {
		d = b.Base << shift
	}
	if b.Jitter > 0 {
		u := float64(seed>>11) / (1 << 53)
		d -= time.Duration(float64(d) * b.Jitter * u)
	}
	return d
}

// Sleep waits d or until ctx ends, and reports whether the whole d passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	if ctx.Err() != nil {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
