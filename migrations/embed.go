// Package migrations embeds the SQL schema migrations for every supported database.
//
// Files follow golang-migrate's naming, NNNNNN_name.up.sql and NNNNNN_name.down.sql, one folder per
// dialect. They are served to golang-migrate through its iofs source driver.
package migrations

import (
	"embed"
	"fmt"
)

// Postgres holds the PostgreSQL migrations under postgres/.
//
//go:embed postgres/*.sql
var Postgres embed.FS

// SQLite holds the SQLite migrations under sqlite/.
//
//go:embed sqlite/*.sql
var SQLite embed.FS

// Latest is the version of the newest migration (the same for every dialect).
var Latest = latest()

func latest() uint {
	var n uint
	entries, _ := Postgres.ReadDir("postgres")
	for _, e := range entries {
		var v uint
		if _, err := fmt.Sscanf(e.Name(), "%06d_", &v); err == nil && v > n {
			n = v
		}
	}
	return n
}
