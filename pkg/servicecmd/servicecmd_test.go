package servicecmd_test

import (
	"context"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/envflag"
	"github.com/ork-go/ork/pkg/servicecmd"
)

func command(own *int) servicecmd.Command {
	return servicecmd.Command{
		Name:  "ork-test",
		Flags: func(s *envflag.Set) { s.IntVar(own, "own", "ORK_TEST_OWN", 7, "a flag of the service") },
		Run:   func(context.Context, *bus.Bus, *zap.Logger) error { return nil },
	}
}

// The common flags: a flag overrides its ORK_* variable, which overrides the default.
func TestCommonFlags(t *testing.T) {
	t.Parallel()
	var own int
	env := map[string]string{"ORK_METRICS_ADDR": ":9102", "ORK_NATS_URL": "nats://env:1", "ORK_LOG_FORMAT": "console", "ORK_TEST_OWN": "8"}
	o, err := command(&own).Parse(nil, func(string) string { return "" }, io.Discard)
	if err != nil || o.MetricsAddr != "" || o.Bus.URL != bus.URLDefault || o.Log.Level != "info" || o.Log.Format != "json" ||
		o.Bus.Name != "ork-test" || own != 7 {
		t.Fatalf("defaults: %+v, own %d (%v)", o, own, err)
	}
	o, err = command(&own).Parse(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil || o.MetricsAddr != ":9102" || o.Bus.URL != "nats://env:1" || o.Log.Format != "console" || own != 8 {
		t.Fatalf("environment: %+v, own %d (%v)", o, own, err)
	}
	o, err = command(&own).Parse([]string{"--metrics-addr", "127.0.0.1:1", "--nats", "nats://flag:1", "--own", "9", "--log-level", "debug"},
		func(k string) string { return env[k] }, io.Discard)
	if err != nil || o.MetricsAddr != "127.0.0.1:1" || o.Bus.URL != "nats://flag:1" || o.Log.Level != "debug" || own != 9 {
		t.Fatalf("flags: %+v, own %d (%v)", o, own, err)
	}
}

// Bad input is refused with an error that names it, before anything starts.
func TestCommonFlagErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"stray"}, nil, "unexpected arguments"},
		{[]string{"--log-level", "loud"}, nil, "log level"},
		{[]string{"--log-format", "xml"}, nil, "log format"},
		{nil, map[string]string{"ORK_TEST_OWN": "many"}, "ORK_TEST_OWN"},
		{nil, map[string]string{bus.EnvStreamMaxAge: "soon"}, bus.EnvStreamMaxAge},
		{[]string{"--max-age", "1s"}, nil, "MaxAge"},
		{[]string{"-h"}, nil, flag.ErrHelp.Error()},
	} {
		var own int
		_, err := command(&own).Parse(tc.args, func(k string) string { return tc.env[k] }, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: %v, want an error naming %q", tc.args, tc.env, err, tc.want)
		}
	}
	if _, err := command(new(int)).Parse([]string{"-h"}, func(string) string { return "" }, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v, want flag.ErrHelp", err)
	}
}

// A server that cannot be reached is an error of Serve, not a hang.
func TestServeUnreachableNATS(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := command(new(int)).Serve(ctx, servicecmd.Common{Bus: bus.Config{URL: "nats://127.0.0.1:1"}}, zap.NewNop())
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("Serve with no server: %v, want an error naming it", err)
	}
}

// Provisioning is on by default; ORK_NATS_PROVISION=false turns it off (the service only checks),
// --provision overrides the variable; the credential flags read their variables too.
func TestProvisionAndCredentials(t *testing.T) {
	t.Parallel()
	env := map[string]string{"ORK_NATS_PROVISION": "false", "ORK_NATS_USER": "scheduler", "ORK_NATS_PASSWORD": "pw",
		"ORK_NATS_INBOX_PREFIX": "_INBOX_scheduler"}
	getenv := func(k string) string { return env[k] }
	o, err := command(new(int)).Parse(nil, func(string) string { return "" }, io.Discard)
	if err != nil || o.CheckOnly {
		t.Fatalf("defaults: CheckOnly %v (%v), want provisioning on", o.CheckOnly, err)
	}
	o, err = command(new(int)).Parse(nil, getenv, io.Discard)
	if err != nil || !o.CheckOnly {
		t.Fatalf("ORK_NATS_PROVISION=false: CheckOnly %v (%v), want true", o.CheckOnly, err)
	}
	if a := o.Bus.Auth; a.User != "scheduler" || a.Password != "pw" || a.InboxPrefix != "_INBOX_scheduler" {
		t.Errorf("auth from the environment: %+v", a)
	}
	o, err = command(new(int)).Parse([]string{"--provision=true", "--nats-user", "other"}, getenv, io.Discard)
	if err != nil || o.CheckOnly || o.Bus.Auth.User != "other" {
		t.Errorf("flags over the environment: CheckOnly %v user %q (%v)", o.CheckOnly, o.Bus.Auth.User, err)
	}
	if _, err := command(new(int)).Parse([]string{"--nats-password", "x"}, func(string) string { return "" }, io.Discard); err == nil {
		t.Error("a password without a user was accepted")
	}
}
