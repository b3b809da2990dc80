// Package storecheck verifies the invariants a store must hold once every run has ended, for fault
// tests: after killing executors, schedulers or recorders and letting the system settle, a test
// calls Check and fails on the report's violations.
//
// The invariants, each named by a Rule:
//   - every checked run exists and is terminal (success, failed or cancelled);
//   - a terminal run has no task left unfinished (pending, paused, dispatched or running), and no
//     attempt row left unfinished;
//   - every task of a successful run succeeded;
//   - a failed run has at least one task that failed (or was lost, if the scheduler's verdict on a
//     task lost too often has not reached the store);
//   - a task is skipped only when a task it depends on did not succeed;
//   - a task's Attempt is its highest attempt row (0 when it has none);
//   - no log line is stored twice for one (run, task, attempt, seq);
//   - optionally (Params.LogSeqs), each attempt's log seqs are 1..n without holes, unless the attempt
//     holds the executor's truncation marker (a line starting with TruncationMarkerPrefix).
//
// Check reads only through the store.Store interface, so it runs against every store. Some
// invariants hold by construction in the stores of this module (a unique key on log lines, attempt
// rows written with every task event); Check verifies them anyway, since a fault test is where a
// construction would be shown wrong.
package storecheck
