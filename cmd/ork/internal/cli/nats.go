package cli

import (
	"flag"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/ork-go/ork/pkg/bus"
	"github.com/ork-go/ork/pkg/event"
)

func newNATSCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "nats provision",
		Short: "Set up a cluster's NATS: the streams and the run-state bucket",
		Args:  exactArgs(0),
	}
	cmd.AddCommand(newNATSProvisionCmd())
	return cmd
}

func newNATSProvisionCmd() *cobra.Command {
	var n natsFlags
	var streams bus.Config
	fs := flag.NewFlagSet("provision", flag.ContinueOnError)
	streamsErr := streams.RegisterStreamFlags(fs, os.Getenv)
	cmd := &cobra.Command{
		Use:   "provision",
		Short: "Create or update the streams and the run-state bucket (needs the operator's credentials)",
		Long: `Creates or updates ORK_EVENTS, ORK_TASKS, ORK_LOGS and the ork_runs bucket with the given
limits. The services do the same at start unless started with --provision=false (ORK_NATS_PROVISION=false),
which is how the shipped stacks run them: their roles may not create streams, so an operator provisions
once with this command (docs/security.md). Running it again applies changed limits.`,
		Example: "  ORK_NATS_USER=operator ORK_NATS_PASSWORD=... ork nats provision --nats nats://127.0.0.1:4222",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if streamsErr != nil {
				return usageError(streamsErr)
			}
			url, err := n.URL()
			if err != nil {
				return err
			}
			if url == "" {
				url = bus.URLDefault
			}
			cfg, err := n.config(url, "ork-provision")
			if err != nil {
				return err
			}
			cfg.Replicas, cfg.DuplicateWindow, cfg.MaxAge = streams.Replicas, streams.DuplicateWindow, streams.MaxAge
			cfg.EventsMaxBytes, cfg.LogsMaxBytes, cfg.TasksMaxMsgs = streams.EventsMaxBytes, streams.LogsMaxBytes, streams.TasksMaxMsgs
			if err := cfg.WithDefaults().Validate(); err != nil {
				return usageError(err)
			}
			log := quietLogger(false)
			defer func() { _ = log.Sync() }()
			b, err := bus.Connect(cfg, log.Named("bus"))
			if err != nil {
				return err
			}
			defer b.Close()
			if err := b.Provision(cmd.Context()); err != nil {
				return err
			}
			for _, sc := range b.StreamConfigs() {
				fmt.Fprintf(cmd.OutOrStdout(), "stream %s ready (%d replica(s))\n", sc.Name, sc.Replicas)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "bucket %s ready\n", event.BucketRuns)
			return nil
		},
	}
	addNATSFlags(cmd, &n, "NATS URL of the cluster (default "+bus.URLDefault+")")
	cmd.Flags().AddGoFlagSet(fs)
	return cmd
}
