package bus

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// MaxConsumersPerStream is how many consumers a stream may have on the servers Ork ships (the
// embedded one, deploy/nats-server.conf's limits): each follower of a run or of the events is one,
// and nats-server's own default of 1,000 would refuse the thousandth browser tab.
const MaxConsumersPerStream = 10_000

// EmbeddedConfig configures an in-process NATS server with JetStream, as used by `ork run` and
// `ork bench`.
type EmbeddedConfig struct {
	// StoreDir holds the JetStream file store.
	StoreDir string
	// Port to listen on for other processes: 0 means no listener (in-process connections only),
	// -1 a random free port; Host is the address it listens on (127.0.0.1 when empty).
	Port int
	Host string
	// Config, when set, is a nats-server configuration (its authorization: the users and their
	// permissions) loaded first; the fields above, and the embedded server's own settings, override
	// its listen address, store, monitoring and cluster settings.
	Config string
	// SyncAlways fsyncs every message (durable against power loss, much slower); by default the
	// server syncs on its interval (2 minutes), which survives process crashes but not power loss.
	SyncAlways bool
}

// StartEmbedded starts an in-process NATS server with JetStream and waits until it is ready.
func StartEmbedded(cfg EmbeddedConfig) (*server.Server, error) {
	if cfg.StoreDir == "" {
		return nil, errors.New("embedded nats: StoreDir is required")
	}
	opts := &server.Options{}
	if cfg.Config != "" {
		if err := opts.ProcessConfigString(cfg.Config); err != nil {
			return nil, fmt.Errorf("embedded nats: the server configuration: %w", err)
		}
	}
	host := cfg.Host
	if host == "" {
		host = "127.0.0.1"
	}
	opts.ServerName, opts.Host, opts.Port, opts.DontListen = "ork-embedded", host, cfg.Port, cfg.Port == 0
	opts.JetStream, opts.StoreDir, opts.NoLog, opts.NoSigs = true, cfg.StoreDir, true, true
	opts.MaxPayload, opts.SyncAlways = 8<<20, cfg.SyncAlways
	// No monitoring, no routes, the default sync interval (unless SyncAlways).
	opts.HTTPHost, opts.HTTPPort, opts.Cluster, opts.SyncInterval = "", 0, server.ClusterOpts{}, 0
	if opts.JetStreamLimits.DefaultMaxConsumers == 0 {
		// Every live follower (an API event stream, ork run) is a consumer: well above the
		// server's default of 1,000 per stream.
		opts.JetStreamLimits.DefaultMaxConsumers = MaxConsumersPerStream
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
