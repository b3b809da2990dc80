package storeopen_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/store/filestore"
	"github.com/ork-go/ork/pkg/store/pgstore"
	"github.com/ork-go/ork/pkg/store/pgtest"
	"github.com/ork-go/ork/pkg/store/schema"
	"github.com/ork-go/ork/pkg/store/sqlitestore"
	"github.com/ork-go/ork/pkg/store/storeopen"
	"github.com/ork-go/ork/pkg/workflow"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// roundTrip opens url, checks the store's type, submits a run and reads it back.
func roundTrip(t *testing.T, url string, wantType any) {
	t.Helper()
	ctx := t.Context()
	s, err := storeopen.Open(ctx, url)
	if err != nil {
		t.Fatalf("Open(%s): %v", url, err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	if got, want := fmt.Sprintf("%T", s), fmt.Sprintf("%T", wantType); got != want {
		t.Fatalf("Open(%s) returned a %s, want %s", url, got, want)
	}
	id := event.NewID()
	sub := event.New(event.TypeRunSubmitted, id, "", 0)
	sub.Workflow = "hello"
	sub.Plan = &workflow.Plan{Name: "hello", Hash: "h-" + id, Tasks: []workflow.Task{{Name: "a", Executor: workflow.ExecutorNoop}}}
	if _, err := s.ApplyBatch(ctx, store.ApplyBatchParams{Events: []event.Event{sub}}); err != nil {
		t.Fatalf("ApplyBatch: %v", err)
	}
	r, err := s.RunGet(ctx, store.RunGetParams{ID: id})
	if err != nil {
		t.Fatalf("RunGet: %v", err)
	}
	if r.Workflow != "hello" || r.Status != event.RunPending {
		t.Errorf("run = %+v", r)
	}
}

func TestSQLite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := "sqlite://" + filepath.Join(dir, "a", "ork.db")
	// Open never creates or migrates: a missing database is an error that says how to make it,
	// and nothing is left behind.
	_, err := storeopen.Open(t.Context(), a)
	if err == nil || !strings.Contains(err.Error(), "ork migrate up") {
		t.Fatalf("opening a missing database: %v, want an error naming ork migrate up", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "a")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("opening a missing database created its directory (%v)", err)
	}
	for _, url := range []string{a, filepath.Join(dir, "b.db")} {
		if err := schema.Up(t.Context(), url); err != nil {
			t.Fatal(err)
		}
		roundTrip(t, url, &sqlitestore.Store{})
	}
}

func TestFile(t *testing.T) {
	t.Parallel()
	url := "file://" + filepath.Join(t.TempDir(), "files")
	if err := schema.Up(t.Context(), url); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	roundTrip(t, url, &filestore.Store{})
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := pgtest.SchemaURL(t)
	if err := schema.Up(ctx, url); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	roundTrip(t, url, &pgstore.Store{})
}

func TestBadURLs(t *testing.T) {
	t.Parallel()
	for _, url := range []string{"", "mysql://u:s3cret@h/db", "notes.txt"} {
		if s, err := storeopen.Open(t.Context(), url); err == nil {
			_ = s.Close()
			t.Errorf("Open(%q) succeeded", url)
		} else if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Open(%q) error leaks the password: %v", url, err)
		}
	}
	_, err := storeopen.Open(t.Context(), "postgres://ork:s3cret@127.0.0.1:1/ork?sslmode=disable&connect_timeout=2")
	if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("Open(unreachable postgres) = %v, want an error naming the url without its password", err)
	}
	if errors.Is(err, store.ErrNotFound) {
		t.Errorf("unreachable database reported as not found: %v", err)
	}
}

func TestParseURL(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		kind storeopen.Kind
		path string
		bad  bool
	}{
		{in: "sqlite://.ork/ork.db", kind: storeopen.KindSQLite, path: ".ork/ork.db"},
		{in: "sqlite:///var/lib/ork/ork.db", kind: storeopen.KindSQLite, path: "/var/lib/ork/ork.db"},
		{in: "data/ork.db", kind: storeopen.KindSQLite, path: "data/ork.db"},
		{in: "/tmp/x.sqlite3", kind: storeopen.KindSQLite, path: "/tmp/x.sqlite3"},
		{in: "postgres://u:p@h:5432/db?sslmode=disable", kind: storeopen.KindPostgres},
		{in: "postgresql://h/db", kind: storeopen.KindPostgres},
		{in: "file://.ork/files", kind: storeopen.KindFile, path: ".ork/files"},
		{in: "", bad: true},
		{in: "sqlite://", bad: true},
		{in: "file://", bad: true},
		{in: "mysql://h/db", bad: true},
		{in: "data/ork.txt", bad: true},
	}
	for _, c := range cases {
		got, err := storeopen.ParseURL(c.in)
		if c.bad {
			if err == nil {
				t.Errorf("ParseURL(%q) = %+v, want an error", c.in, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseURL(%q): %v", c.in, err)
			continue
		}
		if got.Kind != c.kind || got.Path != c.path || got.URL != c.in {
			t.Errorf("ParseURL(%q) = %+v, want kind %s path %q", c.in, got, c.kind, c.path)
		}
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	got := storeopen.Redact("postgres://ork:s3cret@db:5432/ork")
	if strings.Contains(got, "s3cret") || !strings.Contains(got, "@db:5432/ork") {
		t.Errorf("Redact = %q", got)
	}
	_, err := storeopen.ParseURL("mysql://ork:s3cret@db/ork")
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("ParseURL error %v leaks or is missing", err)
	}
}
