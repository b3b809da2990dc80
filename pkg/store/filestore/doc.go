// Package filestore is the JSON-file implementation of store.Store, for development and tests: no
// database to run, and every row is a file a person can read and edit.
//
// Layout under the base directory, one JSON file per row (names are path-escaped):
//
//	workflows/NAME.json
//	workflow_versions/HASH.json          the compiled plan, which also holds the DAG
//	runs/RUN.json
//	idempotency_keys/KEY.json            the run a key belongs to (the unique constraint)
//	scheduled_for/NAME/TIME.json         the run of a workflow's nominal time (the unique index)
//	tasks/RUN/TASK.json
//	attempts/RUN/TASK/N.json
//	logs/RUN/TASK/N.jsonl                one line per log line, appended
//	dead_letters/STREAM.SEQ.json         plus dead_letters/.next, the insertion counter
//	api_tokens/ID.json                   written like a batch of one row (store.Tokens)
//	.lock                                the inter-process lock
//
// Concurrency. ApplyBatch holds an exclusive flock(2) on .lock (and an in-process mutex), reads take
// a shared one, so several processes (say a recorder and the CLI) can share a directory. Locks are
// advisory: a tool that edits files without taking them is not excluded.
//
// Atomicity, and its limits. ApplyBatch first computes every new row in memory, applying the
// registrations and then the events in order with the same rules as the SQL stores (see pkg/store),
// and only then writes: each changed
// row goes to a temporary file next to its place and log lines are appended; one flush (syncfs(2) on
// Linux, one fsync per file elsewhere) makes them durable; renames put the rows in place and a
// second flush makes the renames durable. A reader never sees a half-written row. A batch as a whole
// is not atomic: a crash during the renames leaves a subset of the batch's row files updated, each
// intact. The recorder acknowledges a batch only after ApplyBatch returns, so it replays the batch
// after such a crash, and since every write is an idempotent, forward-only upsert, the replay
// completes it. Log lines are appended rather than rewritten (rewriting would cost O(lines so far)
// per batch); a torn last line is skipped by readers and fenced off by a newline before the next
// append, and a replayed line is dropped on read (the first line of each seq wins). syncfs flushes
// the whole file system, which is cheap on a laptop and the reason for it: per-file fsync made
// batches about four times slower (BenchmarkApplyBatch: ~650 against ~2,400 events/s).
//
// Cost. There are no indexes: listing runs or workflows reads every run file, an idempotency key is
// a file of its own. That is fine for thousands of runs, not for millions; use SQLite or PostgreSQL
// there.
package filestore
