// Package schema applies Ork's database migrations to the database a store URL names (the URLs of
// package storeopen; the JSON file store has no schema: migrating it does nothing, its version is
// always 1). It is the only code that changes a schema: opening a store never does.
//
// Migrations are the SQL files embedded by the migrations module, run by golang-migrate through its
// iofs source: the pgx/v5 driver for PostgreSQL and the pure-Go (modernc.org/sqlite) driver for
// SQLite. Migrating an up-to-date database is harmless. PostgreSQL migrations are serialized by
// golang-migrate's advisory lock; SQLite ones by an exclusive lock on the file PATH.lock, so two
// processes starting at once on one database file do not race.
package schema
