package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/bus/bustest"
	"github.com/ork-go/ork/pkg/client"
	"github.com/ork-go/ork/pkg/event"
	"github.com/ork-go/ork/pkg/servicecmd"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/store/storeopen"
	"github.com/ork-go/ork/pkg/workflow"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, bustest.ServerLeftovers()...) }

// parsed is what the command line sets: the common settings and the recorder's.
type parsed struct {
	servicecmd.Common
	options
}

func parseOptions(args []string, getenv func(string) string, out io.Writer) (*parsed, error) {
	p := &parsed{}
	var err error
	p.Common, err = command(&p.options).Parse(args, getenv, out)
	return p, err
}

func TestParseOptions(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"ORK_NATS_URL": "nats://env:4222", "ORK_DB_URL": "postgres://env/db",
		"ORK_RECORDER_BATCH_SIZE": "500", "ORK_RECORDER_BATCH_WAIT": "20ms", "ORK_NO_MIGRATE": "true",
	}
	getenv := func(k string) string { return env[k] }

	t.Run("defaults", func(t *testing.T) {
		t.Parallel()
		o, err := parseOptions(nil, func(string) string { return "" }, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if o.Bus.URL != bus.URLDefault || o.dbURL != storeopen.DefaultURL || o.noMigrate || o.Log.Level != "info" ||
			o.recorder.BatchSize != 1000 || o.recorder.BatchWait != 10*time.Millisecond {
			t.Errorf("defaults %+v", o)
		}
	})
	t.Run("environment over defaults", func(t *testing.T) {
		t.Parallel()
		o, err := parseOptions(nil, getenv, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if o.Bus.URL != "nats://env:4222" || o.dbURL != "postgres://env/db" || !o.noMigrate ||
			o.recorder.BatchSize != 500 || o.recorder.BatchWait != 20*time.Millisecond {
			t.Errorf("from env %+v", o)
		}
	})
	t.Run("flags over environment", func(t *testing.T) {
		t.Parallel()
		o, err := parseOptions([]string{"--nats", "nats://flag:4222", "--db", "sqlite://x.db", "--no-migrate=false",
			"--batch-size", "7", "--batch-wait", "1ms", "--log-level", "debug"}, getenv, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if o.Bus.URL != "nats://flag:4222" || o.dbURL != "sqlite://x.db" || o.noMigrate || o.Log.Level != "debug" ||
			o.recorder.BatchSize != 7 || o.recorder.BatchWait != time.Millisecond {
			t.Errorf("from flags %+v", o)
		}
	})
	t.Run("bad values", func(t *testing.T) {
		t.Parallel()
		for _, args := range [][]string{{"--batch-size", "-1"}, {"--batch-size", "x"}, {"stray"},
			{"--logs-max-bytes", "-7"}, {"--max-age", "1m"}} {
			if _, err := parseOptions(args, func(string) string { return "" }, io.Discard); err == nil {
				t.Errorf("%v accepted", args)
			}
		}
		if _, err := parseOptions(nil, func(k string) string {
			if k == "ORK_RECORDER_BATCH_WAIT" {
				return "soon"
			}
			return ""
		}, io.Discard); err == nil {
			t.Error("bad ORK_RECORDER_BATCH_WAIT accepted")
		}
		if _, err := parseOptions(nil, func(k string) string {
			if k == bus.EnvTasksMaxMsgs {
				return "many"
			}
			return ""
		}, io.Discard); err == nil {
			t.Error("bad " + bus.EnvTasksMaxMsgs + " accepted")
		}
		if _, err := parseOptions([]string{"-h"}, func(string) string { return "" }, io.Discard); !errors.Is(err, flag.ErrHelp) {
			t.Errorf("-h: %v", err)
		}
	})
}

// TestRun runs the command's wiring end to end: migrate, record a run, stop on cancel.
func TestRun(t *testing.T) {
	t.Parallel()
	srv := bustest.Start(t)
	dbURL := "sqlite://" + filepath.Join(t.TempDir(), "ork.db")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	b, err := bus.Connect(bus.Config{URL: srv.ClientURL()}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	cl := client.New(b)
	runID := event.NewID()
	rec, err := cl.WatchRecorded(runID)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rec.Close() }()

	// The stream limits given on the command line (and in the environment) reach the streams.
	o, err := parseOptions([]string{"--nats", srv.ClientURL(), "--db", dbURL, "--log-level", "debug",
		"--events-max-bytes", "64MiB", "--tasks-max-msgs", "1000"},
		func(k string) string {
			if k == bus.EnvDuplicateWindow {
				return "90s"
			}
			return ""
		}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- command(&o.options).Serve(runCtx, o.Common, zaptest.NewLogger(t))
	}()

	plan := &workflow.Plan{Name: "cmd", Dir: "/tmp", Hash: "h", Tasks: []workflow.Task{{Name: "a", Executor: workflow.ExecutorNoop}}}
	if _, err := cl.Submit(ctx, client.SubmitParams{Plan: plan, RunID: runID, TriggeredBy: "test"}); err != nil {
		t.Fatal(err)
	}
	fin := event.New(event.TypeRunFinished, runID, "", 0)
	fin.Status = event.RunCancelled
	m, err := bus.EventMsg(&fin)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, m); err != nil {
		t.Fatal(err)
	}
	status, err := rec.Wait(ctx)
	if err != nil {
		t.Fatalf("waiting for the recorded notice: %v", err)
	}
	if status != event.RunCancelled {
		t.Errorf("notice %q, want cancelled", status)
	}
	for name, check := range map[string]func(jetstream.StreamConfig) bool{
		event.StreamEvents: func(c jetstream.StreamConfig) bool {
			return c.MaxBytes == 64<<20 && c.Duplicates == 90*time.Second
		},
		event.StreamTasks: func(c jetstream.StreamConfig) bool { return c.MaxMsgs == 1000 },
		event.StreamLogs:  func(c jetstream.StreamConfig) bool { return c.MaxBytes == bus.LogsMaxBytesDefault },
	} {
		js, err := b.JS.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if c := js.CachedInfo().Config; !check(c) {
			t.Errorf("stream %s provisioned with %+v", name, c)
		}
	}
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("run did not stop")
	}

	st, err := storeopen.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	r, err := st.RunGet(ctx, store.RunGetParams{ID: runID})
	if err != nil {
		t.Fatalf("run not stored: %v", err)
	}
	if r.Status != event.RunCancelled || r.Workflow != "cmd" || r.TriggeredBy != "test" {
		t.Errorf("stored run %+v", r)
	}
}
