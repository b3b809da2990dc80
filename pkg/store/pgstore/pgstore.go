package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ork-go/ork/pkg/store"
)

// Default page sizes of the list queries (see store's Params docs).
const (
	RunListLimitDefault        = 50
	DeadLetterListLimitDefault = 100
)

// Store is a store.Store on a PostgreSQL connection pool.
type Store struct {
	pool *pgxpool.Pool
}

// dbtx is what both *pgxpool.Pool and pgx.Tx offer, so queries run in or out of a transaction.
type dbtx interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// randomPageCostDefault is the planner's random_page_cost on our connections (see Open).
const randomPageCostDefault = "1.1"

// Open connects to the database at url (a postgres:// URL or a key=value DSN) and checks the
// connection. It does not apply migrations.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parsing database url: %w", err)
	}
	// The batch upserts join unnest() arrays to tasks and runs by primary key. With the default
	// random_page_cost of 4 the planner prefers a sequential scan of tasks as soon as it is a few
	// thousand rows, which made small recorder batches cost a full scan each (measured in
	// docs/benchmarks.md, "Recorder ceiling"). Our working set is in memory, so tell the planner
	// that index lookups are cheap, unless the URL says otherwise.
	if _, ok := cfg.ConnConfig.RuntimeParams["random_page_cost"]; !ok {
		cfg.ConnConfig.RuntimeParams["random_page_cost"] = randomPageCostDefault
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("creating connection pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connecting to database: %w", err)
	}
	return &Store{pool: pool}, nil
}

// Close closes the pool, waiting for connections in use to be released.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// interpretError translates a driver error into the store's sentinels; what names the object the
// statement was about, for the message.
func interpretError(err error, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505", "23503": // unique_violation, foreign_key_violation
			return fmt.Errorf("%s: %w: %s", what, store.ErrConflict, pgErr.Message)
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// retryable reports whether a failed transaction may simply be run again.
func retryable(err error) bool {
	if errors.Is(err, errStaleSubmission) || errors.Is(err, errStaleRegistration) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "40P01" || pgErr.Code == "40001" // deadlock_detected, serialization_failure
	}
	return false
}

const runColumns = `r.id, w.name, r.workflow_hash, r.status, r.triggered_by, COALESCE(r.idempotency_key, ''),
	r.error, r.task_count, r.params, r.rerun_of, r.scheduled_for, r.created_at, r.started_at, r.finished_at`
