// Package bustest starts in-process NATS servers with JetStream for tests.
package bustest

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
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
	opts := &server.Options{
		Host:       "127.0.0.1",
		Port:       -1,
		JetStream:  true,
		StoreDir:   dir,
		NoLog:      true,
		NoSigs:     true,
		MaxPayload: 8 << 20,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("creating nats server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		t.Fatal("nats server did not become ready")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}
