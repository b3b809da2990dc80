package processes

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"

	"github.com/jackc/pgx/v5"
)

// reDatabaseName is what CreateDatabase accepts as a name, so it can be put in SQL unquoted.
var reDatabaseName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// DatabaseURL returns serverURL with its database replaced by name.
func DatabaseURL(serverURL, name string) (string, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return "", fmt.Errorf("parsing database url: %w", err)
	}
	u.Path = "/" + name
	u.RawPath = ""
	return u.String(), nil
}

// CreateDatabase creates an empty database named name on the server of adminURL (dropping one of
// that name first) and returns its URL.
func CreateDatabase(ctx context.Context, adminURL, name string) (string, error) {
	if !reDatabaseName.MatchString(name) {
		return "", fmt.Errorf("creating database: bad name %q", name)
	}
	dbURL, err := DatabaseURL(adminURL, name)
	if err != nil {
		return "", err
	}
	err = withConn(ctx, adminURL, func(conn *pgx.Conn) error {
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("dropping database %s: %w", name, err)
		}
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
			return fmt.Errorf("creating database %s: %w", name, err)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return dbURL, nil
}

// DropDatabase drops a database created by CreateDatabase, disconnecting its sessions.
func DropDatabase(ctx context.Context, adminURL, name string) error {
	if !reDatabaseName.MatchString(name) {
		return fmt.Errorf("dropping database: bad name %q", name)
	}
	return withConn(ctx, adminURL, func(conn *pgx.Conn) error {
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("dropping database %s: %w", name, err)
		}
		return nil
	})
}

func withConn(ctx context.Context, dbURL string, fn func(*pgx.Conn) error) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("connecting to postgres: %w", err)
	}
	return errors.Join(fn(conn), conn.Close(ctx))
}
