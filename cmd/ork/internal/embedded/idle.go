package embedded

import (
	"runtime"
	"runtime/debug"
	"sync"
	"time"
)

// IdleReleaseDefault is how long the stack has to be quiet (no batch committed by the recorder)
// before it hands its freed memory back to the system. It is longer than the embedded JetStream's
// cache expiry (10 s after a message block's last use), so the caches of the load are garbage by then.
const IdleReleaseDefault = 15 * time.Second

// idleRelease returns memory to the operating system once the process has been quiet for a while.
//
// After a load, most of an embedded process's resident memory is garbage the Go runtime keeps for
// the next burst: JetStream's 1–8 MB block buffers wait in a sync.Pool (dropped only after three
// collections), the heap's free spans are returned by the background scavenger over minutes, and
// an idle process triggers no collection for two minutes. A few forced collections when the work
// stops gives that back within seconds; a second one after the streams' duplicate window frees the
// message-id tables JetStream keeps for that window. It costs nothing while busy (a timestamp per
// committed batch) and nothing while idle: the timer is armed only by activity, never polls.
type idleRelease struct {
	steps []time.Duration // since the last activity, increasing

	mu       sync.Mutex
	last     time.Time   // the last activity
	step     int         // the next step to fire
	timer    *time.Timer // armed while a step is pending
	released int         // number of releases, for tests
}

func newIdleRelease(steps ...time.Duration) *idleRelease {
	return &idleRelease{steps: steps}
}

// active records activity; the releases follow once the steps have passed without any.
func (r *idleRelease) active() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last = time.Now()
	switch {
	case r.timer == nil:
		r.step = 0
		r.timer = time.AfterFunc(r.steps[0], r.fire)
	case r.step != 0:
		r.step = 0
		r.timer.Reset(r.steps[0])
	}
}

func (r *idleRelease) fire() {
	r.mu.Lock()
	if r.timer == nil { // stopped
		r.mu.Unlock()
		return
	}
	quiet := time.Since(r.last)
	if wait := r.steps[r.step] - quiet; wait > 0 {
		r.timer.Reset(wait)
		r.mu.Unlock()
		return
	}
	r.released++
	r.step++
	if r.step < len(r.steps) {
		r.timer.Reset(r.steps[r.step] - quiet)
	} else {
		r.timer, r.step = nil, 0
	}
	r.mu.Unlock()
	// JetStream hands an expired cache's buffer back to its pool from a cleanup that runs after the
	// collection that found the cache unreachable; the next collection moves pooled buffers to the
	// pool's victim cache and the one after frees them. FreeOSMemory (a collection too) then returns
	// the free spans at once instead of leaving them to the scavenger.
	runtime.GC()
	runtime.GC()
	debug.FreeOSMemory()
}

// stop disarms a pending release.
func (r *idleRelease) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
}

func (r *idleRelease) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.released
}
