package pgstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/store"
)

const benchLogLines = 5000

func benchLogBatches(n int) []event.LogBatch {
	runID := event.NewID()
	var out []event.LogBatch
	now := time.Now()
	for task := range 10 {
		lb := event.LogBatch{RunID: runID, Task: fmt.Sprintf("t%d", task), Attempt: 1}
		for i := range n / 10 {
			lb.Lines = append(lb.Lines, event.LogLine{Seq: int64(i + 1), Stream: event.Stdout, Line: fmt.Sprintf("log line number %d of a task that talks", i), Time: now})
		}
		out = append(out, lb)
	}
	return out
}

// BenchmarkLogs compares the way ApplyBatch writes log lines (unnest arrays inside the pipeline)
// with COPY into a temporary table followed by INSERT ... SELECT ... ON CONFLICT DO NOTHING.
func BenchmarkLogs(b *testing.B) {
	b.Run("unnest", func(b *testing.B) {
		s := open(b)
		lines := 0
		for b.Loop() {
			b.StopTimer()
			logs := benchLogBatches(benchLogLines)
			b.StartTimer()
			if _, err := s.ApplyBatch(b.Context(), store.ApplyBatchParams{Logs: logs}); err != nil {
				b.Fatal(err)
			}
			lines += benchLogLines
		}
		b.ReportMetric(float64(lines)/b.Elapsed().Seconds(), "lines/s")
	})
	b.Run("copy", func(b *testing.B) {
		conn, err := pgx.Connect(context.Background(), testSchemaURL(b))
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = conn.Close(context.Background()) }()
		ctx := b.Context()
		if _, err := conn.Exec(ctx, `CREATE TEMP TABLE logs_in (LIKE task_logs) ON COMMIT DELETE ROWS`); err != nil {
			b.Fatal(err)
		}
		lines := 0
		for b.Loop() {
			b.StopTimer()
			logs := benchLogBatches(benchLogLines)
			rows := make([][]any, 0, benchLogLines)
			b.StartTimer()
			for _, lb := range logs {
				for _, l := range lb.Lines {
					rows = append(rows, []any{lb.RunID, lb.Task, int32(lb.Attempt), l.Seq, l.Stream, l.Line, l.Time}) //nolint:gosec // small
				}
			}
			tx, err := conn.Begin(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"logs_in"}, []string{"run_id", "task", "attempt", "seq", "stream", "line", "ts"}, pgx.CopyFromRows(rows)); err != nil {
				b.Fatal(err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO task_logs SELECT * FROM logs_in ON CONFLICT DO NOTHING`); err != nil {
				b.Fatal(err)
			}
			if err := tx.Commit(ctx); err != nil {
				b.Fatal(err)
			}
			lines += benchLogLines
		}
		b.ReportMetric(float64(lines)/b.Elapsed().Seconds(), "lines/s")
	})
}
