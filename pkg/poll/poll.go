// Package poll waits for a condition that nothing announces (a process gone, an ack floor
// reached, a row written) by looking again every few milliseconds. Tests use it instead of
// sleeping: they wait on what they check, bounded by a context or a timeout.
package poll

import (
	"context"
	"testing"
	"time"
)

// Interval is how often a condition is looked at again.
const Interval = 5 * time.Millisecond

// Poll calls cond every Interval until it holds (true) or ctx ends (false).
func Poll(ctx context.Context, cond func() bool) bool {
	tick := time.NewTicker(Interval)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return cond()
		}
	}
	return true
}

// Within is Poll bounded by d instead of a context.
func Within(d time.Duration, cond func() bool) bool {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return Poll(ctx, cond)
}

// Until fails tb, naming what it waited for, when ctx ends before cond holds.
func Until(tb testing.TB, ctx context.Context, what string, cond func() bool) {
	tb.Helper()
	if !Poll(ctx, cond) {
		tb.Fatalf("waiting for %s: %v", what, context.Cause(ctx))
	}
}

// UntilWithin fails tb, naming what it waited for, when d passes before cond holds.
func UntilWithin(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	if !Within(d, cond) {
		tb.Fatalf("timed out after %s waiting for %s", d, what)
	}
}
