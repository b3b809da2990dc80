// Package executor runs the tasks the scheduler dispatches on ORK_TASKS and reports what happened on
// ORK_EVENTS and ORK_LOGS.
//
// One Service serves one or more executor types (process, python and the built-in noop and sleep).
// For each type it shares one durable pull consumer, "exec-<type>", with every other instance serving
// that type, so starting more instances scales a type out.
//
// Concurrency is one budget per instance shared by all of its types. A type's puller fetches only as
// many dispatches as there are free slots, without holding a slot while it waits for work, so an idle
// type never takes capacity from a busy one. Because two types may fetch against the same free slots
// at once, a received dispatch can briefly wait for a slot; it is heartbeated (InProgress) from the
// moment it arrives, so it is never redelivered elsewhere while it waits, and no more than
// Concurrency tasks ever run at once.
//
// Per dispatch: a dispatch whose NotBefore lies in the future is nak'ed with the remaining delay
// without taking a slot; otherwise the executor publishes task.started, runs the task in its own
// process group with a minimal environment, ships its stdout and stderr lines in batches to ORK_LOGS,
// publishes task.succeeded or task.failed, and only then acknowledges the dispatch. A terminal event
// that cannot be published leaves the dispatch unacknowledged, so it is redelivered.
//
// A task that ends, times out or is cancelled takes its whole process group with it: SIGTERM to the
// group, SIGKILL after KillGrace, and a SIGKILL to whatever the group left behind after a normal exit.
//
// When the executor is PID 1 (a container without an init), ReapOrphans reaps the grandchildren that
// killed tasks leave behind, which would otherwise stay zombies.
//
// Cancellation uses the existing events, so it needs no subject of its own: an executor listens to
// task.cancelled and run.finished (core NATS, no consumer) and kills the process group of a matching
// running attempt, then acknowledges its dispatch without a terminal event.
//
// Stopping (Run's context done) is a drain: pulling stops, dispatches waiting for a slot are nak'ed
// (they had not started, so another instance runs them), running tasks get DrainGrace to finish, then
// their process groups are killed and their attempts reported lost (task.failed, reason lost), so the
// scheduler starts a new attempt instead of attempt N running twice under one number.
//
// Lost attempts: when an executor dies mid-task (kill -9, a crash, SIGSTOP past AckWait), JetStream
// redelivers the dispatch after AckWait. The receiving executor publishes task.started as always; if
// the stream answers that this task.started is a Duplicate, the attempt had started elsewhere, so it
// publishes task.failed with reason lost and terminates the dispatch without running it. The answer
// is consulted on every delivery, since a crashed nats-server can lose the consumer's delivery state
// and deliver a started attempt again with a delivery count of 1; the executor still running the
// original finishes it and publishes its result, which the scheduler fences. The answer depends on
// ORK_EVENTS's duplicate window (bus.Config.DuplicateWindow, 2 min): a redelivery of an attempt that
// became due longer ago than three quarters of the window cannot be told apart and is reported lost
// too. See lost.go.
//
// Log lines survive a NATS outage: a batch the stream does not take is published again with backoff
// (its Nats-Msg-Id drops a second copy) until it is stored or the executor is hard-stopped, and the
// attempt's terminal event waits until every batch is stored. Writers wait while too many lines are
// unshipped, so memory stays bounded. See logs.go.
package executor
