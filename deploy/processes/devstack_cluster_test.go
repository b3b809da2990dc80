package processes_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/event"
)

var reClusterURL = regexp.MustCompile(`NATS:\s+(nats://127\.0\.0\.1:\d+(?:,nats://127\.0\.0\.1:\d+)*)`)

// TestDevstackCluster brings the dev stack up on a three-node NATS cluster (`up --nats-cluster 3`),
// checks that every stream and the run-state bucket have three replicas, runs a workflow over the
// cluster's URLs, and brings it down.
func TestDevstackCluster(t *testing.T) {
	t.Parallel()
	dbURL := testDatabase(t)
	bins := services(t)
	state := t.TempDir()
	natsPort := freePorts(t, 3)
	env := []string{
		"ORK_DEVSTACK_NO_BUILD=1",
		"ORK_DEVSTACK_BIN=" + filepath.Dir(bins.Recorder),
		"ORK_DEVSTACK_STATE=" + state,
		"ORK_DB_URL=" + dbURL,
		"ORK_DEVSTACK_NATS_PORT=" + strconv.Itoa(natsPort),
		"ORK_DEVSTACK_MONITOR_PORT=" + strconv.Itoa(freePort(t)),
		"ORK_DEVSTACK_METRICS_PORT=" + strconv.Itoa(freePorts(t, 5, natsPort, natsPort+1, natsPort+2)),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if out, err := devstack(ctx, t, env, "down"); err != nil {
			t.Errorf("devstack down: %v\n%s", err, out)
		}
	})
	out, err := devstack(ctx, t, env, "up", "--nats-cluster", "3")
	if err != nil {
		t.Fatalf("devstack up --nats-cluster 3: %v\n%s\nlogs:\n%s", err, out, stateLogs(state))
	}
	m := reClusterURL.FindStringSubmatch(out)
	if m == nil || strings.Count(m[1], "nats://") != 3 {
		t.Fatalf("devstack up printed no three NATS URLs:\n%s", out)
	}
	natsURL := m[1]
	for _, name := range []string{"nats-1", "nats-2", "nats-3", "recorder", "scheduler", "scheduler-2", "executor-1", "executor-2"} {
		data, err := os.ReadFile(filepath.Join(state, name+".pid"))
		if err != nil {
			t.Fatalf("no pid file for %s: %v", name, err)
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err != nil || gone(pid) {
			t.Fatalf("%s: pid %q is not running", name, data)
		}
	}

	run := exec.CommandContext(ctx, bins.CLI, "run", wideWorkflowFile(t, 4), "--nats", natsURL)
	run.Env = append(withoutNATSCredentials(os.Environ()), devstackRoleEnv(t, state, "submitter")...)
	run.Dir = t.TempDir()
	if out, err := run.CombinedOutput(); err != nil {
		t.Fatalf("ork run --nats %s: %v\n%s\nlogs:\n%s", natsURL, err, out, stateLogs(state))
	}

	var auth bus.Auth
	for _, kv := range devstackRoleEnv(t, state, "submitter") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case bus.EnvUser:
			auth.User = v
		case bus.EnvPassword:
			auth.Password = v
		case bus.EnvInboxPrefix:
			auth.InboxPrefix = v
		}
	}
	b, err := bus.Connect(bus.Config{URL: natsURL, Name: t.Name(), Auth: auth}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, name := range []string{event.StreamEvents, event.StreamTasks, event.StreamLogs, "KV_" + event.BucketRuns, "KV_" + event.BucketSchedules} {
		st, err := b.JS.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			t.Errorf("%s: %d replicas configured, cluster %+v; want 3 (a leader and 2 peers)", name, info.Config.Replicas, info.Cluster)
		}
	}
}
