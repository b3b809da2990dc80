package recorder_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/store/pgstore"
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
func openSQLite(t testing.TB) store.Store {
	t.Helper()
	st, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "ork.db"))
	if err != nil {
		t.Fatalf("opening sqlitestore: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// openPostgres opens a pgstore on a schema of its own in TEST_DATABASE_URL, dropped at cleanup.
func openPostgres(t testing.TB) store.Store {
	t.Helper()
	base := os.Getenv("TEST_DATABASE_URL")
	if base == "" {
		t.Skip("TEST_DATABASE_URL is not set; set it to a PostgreSQL URL (postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable) to run the recorder against PostgreSQL")
	}
	ctx := context.Background()
	buf := make([]byte, 8)
	_, _ = rand.Read(buf)
	name := "rec_" + hex.EncodeToString(buf)
	exec := func(sql string) {
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Fatalf("connecting to TEST_DATABASE_URL: %v", err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec("CREATE SCHEMA " + name)
	t.Cleanup(func() { exec("DROP SCHEMA " + name + " CASCADE") })
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parsing TEST_DATABASE_URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	if err := schema.Up(ctx, u.String()); err != nil {
		t.Fatalf("migrating schema %s: %v", name, err)
	}
	st, err := pgstore.Open(ctx, u.String())
	if err != nil {
		t.Fatalf("opening pgstore: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}
