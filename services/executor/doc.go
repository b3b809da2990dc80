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
// Stopping (Run's context done) is a drain: pulling stops, dispatches waiting for a slot are nak'ed,
// running tasks get DrainGrace to finish, then their process groups are killed and their dispatches
// nak'ed without a terminal event, so another instance runs the attempt again.
package executor
