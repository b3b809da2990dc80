package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// Namespace prefixes every Ork metric.
const Namespace = "ork"

// Suggested listen addresses of the services' metrics endpoints (flag --metrics-addr, env
// ORK_METRICS_ADDR). The endpoint is off unless an address is given.
const (
	SchedulerAddrSuggested = ":9101"
	ExecutorAddrSuggested  = ":9102"
	RecorderAddrSuggested  = ":9103"
)

// AddrEnv is the environment variable of the metrics listen address of every service.
const AddrEnv = "ORK_METRICS_ADDR"

// ShutdownTimeoutDefault bounds the graceful shutdown of the metrics server.
const ShutdownTimeoutDefault = 5 * time.Second

// LatencyBuckets are the buckets, in seconds, of event-path latencies: fine below a millisecond,
// where the budgets are (p50 ≤ 2 ms, p99 ≤ 20 ms), coarse up to a minute.
var LatencyBuckets = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
}

// DurationBuckets are the buckets, in seconds, of task run times: from a noop to an hour.
var DurationBuckets = []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600}

// NewRegistry returns an empty registry with the Go runtime and process collectors, for one
// service.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// Server serves a registry on /metrics and the runtime profiles on /debug/pprof/.
type Server struct {
	ln  net.Listener
	srv *http.Server
	log *zap.Logger
}

// Listen binds addr (host:port; port 0 picks a free one) and returns a server ready to Run. It
// fails at once when the address cannot be bound, so a service does not start half configured.
func Listen(addr string, reg *prometheus.Registry, log *zap.Logger) (*Server, error) {
	if reg == nil {
		return nil, errors.New("metrics: no registry")
	}
	if log == nil {
		log = zap.NewNop()
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening for metrics on %s: %w", addr, err)
	}
	return &Server{ln: ln, srv: &http.Server{Handler: Handler(reg, log), ReadHeaderTimeout: 10 * time.Second}, log: log}, nil
}

// Handler returns the metrics endpoint's routes: /metrics and /debug/pprof/.
func Handler(reg *prometheus.Registry, log *zap.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		// A consumer the server cannot describe must not hide every other metric.
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      errorLog{log},
		Registry:      reg,
	}))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Run serves until ctx is done, then shuts the server down gracefully within
// ShutdownTimeoutDefault and returns nil; it returns an error only if serving fails.
func (s *Server) Run(ctx context.Context) error {
	s.log.Info("serving metrics", zap.String("addr", s.ln.Addr().String()))
	served := make(chan error, 1)
	go func() { served <- s.srv.Serve(s.ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serving metrics: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeoutDefault)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	if err != nil {
		// A scrape or a profile still in progress past the deadline.
		_ = s.srv.Close()
	}
	if serr := <-served; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return fmt.Errorf("serving metrics: %w", serr)
	}
	if err != nil {
		return fmt.Errorf("shutting down metrics server: %w", err)
	}
	return nil
}

// Serve listens on addr and serves reg until ctx is done: Listen, then Run. Use Listen and Run
// to learn the bound address first (Server.Addr).
func Serve(ctx context.Context, addr string, reg *prometheus.Registry, log *zap.Logger) error {
	s, err := Listen(addr, reg, log)
	if err != nil {
		return err
	}
	return s.Run(ctx)
}

// Start listens on addr and serves reg in the background until ctx ends or stop is called. stop
// shuts the server down, waits for it and returns what Run returned; call it once.
func Start(ctx context.Context, addr string, reg *prometheus.Registry, log *zap.Logger) (stop func() error, err error) {
	s, err := Listen(addr, reg, log)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- s.Run(ctx) }()
	return func() error {
		cancel()
		return <-served
	}, nil
}

// errorLog passes promhttp's errors to zap.
type errorLog struct{ log *zap.Logger }

func (l errorLog) Println(v ...any) {
	l.log.Warn("collecting metrics", zap.String("error", fmt.Sprint(v...)))
}
