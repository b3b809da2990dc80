package poll_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ork-go/ork/pkg/poll"
)

func TestPoll(t *testing.T) {
	var n atomic.Int32
	if !poll.Within(time.Minute, func() bool { return n.Add(1) >= 3 }) {
		t.Fatal("a condition that comes true was not seen")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if poll.Poll(ctx, func() bool { return false }) {
		t.Fatal("a condition that never holds was reported holding")
	}
	if !poll.Poll(ctx, func() bool { return true }) {
		t.Fatal("a condition that holds was not seen on an ended context")
	}
}
