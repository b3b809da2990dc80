// Package bustest starts in-process NATS servers with JetStream for tests.
package bustest

import (
	"net/url"
	"strconv"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/goleak"

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
	return start(t, dir, -1)
}

// Restart shuts s down (unless it is already) and starts a server on the same port with its store
// in dir, the directory s was started with (StartDir), as a restart of nats-server would: clients
// connected to s lose their connection and reconnect to the new server, which recovers the streams
// from dir.
func Restart(t testing.TB, s *server.Server, dir string) *server.Server {
	t.Helper()
	u, err := url.Parse(s.ClientURL())
	if err != nil {
		t.Fatalf("restarting nats server: %v", err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil || port <= 0 {
		t.Fatalf("restarting nats server: no port in %q", s.ClientURL())
	}
	s.Shutdown()
	s.WaitForShutdown()
	return start(t, dir, port)
}

func start(t testing.TB, dir string, port int) *server.Server {
	t.Helper()
	s, err := bus.StartEmbedded(bus.EmbeddedConfig{StoreDir: dir, Port: port})
	if err != nil {
		t.Fatalf("starting nats server: %v", err)
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// ServerLeftovers are goleak options for the goroutines an in-process nats-server can leave behind
// after Shutdown returns: a few process-wide helpers, and the store goroutines of a stream whose
// creation raced the shutdown (nats-server stops only the streams it had finished creating). They
// belong to nats-server, not to the code under test; a TestMain that starts servers passes these to
// goleak.VerifyTestMain so that only our own goroutines count as leaks.
func ServerLeftovers() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreAnyFunction("github.com/nats-io/nats-server/v2/server.(*Server).startGoRoutine"),
		goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server.(*Server).removeRoute.func1"),
		goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server.(*fileStore).flushStreamStateLoop"),
		goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server/ats.Register.func1"),
	}
}
