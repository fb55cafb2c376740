package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
)

func newToxiproxyCmd() *cobra.Command {
	var listen string
	var verbose bool
	cmd := &cobra.Command{
		Use:   "toxiproxy --listen ADDR",
		Short: "Run a Toxiproxy v2 server (its HTTP API on ADDR): the lab's network",
		Long: `Run the Toxiproxy v2.5 server built into geolab, so that the lab needs no other
binary. The lab's process provider starts one per lab and creates every link
(client→gateway, gateway→Redis, bridge→remote Redis) as a proxy through its API;
any Toxiproxy client (toxiproxy-cli, the Go client) can drive it as well.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			host, port, err := net.SplitHostPort(listen)
			if err != nil {
				return fmt.Errorf("--listen %q: want host:port: %w", listen, err)
			}
			level := zerolog.WarnLevel
			if verbose {
				level = zerolog.DebugLevel
			}
			logger := zerolog.New(os.Stderr).Level(level).With().Timestamp().Logger()
			server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), logger)
			go func() {
				sig := make(chan os.Signal, 1)
				signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
				<-sig
				os.Exit(0)
			}()
			server.Listen(host, port) // returns only on a listen error, after logging it
			return fmt.Errorf("toxiproxy: API server on %s stopped", listen)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8474", "address of the Toxiproxy HTTP API")
	cmd.Flags().BoolVar(&verbose, "verbose", false, "log every API request")
	return cmd
}
