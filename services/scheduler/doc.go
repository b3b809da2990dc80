// Package scheduler turns a run's events into its next steps.
//
// The core is a pure transition function, Apply: given a run's compiled Graph, its compact RunState
// and one event (run.submitted, task.succeeded, task.failed, or a control request), it updates the
// state and returns the Commands the event causes: tasks to dispatch (with their attempt and, for
// retries, a NotBefore), events to publish (run.started, task.dispatched, task.skipped,
// task.cancelled, run.paused, run.resumed, run.finished) and task outputs to keep for downstream
// inputs. Apply reads no clock and does no I/O; replays, stale attempts and events for terminal
// tasks or finished runs change nothing. Replay recomputes what an already applied event caused, so
// a redelivered message can re-publish it.
//
// Reliability rules of the transition function:
//
//   - run.cancel_requested cancels every task that has not ended (task.cancelled at its last
//     dispatched attempt, 0 if it never ran; executors kill the running ones) and ends the run with
//     run.finished (cancelled). Every later event of the run is stale.
//   - run.pause_requested makes the run paused and is answered by run.paused. While paused, tasks
//     that become ready (or are due for a retry) are held, not dispatched; results of running tasks
//     are applied. run.resume_requested answers run.resumed and dispatches the held tasks at once.
//     A paused run with held tasks stays paused; one whose every task has ended finishes. The
//     answer's event id derives from the request's (event.AnswerID), so a replay re-publishes the same
//     message, and a request for a state the run is already in is answered again. The stream
//     sequence of the last applied control request is kept in the state, so a redelivered pause
//     cannot undo a later resume.
//   - task.failed with reason lost re-dispatches the task at once as attempt N+1 without using up
//     its retries, at most Policy.MaxLostAttempts times; the next lost attempt fails the task for
//     good. The superseded attempt's late result is fenced, so downstream tasks start once.
//
// Service runs Apply on JetStream. It consumes ORK_EVENTS with the shared durable consumer
// "scheduler" (submissions, task results and control requests) and keeps every run in the KV
// bucket ork_runs under these keys:
//
//	run.<run id>          the RunState (binary, versioned, run-length encoded), written with
//	                      compare-and-swap on its revision, so any number of replicas may run
//	plan.<run id>         the compiled plan (JSON), written once at submission
//	out.<run id>.<task>   the output of a succeeded task that a downstream binding references
//	idem.<key hash>       the run id of an idempotency key, created once: a second submission
//	                      with the same key is ignored
//	lease.reconciler      which instance runs the reconciler, until when (renewed with
//	                      compare-and-swap every sweep, taken over once expired)
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
// The reconciler makes sure that no run waits forever for a message that will not come. Every
// ReconcileInterval the instance holding the lease sweeps:
//
//   - no_executor: dispatches waiting in ORK_TASKS longer than NoExecutorTimeout for an executor type
//     with no instance online (no consumer exec-<type>, or one with no pull waiting, nothing
//     unacknowledged and nothing delivered within the timeout) get task.failed (no_executor) and
//     are deleted from the stream.
//   - lost: attempts the run states show in flight, first seen by this instance longer ago than the
//     task's timeout plus LostGrace, whose dispatch message is no longer in ORK_TASKS, get
//     task.failed (lost). An executor acknowledges a dispatch only after publishing its result, so
//     a missing message with no result means the attempt was lost. The event path keeps no dispatch
//     times for this: the sweep reads the run states (cost per sweep: the entries of the bucket) and
//     scans ORK_TASKS only when some attempt is overdue.
//
// Every instance also listens, in one queue group, to the server's max-deliveries advisories for
// ORK_TASKS: the attempt of a dispatch delivered MaxDeliver times gets task.failed (max_deliveries)
// and its message is deleted. The reconciler acts only by publishing events (with the usual
// deduplication ids), so replays and several schedulers stay safe.
package scheduler
