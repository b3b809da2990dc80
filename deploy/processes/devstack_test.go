package processes_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ork-go/ork/pkg/httpapi"
)

// devstack runs deploy/devstack.sh with its binaries and state in test directories.
func devstack(ctx context.Context, t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(ctx, filepath.Join("..", "devstack.sh"), args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	return out.String(), err
}

// devstackRoleEnv reads the environment devstack.sh wrote for role ("export K=V" lines): the NATS
// URL and the role's credentials. For the executor, which has no file, it builds the same from
// secrets.env.
func devstackRoleEnv(t *testing.T, state, role string) []string {
	t.Helper()
	file := filepath.Join(state, role+".env")
	if role == "executor" {
		data, err := os.ReadFile(filepath.Join(state, "secrets.env"))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "ORK_NATS_EXECUTOR_PASSWORD="); ok {
				return []string{"ORK_NATS_USER=executor", "ORK_NATS_PASSWORD=" + v, "ORK_NATS_INBOX_PREFIX=_INBOX_executor"}
			}
		}
		t.Fatal("secrets.env has no executor password")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		kv := strings.TrimPrefix(line, "export ")
		if k, v, ok := strings.Cut(kv, "="); ok {
			env = append(env, k+"="+strings.Trim(v, "'"))
		}
	}
	return env
}

// withoutNATSCredentials drops any ORK_NATS_* credentials of the test's own environment.
func withoutNATSCredentials(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "ORK_NATS_") {
			out = append(out, kv)
		}
	}
	return out
}

var reNATSURL = regexp.MustCompile(`NATS:\s+(nats://127\.0\.0\.1:\d+)`)

