package sqlitestore_test

import (
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/store/sqlitestore"
	"github.com/ork-go/ork/pkg/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// open opens a fresh store in a temporary directory, closed when the test ends.
func open(tb testing.TB) *sqlitestore.Store {
	tb.Helper()
	s, err := sqlitestore.Open(tb.Context(), filepath.Join(tb.TempDir(), "sub", "ork.db"))
	if err != nil {
		tb.Fatalf("opening store: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("closing store: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store { return open(t) })
}

func BenchmarkApplyBatch(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) store.Store { return open(b) })
}
