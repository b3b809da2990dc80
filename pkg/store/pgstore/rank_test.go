package pgstore

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/store/pgtest"
)

// TestRankSQL checks the SQL rank expressions against store.TaskRank and store.RunRank.
func TestRankSQL(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.SchemaURL(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(ctx) }()
	statuses := []string{
		event.TaskPending, event.TaskDispatched, event.TaskRunning, event.TaskSuccess, event.TaskFailed,
		event.TaskSkipped, event.TaskCancelled, event.TaskPaused, event.TaskLost, event.RunRunning, event.RunPaused, "", "bogus",
	}
	for _, st := range statuses {
		var task, run int
		if err := conn.QueryRow(ctx, "SELECT "+store.TaskRankSQL("$1::text")+", "+store.RunRankSQL("$1::text"), st).Scan(&task, &run); err != nil {
			t.Fatal(err)
		}
		if task != store.TaskRank(st) {
			t.Errorf("task rank of %q: SQL %d, Go %d", st, task, store.TaskRank(st))
		}
		if run != store.RunRank(st) {
			t.Errorf("run rank of %q: SQL %d, Go %d", st, run, store.RunRank(st))
		}
	}
}
