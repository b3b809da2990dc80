package executor

import (
	"context"
	"sync"
)

// slots is the concurrency budget of an instance, shared by the pullers of all its types. A
// dispatch is claimed when it is received and runs when it acquires a slot; pullers ask the server
// for no more dispatches than there are unclaimed slots, and wait (without polling) for a change
// when there are none.
type slots struct {
	mu      sync.Mutex
	size    int
	running int
	claimed int           // received, waiting for a slot
	changed chan struct{} // closed and replaced when running or claimed goes down
}

func newSlots(n int) *slots { return &slots{size: n, changed: make(chan struct{})} }

// free returns how many more dispatches may be fetched, and a channel closed at the next release.
func (s *slots) free() (int, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size - s.running - s.claimed, s.changed
}

// claim counts a received dispatch.
func (s *slots) claim() {
	s.mu.Lock()
	s.claimed++
	s.mu.Unlock()
}

// unclaim forgets a claimed dispatch that will not run here.
func (s *slots) unclaim() {
	s.mu.Lock()
	s.claimed--
	s.notify()
	s.mu.Unlock()
}

// acquire turns a claim into a running slot, waiting for one. On error the claim is dropped.
func (s *slots) acquire(ctx context.Context) error {
	for {
		s.mu.Lock()
		if s.running < s.size {
			s.running++
			s.claimed--
			s.mu.Unlock()
			return nil
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			s.unclaim()
			return ctx.Err()
		}
	}
}

// release frees a running slot.
func (s *slots) release() {
	s.mu.Lock()
	s.running--
	s.notify()
	s.mu.Unlock()
}

func (s *slots) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}
