// Package sqlitestore is the SQLite implementation of store.Store, Ork's embedded default, built on
// modernc.org/sqlite (pure Go, no cgo).
//
// The database runs in WAL mode with synchronous=FULL, foreign keys on and a busy timeout. All
// writes go through ONE connection (SQLite has one writer anyway; a single connection avoids lock
// upgrades and SQLITE_BUSY inside the process) with immediate transactions; reads use a separate
// pool of query-only connections, which WAL lets run beside the writer.
//
// ApplyBatch writes a whole recorder batch in one transaction with prepared statements whose
// WHERE clauses implement the forward-only rules of pkg/store in SQL: a task row moves only when
// (attempt, rank(status)) grows, an attempt row only when its rank grows, a run row only when
// store.RunAdvances would allow it, a workflow's registration only when its revision grows. API
// tokens (store.Tokens) are single statements on the same writer connection. Reads are single JOIN
// queries.
//
// Times are stored as fixed-width UTC text (2006-01-02T15:04:05.000000000Z) so that they sort
// correctly as text; JSON values (plans, outputs, depends_on) as text.
package sqlitestore
