package main

import (
	"io"
	"strings"
	"testing"

	"github.com/ork-go/ork/pkg/servicecmd"
	"github.com/ork-go/ork/services/api"
)

func parse(args []string, env map[string]string) (*options, servicecmd.Common, error) {
	o := &options{}
	c, err := command(o).Parse(args, func(k string) string { return env[k] }, io.Discard)
	return o, c, err
}

// Tokens are required by default; turning them off is refused but on a loopback address; the
// flags read their ORK_API_* variables.
func TestOptions(t *testing.T) {
	t.Parallel()
	o, _, err := parse(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !o.tokens || o.cfg.Addr != api.AddrDefault || o.cfg.RatePerSecond != api.RatePerSecondDefault {
		t.Errorf("defaults: %+v", o)
	}
	o, _, err = parse(nil, map[string]string{"ORK_API_ADDR": "0.0.0.0:4000", "ORK_API_RATE_LIMIT": "7", "ORK_API_WORKFLOWS_ROOT": "/srv/flows"})
	if err != nil || o.cfg.Addr != "0.0.0.0:4000" || o.cfg.RatePerSecond != 7 || o.cfg.WorkflowsRoot != "/srv/flows" {
		t.Errorf("from the environment: %+v %v", o, err)
	}
	if _, _, err := parse([]string{"--tokens=false", "--addr", "0.0.0.0:4000"}, nil); err == nil || !strings.Contains(err.Error(), "only listen on a loopback address") {
		t.Errorf("no tokens on an open address: %v", err)
	}
	if _, _, err := parse([]string{"--tokens=false", "--addr", "127.0.0.1:4001"}, nil); err != nil {
		t.Errorf("no tokens on loopback: %v", err)
	}
	if _, _, err := parse([]string{"--workflows-root", "relative/dir"}, nil); err == nil || !strings.Contains(err.Error(), "WorkflowsRoot must be an absolute path") {
		t.Errorf("a relative root: %v", err)
	}
}
