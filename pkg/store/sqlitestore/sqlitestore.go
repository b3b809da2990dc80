package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/store/schema"
)

// ReadersDefault is the size of the pool of read connections.
const ReadersDefault = 4

// Store is an SQLite database holding Ork's state. It is safe for concurrent use.
type Store struct {
	path string
	w    *sql.DB // exactly one connection: every write
	r    *sql.DB // query-only connections
	st   stmts   // prepared on w
}

// Open opens the SQLite database at path, creating the file and its directory if needed, and
// applies the schema migrations.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("opening sqlite store: empty path")
	}
	// schema.Up creates the directory and the file.
	if err := schema.Up(ctx, "sqlite://"+path); err != nil {
		return nil, fmt.Errorf("opening sqlite store: %w", err)
	}
	dsn := schema.SQLiteDSN(path)
	w, err := sql.Open("sqlite", dsn+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("opening sqlite store %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	r, err := sql.Open("sqlite", dsn+"&_query_only=1")
	if err != nil {
		return nil, errors.Join(fmt.Errorf("opening sqlite store %s: %w", path, err), w.Close())
	}
	r.SetMaxOpenConns(ReadersDefault)
	r.SetMaxIdleConns(ReadersDefault)
	s := &Store{path: path, w: w, r: r}
	if err := s.st.prepare(ctx, w); err != nil {
		return nil, errors.Join(fmt.Errorf("opening sqlite store %s: %w", path, err), s.Close())
	}
	if err := r.PingContext(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("opening sqlite store %s: %w", path, err), s.Close())
	}
	return s, nil
}

// Path returns the database file.
func (s *Store) Path() string { return s.path }

// Close closes the database.
func (s *Store) Close() error {
	return errors.Join(s.st.close(), s.w.Close(), s.r.Close())
}

// interpretError translates driver errors into the store's sentinels. It is the only place that
// knows SQLite's error codes. The result wraps both the sentinel and the original error.
func interpretError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: %w", store.ErrNotFound, err)
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY,
			sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY, sqlite3.SQLITE_CONSTRAINT:
			return fmt.Errorf("%w: %w", store.ErrConflict, err)
		}
	}
	return err
}

// timeLayout is fixed width, so stored times sort as text.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

// dbTime encodes a time; the zero time is NULL.
func dbTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(timeLayout)
}

// parseTime decodes a stored time.
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("stored time %q: %w", s, err)
	}
	return t, nil
}

// parseNullTime decodes an optional stored time.
func parseNullTime(ns sql.NullString) (*time.Time, error) {
	if !ns.Valid {
		return nil, nil
	}
	t, err := parseTime(ns.String)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

var _ store.Store = (*Store)(nil)
