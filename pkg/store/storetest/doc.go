// Package storetest is the one conformance suite every store.Store implementation must pass.
//
// A store's own test calls Run with a function that opens a fresh, empty, migrated store for each
// subtest (and closes it in t.Cleanup); its benchmark calls Bench the same way. A store that can
// be opened twice on one backend (as by two processes) passes WithSharedBackend too, which adds a
// case writing through both handles at once. The suite drives the
// store only through the store.Store interface, with events built by pkg/event and plans built
// directly from pkg/workflow types, so it pins down the write semantics documented in pkg/store for
// PostgreSQL, SQLite and the JSON file store alike.
//
// Times in the suite are truncated to microseconds (PostgreSQL's precision) and compared with
// time.Equal; JSON values (outputs, plans) are compared by meaning, since jsonb rewrites spacing and
// key order.
package storetest
