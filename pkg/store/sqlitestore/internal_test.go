package sqlitestore_test

import (
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/store/sqlitestore"
	"github.com/ork-go/ork/pkg/workflow"
)

func submission(runID string) event.Event {
	e := event.New(event.TypeRunSubmitted, runID, "", 0)
	e.Workflow = "wf"
	e.Plan = &workflow.Plan{Name: "wf", Hash: "hash-1", Tasks: []workflow.Task{
		{Name: "a", Index: 0, Executor: workflow.ExecutorNoop},
		{Name: "b", Index: 1, Executor: workflow.ExecutorPython, DependsOn: []string{"a"}},
	}}
	return e
}

func TestPragmas(t *testing.T) {
	t.Parallel()
	s := openAt(t, filepath.Join(t.TempDir(), "ork.db"))
	for _, db := range []*sql.DB{s.Writer(), s.Reader()} {
		var mode string
		var sync, fk, busy int
		row := db.QueryRowContext(t.Context(), `SELECT * FROM pragma_journal_mode, pragma_synchronous, pragma_foreign_keys, pragma_busy_timeout`)
		if err := row.Scan(&mode, &sync, &fk, &busy); err != nil {
			t.Fatal(err)
		}
		if mode != "wal" || sync != 2 || fk != 1 || busy <= 0 {
			t.Errorf("journal_mode=%s synchronous=%d foreign_keys=%d busy_timeout=%d, want wal 2 1 >0", mode, sync, fk, busy)
		}
	}
	if got := s.Writer().Stats().MaxOpenConnections; got != 1 {
		t.Errorf("writer pool allows %d connections, want 1", got)
	}
	if _, err := s.Reader().ExecContext(t.Context(), `DELETE FROM runs`); err == nil {
		t.Error("a reader connection could write")
	}
}

func TestWorkflowTasks(t *testing.T) {
	t.Parallel()
	s := openAt(t, filepath.Join(t.TempDir(), "ork.db"))
	if _, err := s.ApplyBatch(t.Context(), store.ApplyBatchParams{Events: []event.Event{submission("r1"), submission("r2")}}); err != nil {
		t.Fatal(err)
	}
	rows, err := s.Reader().QueryContext(t.Context(), `SELECT hash, name, idx, executor, depends_on FROM workflow_tasks ORDER BY idx`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var hash, name, executor, deps string
		var idx int
		if err := rows.Scan(&hash, &name, &idx, &executor, &deps); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s %s %d %s %s", hash, name, idx, executor, deps))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{"hash-1 a 0 noop []", `hash-1 b 1 python ["a"]`}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("workflow_tasks = %q, want %q", got, want)
	}
}

// TestRegistrationWritesWorkflowTasks checks the compiled DAG a registration stores with its version.
func TestRegistrationWritesWorkflowTasks(t *testing.T) {
	t.Parallel()
	s := openAt(t, filepath.Join(t.TempDir(), "ork.db"))
	p := submission("r1").Plan
	if _, err := s.ApplyBatch(t.Context(), store.ApplyBatchParams{Registrations: []store.Registration{
		{Name: "wf", Revision: 1, Plan: p, AppliedAt: time.Now()}}}); err != nil {
		t.Fatal(err)
	}
	var got string
	err := s.Reader().QueryRowContext(t.Context(), `SELECT group_concat(hash || ' ' || name || ' ' || idx || ' ' || executor || ' ' || depends_on, ', ')
FROM (SELECT * FROM workflow_tasks ORDER BY idx)`).Scan(&got)
	if want := `hash-1 a 0 noop [], hash-1 b 1 python ["a"]`; err != nil || got != want {
		t.Errorf("workflow_tasks = %q (%v), want %q", got, err, want)
	}
}

func TestInterpretError(t *testing.T) {
	t.Parallel()
	s := openAt(t, filepath.Join(t.TempDir(), "ork.db"))
	ctx := t.Context()
	if _, err := s.ApplyBatch(ctx, store.ApplyBatchParams{Events: []event.Event{submission("r1")}}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Writer().ExecContext(ctx, `INSERT INTO runs (id, workflow_id, workflow_hash, status, created_at) SELECT id, workflow_id, workflow_hash, status, created_at FROM runs`)
	if err == nil || !errors.Is(sqlitestore.InterpretError(err), store.ErrConflict) {
		t.Errorf("duplicate key: sqlitestore.InterpretError(%v) is not ErrConflict", err)
	}
	_, err = s.Writer().ExecContext(ctx, `INSERT INTO tasks (run_id, name, idx, executor, status) VALUES ('nope', 'x', 0, 'noop', 'pending')`)
	if err == nil || !errors.Is(sqlitestore.InterpretError(err), store.ErrConflict) {
		t.Errorf("foreign key: sqlitestore.InterpretError(%v) is not ErrConflict", err)
	}
	if err := sqlitestore.InterpretError(sql.ErrNoRows); !errors.Is(err, store.ErrNotFound) || !errors.Is(err, sql.ErrNoRows) {
		t.Errorf("sqlitestore.InterpretError(ErrNoRows) = %v, want ErrNotFound wrapping it", err)
	}
	other := errors.New("disk on fire")
	if err := sqlitestore.InterpretError(other); err != other { //nolint:errorlint // the very error, not one wrapping it
		t.Errorf("sqlitestore.InterpretError(other) = %v, want it unchanged", err)
	}
}

func TestTimesRoundTrip(t *testing.T) {
	t.Parallel()
	in := time.Date(2026, 11, 25, 19, 5, 7, 120000000, time.FixedZone("X", 3600))
	enc, ok := sqlitestore.DBTime(in).(string)
	if !ok || enc != "2026-11-25T18:05:07.120000000Z" {
		t.Fatalf("dbTime = %v", sqlitestore.DBTime(in))
	}
	out, err := sqlitestore.ParseTime(enc)
	if err != nil || !out.Equal(in) {
		t.Errorf("sqlitestore.ParseTime(%s) = %v, %v; want %v", enc, out, err, in)
	}
	if sqlitestore.DBTime(time.Time{}) != nil {
		t.Error("the zero time is not NULL")
	}
	// Fixed width: a later time sorts later as text, whatever its fraction.
	if a, b := sqlitestore.DBTime(in).(string), sqlitestore.DBTime(in.Add(500*time.Millisecond)).(string); a >= b {
		t.Errorf("%s does not sort before %s", a, b)
	}
}

// Two stores on one file, as `ork serve` and `ork status` in two processes: both write and read.
func TestTwoStoresOneFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "ork.db")
	a, b := openAt(t, path), openAt(t, path)
	ctx := t.Context()
	const n = 20
	errs := make(chan error, 2)
	for i, s := range []*sqlitestore.Store{a, b} {
		go func() {
			for j := range n {
				if _, err := s.ApplyBatch(ctx, store.ApplyBatchParams{Events: []event.Event{submission(fmt.Sprintf("r-%d-%d", i, j))}}); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("ApplyBatch: %v", err)
		}
	}
	for _, s := range []*sqlitestore.Store{a, b} {
		rs, err := s.RunList(ctx, store.RunListParams{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != 2*n {
			t.Errorf("runs = %d, want %d", len(rs), 2*n)
		}
	}
	// Reopening finds everything.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	c, err := sqlitestore.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if _, err := c.RunGet(ctx, store.RunGetParams{ID: "r-1-7"}); err != nil {
		t.Errorf("RunGet after reopening: %v", err)
	}
}
