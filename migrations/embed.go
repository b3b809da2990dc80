// Package migrations embeds the SQL schema migrations for every supported database.
//
// Files follow golang-migrate's naming, NNNNNN_name.up.sql and NNNNNN_name.down.sql, one folder per
// dialect. They are served to golang-migrate through its iofs source driver.
package migrations

import "embed"

// Postgres holds the PostgreSQL migrations under postgres/.
//
//go:embed postgres/*.sql
var Postgres embed.FS

// SQLite holds the SQLite migrations under sqlite/.
//
//go:embed sqlite/*.sql
var SQLite embed.FS
