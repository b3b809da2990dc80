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
	reasons := []string{"", event.ReasonLost, event.ReasonMaxLost, event.ReasonExit}
	for _, st := range statuses {
		for _, reason := range reasons {
			var task, run int
			q := "SELECT " + store.TaskRankSQL("$1::text", "$2::text") + ", " + store.RunRankSQL("$1::text")
			if err := conn.QueryRow(ctx, q, st, reason).Scan(&task, &run); err != nil {
				t.Fatal(err)
			}
			if task != store.TaskRank(st, reason) {
				t.Errorf("task rank of %q (reason %q): SQL %d, Go %d", st, reason, task, store.TaskRank(st, reason))
			}
			if run != store.RunRank(st) {
				t.Errorf("run rank of %q: SQL %d, Go %d", st, run, store.RunRank(st))
			}
		}
	}
	if got := store.TaskRank(event.TaskFailed, event.ReasonMaxLost); got <= store.TaskRank(event.TaskSuccess, "") {
		t.Errorf("the verdict on a task lost too often ranks %d, not above a result", got)
	}
}
