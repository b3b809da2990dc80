// Package faults holds Ork's fault tests and the invariant they check. The tests run the services
// as real processes (package deploy/processes), kill or stop them (SIGKILL, SIGSTOP/SIGCONT), restart
// NATS and PostgreSQL, feed poison to the streams, and end with Check:
//
//   - every accepted run is terminal in the database within its deadline, and the store's own
//     invariant holds (pkg/store/storecheck: no task or attempt left in flight, each task at its
//     highest attempt, log sequences without gaps);
//   - the database holds exactly what the streams carried: one attempt row per attempt that has an
//     event, one log row per shipped log line (no loss, no duplicate), and each successful attempt
//     holds every line its body printed;
//   - no status moved backwards (Watcher samples the database while the test runs);
//   - every execution of a task body (each body appends "run task attempt pid" to a ledger file) is
//     accounted for: each one has its recorded attempt, no attempt ran twice, a task that succeeded
//     ran its final attempt, a skipped task never ran.
//
// TestChaos (run by `make chaos`) applies a random stream of faults to a whole stack while runs are
// submitted, then checks the same invariant.
package faults
