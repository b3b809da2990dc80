package processes

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Target is one executable of the stack: a package built from a workspace module.
type Target struct {
	// Name is the file name of the built executable.
	Name string
	// Module is the module directory relative to the workspace root.
	Module string
	// Package is the package to build, relative to Module or a full import path.
	Package string
}

// The stack's executables. nats-server is built from the deploy module, which requires it (and
// lists it as a tool), so its version is pinned by deploy/go.mod.
var (
	TargetNATSServer = Target{Name: "nats-server", Module: "deploy", Package: "github.com/nats-io/nats-server/v2"}
	TargetScheduler  = Target{Name: "ork-scheduler", Module: "services/scheduler", Package: "./cmd"}
	TargetExecutor   = Target{Name: "ork-executor", Module: "services/executor", Package: "./cmd"}
	TargetRecorder   = Target{Name: "ork-recorder", Module: "services/recorder", Package: "./cmd"}
	TargetAPI        = Target{Name: "ork-api", Module: "services/api", Package: "./cmd"}
	TargetCLI        = Target{Name: "ork", Module: "cmd/ork", Package: "."}
)

// BuildConfig says what BuildBinaries builds and where.
type BuildConfig struct {
	// Root is the workspace root (the directory holding go.work); see FindRoot.
	Root string
	// Dir receives the executables.
	Dir string
	// CLI also builds the ork command.
	CLI bool
	// Race builds the services with the race detector (slower; for fault tests).
	Race bool
}

// Validate names the first bad field.
func (c BuildConfig) Validate() error {
	switch {
	case c.Root == "":
		return errors.New("build: Root is required")
	case c.Dir == "":
		return errors.New("build: Dir is required")
	}
	return nil
}

// Binaries are the paths of built executables; a path is empty when it was not built.
type Binaries struct {
	NATSServer string
	Scheduler  string
	Executor   string
	Recorder   string
	API        string
	CLI        string
}

// BuildBinaries builds nats-server, the three services and the API (and the CLI when asked) into
// cfg.Dir.
func BuildBinaries(ctx context.Context, cfg BuildConfig) (Binaries, error) {
	if err := cfg.Validate(); err != nil {
		return Binaries{}, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return Binaries{}, fmt.Errorf("creating binaries directory: %w", err)
	}
	bins := Binaries{
		NATSServer: filepath.Join(cfg.Dir, TargetNATSServer.Name),
		Scheduler:  filepath.Join(cfg.Dir, TargetScheduler.Name),
		Executor:   filepath.Join(cfg.Dir, TargetExecutor.Name),
		Recorder:   filepath.Join(cfg.Dir, TargetRecorder.Name),
		API:        filepath.Join(cfg.Dir, TargetAPI.Name),
	}
	if err := Build(ctx, cfg.Root, bins.NATSServer, TargetNATSServer, false); err != nil {
		return Binaries{}, err
	}
	for _, t := range []struct {
		target Target
		out    string
	}{{TargetRecorder, bins.Recorder}, {TargetScheduler, bins.Scheduler}, {TargetExecutor, bins.Executor}, {TargetAPI, bins.API}} {
		if err := Build(ctx, cfg.Root, t.out, t.target, cfg.Race); err != nil {
			return Binaries{}, err
		}
	}
	if cfg.CLI {
		bins.CLI = filepath.Join(cfg.Dir, TargetCLI.Name)
		if err := Build(ctx, cfg.Root, bins.CLI, TargetCLI, cfg.Race); err != nil {
			return Binaries{}, err
		}
	}
	return bins, nil
}

// Build runs `go build` for one target into out, inside the workspace at root.
func Build(ctx context.Context, root, out string, t Target, race bool) error {
	args := []string{"build", "-o", out}
	if race {
		args = append(args, "-race")
	}
	args = append(args, t.Package)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = filepath.Join(root, t.Module)
	cmd.Env = os.Environ()
	if !race {
		cmd.Env = append(cmd.Env, "CGO_ENABLED=0")
	}
	var output bytes.Buffer
	cmd.Stdout = &output
	cmd.Stderr = &output
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building %s: %w\n%s", t.Name, err, output.String())
	}
	return nil
}

// FindRoot returns the workspace root: dir or its nearest parent holding go.work.
func FindRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("finding workspace root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("finding workspace root: no go.work above the current directory")
		}
		dir = parent
	}
}
