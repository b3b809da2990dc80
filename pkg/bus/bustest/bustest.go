// Package bustest starts in-process NATS servers with JetStream for tests.
package bustest

import (
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/ork-go/ork/pkg/bus"
)

// Start runs a JetStream server on a random port with its store in t.TempDir() and stops it when
// the test ends. It returns the server; its ClientURL() is the address to connect to.
func Start(t testing.TB) *server.Server {
	t.Helper()
	return StartDir(t, t.TempDir())
}

// StartDir is Start with a chosen store directory, so a test can restart a server on the same data.
func StartDir(t testing.TB, dir string) *server.Server {
	t.Helper()
	s, err := bus.StartEmbedded(bus.EmbeddedConfig{StoreDir: dir, Port: -1})
	if err != nil {
		t.Fatalf("starting nats server: %v", err)
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}
