package storeopen_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/store/filestore"
	"github.com/ork-go/ork/pkg/store/pgstore"
	"github.com/ork-go/ork/pkg/store/pgtest"
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
	roundTrip(t, "sqlite://"+filepath.Join(dir, "a", "ork.db"), &sqlitestore.Store{})
	roundTrip(t, filepath.Join(dir, "b.db"), &sqlitestore.Store{})
	if err := storeopen.Migrate(t.Context(), "sqlite://"+filepath.Join(dir, "a", "ork.db")); err != nil {
		t.Errorf("Migrate of an open-created database: %v", err)
	}
}

func TestFile(t *testing.T) {
	t.Parallel()
	url := "file://" + filepath.Join(t.TempDir(), "files")
	if err := storeopen.Migrate(t.Context(), url); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	roundTrip(t, url, &filestore.Store{})
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := pgtest.SchemaURL(t)
	if err := storeopen.Migrate(ctx, url); err != nil {
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
