// Package schema applies Ork's database migrations and parses the store URLs every Ork command
// accepts.
//
// A store URL is one of:
//   - sqlite://PATH, or a bare PATH ending in .db, .sqlite or .sqlite3: an SQLite database file;
//   - postgres://… or postgresql://…: a PostgreSQL database;
//   - file://DIR: the JSON file store, which has no schema (migrating it does nothing, its version
//     is always 1).
//
// Migrations are the SQL files embedded by the migrations module, run by golang-migrate through its
// iofs source: the pgx/v5 driver for PostgreSQL and the pure-Go (modernc.org/sqlite) driver for
// SQLite. Migrating an up-to-date database is harmless. PostgreSQL migrations are serialized by
// golang-migrate's advisory lock; SQLite ones by an exclusive lock on the file PATH.lock, so two
// processes starting at once on one database file do not race.
package schema
