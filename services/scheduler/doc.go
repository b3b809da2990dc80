// Package scheduler turns a run's events into its next steps.
//
// The core is a pure transition function, Apply: given a run's compiled Graph, its compact RunState
// and one event (run.submitted, task.succeeded, task.failed), it updates the state and returns the
// Commands the event causes: tasks to dispatch (with their attempt and, for retries, a NotBefore),
// events to publish (run.started, task.dispatched, task.skipped, run.finished) and task outputs to
// keep for downstream inputs. Apply reads no clock and does no I/O; replays, stale attempts and
// events for terminal tasks change nothing. Replay recomputes what an already applied event caused,
// so a redelivered message can re-publish it.
//
// Service runs Apply on JetStream. It consumes ORK_EVENTS with the shared durable consumer
// "scheduler" and keeps every run in the KV bucket ork_runs under these keys:
//
//	run.<run id>          the RunState (binary, versioned, run-length encoded), written with
//	                      compare-and-swap on its revision, so any number of replicas may run
//	plan.<run id>         the compiled plan (JSON), written once at submission
//	out.<run id>.<task>   the output of a succeeded task that a downstream binding references
//	idem.<key hash>       the run id of an idempotency key, created once: a second submission
//	                      with the same key is ignored
//
// Outputs stay out of the run state so that the value rewritten on every event is a few bytes per
// task. Once a run has finished and its final events are published, the scheduler compacts it: the
// state becomes a tombstone holding only the final status and error, and the plan and outputs are
// deleted. The tombstone (and the idempotency entry) expire with the bucket's TTL, which equals the
// event stream's MaxAge, so no event of the run can be replayed after its tombstone is gone.
//
// Events of one run are queued in the instance that received them and applied in batches: the
// handler that leads the queue applies every queued event in order, writes the state once and
// publishes everything the batch caused in one Publish, then hands the queue on. The state and plan
// of active runs stay cached in memory; the compare-and-swap catches an entry made stale by another
// instance, and a verdict that an event changes nothing is only trusted on a freshly read state.
//
// Every message is acknowledged last: after the state is written and the dispatches and events it
// caused are published in one batch. A redelivered message whose event was already applied
// re-publishes what it caused (deduplication ids make that harmless), so a crash between the KV write
// and the publish never loses a dispatch.
package scheduler
