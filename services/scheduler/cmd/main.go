// Command ork-scheduler runs the scheduler service: it consumes run submissions and task events from
// NATS JetStream and dispatches the tasks that become ready. Flags override the environment.
package main

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/metrics"
	"github.com/ork-go/ork/pkg/servicecmd"
	"github.com/ork-go/ork/services/scheduler"
)

func main() {
	var cfg scheduler.Config
	command(&cfg).Main()
}

// command is ork-scheduler with its settings in cfg.
func command(cfg *scheduler.Config) servicecmd.Command {
	return servicecmd.Command{
		Name: "ork-scheduler", MetricsAddrSuggested: metrics.SchedulerAddrSuggested, Flags: flags(cfg),
		Metrics: func(reg *prometheus.Registry) { cfg.Metrics = scheduler.NewMetrics(reg) },
		Run: func(ctx context.Context, b *bus.Bus, log *zap.Logger) error {
			svc, err := scheduler.New(b, *cfg, log.Named("scheduler"))
			if err != nil {
				return err
			}
			return svc.Run(ctx)
		},
	}
}
