package recorder_test

import (
	"testing"

	"github.com/ork-go/ork/pkg/store"
)

// newStore returns the store the recorder tests write to.
func newStore(t *testing.T) store.Store {
	t.Helper()
	return newMemStore()
}
