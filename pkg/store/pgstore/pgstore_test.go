package pgstore_test

import (
	"context"
	"testing"

	"go.uber.org/goleak"

	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/store/pgstore"
	"github.com/ork-go/ork/pkg/store/pgtest"
	"github.com/ork-go/ork/pkg/store/schema"
	"github.com/ork-go/ork/pkg/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testSchemaURL returns a migrated schema of tb's own (see pgtest.SchemaURL); it skips tb without
// TEST_DATABASE_URL.
func testSchemaURL(tb testing.TB) string {
	tb.Helper()
	dbURL := pgtest.SchemaURL(tb)
	if err := schema.Up(context.Background(), dbURL); err != nil {
		tb.Fatalf("migrating: %v", err)
	}
	return dbURL
}

// open returns a fresh migrated store in a schema of its own, closed at cleanup.
func open(tb testing.TB) *pgstore.Store {
	tb.Helper()
	return openURL(tb, testSchemaURL(tb))
}

// openURL opens a store on dbURL, closed at cleanup.
func openURL(tb testing.TB, dbURL string) *pgstore.Store {
	tb.Helper()
	s, err := pgstore.Open(context.Background(), dbURL)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store { return open(t) },
		storetest.WithSharedBackend(func(t *testing.T) (store.Store, store.Store) {
			dbURL := testSchemaURL(t)
			return openURL(t, dbURL), openURL(t, dbURL)
		}))
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

// TestPlannerUsesTheTaskIndex checks the connection setting that keeps the recorder's batch updates
// on the tasks primary key instead of a sequential scan, and that a URL can override it.
func TestPlannerUsesTheTaskIndex(t *testing.T) {
	t.Parallel()
	dbURL := testSchemaURL(t)
	ctx := context.Background()
	for url, want := range map[string]string{dbURL: "1.1", dbURL + "&random_page_cost=3": "3"} {
		s, err := pgstore.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		err = pgstore.QueryRowForTest(ctx, s, "SHOW random_page_cost").Scan(&got)
		_ = s.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("random_page_cost %q, want %q (url %s)", got, want, url)
		}
	}
}
