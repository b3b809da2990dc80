// Package bench measures the whole event path end to end: it builds workflow plans of a few shapes
// in Go (wide, chain, fan-out/fan-in, many small runs), submits them to an in-process stack or to a
// running cluster, and reports throughput (tasks/s and runs/s from the first submission to the last
// run committed by the recorder), dependency-to-start and submit-to-first-task latencies taken from
// the events' own timestamps, the recorder's batching, and the CPU time and memory of the services,
// busy and idle.
//
// A Config is a list of Scenarios plus where to run them; Named returns the predefined ones (quick,
// standard, heavy, latency). Run executes a Config and returns a Report, which prints as a table
// (WriteTable) or as JSON.
package bench
