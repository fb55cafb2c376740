package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/geolab/geolab/lab/agent"
	"github.com/geolab/geolab/lab/provider"
)

func newAgentCmd(g *globalFlags) *cobra.Command {
	var opts agent.Options
	cmd := &cobra.Command{
		Use:   "agent --controller HOST:PORT",
		Short: "Run a share of a scenario's clients for a controller (geolab run --agents)",
		Long: `Join the controller of a 'geolab run --agents N' at --controller, run the
clients it hands this agent (its share of the run's one seeded plan) against
the lab's gateways as the in-process workload does, estimate this machine's
clock offset to the controller's from round trips before and after the run,
and ship the clients' history back. Exits 0 when the history is in, 1 when
the controller cannot be reached, refuses this agent (another geolab build)
or goes away (docs/agents.md). --name defaults to $GEOLAB_AGENT_NAME when it
is set (the swarm provider sets it to swarm-SLOT in each agent task), else
HOST:PID.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			opts.Logger, opts.Version = log, version
			if !cmd.Flags().Changed("name") {
				opts.Label = os.Getenv(provider.AgentNameEnv)
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return agent.Run(ctx, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Controller, "controller", "", "the controller's HOST:PORT, as geolab run printed it (required)")
	f.StringVar(&opts.Label, "name", "", "what this agent calls itself in the controller's messages (default $GEOLAB_AGENT_NAME, else HOST:PID)")
	f.DurationVar(&opts.ConnectTimeout, "connect-timeout", agent.DefaultConnectTimeout, "how long to try reaching the controller")
	f.IntVar(&opts.ClockSamples, "clock-samples", agent.DefaultClockSamples, "clock round trips before the run, and again after it")
	f.StringVar(&opts.WorkDir, "workdir", "", "directory for the history while it runs (default: temporary, removed)")
	_ = cmd.MarkFlagRequired("controller")
	return cmd
}
