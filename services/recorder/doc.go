// Package recorder is Ork's only database writer. It consumes ORK_EVENTS (durable consumer
// "recorder") and ORK_LOGS (durable consumer "recorder-logs") in batches of up to BatchSize messages
// or BatchWait after the first, writes each batch with one store.ApplyBatch (one transaction), and
// acknowledges the messages only after the commit. Messages it cannot decode, of an unknown schema
// version, impossible (a task event without task or attempt), or naming a run the store does not
// know become dead letters; the stream is never blocked by them.
//
// When a write fails the batch is retried with exponential backoff (RetryMin..RetryMax) and the
// messages are kept in progress, so nothing is acknowledged that is not committed. A batch that keeps
// failing (IsolateAfter attempts) is written one message at a time, so a message the store rejects
// (a poison message) is found and dead-lettered while the rest of the batch is written; during an
// outage that rejects every write, the dead letter fails too and the recorder keeps retrying.
//
// After a commit that includes run.finished events, the recorder publishes a core NATS notice on
// event.SubjectRecordedPrefix+<run id> with the run's final status, so a client waiting on a run knows
// the database holds its result.
//
// The recorder also mirrors the workflow registry (the ork_workflows KV bucket) into the database.
// It watches every key of the bucket, deletions and purges included (a registration without a
// plan), and turns each entry into a store.Registration whose revision is the entry's. They are
// written with the same store.ApplyBatch as events: an event batch takes the registrations waiting
// (so both share a transaction), and when no events come a registration writer writes them alone
// after BatchWait. Registrations commit in revision order, one batch at a time, with the same
// retries and backoff; each is kept until it commits (when many wait, the watcher waits too). An
// entry that is no registration (not decodable, or its plan names another workflow) is logged with
// its key and skipped. Each recorder replays the bucket from its start, every key's current value or
// tombstone, so a database that missed changes catches up; the replay changes nothing else, because
// the store applies a registration only when its revision is greater than the one it holds. A
// watcher that ends (a watch error, a lost connection) is created again with backoff, resuming after
// the last revision received; what was received before is queued already.
package recorder
