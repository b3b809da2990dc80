package storeopen

import (
	"context"
	"fmt"

	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/store/filestore"
	"github.com/ork-go/ork/pkg/store/pgstore"
	"github.com/ork-go/ork/pkg/store/sqlitestore"
)

// DefaultURL is the store of `ork run` when none is given: SQLite in ./.ork.
const DefaultURL = "sqlite://.ork/ork.db"

// Open opens the store a URL names. It never changes a schema: the database must exist and have
// been migrated (schema.Up, `ork migrate up`); an SQLite file that does not exist is an error.
func Open(ctx context.Context, url string) (store.Store, error) {
	t, err := ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("opening store: %w", err)
	}
	var s store.Store
	switch t.Kind {
	case KindSQLite:
		s, err = sqlitestore.Open(ctx, t.Path)
	case KindPostgres:
		s, err = pgstore.Open(ctx, t.URL)
	case KindFile:
		s, err = filestore.Open(t.Path)
	default:
		err = fmt.Errorf("unknown store kind %q", t.Kind)
	}
	if err != nil {
		return nil, fmt.Errorf("opening store %s: %w", Redact(url), err)
	}
	return s, nil
}