// TestDevstackScript brings the dev stack up with deploy/devstack.sh, runs a workflow on it with
// the ork CLI, checks that a second `up` starts nothing, and that `down` stops every process.
func TestDevstackScript(t *testing.T) {
	t.Parallel()
	dbURL := testDatabase(t)
	bins := services(t)
	state := t.TempDir()
	natsPort := freePort(t)
	env := []string{
		"ORK_DEVSTACK_NO_BUILD=1",
		"ORK_DEVSTACK_BIN=" + filepath.Dir(bins.Recorder),
		"ORK_DEVSTACK_STATE=" + state,
		"ORK_DB_URL=" + dbURL,
		// Not 4223: a developer's own dev stack may be running.
		"ORK_DEVSTACK_NATS_PORT=" + strconv.Itoa(natsPort),
		"ORK_DEVSTACK_MONITOR_PORT=" + strconv.Itoa(freePort(t)),
		"ORK_DEVSTACK_API_PORT=" + strconv.Itoa(freePort(t)),
	}
	metricsBase := freePorts(t, 5, natsPort, natsPort+1000)
	env = append(env, "ORK_DEVSTACK_METRICS_PORT="+strconv.Itoa(metricsBase))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if out, err := devstack(ctx, t, env, "down"); err != nil {
			t.Errorf("devstack down: %v\n%s", err, out)
		}
	})

	out, err := devstack(ctx, t, env, "up")
	if err != nil {
		t.Fatalf("devstack up: %v\n%s", err, out)
	}
	m := reNATSURL.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("devstack up printed no NATS URL:\n%s", out)
	}
	natsURL := m[1]
	names := []string{"nats-server", "recorder", "scheduler", "scheduler-2", "executor-1", "executor-2", "api"}
	pids := map[string]int{}
	for _, name := range names {
		data, err := os.ReadFile(filepath.Join(state, name+".pid"))
		if err != nil {
			t.Fatalf("no pid file for %s: %v", name, err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || gone(pid) {
			t.Fatalf("%s: pid %q is not running", name, data)
		}
		pids[name] = pid
	}

	// The ork CLI submits over the printed URL and exits 0 once the recorder committed a success.
	flow := wideWorkflowFile(t, 4)
	// Without credentials the stack's NATS turns the CLI away, naming the server and what to set.
	anon := exec.CommandContext(ctx, bins.CLI, "run", flow, "--nats", natsURL)
	anon.Env = withoutNATSCredentials(os.Environ())
	if out, err := anon.CombinedOutput(); err == nil || !strings.Contains(string(out), "Authorization Violation") ||
		!strings.Contains(string(out), natsURL) || !strings.Contains(string(out), "ORK_NATS_USER") {
		t.Errorf("ork run without credentials: %v\n%s\nwant an authorization error naming %s and ORK_NATS_USER", err, out, natsURL)
	}
	// An executor's credentials may not submit.
	asExecutor := exec.CommandContext(ctx, bins.CLI, "run", flow, "--nats", natsURL)
	asExecutor.Env = append(withoutNATSCredentials(os.Environ()), devstackRoleEnv(t, state, "executor")...)
	if out, err := asExecutor.CombinedOutput(); err == nil || !strings.Contains(string(out), "ermissions") {
		t.Errorf("ork run as the executor: %v\n%s\nwant a permissions violation", err, out)
	}
	run := exec.CommandContext(ctx, bins.CLI, "run", flow)
	run.Env = append(withoutNATSCredentials(os.Environ()), devstackRoleEnv(t, state, "submitter")...)
	run.Dir = t.TempDir()
	if out, err := run.CombinedOutput(); err != nil {
		t.Fatalf("ork run with submitter.env (%s): %v\n%s\nlogs:\n%s", natsURL, err, out, stateLogs(state))
	}

	// Every service serves its Prometheus metrics on the port the script gave it.
	for i, prefix := range []string{"ork_recorder_", "ork_scheduler_", "ork_scheduler_", "ork_executor_", "ork_executor_"} {
		url := fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsBase+i)
		body, err := httpGet(ctx, url)
		if err != nil || !strings.Contains(body, prefix) {
			t.Errorf("%s: %v; want series named %s*", url, err, prefix)
		}
	}

	// The API requires the token the script made, kept in api.env for its user only.
	apiEnv := devstackEnvFile(t, filepath.Join(state, "api.env"))
	if fi, err := os.Stat(filepath.Join(state, "api.env")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("api.env: %v, mode %v; want 0600", err, fi)
	}
	if _, err := httpapi.NewClient(apiEnv["ORK_API_URL"], "").Workflows(ctx, ""); !httpapi.IsProblem(err, "unauthorized") {
		t.Errorf("the API without a token: %v, want unauthorized", err)
	}
	if _, err := httpapi.NewClient(apiEnv["ORK_API_URL"], apiEnv["ORK_API_TOKEN"]).Workflows(ctx, ""); err != nil {
		t.Errorf("the API with api.env's token: %v\nlogs:\n%s", err, stateLogs(state))
	}

	out, err = devstack(ctx, t, env, "up")
	if err != nil || !strings.Contains(out, "already running") {
		t.Fatalf("second devstack up: %v, want \"already running\":\n%s", err, out)
	}
	out, err = devstack(ctx, t, env, "status")
	if err != nil || strings.Count(out, " running (pid ") != len(names) {
		t.Fatalf("devstack status: %v, want %d running:\n%s", err, len(names), out)
	}

	if out, err := devstack(ctx, t, env, "down"); err != nil {
		t.Fatalf("devstack down: %v\n%s", err, out)
	}
	for name, pid := range pids {
		if !gone(pid) {
			t.Errorf("%s (pid %d) still runs after down", name, pid)
		}
		if _, err := os.Stat(filepath.Join(state, name+".pid")); !os.IsNotExist(err) {
			t.Errorf("%s: pid file left after down (%v)", name, err)
		}
	}
}

// wideWorkflowFile writes the wide test workflow and returns its path.
func wideWorkflowFile(t *testing.T, width int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "wide.yaml")
	if err := os.WriteFile(path, []byte(wideWorkflowYAML(width)), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func stateLogs(dir string) string {
	var b strings.Builder
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, l := range logs {
		data, _ := os.ReadFile(l)
		if len(data) > 4096 {
			data = data[len(data)-4096:]
		}
		b.WriteString("----- " + filepath.Base(l) + "\n" + string(data) + "\n")
	}
	return b.String()
}

// httpGet returns the body of a GET.
func httpGet(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

// devstackEnvFile reads an env file the script wrote (export K=V lines) into a map.
func devstackEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "="); ok {
			out[k] = strings.Trim(v, "'")
		}
	}
	return out
}
