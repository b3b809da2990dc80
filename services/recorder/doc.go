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
package recorder
