package processes_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ork-go/ork/deploy/processes"
)

// binDir holds the executables built once for the whole package.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ork-stack-bin-")
	if err != nil {
		panic(err)
	}
	binDir = dir
	// For the tests that parse deploy/nats-server.conf in this process; the servers started by the
	// tests get their own secrets in their environment.
	for _, role := range processes.Roles {
		_ = os.Setenv(processes.PasswordEnv(role), role+"-secret")
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		_ = os.RemoveAll(dir)
		os.Exit(code)
	}))
}

var (
	natsOnce sync.Once
	natsBin  string
	natsErr  error
)

// natsServer builds nats-server from the deploy module once.
func natsServer(t *testing.T) string {
	t.Helper()
	natsOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		root, err := processes.FindRoot(".")
		if err != nil {
			natsErr = err
			return
		}
		natsBin = filepath.Join(binDir, processes.TargetNATSServer.Name)
		natsErr = processes.Build(ctx, root, natsBin, processes.TargetNATSServer, false)
	})
	if natsErr != nil {
		t.Fatal(natsErr)
	}
	return natsBin
}

// baseConfig returns deploy/nats-server.conf.
func baseConfig(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "nats-server.conf"))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// startShippedNATS starts a nats-server process with deploy/nats-server.conf (fresh role secrets),
// killed at the test's end.
func startShippedNATS(ctx context.Context, t *testing.T) *processes.NATS {
	t.Helper()
	n, err := processes.StartNATS(ctx, processes.NATSConfig{Binary: natsServer(t), Dir: t.TempDir(), Base: baseConfig(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Kill() })
	return n
}
