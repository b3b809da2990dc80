package pgstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/store/pgstore"
	"github.com/ork-go/ork/pkg/workflow"
)

func registryPlan(description string) *workflow.Plan {
	return &workflow.Plan{Name: "etl", Description: description, Hash: "hash-" + description,
		Tasks: []workflow.Task{{Name: "a", Executor: workflow.ExecutorNoop}, {Name: "b", Index: 1, Executor: workflow.ExecutorNoop, DependsOn: []string{"a"}}}}
}

// TestRegistrationRacesAnotherWriter has another transaction move a workflow's revision past a
// registration after the batch read it: the batch must start over and write nothing of the
// registration, not even its version.
func TestRegistrationRacesAnotherWriter(t *testing.T) {
	t.Parallel()
	dbURL := testSchemaURL(t)
	s := openURL(t, dbURL)
	ctx := t.Context()
	register := func(ctx context.Context, rev uint64, p *workflow.Plan) error {
		_, err := s.ApplyBatch(ctx, store.ApplyBatchParams{Registrations: []store.Registration{
			{Name: "etl", Revision: rev, Plan: p, AppliedAt: time.Now(), AppliedBy: "storetest"}}})
		return err
	}
	if err := register(ctx, 1, registryPlan("one")); err != nil {
		t.Fatal(err)
	}

	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	other, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = other.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := other.Exec(ctx, `UPDATE workflows SET registered_rev = 9, registered_by = 'other' WHERE name = 'etl'`); err != nil {
		t.Fatal(err)
	}
	var pid int
	if err := other.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}

	done := make(chan error, 1)
	go func() { done <- register(ctx, 5, registryPlan("five")) }()
	// The batch has read revision 1 and waits for the other transaction's row lock.
	waitBlockedBy(t, s, pid)
	if err := other.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("ApplyBatch: %v", err)
	}

	w, err := s.WorkflowGet(ctx, store.WorkflowGetParams{Name: "etl"})
	if err != nil {
		t.Fatal(err)
	}
	if w.Revision != 9 || w.AppliedBy != "other" || w.CurrentHash != "hash-one" {
		t.Errorf("workflow = %+v, want revision 9 by other, current hash-one", w)
	}
	if _, err := s.WorkflowVersionGet(ctx, store.WorkflowVersionGetParams{Hash: "hash-five"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("version of the registration that lost the race: error = %v, want ErrNotFound", err)
	}
	var tasks int
	if err := pgstore.QueryRowForTest(ctx, s, `SELECT count(*) FROM workflow_tasks WHERE hash = 'hash-five'`).Scan(&tasks); err != nil || tasks != 0 {
		t.Errorf("workflow_tasks of the losing registration = %d (%v), want 0", tasks, err)
	}
}

// TestRegistrationWritesWorkflowTasks checks the compiled DAG a registration stores with its version.
func TestRegistrationWritesWorkflowTasks(t *testing.T) {
	t.Parallel()
	s := open(t)
	ctx := t.Context()
	if _, err := s.ApplyBatch(ctx, store.ApplyBatchParams{Registrations: []store.Registration{
		{Name: "etl", Revision: 1, Plan: registryPlan("one"), AppliedAt: time.Now()}}}); err != nil {
		t.Fatal(err)
	}
	var got string
	err := pgstore.QueryRowForTest(ctx, s, `SELECT string_agg(name || ' ' || idx || ' ' || executor || ' ' || depends_on::text, ', ' ORDER BY idx)
		FROM workflow_tasks WHERE hash = 'hash-one'`).Scan(&got)
	if want := `a 0 noop [], b 1 noop ["a"]`; err != nil || got != want {
		t.Errorf("workflow_tasks = %q (%v), want %q", got, err, want)
	}
}

// waitBlockedBy waits until a connection of the store waits for a lock the backend pid holds.
func waitBlockedBy(t *testing.T, s *pgstore.Store, pid int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		var n int
		if err := pgstore.QueryRowForTest(ctx, s, `SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))`, pid).Scan(&n); err != nil {
			t.Fatalf("waiting for the batch to block: %v", err)
		}
		if n > 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal("the batch never waited for the other transaction")
		case <-tick.C:
		}
	}
}
