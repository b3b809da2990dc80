package storeopen

import (
	"context"
	"fmt"

	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/store/filestore"
	"github.com/ork-go/ork/pkg/store/pgstore"
	"github.com/ork-go/ork/pkg/store/schema"
	"github.com/ork-go/ork/pkg/store/sqlitestore"
)

// DefaultURL is the store of `ork run` when none is given: SQLite in ./.ork.
const DefaultURL = "sqlite://.ork/ork.db"

// Open opens the store a URL names. An SQLite database is created and migrated if needed; a
// PostgreSQL database must have been migrated (see Migrate).
func Open(ctx context.Context, url string) (store.Store, error) {
	t, err := schema.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("opening store: %w", err)
	}
	var s store.Store
	switch t.Kind {
	case schema.KindSQLite:
		s, err = sqlitestore.Open(ctx, t.Path)
	case schema.KindPostgres:
		s, err = pgstore.Open(ctx, t.URL)
	case schema.KindFile:
		s, err = filestore.Open(t.Path)
	default:
		err = fmt.Errorf("unknown store kind %q", t.Kind)
	}
	if err != nil {
		return nil, fmt.Errorf("opening store %s: %w", schema.Redact(url), err)
	}
	return s, nil
}

// Migrate applies the schema migrations of the store a URL names; see schema.Up.
func Migrate(ctx context.Context, url string) error { return schema.Up(ctx, url) }
