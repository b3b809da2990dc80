// Package storeopen opens the store.Store a URL names, so commands and services take one
// --database/ORK_DATABASE_URL setting for every backend:
//
//   - sqlite://PATH or PATH.db: sqlitestore (migrations applied on open);
//   - postgres://… or postgresql://…: pgstore (migrations are applied separately, by Migrate: the
//     recorder at start, `ork init`, or the compose stack's one-shot migrate service);
//   - file://DIR: filestore (no schema).
package storeopen
