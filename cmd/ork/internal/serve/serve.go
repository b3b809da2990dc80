// Package serve is `ork serve`: every role in one process (the embedded stack: NATS, scheduler,
// executor, recorder) and the HTTP API in front of it, until the process is told to stop.
package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/ork-go/ork/cmd/ork/internal/embedded"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/services/api"
)

// Config configures the server.
type Config struct {
	// Stack is the embedded stack (data directory, database, executor settings).
	Stack embedded.Config
	// API configures the HTTP API; its Addr defaults to api.AddrDefault.
	API api.Config
	// RequireTokens makes the API require a token of the database's (ork token create) on every
	// request but health and the OpenAPI document. An address other machines reach needs it.
	RequireTokens bool
}

// Server is a running `ork serve`.
type Server struct {
	Stack    *embedded.Stack
	API      *api.Server
	listener net.Listener
	infoPath string
	log      *zap.Logger
}

// Info is what `ork serve` writes to DataDir/serve.json while it runs, so that the CLI started in
// the same folder finds the server by itself.
type Info struct {
	API string `json:"api"` // the API's base URL
	PID int    `json:"pid"`
	// WorkflowsRoot is the folder registered workflows' dirs are relative to.
	WorkflowsRoot string `json:"workflows_root"`
	Tokens        bool   `json:"tokens"` // the server requires tokens
}

// InfoFile is the name of the discovery file in the data directory.
const InfoFile = "serve.json"

// Start starts the stack, then listens (refusing an address reachable from other machines
// without tokens) and writes the discovery file. Serve then serves until ctx ends.
func Start(ctx context.Context, cfg Config, log *zap.Logger) (_ *Server, err error) {
	s := &Server{log: log}
	apiCfg := cfg.API.WithDefaults()
	if apiCfg.Tokens == nil && !cfg.RequireTokens && !api.IsLoopback(apiCfg.Addr) {
		return nil, fmt.Errorf("ork serve: refusing to listen on %s without tokens: create one with ork token create "+
			"and start with --tokens, or listen on 127.0.0.1", apiCfg.Addr)
	}
	if s.Stack, err = embedded.Start(ctx, cfg.Stack, log); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.Stack.Stop())
		}
	}()
	if cfg.RequireTokens && apiCfg.Tokens == nil {
		tokens, ok := s.Stack.Store.(store.Tokens)
		if !ok {
			return nil, errors.New("ork serve: this database keeps no tokens")
		}
		usable, err := api.Usable(ctx, tokens, time.Now())
		if err != nil {
			return nil, fmt.Errorf("ork serve: reading the tokens: %w", err)
		}
		if !usable {
			return nil, errors.New("ork serve: tokens are required, and the database holds none that is valid: create one with ork token create --scope admin")
		}
		apiCfg.Tokens = api.NewStoreTokens(tokens)
	}
	if s.API, err = api.New(s.Stack.Bus, s.Stack.Store, apiCfg, log.Named("api")); err != nil {
		return nil, err
	}
	if s.listener, err = s.API.Listen(); err != nil {
		return nil, err
	}
	info := Info{API: "http://" + s.listener.Addr().String(), PID: os.Getpid(),
		WorkflowsRoot: s.API.Config().WorkflowsRoot, Tokens: apiCfg.Tokens != nil}
	s.infoPath = filepath.Join(cfg.Stack.WithDefaults().DataDir, InfoFile)
	data, _ := json.MarshalIndent(info, "", "  ")
	if err := os.WriteFile(s.infoPath, data, 0o644); err != nil {
		_ = s.listener.Close()
		return nil, fmt.Errorf("writing %s: %w", s.infoPath, err)
	}
	return s, nil
}

// URL is the API's base URL.
func (s *Server) URL() string { return "http://" + s.listener.Addr().String() }

// Serve serves until ctx ends, then stops in order: the API stops taking requests (event streams
// end, requests in flight get the grace), then the stack drains (executors, scheduler, recorder).
func (s *Server) Serve(ctx context.Context) error {
	err := s.API.Serve(ctx, s.listener)
	_ = os.Remove(s.infoPath)
	return errors.Join(err, s.Stack.Stop())
}

// ReadInfo reads the discovery file of a server running on dataDir, if any.
func ReadInfo(dataDir string) (Info, bool) {
	data, err := os.ReadFile(filepath.Join(dataDir, InfoFile))
	if err != nil {
		return Info{}, false
	}
	var info Info
	if json.Unmarshal(data, &info) != nil || info.API == "" {
		return Info{}, false
	}
	return info, true
}
