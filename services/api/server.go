package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/client"
	"github.com/ork-go/ork/pkg/store"
)

// Defaults of Config.
const (
	AddrDefault              = "127.0.0.1:4000"
	MaxBodyBytesDefault      = 2 << 20
	RatePerSecondDefault     = 50
	RateBurstDefault         = 100
	ReadHeaderTimeoutDefault = 10 * time.Second
	RequestTimeoutDefault    = 60 * time.Second
	IdleTimeoutDefault       = 2 * time.Minute
	ShutdownGraceDefault     = 10 * time.Second
)

// Config configures the API server.
type Config struct {
	// Addr is where Run listens; AddrDefault when empty.
	Addr string
	// Tokens verifies bearer tokens. Nil: no tokens, every request may do everything, which Run
	// allows on a loopback address only.
	Tokens Tokens
	// WorkflowsRoot is the folder the dir of a registered workflow is relative to (PUT
	// /workflows/{name}?dir=...) and must stay inside; default the working directory.
	WorkflowsRoot string
	// MaxBodyBytes caps a request body.
	MaxBodyBytes int64
	// RatePerSecond and RateBurst limit the requests of one token (or, without tokens, of one
	// client address): over them a request gets 429 with Retry-After. A negative rate: no limit.
	RatePerSecond float64
	RateBurst     int
	// ReadHeaderTimeout, RequestTimeout (reading a body and answering; not the event streams)
	// and IdleTimeout bound slow clients.
	ReadHeaderTimeout time.Duration
	RequestTimeout    time.Duration
	IdleTimeout       time.Duration
	// ShutdownGrace is how long Run waits for requests in flight when ctx ends.
	ShutdownGrace time.Duration
	// Metrics, when set, records the API's metrics (NewMetrics).
	Metrics *Metrics
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Addr == "" {
		c.Addr = AddrDefault
	}
	if c.WorkflowsRoot == "" {
		if wd, err := os.Getwd(); err == nil {
			c.WorkflowsRoot = wd
		}
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = MaxBodyBytesDefault
	}
	if c.RatePerSecond == 0 {
		c.RatePerSecond = RatePerSecondDefault
	}
	if c.RateBurst == 0 {
		c.RateBurst = RateBurstDefault
	}
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = ReadHeaderTimeoutDefault
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = RequestTimeoutDefault
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = IdleTimeoutDefault
	}
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = ShutdownGraceDefault
	}
	return c
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.MaxBodyBytes < 0:
		return fmt.Errorf("api: MaxBodyBytes must not be negative, got %d", c.MaxBodyBytes)
	case c.RateBurst < 0:
		return fmt.Errorf("api: RateBurst must not be negative, got %d", c.RateBurst)
	case !filepath.IsAbs(c.WorkflowsRoot):
		return fmt.Errorf("api: WorkflowsRoot must be an absolute path, got %q", c.WorkflowsRoot)
	}
	return nil
}

// Server is the HTTP API over a bus and the store the recorder writes.
type Server struct {
	bus     *bus.Bus
	client  *client.Client
	store   store.Store
	cfg     Config
	log     *zap.Logger
	limiter *limiter
	// openStreams bounds the event streams.
	openStreams streamSlots
	handler     http.Handler
	// streams ends the event streams when the server shuts down (they would hold it open).
	streams    context.Context
	endStreams context.CancelFunc
}

// New returns a server ready to Run (or to mount its Handler).
func New(b *bus.Bus, st store.Store, cfg Config, log *zap.Logger) (*Server, error) {
	if b == nil || st == nil {
		return nil, errors.New("api: a bus and a store are required")
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	s := &Server{bus: b, client: client.New(b), store: st, cfg: cfg, log: log,
		limiter: newLimiter(cfg.RatePerSecond, cfg.RateBurst)}
	s.streams, s.endStreams = context.WithCancel(context.Background())
	s.handler = s.routes()
	return s, nil
}

// Handler serves the API (and nothing else): mount it at /.
func (s *Server) Handler() http.Handler { return s.handler }

// Config returns the server's config, defaults applied.
func (s *Server) Config() Config { return s.cfg }

// IsLoopback reports whether addr (host:port) only listens on a loopback interface.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Listen opens the server's address, refusing one reachable from other machines when the server
// has no tokens.
func (s *Server) Listen() (net.Listener, error) {
	if s.cfg.Tokens == nil && !IsLoopback(s.cfg.Addr) {
		return nil, fmt.Errorf("api: refusing to listen on %s without tokens: anyone who reaches it could run commands; "+
			"listen on 127.0.0.1, or create a token (ork token create) and require tokens", s.cfg.Addr)
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("api: listening on %s: %w", s.cfg.Addr, err)
	}
	return ln, nil
}

// Run listens on the configured address and serves until ctx ends, then stops accepting, ends the
// event streams and waits up to ShutdownGrace for the requests in flight.
func (s *Server) Run(ctx context.Context) error {
	ln, err := s.Listen()
	if err != nil {
		return err
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on a listener of the caller's.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	defer s.endStreams()
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          zap.NewStdLog(s.log.Named("http")),
	}
	s.log.Info("api listening", zap.String("addr", ln.Addr().String()), zap.Bool("tokens", s.cfg.Tokens != nil))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("api: %w", err)
	case <-ctx.Done():
	}
	s.endStreams() // event streams end at once; plain requests get the grace
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	<-errc
	s.log.Info("api stopped")
	return nil
}
