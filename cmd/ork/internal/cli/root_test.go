package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// testVersion is stamped into the test binary to check the -ldflags wiring of `ork version`.
const testVersion = "v0.0.0-clitest"

// orkBin is the ork binary built once by TestMain for the tests that run it as a user would.
var orkBin string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "ork-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "creating temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	orkBin = filepath.Join(dir, "ork")
	build := exec.Command("go", "build", "-o", orkBin,
		"-ldflags", "-X github.com/ork-go/ork/cmd/ork/internal/cli.Version="+testVersion,
		"github.com/ork-go/ork/cmd/ork")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building ork:", err)
		return 1
	}
	return m.Run()
}

// result is what one run of the binary produced.
type result struct {
	code           int
	stdout, stderr string
}

// ork runs the built binary with args in dir ("" = the test's working directory).
func ork(t *testing.T, dir string, args ...string) result {
	t.Helper()
	return orkEnv(t, dir, nil, args...)
}

// orkEnv is ork with more environment variables (KEY=VALUE).
func orkEnv(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), orkBin, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exitErr *exec.ExitError
	code := 0
	switch {
	case errors.As(err, &exitErr):
		code = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("running ork %v: %v", args, err)
	}
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func (r result) expect(t *testing.T, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit status %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	r := ork(t, "", "--help")
	r.expect(t, 0)
	for _, want := range []string{"Ork is a workflow orchestrator", "validate", "version", "ork run flow.yaml"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("help does not mention %q:\n%s", want, r.stdout)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown command", []string{"valdate", "x.yaml"}, `error: unknown command "valdate" for "ork"; did you mean "validate"?`},
		{"unknown flag", []string{"validate", "--jsn", "x.yaml"}, "error: unknown flag: --jsn (see ork validate --help)"},
		{"missing file", []string{"validate"}, "error: requires at least 1 arg(s), only received 0 (see ork validate --help)"},
		{"version with args", []string{"version", "extra"}, "error: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := ork(t, "", tc.args...)
			r.expect(t, 2)
			if !strings.HasPrefix(r.stderr, tc.want) {
				t.Fatalf("stderr = %q, want it to start with %q", r.stderr, tc.want)
			}
			if r.stdout != "" {
				t.Fatalf("usage error wrote to stdout: %q", r.stdout)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	r := ork(t, "", "version")
	r.expect(t, 0)
	if want := "ork " + testVersion + " (go"; !strings.HasPrefix(r.stdout, want) {
		t.Fatalf("version = %q, want prefix %q", r.stdout, want)
	}
}
