// Package logging builds Ork's zap loggers and holds the one constructor of each typed field, so a
// field is spelled the same everywhere (run_id, task, attempt, ...).
package logging

import (
	"fmt"
	"os"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Config selects the log level and format.
type Config struct {
	Level  string // debug, info, warn, error; default info
	Format string // json or console; default json
}

// level returns the configured level, or an error naming a bad one.
func (cfg Config) level() (zapcore.Level, error) {
	level := zapcore.InfoLevel
	if cfg.Level != "" {
		if err := level.UnmarshalText([]byte(cfg.Level)); err != nil {
			return level, fmt.Errorf("log level %q: %w", cfg.Level, err)
		}
	}
	return level, nil
}

// Validate names a bad level or format, without building a logger.
func (cfg Config) Validate() error {
	if _, err := cfg.level(); err != nil {
		return err
	}
	switch cfg.Format {
	case "", "json", "console":
		return nil
	}
	return fmt.Errorf("log format %q: want json or console", cfg.Format)
}

// New builds a logger writing to stderr.
func New(cfg Config) (*zap.Logger, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	level, _ := cfg.level()
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	if cfg.Format == "console" {
		enc = zapcore.NewConsoleEncoder(encCfg)
	} else {
		enc = zapcore.NewJSONEncoder(encCfg)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(os.Stderr), level)), nil
}

// RunID is the run_id field.
func RunID(id string) zap.Field { return zap.String("run_id", id) }

// Task is the task field.
func Task(name string) zap.Field { return zap.String("task", name) }

// Attempt is the attempt field.
func Attempt(n int) zap.Field { return zap.Int("attempt", n) }

// EventType is the event_type field.
func EventType(t string) zap.Field { return zap.String("event_type", t) }

// Workflow is the workflow field.
func Workflow(name string) zap.Field { return zap.String("workflow", name) }

// Executor is the executor field (an executor type).
func Executor(typ string) zap.Field { return zap.String("executor", typ) }

// Instance is the instance field (an executor instance id).
func Instance(id string) zap.Field { return zap.String("instance", id) }

// Seq is the stream sequence field.
func Seq(seq uint64) zap.Field { return zap.Uint64("seq", seq) }

// Subject is the NATS subject field.
func Subject(s string) zap.Field { return zap.String("subject", s) }

// Count is the count field.
func Count(n int) zap.Field { return zap.Int("count", n) }
