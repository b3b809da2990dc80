package clusterbench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ork-go/ork/deploy/processes"
)

// Results are everything Run measured.
type Results struct {
	StartedAt time.Time      `json:"started_at"`
	CPUs      int            `json:"cpus"`
	Scaling   []ScalePoint   `json:"scaling,omitempty"`
	Ceiling   []CeilingPoint `json:"ceiling,omitempty"`
}

// runner holds what every measurement shares.
type runner struct {
	cfg      Config
	bins     processes.Binaries
	natsBase []byte
}

func (r *runner) printf(format string, args ...any) { _, _ = fmt.Fprintf(r.cfg.Out, format, args...) }

// Run builds the binaries, takes the measurements cfg asks for and prints their tables to cfg.Out.
// It returns what it measured so far along with an error.
func Run(ctx context.Context, cfg Config) (*Results, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	base, err := os.ReadFile(filepath.Join(cfg.Root, "deploy", "nats-server.conf"))
	if err != nil {
		return nil, fmt.Errorf("reading the nats-server configuration: %w", err)
	}
	r := &runner{cfg: cfg, natsBase: base}
	r.printf("building nats-server, the services and ork into %s\n", filepath.Join(cfg.Dir, "bin"))
	if r.bins, err = processes.BuildBinaries(ctx, processes.BuildConfig{Root: cfg.Root, Dir: filepath.Join(cfg.Dir, "bin"), CLI: true}); err != nil {
		return nil, err
	}
	res := &Results{StartedAt: time.Now().UTC(), CPUs: numCPU()}
	defer func() {
		// Measurements leave their last database behind; it is recreated by the next run anyway.
		_ = processes.DropDatabase(context.WithoutCancel(ctx), cfg.AdminURL, cfg.Database)
	}()
	if cfg.Scaling {
		r.printf("scaling: executors %v × concurrency %d, wide %d noop and wide %d process, %d repeat(s)\n",
			cfg.Executors, cfg.Concurrency, cfg.NoopTasks, cfg.ProcessTasks, cfg.Repeats)
		res.Scaling, err = r.scaling(ctx)
		if err != nil {
			return res, err
		}
		r.printf("\n")
		WriteScalingTable(cfg.Out, res.Scaling)
	}
	if cfg.Ceiling {
		r.printf("\nrecorder ceiling: %d events backlog, batch sizes %v, %d repeat(s)\n", cfg.CeilingEvents, cfg.BatchSizes, cfg.Repeats)
		res.Ceiling, err = r.ceiling(ctx)
		if err != nil {
			return res, err
		}
		r.printf("\n")
		WriteCeilingTable(cfg.Out, res.Ceiling)
	}
	if res.Scaling == nil && res.Ceiling == nil {
		return res, errors.New("clusterbench: nothing measured")
	}
	return res, nil
}
