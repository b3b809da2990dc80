// Command ork-api serves Ork's HTTP API (services/api) over a cluster: NATS for submissions,
// control and live events, the database the recorder writes for everything read. It requires API
// tokens (ork token create) unless --tokens=false, which only a loopback address allows. Flags
// override the environment, which overrides the defaults.
package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/envflag"
	"github.com/ork-go/ork/pkg/servicecmd"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/store/storeopen"
	"github.com/ork-go/ork/services/api"
)

func main() { command(&options{}).Main() }

// options are the API's own flags.
type options struct {
	dbURL  string
	tokens bool
	cfg    api.Config
}

func (o *options) flags(s *envflag.Set) {
	s.StringVar(&o.cfg.Addr, "addr", "ORK_API_ADDR", api.AddrDefault, "address to listen on")
	s.StringVar(&o.dbURL, "db", "ORK_DB_URL", storeopen.DefaultURL, "the database the recorder writes (read here; tokens are checked in it)")
	s.BoolVar(&o.tokens, "tokens", "ORK_API_TOKENS", true, "require an API token on every request but health and the OpenAPI document; false only on a loopback address")
	s.StringVar(&o.cfg.WorkflowsRoot, "workflows-root", "ORK_API_WORKFLOWS_ROOT", "",
		"folder registered workflows' folders are relative to (the executors must see it at the same path); default the working directory")
	s.Float64Var(&o.cfg.RatePerSecond, "rate-limit", "ORK_API_RATE_LIMIT", api.RatePerSecondDefault, "requests per second per token; negative: none")
	s.Int64Var(&o.cfg.MaxBodyBytes, "max-body-bytes", "ORK_API_MAX_BODY_BYTES", api.MaxBodyBytesDefault, "largest request body")
}

func (o *options) check() error {
	if !o.tokens && !api.IsLoopback(o.cfg.Addr) {
		return fmt.Errorf("--tokens=false on %s: without tokens the API may only listen on a loopback address", o.cfg.Addr)
	}
	return o.cfg.WithDefaults().Validate()
}

// command is ork-api with its settings in o.
func command(o *options) servicecmd.Command {
	return servicecmd.Command{
		Name: "ork-api", MetricsAddrSuggested: "127.0.0.1:9110", Flags: o.flags, Check: o.check,
		Metrics: func(reg *prometheus.Registry) { o.cfg.Metrics = api.NewMetrics(reg) },
		Run: func(ctx context.Context, b *bus.Bus, log *zap.Logger) error {
			st, err := storeopen.Open(ctx, o.dbURL)
			if err != nil {
				return err
			}
			defer st.Close()
			cfg := o.cfg
			if o.tokens {
				ts, ok := st.(store.Tokens)
				if !ok {
					return errors.New("ork-api: this database keeps no tokens")
				}
				usable, err := api.Usable(ctx, ts, time.Now())
				if err != nil {
					return fmt.Errorf("ork-api: reading the tokens: %w", err)
				}
				if !usable {
					return errors.New("ork-api: tokens are required, and the database holds none that is valid: create one with ork token create --scope admin --db URL")
				}
				cfg.Tokens = api.NewStoreTokens(ts)
			}
			srv, err := api.New(b, st, cfg, log.Named("api"))
			if err != nil {
				return err
			}
			return srv.Run(ctx)
		},
	}
}
