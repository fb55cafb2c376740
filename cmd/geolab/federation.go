package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/geolab/geolab/federation"
	"github.com/geolab/geolab/internal/fielderr"
)

// federationFlags names each federation.Config field a flag sets (the
// rest are the file's keys) as that flag.
var federationFlags = map[string]string{"region": "--region"}

func newFederationCmd(g *globalFlags) *cobra.Command {
	var region, config, listen string
	cmd := &cobra.Command{
		Use:   "federation --region R --config FILE",
		Short: "Run one region's federation bridge (pulls every remote outbox, applies federated rooms here)",
		Long: `Run the federation bridge of region R. FILE (YAML, docs/federation.md) names every
region's Redis as this bridge reaches it and the federated room patterns. A region's
Redis is host:port, or a redis:// or rediss:// (TLS) URL with an ACL user, or a
Redis Cluster (a comma list of seeds, or one URL ending in ?cluster=yes); its
password comes from the region's password_file or the environment variable
GEOLAB_REDIS_PASSWORD_<REGION> (GEOLAB_REDIS_PASSWORD_US_EAST for us-east), never
from the URL. A Redis that refuses the bridge's user, password or TLS stops it with
an error saying which. The bridge reads each remote region's outbox from a
checkpoint kept in R's Redis and applies each federated event to R's rooms through
the same atomic path as a local publish: at-least-once transfer, idempotent apply,
per-origin order. It serves /healthz, /readyz, /metrics and /status on --listen (or
the file's listen). SIGTERM or SIGINT stops it; the checkpoint makes a restart
resume where it was.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			cfg, err := federation.LoadConfig(config, region)
			if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
				return fmt.Errorf("--config: %w", err) // the file could not be read
			}
			if err != nil {
				return fielderr.Rename(err, federationFlags)
			}
			if listen != "" {
				cfg.Listen = listen
			}
			b, err := federation.New(cfg, log)
			if err != nil {
				return fielderr.Rename(err, federationFlags)
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return b.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&region, "region", "", "this bridge's region (required; must be in the config's regions)")
	f.StringVar(&config, "config", "", "federation config file, YAML (required; see docs/federation.md)")
	f.StringVar(&listen, "listen", "", "address for /healthz, /readyz, /metrics, /status (overrides the file's listen)")
	_ = cmd.MarkFlagRequired("region")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}
