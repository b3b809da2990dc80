package schema_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"

	"github.com/ork-go/ork/migrations"
	"github.com/ork-go/ork/pkg/store/pgtest"
	"github.com/ork-go/ork/pkg/store/schema"
)

// tables lists the Ork tables of an SQLite database.
func tables(t *testing.T, path string) []string {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(t.Context(),
		`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'schema_migrations' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// schemaLatest is the version of the newest migration.
var schemaLatest = migrations.Latest

var allTables = []string{
	"api_tokens", "dead_letters", "runs", "task_attempts", "task_logs", "tasks",
	"workflow_tasks", "workflow_versions", "workflows",
}

func wantVersion(t *testing.T, url string, want uint) {
	t.Helper()
	v, dirty, err := schema.Version(t.Context(), url)
	if err != nil {
		t.Fatalf("Version: %v", err)
	}
	if v != want || dirty {
		t.Fatalf("Version = %d dirty=%v, want %d clean", v, dirty, want)
	}
}

func TestSQLiteUpDown(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "nested", "dir", "ork.db")
	url := "sqlite://" + path
	ctx := t.Context()

	if err := schema.Up(ctx, url); err != nil {
		t.Fatalf("Up: %v", err)
	}
	if got := tables(t, path); fmt.Sprint(got) != fmt.Sprint(allTables) {
		t.Fatalf("tables = %v, want %v", got, allTables)
	}
	wantVersion(t, url, schemaLatest)
	// Twice is harmless, and the bare-path form names the same database.
	if err := schema.Up(ctx, path); err != nil {
		t.Fatalf("second Up: %v", err)
	}
	wantVersion(t, path, schemaLatest)

	if err := schema.Down(ctx, url); err != nil {
		t.Fatalf("Down: %v", err)
	}
	if got := tables(t, path); len(got) != 0 {
		t.Fatalf("tables after Down = %v", got)
	}
	wantVersion(t, url, 0)
	if err := schema.Down(ctx, url); err != nil {
		t.Fatalf("second Down: %v", err)
	}
	if err := schema.Up(ctx, url); err != nil {
		t.Fatalf("Up after Down: %v", err)
	}
	wantVersion(t, url, schemaLatest)
}

func TestSQLiteConcurrentUp(t *testing.T) {
	t.Parallel()
	url := "sqlite://" + filepath.Join(t.TempDir(), "ork.db")
	const n = 4
	errs := make(chan error, n)
	for range n {
		go func() { errs <- schema.Up(t.Context(), url) }()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("concurrent Up: %v", err)
		}
	}
	wantVersion(t, url, schemaLatest)
}

func TestFileStoreIsNoop(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "files")
	url := "file://" + dir
	if err := schema.Up(t.Context(), url); err != nil {
		t.Fatalf("Up: %v", err)
	}
	if err := schema.Down(t.Context(), url); err != nil {
		t.Fatalf("Down: %v", err)
	}
	wantVersion(t, url, schema.FileStoreVersion)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("migrating the file store touched %s: %v", dir, err)
	}
}

func TestErrorsNameTheURL(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	url := "sqlite://" + filepath.Join(t.TempDir(), "ork.db")
	err := schema.Up(ctx, url)
	if err == nil || !strings.Contains(err.Error(), url) {
		t.Errorf("Up with a cancelled context = %v, want an error naming %s", err, url)
	}
	err = schema.Up(t.Context(), "postgres://ork:s3cret@127.0.0.1:1/ork?sslmode=disable&connect_timeout=2")
	if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("Up of an unreachable postgres = %v, want an error naming the url without its password", err)
	}
}

func TestPostgresUpDown(t *testing.T) {
	t.Parallel()
	url := pgtest.SchemaURL(t)
	ctx := t.Context()
	if err := schema.Up(ctx, url); err != nil {
		t.Fatalf("Up: %v", err)
	}
	wantVersion(t, url, schemaLatest)
	if err := schema.Up(ctx, url); err != nil {
		t.Fatalf("second Up: %v", err)
	}
	if err := schema.Down(ctx, url); err != nil {
		t.Fatalf("Down: %v", err)
	}
	wantVersion(t, url, 0)
	if err := schema.Up(ctx, strings.Replace(url, "postgres://", "postgresql://", 1)); err != nil {
		t.Fatalf("Up (postgresql://): %v", err)
	}
	wantVersion(t, url, schemaLatest)
}

// sqliteColumns returns "table: col, col, …" lines for every Ork table of an SQLite database.
func sqliteColumns(t *testing.T, path string) []string {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var out []string
	for _, table := range allTables {
		rows, err := db.QueryContext(t.Context(), `SELECT name FROM pragma_table_info(?) ORDER BY name`, table)
		if err != nil {
			t.Fatal(err)
		}
		var cols []string
		for rows.Next() {
			var c string
			if err := rows.Scan(&c); err != nil {
				t.Fatal(err)
			}
			cols = append(cols, c)
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
		out = append(out, table+": "+strings.Join(cols, ", "))
	}
	return out
}

// postgresColumns is sqliteColumns for the current schema of a PostgreSQL database.
func postgresColumns(t *testing.T, url string) []string {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var out []string
	for _, table := range allTables {
		rows, err := conn.Query(t.Context(), `SELECT column_name FROM information_schema.columns
WHERE table_schema = current_schema() AND table_name = $1 ORDER BY column_name`, table)
		if err != nil {
			t.Fatal(err)
		}
		cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, table+": "+strings.Join(cols, ", "))
	}
	return out
}

// The dialects keep the same tables and column names, so queries and docs hold for both.
func TestDialectsHaveSameColumns(t *testing.T) {
	t.Parallel()
	url := pgtest.SchemaURL(t)
	path := filepath.Join(t.TempDir(), "ork.db")
	if err := schema.Up(t.Context(), path); err != nil {
		t.Fatal(err)
	}
	if err := schema.Up(t.Context(), url); err != nil {
		t.Fatal(err)
	}
	lite, pg := sqliteColumns(t, path), postgresColumns(t, url)
	for i := range lite {
		if lite[i] != pg[i] {
			t.Errorf("columns differ:\n  sqlite   %s\n  postgres %s", lite[i], pg[i])
		}
	}
}
