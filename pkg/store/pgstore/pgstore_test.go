package pgstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/store/pgstore"
	"github.com/ork-go/ork/pkg/store/schema"
	"github.com/ork-go/ork/pkg/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testSchemaURL creates a schema of its own for tb in the database at TEST_DATABASE_URL, migrates
// it, drops it at cleanup and returns a URL whose connections use it. Without the variable, tb is
// skipped.
func testSchemaURL(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv("TEST_DATABASE_URL")
	if base == "" {
		tb.Skip("TEST_DATABASE_URL is not set; set it to a PostgreSQL URL (CI uses postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable) to run the PostgreSQL store tests")
	}
	ctx := context.Background()
	buf := make([]byte, 8)
	_, _ = rand.Read(buf)
	name := "t_" + hex.EncodeToString(buf)

	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		tb.Fatalf("connecting to TEST_DATABASE_URL: %v", err)
	}
	defer func() { _ = admin.Close(ctx) }()
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+name); err != nil {
		tb.Fatalf("creating schema %s: %v", name, err)
	}
	tb.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), base)
		if err != nil {
			tb.Errorf("connecting to drop schema %s: %v", name, err)
			return
		}
		defer func() { _ = conn.Close(context.Background()) }()
		if _, err := conn.Exec(context.Background(), "DROP SCHEMA "+name+" CASCADE"); err != nil {
			tb.Errorf("dropping schema %s: %v", name, err)
		}
	})

	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("parsing TEST_DATABASE_URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	if err := schema.Up(ctx, u.String()); err != nil {
		tb.Fatalf("migrating schema %s: %v", name, err)
	}
	return u.String()
}

// open returns a fresh migrated store in a schema of its own, closed at cleanup.
func open(tb testing.TB) *pgstore.Store {
	tb.Helper()
	dbURL := testSchemaURL(tb)
	s, err := pgstore.Open(context.Background(), dbURL)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store { return open(t) })
}

func TestOpenBadURL(t *testing.T) {
	t.Parallel()
	if _, err := pgstore.Open(context.Background(), "postgres://nobody@127.0.0.1:1/none?connect_timeout=1"); err == nil {
		t.Fatal("Open of an unreachable database succeeded")
	}
	if _, err := pgstore.Open(context.Background(), "::not a url"); err == nil {
		t.Fatal("Open of a malformed URL succeeded")
	}
}

func BenchmarkApplyBatch(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) store.Store { return open(b) })
}
