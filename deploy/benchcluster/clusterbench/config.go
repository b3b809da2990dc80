package clusterbench

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Defaults of Config.
const (
	AdminURLDefault      = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	ConcurrencyDefault   = 32
	NoopTasksDefault     = 10_000
	ProcessTasksDefault  = 2_000
	RepeatsDefault       = 2
	CeilingEventsDefault = 100_000
	// DatabaseDefault is the database every measurement creates afresh (and drops at the end).
	DatabaseDefault = "ork_benchcluster"
)

// Defaults of Config's lists.
var (
	ExecutorsDefault  = []int{1, 2, 4}
	BatchSizesDefault = []int{500, 1000, 2000}
)

// Config says what to measure and where.
type Config struct {
	// Root is the workspace root (the directory holding go.work).
	Root string
	// Dir receives the binaries, the stacks' logs and stores and the ork bench reports.
	Dir string
	// AdminURL is a PostgreSQL URL allowed to create and drop Database.
	AdminURL string
	// Database is the name of the database created for each measurement.
	Database string
	// Executors lists the executor counts of the scaling curve.
	Executors []int
	// Concurrency is every executor's --concurrency (the same per instance at every point).
	Concurrency int
	// NoopTasks and ProcessTasks size the wide noop and the wide `process` scenario.
	NoopTasks    int
	ProcessTasks int
	// Repeats is how many times each point (a fresh stack and database each time) is measured.
	Repeats int
	// CeilingEvents is the backlog the recorder ceiling starts from.
	CeilingEvents int
	// BatchSizes lists the recorder's --batch-size values of the ceiling.
	BatchSizes []int
	// Profile takes a CPU profile of the recorder during each ceiling measurement.
	Profile bool
	// Scaling and Ceiling choose the measurements; both when neither is set.
	Scaling bool
	Ceiling bool
	// Out receives the progress lines and the tables.
	Out io.Writer
}

// WithDefaults returns the config with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.AdminURL == "" {
		c.AdminURL = AdminURLDefault
	}
	if c.Database == "" {
		c.Database = DatabaseDefault
	}
	if len(c.Executors) == 0 {
		c.Executors = slices.Clone(ExecutorsDefault)
	}
	if c.Concurrency == 0 {
		c.Concurrency = ConcurrencyDefault
	}
	if c.NoopTasks == 0 {
		c.NoopTasks = NoopTasksDefault
	}
	if c.ProcessTasks == 0 {
		c.ProcessTasks = ProcessTasksDefault
	}
	if c.Repeats == 0 {
		c.Repeats = RepeatsDefault
	}
	if c.CeilingEvents == 0 {
		c.CeilingEvents = CeilingEventsDefault
	}
	if len(c.BatchSizes) == 0 {
		c.BatchSizes = slices.Clone(BatchSizesDefault)
	}
	if !c.Scaling && !c.Ceiling {
		c.Scaling, c.Ceiling = true, true
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	return c
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.Root == "":
		return errors.New("clusterbench: Root is required")
	case c.Dir == "":
		return errors.New("clusterbench: Dir is required")
	case c.Concurrency < 1:
		return fmt.Errorf("clusterbench: Concurrency must be positive, got %d", c.Concurrency)
	case c.NoopTasks < 1 || c.ProcessTasks < 1:
		return errors.New("clusterbench: NoopTasks and ProcessTasks must be positive")
	case c.Repeats < 1:
		return fmt.Errorf("clusterbench: Repeats must be positive, got %d", c.Repeats)
	case c.CeilingEvents < 1:
		return fmt.Errorf("clusterbench: CeilingEvents must be positive, got %d", c.CeilingEvents)
	}
	for _, n := range c.Executors {
		if n < 1 {
			return fmt.Errorf("clusterbench: Executors must be positive, got %d", n)
		}
	}
	for _, n := range c.BatchSizes {
		if n < 1 {
			return fmt.Errorf("clusterbench: BatchSizes must be positive, got %d", n)
		}
	}
	return nil
}

// ParseInts parses a comma-separated list of positive integers ("1,2,4").
func ParseInts(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("parsing %q: %q is not a positive integer", s, f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("parsing %q: empty list", s)
	}
	return out, nil
}
