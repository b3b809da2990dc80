package embedded

import (
	"testing"
	"time"

	"github.com/ork-go/ork/pkg/poll"
)

func TestIdleReleaseFiresEachStepOnceAfterActivity(t *testing.T) {
	r := newIdleRelease(20*time.Millisecond, 60*time.Millisecond)
	defer r.stop()
	if poll.Within(100*time.Millisecond, func() bool { return r.count() > 0 }) {
		t.Fatal("released without any activity: an idle process must not wake up")
	}
	r.active()
	poll.UntilWithin(t, 10*time.Second, "both steps to fire", func() bool { return r.count() == 2 })
	r.mu.Lock()
	armed := r.timer != nil
	r.mu.Unlock()
	if armed {
		t.Fatal("a timer is still armed after the last step: the idle process would keep waking")
	}
	r.active()
	poll.UntilWithin(t, 10*time.Second, "the steps to fire again after new activity", func() bool { return r.count() == 4 })
}

func TestIdleReleaseWaitsWhileActive(t *testing.T) {
	r := newIdleRelease(time.Hour, 2*time.Hour)
	defer r.stop()
	r.active()
	r.fire() // as if the timer fired early: the process was active just now
	if r.count() != 0 {
		t.Fatalf("released %d times an instant after activity", r.count())
	}
	r.mu.Lock()
	r.last = time.Now().Add(-time.Hour)
	r.mu.Unlock()
	r.fire()
	if r.count() != 1 {
		t.Fatalf("released %d times after an hour of quiet, want 1", r.count())
	}
	r.active() // new activity starts over from the first step
	r.mu.Lock()
	step := r.step
	r.mu.Unlock()
	if step != 0 {
		t.Fatalf("after new activity the next step is %d, want 0", step)
	}
	r.stop()
	r.fire() // a timer that fires after stop does nothing
	if r.count() != 1 {
		t.Fatalf("released after stop")
	}
}
