package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/spf13/cobra"

	"github.com/geolab/geolab/internal/fielderr"
	"github.com/geolab/geolab/lab/bench"
)

// fanoutFlags names each bench.FanoutConfig field as the flag that sets it.
var fanoutFlags = map[string]string{
	"Clients": "--clients", "Rooms": "--rooms", "Nodes": "--nodes", "Publishers": "--publishers",
	"Rate": "--rate", "Payload": "--payload", "Duration": "--duration", "Warmup": "--warmup",
}

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Benchmarks of the system under test (make bench)",
	}
	cmd.AddCommand(newBenchFanoutCmd())
	return cmd
}

func newBenchFanoutCmd() *cobra.Command {
	c := bench.DefaultFanout()
	cmd := &cobra.Command{
		Use:   "fanout",
		Short: "Gateway fan-out: N clients over R rooms on K nodes, fixed publish rate; prints deliveries/s and latency",
		Long: `Start one redis-server (from PATH) and K gateway nodes in this process on loopback,
connect N WebSocket clients (client i in room i mod R, on node i mod K), publish
at a fixed total rate from --publishers connections with --payload-byte data, and
print delivered messages per second and publish→receive latency percentiles over
the measured window. Everything stops by itself after warmup + duration.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			res, err := bench.RunFanout(ctx, c, cmd.ErrOrStderr())
			if err != nil {
				return fielderr.Rename(err, fanoutFlags)
			}
			fmt.Fprintln(cmd.OutOrStdout(), res.String())
			if res.Delivered < res.Expected {
				return fmt.Errorf("bench: %d deliveries missing", res.Expected-res.Delivered)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&c.Clients, "clients", c.Clients, "subscribing WebSocket clients")
	f.IntVar(&c.Rooms, "rooms", c.Rooms, "rooms (client i joins room i mod rooms)")
	f.IntVar(&c.Nodes, "nodes", c.Nodes, "gateway nodes sharing one Redis")
	f.IntVar(&c.Publishers, "publishers", c.Publishers, "publishing connections")
	f.Float64Var(&c.Rate, "rate", c.Rate, "publishes per second, all publishers together")
	f.IntVar(&c.Payload, "payload", c.Payload, "bytes of each publish's data")
	f.DurationVar(&c.Duration, "duration", c.Duration, "measured window")
	f.DurationVar(&c.Warmup, "warmup", c.Warmup, "publishing before the window opens")
	return cmd
}
