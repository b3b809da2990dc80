package processes_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ork-go/ork/deploy/processes"
)

func TestDeriveNATSConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	store := filepath.Join(dir, "store $x")
	conf, err := processes.DeriveNATSConfig(baseConfig(t), "127.0.0.1", 4300, 8300, store, "always")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(path, conf, 0o644); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("parsing the derived config: %v\n%s", err, conf)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"host", opts.Host, "127.0.0.1"},
		{"port", opts.Port, 4300},
		{"http host", opts.HTTPHost, "127.0.0.1"},
		{"http port", opts.HTTPPort, 8300},
		{"store_dir", opts.StoreDir, store},
		{"sync always", opts.SyncAlways, true},
		{"max_payload kept", opts.MaxPayload, int32(8 << 20)},
		{"jetstream kept", opts.JetStream, true},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if _, err := processes.DeriveNATSConfig([]byte("port: 4222\n"), "127.0.0.1", 1, 2, store, ""); err == nil {
		t.Error("deriving from a config without listen, http and store_dir succeeded")
	}
}

// TestNATSRestartKeepsPortAndStore kills the server with SIGKILL and restarts it: a client
// reconnects to the same URL and finds the message it stored.
func TestNATSRestartKeepsPortAndStore(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n := startShippedNATS(ctx, t)
	url := n.URL
	operator := nats.UserInfo(processes.RoleOperator, n.Secrets[processes.RoleOperator])

	nc, err := nats.Connect(url, operator)
	if err != nil {
		t.Fatal(err)
	}
	if got := nc.MaxPayload(); got != 8<<20 {
		t.Errorf("max payload = %d, want 8MB from deploy/nats-server.conf", got)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "t.one", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	nc.Close()

	if err := n.Restart(ctx); err == nil {
		t.Fatal("Restart of a running server succeeded")
	}
	if err := n.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := n.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if n.URL != url {
		t.Fatalf("restarted on %s, want %s", n.URL, url)
	}
	nc, err = nats.Connect(url, operator)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err = jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, "T")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := s.GetLastMsgForSubject(ctx, "t.one")
	if err != nil {
		t.Fatal(err)
	}
	if string(msg.Data) != "kept" {
		t.Fatalf("stored message = %q, want kept", msg.Data)
	}
}
