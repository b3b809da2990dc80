package cli

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ork-go/ork/cmd/ork/internal/serve"
	"github.com/ork-go/ork/pkg/poll"
)

// startServe runs `ork serve` as a process in dir on a free port and returns its discovery info;
// stop sends it SIGINT and checks that it stops cleanly and removes the file.
func startServe(t *testing.T, dir string, flags ...string) (serve.Info, func()) {
	t.Helper()
	cmd := exec.Command(orkBin, append([]string{"serve", "--addr", "127.0.0.1:0"}, flags...)...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var info serve.Info
	poll.UntilWithin(t, 60*time.Second, "ork serve to write .ork/serve.json", func() bool {
		var ok bool
		info, ok = serve.ReadInfo(filepath.Join(dir, ".ork"))
		return ok
	})
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("ork serve ended with %v:\n%s", err, out.String())
			}
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("ork serve did not stop within 60 s of SIGINT:\n%s", out.String())
		}
		if _, err := os.Stat(filepath.Join(dir, ".ork", serve.InfoFile)); err == nil {
			t.Errorf("ork serve left %s behind", serve.InfoFile)
		}
	}
	t.Cleanup(stop)
	return info, stop
}

// As a new user would: ork serve in a folder, then from the same folder register the examples,
// trigger with parameters and follow, trigger twice with one key, show, delete; the commands find
// the server by themselves. Ctrl-C stops the server cleanly.
func TestServeAndTrigger(t *testing.T) {
	t.Parallel()
	dir := copyExamples(t)
	info, stop := startServe(t, dir)
	if !strings.HasPrefix(info.API, "http://127.0.0.1:") {
		t.Fatalf("serve.json names %q", info.API)
	}
	r := ork(t, dir, "workflows", "apply", "examples/")
	r.expect(t, 0)
	if !strings.Contains(r.stdout, "registered typed_chain") || !strings.Contains(r.stdout, "in the server at "+info.API) {
		t.Fatalf("apply:\n%s", r.stdout)
	}
	r = ork(t, dir, "workflows", "apply", "examples/hello.yaml")
	r.expect(t, 0)
	if !strings.Contains(r.stdout, "unchanged  hello") {
		t.Errorf("applying again:\n%s", r.stdout)
	}
	// One invalid file: nothing is registered.
	if err := os.WriteFile(filepath.Join(dir, "examples", "zz_bad.yaml"), []byte("name: zz_bad\ntasks:\n  a: {executor: nope}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = ork(t, dir, "workflows", "apply", "examples/")
	r.expect(t, 1)
	if !strings.Contains(r.stderr, "zz_bad.yaml:3") || !strings.Contains(r.stderr, "nothing was registered") {
		t.Errorf("apply with a bad file:\n%s", r.stderr)
	}
	if r = ork(t, dir, "workflows", "list"); strings.Contains(r.stdout, "zz_bad") || !strings.Contains(r.stdout, "city,day") {
		t.Errorf("list:\n%s", r.stdout)
	}

	r = ork(t, dir, "trigger", "typed_chain", "-p", "city=Paris", "--param", "day=2024-08-01", "--wait", "--json")
	r.expect(t, 0)
	var run struct {
		RunID       string            `json:"run_id"`
		Status      string            `json:"status"`
		Params      map[string]string `json:"params"`
		TriggeredBy string            `json:"triggered_by"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &run); err != nil {
		t.Fatalf("trigger --json: %v\n%s", err, r.stdout)
	}
	if run.Status != "success" || run.Params["city"] != "Paris" || run.Params["day"] != "2024-08-01" {
		t.Fatalf("triggered run %+v", run)
	}
	res, err := http.Get(info.API + "/api/v1/runs/" + run.RunID)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET the run: %v %v", res, err)
	}
	res.Body.Close()
	r = ork(t, dir, "status", run.RunID[:8])
	if r.code != 0 || !strings.Contains(r.stdout, `"city":"Paris"`) {
		t.Errorf("status of the run (prefix):\n%s%s", r.stdout, r.stderr)
	}

	r = ork(t, dir, "trigger", "typed_chain", "-p", "day=2024-13-01")
	r.expect(t, 2)
	if !strings.Contains(r.stderr, `param "day"`) {
		t.Errorf("a bad param: %s", r.stderr)
	}
	first := ork(t, dir, "trigger", "hello", "--idempotency-key", "k-1")
	first.expect(t, 0)
	again := ork(t, dir, "trigger", "hello", "--idempotency-key", "k-1")
	again.expect(t, 0)
	if first.stdout != again.stdout || !strings.Contains(again.stderr, "had already started this run") {
		t.Errorf("the same key twice: %q then %q (%s)", first.stdout, again.stdout, again.stderr)
	}
	r = ork(t, dir, "workflows", "show", "typed_chain")
	r.expect(t, 0)
	if !strings.Contains(r.stdout, "city") || !strings.Contains(r.stdout, "summarize") {
		t.Errorf("show:\n%s", r.stdout)
	}
	// Rerun what failed, on the server: a dry run says what, then it runs (and fails again: broken
	// always does).
	ork(t, dir, "trigger", "fails_on_purpose", "--wait").expect(t, 1)
	r = ork(t, dir, "rerun", "latest", "--failed", "--dry-run")
	r.expect(t, 0)
	if !strings.Contains(r.stdout, "would rerun run") || !strings.Contains(r.stdout, "broken, never_runs; reuses independent") {
		t.Errorf("rerun --dry-run:\n%s%s", r.stdout, r.stderr)
	}
	r = ork(t, dir, "rerun", "latest", "--failed", "--wait")
	r.expect(t, 1)
	if !strings.Contains(r.stdout, "reruns run") || !strings.Contains(r.stdout, "broken") {
		t.Errorf("rerun --wait:\n%s%s", r.stdout, r.stderr)
	}
	// Reading and steering through the API alone (--api, as from another machine).
	api := []string{"--api", info.API}
	r = ork(t, t.TempDir(), append([]string{"status", "latest"}, api...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "fails_on_purpose") {
		t.Errorf("status latest --api:\n%s%s", r.stdout, r.stderr)
	}
	r = ork(t, t.TempDir(), append([]string{"tasks", run.RunID}, api...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "summarize") {
		t.Errorf("tasks --api:\n%s%s", r.stdout, r.stderr)
	}
	r = ork(t, t.TempDir(), append([]string{"status", "--status", "success", "--json"}, api...)...)
	if r.code != 0 || !strings.Contains(r.stdout, run.RunID) {
		t.Errorf("status --status success --api:\n%s%s", r.stdout, r.stderr)
	}
	r = ork(t, t.TempDir(), append([]string{"cancel", run.RunID}, api...)...)
	if r.code != 1 || !strings.Contains(r.stderr, "has already finished: success") {
		t.Errorf("cancel of a finished run --api: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	ork(t, dir, "workflows", "delete", "hello").expect(t, 0)
	r = ork(t, dir, "trigger", "hello")
	r.expect(t, 1)
	if !strings.Contains(r.stderr, `no registered workflow "hello"`) {
		t.Errorf("trigger after delete: %s", r.stderr)
	}
	stop()
}

// Without a server, the registry is this folder's: apply, then trigger runs the workflow here,
// in this process, to its end; the list also shows what ran from files.
func TestRegistryWithoutServer(t *testing.T) {
	t.Parallel()
	dir := copyExamples(t)
	r := ork(t, dir, "workflows", "apply", "examples/typed_chain.yaml")
	r.expect(t, 0)
	if !strings.Contains(r.stdout, "in this folder's registry") {
		t.Errorf("apply:\n%s", r.stdout)
	}
	r = ork(t, dir, "trigger", "typed_chain", "-p", "city=Lyon")
	r.expect(t, 0)
	if !strings.Contains(r.stdout, "success") {
		t.Errorf("trigger:\n%s", r.stdout)
	}
	ork(t, dir, "run", "examples/hello.yaml").expect(t, 0)
	r = ork(t, dir, "workflows")
	r.expect(t, 0)
	if !strings.Contains(r.stdout, "typed_chain") || !strings.Contains(r.stdout, "hello") || !strings.Contains(r.stdout, "not registered") {
		t.Errorf("list:\n%s", r.stdout)
	}
	// A rerun here runs in this process, from this folder's database.
	ork(t, dir, "run", "examples/fails_on_purpose.yaml").expect(t, 1)
	r = ork(t, dir, "rerun", "latest", "--failed")
	r.expect(t, 1)
	if !strings.Contains(r.stdout, "reuses independent") || !strings.Contains(r.stdout, "broken") {
		t.Errorf("rerun here:\n%s%s", r.stdout, r.stderr)
	}
	r = ork(t, dir, "status", "latest")
	if !strings.Contains(r.stdout, "fails_on_purpose") {
		t.Errorf("status of the rerun:\n%s", r.stdout)
	}
	r = ork(t, dir, "run", "examples/hello.yaml", "--detach")
	r.expect(t, 2)
	if !strings.Contains(r.stderr, "--detach needs a cluster") {
		t.Errorf("--detach in-process: %s", r.stderr)
	}
}

// Tokens as a user makes them: ork token create prints one once; ork serve --tokens refuses the
// commands without it and takes them with ORK_API_TOKEN; a revoked token is refused.
func TestTokensWithServe(t *testing.T) {
	t.Parallel()
	dir := copyExamples(t)
	r := ork(t, dir, "token", "create", "--scope", "admin", "--name", "me")
	r.expect(t, 0)
	var token string
	for _, f := range strings.Fields(r.stdout) {
		if strings.HasPrefix(f, "ork_") {
			token = f
		}
	}
	if token == "" || !strings.Contains(r.stdout, "shown this once") {
		t.Fatalf("token create:\n%s", r.stdout)
	}
	if r := ork(t, dir, "token", "create", "--scope", "root"); r.code != 2 || !strings.Contains(r.stderr, "want read, submit or admin") {
		t.Errorf("a bad scope: exit %d %s", r.code, r.stderr)
	}
	startServe(t, dir, "--tokens")
	r = ork(t, dir, "workflows", "apply", "examples/hello.yaml")
	r.expect(t, 1)
	if !strings.Contains(r.stderr, "requires a token") {
		t.Errorf("apply without a token: %s", r.stderr)
	}
	env := []string{"ORK_API_TOKEN=" + token}
	orkEnv(t, dir, env, "workflows", "apply", "examples/hello.yaml").expect(t, 0)
	orkEnv(t, dir, env, "trigger", "hello", "--wait").expect(t, 0)
	r = ork(t, dir, "token", "list")
	id := strings.Split(token, "_")[1]
	if !strings.Contains(r.stdout, id) || !strings.Contains(r.stdout, "valid") || strings.Contains(r.stdout, token) {
		t.Errorf("token list:\n%s", r.stdout)
	}
	ork(t, dir, "token", "revoke", id).expect(t, 0)
	r = orkEnv(t, dir, env, "workflows", "list")
	r.expect(t, 1)
	if !strings.Contains(r.stderr, "unknown, revoked or expired") {
		t.Errorf("a revoked token: %s", r.stderr)
	}
}

// From another folder, against a server given by URL (as a laptop against a remote server): apply
// sends the workflow's folder as a bundle, and the run works once that folder is gone.
func TestApplyBundleToRemoteServer(t *testing.T) {
	t.Parallel()
	info, _ := startServe(t, t.TempDir())
	elsewhere := copyExamples(t)
	r := ork(t, elsewhere, "workflows", "apply", "examples/typed_chain.yaml", "--api", info.API)
	r.expect(t, 0)
	if err := os.RemoveAll(filepath.Join(elsewhere, "examples")); err != nil {
		t.Fatal(err)
	}
	r = ork(t, elsewhere, "trigger", "typed_chain", "--api", info.API, "-p", "city=Oslo", "--wait")
	r.expect(t, 0)
	if !strings.Contains(r.stdout, "success") {
		t.Errorf("trigger:\n%s", r.stdout)
	}
	// Without the bundle, the server cannot see this folder: refused, saying so.
	other := copyExamples(t)
	r = ork(t, other, "workflows", "apply", "examples/etl_mixed.yaml", "--api", info.API, "--bundle=false")
	r.expect(t, 1)
	if !strings.Contains(r.stderr, "no such file or directory") {
		t.Errorf("apply without a bundle: %s", r.stderr)
	}
}
