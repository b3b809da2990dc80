// Package pgstore is the PostgreSQL implementation of store.Store, on pgx/v5 and a pgxpool.
//
// Open connects but does not migrate: the recorder and `ork init` apply migrations.Postgres through
// pkg/store/schema first.
//
// Writes. ApplyBatch runs one transaction per batch in two round trips plus the commit:
//
//  1. one pipelined read of the runs (by id or idempotency key) and the tasks the batch names, and
//     of the registered revisions of the workflows its registrations name, so that duplicates,
//     orphans and the registrations that apply are decided in Go, in batch order (an event that
//     precedes its run's submission in the same batch is an orphan, one that follows it applies);
//  2. one pipelined pgx.Batch holding every write: registrations (the last that applies per
//     workflow), workflows, versions, the compiled DAG, runs and tasks as unnest-array inserts;
//     task and attempt rows as a single unnest UPDATE/UPSERT each; run events one small UPDATE
//     each; logs and dead letters as unnest inserts ON CONFLICT DO NOTHING.
//
// The forward-only rules live in the WHERE and CASE clauses of those statements, so they hold
// against whatever another transaction committed meanwhile. Several events of one task in a batch
// are first folded in Go into the chain of events that would each have advanced the row, which
// reduces them to one row of the UPDATE whose SQL then gives exactly the result of applying them one
// by one. Run events are few (two per run) and their running/paused swap is not a total order, so
// they keep one statement each. Rows are written in key order so that concurrent recorders lock in
// the same order; a deadlock or serialization failure retries the whole batch, and so does a
// submission that another writer's commit beat to its run id or idempotency key after step 1 (the
// run insert counts its rows), so that the retry sees the winner and reports the loser's events as
// orphans, and a registration whose workflow another writer moved to a newer revision after step 1
// (the registration upsert counts its rows), so that the retry writes neither it nor its version.
//
// Logs go through unnest rather than COPY: COPY cannot run inside the pipeline, so it costs its own
// round trip plus a temporary table, and on this machine class (2 shared cores) BenchmarkLogs
// measured both within noise of each other, 45k to 120k lines/s in batches of 5,000.
//
// Text. PostgreSQL's text and jsonb refuse NUL bytes and invalid UTF-8, which a task's output or log
// lines may well contain; such bytes are stored as U+FFFD (pgText, pgJSON) rather than failing the
// whole batch. The other stores keep them as they are.
//
// Reads are single statements that JOIN runs and workflows (never one query per row). Driver
// errors become store.ErrNotFound and store.ErrConflict in interpretError only.
package pgstore
