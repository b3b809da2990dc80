package serve_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap/zaptest"

	"github.com/ork-go/ork/cmd/ork/internal/embedded"
	"github.com/ork-go/ork/cmd/ork/internal/serve"
	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/services/executor"
)

// readEnvFile reads KEY=VALUE lines.
func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			out[k] = v
		}
	}
	return out
}

// With --nats-listen, an executor in another place (here: another connection over TCP, with the
// executor role's settings from executor.env) runs the tasks the server's own executor does not
// serve; an anonymous client is refused.
func TestExternalExecutor(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startWith(t, serve.Config{NATSListen: "127.0.0.1:0", // any free port: executor.env names the one taken
		Stack: embedded.Config{DataDir: dir, DBURL: "sqlite://" + filepath.Join(dir, "ork.db"), ExecutorTypes: []string{"noop"}}})
	for _, f := range []string{serve.SecretsFile, serve.ExecutorFile} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, want mode 0600", f, err)
		}
	}
	env := readEnvFile(t, filepath.Join(dir, serve.ExecutorFile))
	if !strings.HasPrefix(env["ORK_NATS_URL"], "nats://127.0.0.1:") || strings.HasSuffix(env["ORK_NATS_URL"], ":0") || env["ORK_NATS_USER"] != "executor" {
		t.Fatalf("executor.env: %v", env)
	}
	if nc, err := nats.Connect(env["ORK_NATS_URL"]); err == nil {
		nc.Close()
		t.Fatal("an anonymous client connected")
	}
	b, err := bus.Connect(bus.Config{URL: env["ORK_NATS_URL"], Name: "external-executor",
		Auth: bus.Auth{User: env["ORK_NATS_USER"], Password: env["ORK_NATS_PASSWORD"], InboxPrefix: env["ORK_NATS_INBOX_PREFIX"]}},
		zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	exe, err := executor.New(b, executor.Config{Types: []string{"process"}, Instance: "far-away", CacheDir: filepath.Join(t.TempDir(), "cache")}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- exe.Run(ctx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("external executor: %v", err)
		}
	}()
	select {
	case <-exe.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("the external executor did not start")
	}
	s.want(s.do("PUT", "/api/v1/workflows/hello", readExample(t, "hello.yaml")), http.StatusCreated)
	var trig struct {
		RunID string `json:"run_id"`
	}
	r := s.do("POST", "/api/v1/workflows/hello/runs", nil)
	s.want(r, http.StatusCreated)
	r.json(t, &trig)
	run := s.finished(trig.RunID)
	if run.Status != "success" {
		t.Fatalf("run %s", run.Status)
	}
	r = s.do("GET", "/api/v1/runs/"+trig.RunID, nil)
	var detail struct {
		Attempts []struct {
			Task     string `json:"task"`
			Instance string `json:"instance"`
		} `json:"attempts"`
	}
	r.json(t, &detail)
	for _, a := range detail.Attempts {
		if a.Instance != "far-away" {
			t.Errorf("task %s ran on %q, want the external executor", a.Task, a.Instance)
		}
	}
	if len(detail.Attempts) == 0 {
		t.Error("no attempts")
	}
	_ = fmt.Sprint()
}
