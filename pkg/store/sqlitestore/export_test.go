package sqlitestore

import "database/sql"

// What the external tests reach under the Store.

// Writer and Reader are the store's write and read pools.
func (s *Store) Writer() *sql.DB { return s.w }
func (s *Store) Reader() *sql.DB { return s.r }

var (
	InterpretError = interpretError
	DBTime         = dbTime
	ParseTime      = parseTime
)
