package sqlitestore_test

import (
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/store/schema"
	"github.com/ork-go/ork/pkg/store/sqlitestore"
	"github.com/ork-go/ork/pkg/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// open opens a fresh store in a temporary directory, closed when the test ends.
func open(tb testing.TB) *sqlitestore.Store {
	tb.Helper()
	return openAt(tb, filepath.Join(tb.TempDir(), "sub", "ork.db"))
}

// openAt opens the store at path, closed when the test ends.
func openAt(tb testing.TB, path string) *sqlitestore.Store {
	tb.Helper()
	if err := schema.Up(tb.Context(), "sqlite://"+path); err != nil {
		tb.Fatalf("migrating store: %v", err)
	}
	s, err := sqlitestore.Open(tb.Context(), path)
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
	storetest.Run(t, func(t *testing.T) store.Store { return open(t) },
		storetest.WithSharedBackend(func(t *testing.T) (store.Store, store.Store) {
			path := filepath.Join(t.TempDir(), "ork.db")
			return openAt(t, path), openAt(t, path)
		}))
}

func BenchmarkApplyBatch(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) store.Store { return open(b) })
}
