package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/ork-go/ork/pkg/store"
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

// ReaderIdleTime is how long an unused reader connection stays open.
const ReaderIdleTime = 30 * time.Second

// Open opens the SQLite database at path. It never creates nor migrates one: schema.Up (`ork
// migrate up`) does, so a command that only reads can never change a schema.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("opening sqlite store: empty path")
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("opening sqlite store %s: %w (create it with: ork migrate up --db sqlite://%s)", path, err, path)
	}
	dsn := DSN(path)
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
	// A reader idle for a while is closed: each keeps its own page cache (up to 2 MB), which an
	// idle process should not hold on to. The writer stays open (it owns the prepared statements).
	r.SetConnMaxIdleTime(ReaderIdleTime)
	s := &Store{path: path, w: w, r: r}
	if err := s.st.prepare(ctx, w); err != nil {
		return nil, errors.Join(fmt.Errorf("opening sqlite store %s: %w (is it migrated? ork migrate up --db sqlite://%s)", path, err, path), s.Close())
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

// BusyTimeout is how long a connection waits for another connection's write lock.
const BusyTimeout = 10 * time.Second

// DSN returns the modernc.org/sqlite data source name of a database file with the settings
// every Ork connection uses: WAL journal, full sync, foreign keys and a busy timeout.
func DSN(path string) string {
	return path + "?_pragma=busy_timeout(" + fmt.Sprint(BusyTimeout.Milliseconds()) + ")" +
		"&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)"
}
