package deploy_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/ork-go/ork/deploy/processes"
)

// TestNATSConfig parses deploy/nats-server.conf with the server's own parser.
func TestNATSConfig(t *testing.T) {
	t.Parallel()
	opts, err := server.ProcessConfigFile(filepath.Join(repoRoot(t), "deploy", "nats-server.conf"))
	if err != nil {
		t.Fatalf("parsing deploy/nats-server.conf: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"jetstream", opts.JetStream, true},
		{"store_dir", opts.StoreDir, "/data"},
		{"listen port", opts.Port, 4222},
		{"monitoring port", opts.HTTPPort, 8222},
		{"max_payload", opts.MaxPayload, int32(8 << 20)},
		{"sync_interval", opts.SyncInterval, 2 * time.Minute},
		{"sync always", opts.SyncAlways, false},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

// TestMain gives deploy/nats-server.conf the role passwords it reads from the environment, as
// docker-compose.yml and the process stack do, so that the server's own parser can load it.
func TestMain(m *testing.M) {
	for _, role := range processes.Roles {
		os.Setenv(processes.PasswordEnv(role), role+"-secret")
	}
	os.Exit(m.Run())
}
