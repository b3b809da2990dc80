// Package pgtest gives each test a PostgreSQL schema of its own in the database named by
// TEST_DATABASE_URL, so tests run in parallel on one server without seeing each other's rows.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the variable holding the test server's URL. CI sets it; without it, tests that need
// PostgreSQL skip with a message naming it.
const EnvURL = "TEST_DATABASE_URL"

// AdminURL returns the URL of TEST_DATABASE_URL, the server tests may create schemas and
// databases on; it skips tb with a message naming the variable when it is not set.
func AdminURL(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv(EnvURL)
	if base == "" {
		tb.Skip(EnvURL + " is not set; set it to a PostgreSQL URL (CI uses postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable) to run the PostgreSQL tests")
	}
	return base
}

// SchemaURL creates an empty schema for tb, drops it when tb ends, and returns a URL whose
// connections use it (search_path). It skips tb when TEST_DATABASE_URL is not set.
func SchemaURL(tb testing.TB) string {
	tb.Helper()
	base := AdminURL(tb)
	buf := make([]byte, 8)
	_, _ = rand.Read(buf)
	name := "t_" + hex.EncodeToString(buf)
	exec(tb, base, "CREATE SCHEMA "+name)
	tb.Cleanup(func() { exec(tb, base, "DROP SCHEMA "+name+" CASCADE") })

	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("parsing %s: %v", EnvURL, err)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}

func exec(tb testing.TB, dbURL, sql string) {
	tb.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		tb.Fatalf("connecting to %s: %v", EnvURL, err)
	}
	defer func() { _ = conn.Close(ctx) }()
	if _, err := conn.Exec(ctx, sql); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
}
