package filestore_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/store/filestore"
	"github.com/ork-go/ork/pkg/store/storetest"
)

func TestMain(m *testing.M) {
	if os.Getenv(envDir) != "" {
		os.Exit(childMain())
	}
	goleak.VerifyTestMain(m)
}

// open returns a fresh store in its own temporary directory, closed at cleanup.
func open(tb testing.TB, dir string) *filestore.Store {
	tb.Helper()
	s, err := filestore.Open(dir)
	if err != nil {
		tb.Fatalf("Open(%s): %v", dir, err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, t.TempDir()) },
		storetest.WithSharedBackend(func(t *testing.T) (store.Store, store.Store) {
			dir := t.TempDir()
			return open(t, dir), open(t, dir)
		}))
}

func BenchmarkApplyBatch(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) store.Store { return open(b, b.TempDir()) })
}
