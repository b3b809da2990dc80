// Package storeopen parses the store URLs every Ork command and service accepts (--db, ORK_DB_URL)
// and opens the store.Store a URL names:
//
//   - sqlite://PATH, or a bare PATH ending in .db, .sqlite or .sqlite3: sqlitestore;
//   - postgres://… or postgresql://…: pgstore;
//   - file://DIR: filestore (no schema).
//
// Opening never creates or migrates a database, on any backend, so a command that only reads
// (ork status) can never change a schema. Migrations are applied by package schema: by the
// recorder at start (unless --no-migrate), by `ork run` for its own database, by `ork migrate up`,
// or by the compose stack's one-shot migrate service. Redact hides a URL's password in messages.
package storeopen
