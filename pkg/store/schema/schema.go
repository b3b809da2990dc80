package schema

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gofrs/flock"
	"github.com/golang-migrate/migrate/v4"
	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	migratesqlite "github.com/golang-migrate/migrate/v4/database/sqlite"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the pgx/v5 database/sql driver

	"github.com/ork-go/ork/migrations"
	"github.com/ork-go/ork/pkg/store/sqlitestore"
	"github.com/ork-go/ork/pkg/store/storeopen"
)

// FileStoreVersion is the schema version Version reports for the JSON file store, which has none.
const FileStoreVersion = 1

// sqliteBusyTimeout is how long a migration waits for another connection's write lock.
const sqliteBusyTimeout = 10 * time.Second

// Up applies every migration not yet applied. Applying it to an up-to-date database does nothing.
func Up(ctx context.Context, dbURL string) error {
	return run(ctx, dbURL, "migrating up", (*migrate.Migrate).Up)
}

// Down reverts every migration, all the way down: every table Ork created is dropped.
func Down(ctx context.Context, dbURL string) error {
	return run(ctx, dbURL, "migrating down", (*migrate.Migrate).Down)
}

// Version returns the schema version of a database (0 when nothing was applied) and whether the
// last migration failed half-way (dirty).
func Version(ctx context.Context, dbURL string) (version uint, dirty bool, err error) {
	err = run(ctx, dbURL, "reading schema version", func(m *migrate.Migrate) error {
		var verr error
		version, dirty, verr = m.Version()
		if errors.Is(verr, migrate.ErrNilVersion) {
			return nil
		}
		return verr
	})
	if err != nil {
		return 0, false, err
	}
	if t, _ := storeopen.ParseURL(dbURL); t.Kind == storeopen.KindFile {
		return FileStoreVersion, false, nil
	}
	return version, dirty, nil
}

// run opens a migrator for dbURL, calls fn and closes it. The file store has nothing to migrate.
func run(ctx context.Context, dbURL, what string, fn func(*migrate.Migrate) error) (err error) {
	t, err := storeopen.ParseURL(dbURL)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s %s: %w", what, storeopen.Redact(dbURL), err)
	}
	wrap := func(err error) error {
		var dirty migrate.ErrDirty
		if errors.As(err, &dirty) {
			return fmt.Errorf("%s %s: database is dirty at version %d (a migration failed half-way; repair it, then force the version): %w",
				what, storeopen.Redact(dbURL), dirty.Version, err)
		}
		return fmt.Errorf("%s %s: %w", what, storeopen.Redact(dbURL), err)
	}

	var m *migrate.Migrate
	switch t.Kind {
	case storeopen.KindFile:
		return nil
	case storeopen.KindSQLite:
		unlock, lerr := lockSQLite(ctx, t.Path)
		if lerr != nil {
			return wrap(lerr)
		}
		defer unlock()
		m, err = openSQLite(t.Path)
	case storeopen.KindPostgres:
		m, err = openPostgres(t.URL)
	}
	if err != nil {
		return wrap(err)
	}
	defer func() {
		srcErr, dbErr := m.Close()
		if cerr := errors.Join(srcErr, dbErr); cerr != nil && err == nil {
			err = wrap(fmt.Errorf("closing: %w", cerr))
		}
	}()

	// golang-migrate takes no context: ask it to stop between migrations when ctx ends.
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			m.GracefulStop <- true
		case <-done:
		}
	}()

	if err := fn(m); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return wrap(err)
	}
	if err := ctx.Err(); err != nil {
		return wrap(err)
	}
	return nil
}

func openPostgres(dbURL string) (*migrate.Migrate, error) {
	src, err := iofs.New(migrations.Postgres, "postgres")
	if err != nil {
		return nil, fmt.Errorf("reading embedded migrations: %w", err)
	}
	// Opened here rather than by URL, so the connection is closed when the driver fails to start.
	db, err := sql.Open("pgx/v5", dbURL)
	if err != nil {
		return nil, err
	}
	drv, err := migratepgx.WithInstance(db, &migratepgx.Config{})
	if err != nil {
		return nil, errors.Join(err, db.Close())
	}
	m, err := migrate.NewWithInstance("iofs", src, "pgx5", drv)
	if err != nil {
		return nil, errors.Join(err, drv.Close())
	}
	return m, nil
}

func openSQLite(path string) (*migrate.Migrate, error) {
	src, err := iofs.New(migrations.SQLite, "sqlite")
	if err != nil {
		return nil, fmt.Errorf("reading embedded migrations: %w", err)
	}
	db, err := sql.Open("sqlite", sqlitestore.DSN(path))
	if err != nil {
		return nil, err
	}
	drv, err := migratesqlite.WithInstance(db, &migratesqlite.Config{})
	if err != nil {
		return nil, errors.Join(err, db.Close())
	}
	m, err := migrate.NewWithInstance("iofs", src, "sqlite", drv)
	if err != nil {
		return nil, errors.Join(err, drv.Close())
	}
	return m, nil
}

// lockSQLite creates the database file's directory and takes an exclusive lock on PATH.lock, so
// that two processes do not migrate one file at once.
func lockSQLite(ctx context.Context, path string) (func(), error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("creating directory: %w", err)
		}
	}
	fl := flock.New(path + ".lock")
	ok, err := fl.TryLockContext(ctx, 20*time.Millisecond)
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", fl.Path(), err)
	}
	if !ok {
		return nil, fmt.Errorf("locking %s: not acquired", fl.Path())
	}
	return func() { _ = fl.Unlock() }, nil
}
