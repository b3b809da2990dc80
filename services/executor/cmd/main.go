// Command ork-executor runs Ork's executor service: it pulls dispatched tasks of its executor types
// from NATS JetStream, runs them and publishes their events and logs. Flags override the environment.
package main

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/metrics"
	"github.com/ork-go/ork/pkg/servicecmd"
	"github.com/ork-go/ork/services/executor"
)

func main() { command(&options{}).Main() }

// command is ork-executor with its settings in o. A second signal kills the executor at once and,
// through Pdeathsig, its tasks.
func command(o *options) servicecmd.Command {
	return servicecmd.Command{
		Name: "ork-executor", MetricsAddrSuggested: metrics.ExecutorAddrSuggested, Flags: o.flags, Check: o.check,
		ClientName: func() string { return "ork-executor " + o.cfg.Instance },
		Metrics:    func(reg *prometheus.Registry) { o.cfg.Metrics = executor.NewMetrics(reg) },
		Run: func(ctx context.Context, b *bus.Bus, log *zap.Logger) error {
			svc, err := executor.New(b, o.cfg, log.Named("executor"))
			if err != nil {
				return err
			}
			reapCtx, stopReaping := context.WithCancel(context.WithoutCancel(ctx))
			defer stopReaping()
			go executor.ReapOrphans(reapCtx, log)
			return svc.Run(ctx)
		},
	}
}
