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
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/ork-go/ork/cmd/ork/internal/embedded"
	"github.com/ork-go/ork/deploy"
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
	// NATSListen, when set (host:port), makes the embedded NATS server accept other processes,
	// such as executors on other machines, with the shipped users and permissions
	// (deploy/nats-server.conf): each role's password is in DataDir/nats-secrets.env, and
	// DataDir/executor.env holds what an executor needs to connect.
	NATSListen string
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
	// NATS is the URL other processes reach the embedded NATS server at ("" when it listens on none).
	NATS string `json:"nats,omitempty"`
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
	var secrets deploy.Secrets
	if cfg.NATSListen != "" {
		if secrets, err = listenNATS(&cfg); err != nil {
			return nil, err
		}
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
	if cfg.NATSListen != "" {
		info.NATS = reachableURL(s.Stack.Server.Addr())
		// What an executor elsewhere needs: the executor role, and where the server is.
		env := append(secrets.ClientEnv(deploy.RoleExecutor), "ORK_NATS_URL="+info.NATS)
		if err := writePrivate(filepath.Join(cfg.Stack.WithDefaults().DataDir, ExecutorFile), strings.Join(env, "\n")+"\n"); err != nil {
			return nil, err
		}
	}
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

// Files of a server whose NATS listens (Config.NATSListen), in the data directory.
const (
	SecretsFile  = "nats-secrets.env"
	ExecutorFile = "executor.env"
)

// listenNATS configures the embedded NATS server to listen on cfg.NATSListen with the shipped
// users: the roles' passwords are made once into SecretsFile (0600) and kept, the stack's own
// services connect as the operator, and ExecutorFile (0600) gets an executor's settings.
func listenNATS(cfg *Config) (deploy.Secrets, error) {
	host, portText, err := net.SplitHostPort(cfg.NATSListen)
	if err != nil {
		return nil, fmt.Errorf("ork serve: --nats-listen %q: want host:port: %w", cfg.NATSListen, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("ork serve: --nats-listen %q: bad port", cfg.NATSListen)
	}
	if port == 0 {
		port = -1 // any free one
	}
	dir := cfg.Stack.WithDefaults().DataDir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	secrets, err := loadSecrets(filepath.Join(dir, SecretsFile))
	if err != nil {
		return nil, err
	}
	cfg.Stack.Host, cfg.Stack.Port, cfg.Stack.NATSConfig = host, port, secrets.ServerConfig()
	cfg.Stack.Bus.Auth = secrets.Auth(deploy.RoleOperator)
	return secrets, nil
}

// reachableURL is the URL other machines reach a listener at: its address, with this host's name
// in place of a wildcard address.
func reachableURL(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return "nats://" + addr.String()
	}
	host := tcp.IP.String()
	if tcp.IP.IsUnspecified() {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	return "nats://" + net.JoinHostPort(host, strconv.Itoa(tcp.Port))
}

// loadSecrets reads the roles' passwords from path, or makes them and writes it (0600).
func loadSecrets(path string) (deploy.Secrets, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		s := deploy.NewSecrets()
		return s, writePrivate(path, strings.Join(s.ServerEnv(), "\n")+"\n")
	}
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("ork serve: %s must be readable by its owner only (chmod 600 %s)", path, path)
	}
	s := deploy.Secrets{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		for _, r := range deploy.Roles {
			if v, ok := strings.CutPrefix(line, deploy.PasswordEnv(r)+"="); ok {
				s[r] = v
			}
		}
	}
	for _, r := range deploy.Roles {
		if s[r] == "" {
			return nil, fmt.Errorf("ork serve: %s has no password for %s: delete it to make new ones", path, r)
		}
	}
	return s, nil
}

func writePrivate(path, content string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		_ = f.Close()
		return err
	}
	_, err = f.WriteString(content)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
