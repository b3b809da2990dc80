package bus

import (
	"errors"
	"flag"
	"strconv"
	"strings"

	"github.com/ork-go/ork/pkg/envflag"
)

// Environment variables read by RegisterStreamFlags.
const (
	EnvEventsMaxBytes  = "ORK_EVENTS_MAX_BYTES"
	EnvLogsMaxBytes    = "ORK_LOGS_MAX_BYTES"
	EnvTasksMaxMsgs    = "ORK_TASKS_MAX_MSGS"
	EnvStreamMaxAge    = "ORK_STREAM_MAX_AGE"
	EnvDuplicateWindow = "ORK_DUPLICATE_WINDOW"
	EnvReplicas        = "ORK_NATS_REPLICAS"
)

// RegisterStreamFlags defines on fs the flags of the stream limits and the duplicate window that
// every service applies when it provisions the streams: --events-max-bytes, --logs-max-bytes,
// --tasks-max-msgs, --max-age, --duplicate-window and --replicas. A flag overrides its ORK_* environment
// variable (read through getenv), which overrides the value already in c, which overrides the
// package default. It returns an error naming a variable that does not parse. Every service
// provisions the streams at start, and the last one to start sets the limits: give them all the
// same values (the environment variables are the easy way).
func (c *Config) RegisterStreamFlags(fs *flag.FlagSet, getenv func(string) string) error {
	def := c.WithDefaults()
	c.EventsMaxBytes, c.LogsMaxBytes, c.TasksMaxMsgs = def.EventsMaxBytes, def.LogsMaxBytes, def.TasksMaxMsgs
	s := envflag.New(fs, getenv)
	s.Var((*sizeValue)(&c.EventsMaxBytes), "events-max-bytes", EnvEventsMaxBytes,
		"most bytes ORK_EVENTS holds; publishes past it are refused; bytes or KiB/MiB/GiB/TiB, -1 unlimited")
	s.Var((*sizeValue)(&c.LogsMaxBytes), "logs-max-bytes", EnvLogsMaxBytes,
		"most bytes ORK_LOGS holds; publishes past it are refused; bytes or KiB/MiB/GiB/TiB, -1 unlimited")
	s.Var((*sizeValue)(&c.TasksMaxMsgs), "tasks-max-msgs", EnvTasksMaxMsgs,
		"most dispatches waiting in ORK_TASKS; dispatches past it are refused and retried; -1 unlimited")
	s.DurationVar(&c.MaxAge, "max-age", EnvStreamMaxAge, def.MaxAge,
		"how long ORK_EVENTS and ORK_LOGS keep messages, and the run-state bucket its entries")
	s.DurationVar(&c.DuplicateWindow, "duplicate-window", EnvDuplicateWindow, def.DuplicateWindow,
		"how long the streams remember message ids; keep it well above the executors' ack wait")
	s.IntVar(&c.Replicas, "replicas", EnvReplicas, def.Replicas,
		"copies of every stream and of the run-state bucket: 1 on a single server, 3 on a three-node cluster")
	return s.Err()
}

// sizeValue is a flag.Value of a byte or message count that accepts binary unit suffixes.
type sizeValue int64

func (v *sizeValue) String() string { return strconv.FormatInt(int64(*v), 10) }

func (v *sizeValue) Set(s string) error {
	n, err := parseSize(s)
	if err != nil {
		return err
	}
	*v = sizeValue(n)
	return nil
}

var sizeUnits = []struct {
	suffix string
	mult   int64
}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}}

// parseSize reads a whole number, optionally followed by KiB, MiB, GiB or TiB.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range sizeUnits {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, errors.New("not a whole number, optionally followed by KiB, MiB, GiB or TiB")
	}
	if n > 0 && n > (1<<63-1)/mult {
		return 0, errors.New("too large")
	}
	return n * mult, nil
}
