package embedded_test

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ork-go/ork/pkg/workflow"
)

// listening returns the inodes of the TCP sockets this process holds in the LISTEN state.
func listening(t *testing.T) map[string]bool {
	t.Helper()
	mine := map[string]bool{}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		if link, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && strings.HasPrefix(link, "socket:[") {
			mine[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	out := map[string]bool{}
	for _, table := range []string{"/proc/self/net/tcp", "/proc/self/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			continue // no IPv6
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			// sl local rem st tx:rx tr:when retrnsmt uid timeout inode
			if len(fields) > 9 && fields[3] == "0A" && mine[fields[9]] {
				out[fields[1]+" (socket "+fields[9]+")"] = true
			}
		}
		_ = f.Close()
	}
	return out
}

// `ork run` (the embedded stack without a port) listens on no TCP port: running a workflow opens
// no listening socket. Not parallel, so no other test of the package holds a listener meanwhile.
func TestEmbeddedListensOnNoPort(t *testing.T) {
	before := listening(t)
	s := start(t, "sqlite://"+filepath.Join(t.TempDir(), "ork.db"), 0)
	plan, err := workflow.Load(filepath.Join(examplesDir, "hello.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	runPlan(t, s, plan, "")
	for l := range listening(t) {
		if !before[l] {
			t.Errorf("the embedded stack listens on %s", l)
		}
	}
	// The check itself sees a listener: the stack asked for a port (any free one).
	start(t, "sqlite://"+filepath.Join(t.TempDir(), "ork.db"), -1)
	if len(listening(t)) <= len(before) {
		t.Errorf("the stack with a port shows no listening socket: the check sees nothing")
	}
}
