package bus

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedConfig configures an in-process NATS server with JetStream, as used by `ork run` and
// `ork bench`.
type EmbeddedConfig struct {
	// StoreDir holds the JetStream file store.
	StoreDir string
	// Port to listen on for other processes: 0 means no listener (in-process connections only),
	// -1 a random free port.
	Port int
	// SyncAlways fsyncs every message (durable against power loss, much slower); by default the
	// server syncs on its interval (2 minutes), which survives process crashes but not power loss.
	SyncAlways bool
}

// StartEmbedded starts an in-process NATS server with JetStream and waits until it is ready.
func StartEmbedded(cfg EmbeddedConfig) (*server.Server, error) {
	if cfg.StoreDir == "" {
		return nil, errors.New("embedded nats: StoreDir is required")
	}
	opts := &server.Options{
		ServerName: "ork-embedded",
		Host:       "127.0.0.1",
		Port:       cfg.Port,
		DontListen: cfg.Port == 0,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		NoLog:      true,
		NoSigs:     true,
		MaxPayload: 8 << 20,
		SyncAlways: cfg.SyncAlways,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("creating embedded nats server: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return nil, errors.New("embedded nats server did not become ready within 30s")
	}
	return s, nil
}
