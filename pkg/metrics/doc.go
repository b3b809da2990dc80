// Package metrics holds what every Ork service shares to expose Prometheus metrics: a registry per
// service (never the global default one) with the Go runtime and process collectors, an HTTP server
// for /metrics and net/http/pprof under /debug/pprof/, shared histogram buckets, and a collector of
// JetStream consumer backlogs read from the server when scraped.
//
// Services define their own metrics (see each service's metrics.go) and take them through their
// Config: a nil *Metrics costs nothing, so tests and `ork run` pay only for what they turn on.
//
// The full list of metrics is in docs/metrics.md.
package metrics
