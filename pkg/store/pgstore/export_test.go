package pgstore

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// QueryRowForTest runs a query on the store's pool, for tests of connection settings and of rows
// the interface does not read.
func QueryRowForTest(ctx context.Context, s *Store, sql string, args ...any) pgx.Row {
	return s.pool.QueryRow(ctx, sql, args...)
}
