// Command ork-recorder runs the recorder service: it consumes ORK_EVENTS and ORK_LOGS, mirrors the
// workflow registry (the ork_workflows bucket), and writes them in batched transactions to the
// database, the only process that does. Flags override the environment, which overrides the
// defaults.
package main

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/metrics"
	"github.com/ork-go/ork/pkg/servicecmd"
	"github.com/ork-go/ork/services/recorder"
)

func main() { command(&options{}).Main() }

// command is ork-recorder with its settings in o.
func command(o *options) servicecmd.Command {
	return servicecmd.Command{
		Name: "ork-recorder", MetricsAddrSuggested: metrics.RecorderAddrSuggested, Flags: o.flags, Check: o.check,
		Metrics: func(reg *prometheus.Registry) { o.recorder.Metrics = recorder.NewMetrics(reg) },
		Run: func(ctx context.Context, b *bus.Bus, log *zap.Logger) error {
			st, err := o.openStore(ctx, log)
			if err != nil {
				return err
			}
			defer o.closeStore(st, log)
			svc, err := recorder.New(b, st, o.recorder, log.Named("recorder"))
			if err != nil {
				return err
			}
			return svc.Run(ctx)
		},
	}
}
