package recorder_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/store/filestore"
	"github.com/ork-go/ork/pkg/store/pgstore"
	"github.com/ork-go/ork/pkg/store/pgtest"
	"github.com/ork-go/ork/pkg/store/schema"
	"github.com/ork-go/ork/pkg/store/sqlitestore"
)

// opener returns a fresh, empty store closed at the end of the test.
type opener func(tb testing.TB) store.Store

// stores are the stores every recorder test runs against.
var stores = []struct {
	name string
	open opener
}{
	{"sqlite", openSQLite},
	{"postgres", openPostgres},
	{"file", openFile},
}

// forEachStore runs fn as a parallel subtest per store.
func forEachStore(t *testing.T, fn func(t *testing.T, open opener)) {
	t.Helper()
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			fn(t, s.open)
		})
	}
}

// openSQLite opens a sqlitestore in the test's temporary directory.
func openSQLite(tb testing.TB) store.Store {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "ork.db")
	if err := schema.Up(context.Background(), "sqlite://"+path); err != nil {
		tb.Fatal(err)
	}
	st, err := sqlitestore.Open(context.Background(), path)
	if err != nil {
		tb.Fatalf("opening sqlitestore: %v", err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	return st
}

// openPostgres opens a migrated pgstore on a schema of its own in TEST_DATABASE_URL; without the
// variable the test is skipped.
func openPostgres(tb testing.TB) store.Store {
	tb.Helper()
	ctx := context.Background()
	dbURL := pgtest.SchemaURL(tb)
	if err := schema.Up(ctx, dbURL); err != nil {
		tb.Fatalf("migrating: %v", err)
	}
	st, err := pgstore.Open(ctx, dbURL)
	if err != nil {
		tb.Fatalf("opening pgstore: %v", err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	return st
}

// openFile opens a filestore in the test's temporary directory.
func openFile(tb testing.TB) store.Store {
	tb.Helper()
	st, err := filestore.Open(tb.TempDir())
	if err != nil {
		tb.Fatalf("opening filestore: %v", err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	return st
}
