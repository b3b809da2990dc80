// Package clusterbench measures Ork as separate processes on one machine, for the numbers `ork
// bench` alone cannot give:
//
//   - the scaling curve: for each executor count N, a fresh PostgreSQL database and a fresh stack
//     (nats-server, recorder, scheduler, N executors of the same concurrency, see deploy/processes),
//     then `ork bench --nats … --db …` with a wide noop and a wide `process` scenario; the table
//     shows tasks/s, the CPU each service spent per task and its share of the wall time, so that the
//     saturated process can be named;
//   - the recorder ceiling: events already waiting in ORK_EVENTS (a backlog of complete runs) before
//     a fresh recorder process starts; the clock runs from the recorder's "recorder started" line
//     (migrations done, consumers created) until the consumer's ack floor reaches the stream's last
//     message, and the database is then checked for every task.
//
// Command deploy/benchcluster runs it: `go run ./deploy/benchcluster` or `make bench-cluster`.
package clusterbench
