package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/geolab/geolab/gateway/auth"
	"github.com/geolab/geolab/lab"
	"github.com/geolab/geolab/lab/control"
	"github.com/geolab/geolab/lab/fault"
	"github.com/geolab/geolab/lab/provider"
	"github.com/geolab/geolab/lab/topology"
)

func newUpCmd(g *globalFlags) *cobra.Command {
	var opts lab.Options
	var state string
	var rttSamples int
	cmd := &cobra.Command{
		Use:   "up TOPOLOGY",
		Short: "Bring a topology up (Redis, gateways, bridges, Toxiproxy, resolver) and run until Ctrl-C",
		Long: `Bring TOPOLOGY (a YAML file, docs/topology.md) up with the process provider: one
redis-server per region, every gateway and bridge as a geolab process, every
client→gateway, gateway→Redis and bridge→remote-Redis link through its own
Toxiproxy proxy carrying the topology's latency, and a resolver that answers the
nearest healthy region. Prints every endpoint, the Toxiproxy API and the
resolver, then measures the RTT it injects per region pair beside the configured
figure. Runs until Ctrl-C, SIGTERM or 'geolab down'; then everything is stopped
by pid. Drive it meanwhile with 'geolab status', 'geolab fault', 'geolab heal'.
Clients need a token: GEOLAB_JWT_SECRET is used if set, else one is generated
and printed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			topo, err := topology.Load(args[0])
			if err != nil {
				return err
			}
			if c, err := control.Open(state); err == nil {
				return fmt.Errorf("a lab is already running (pid %d, state %s): 'geolab down' first, or pass another --state", c.State.Pid, state)
			}
			opts.Logger = log
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runUp(ctx, cmd, topo, opts, state, rttSamples)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Provider, "provider", provider.ProcessName, "where parts run: process (real local processes, no Docker), docker (containers of the images 'make images' builds, docs/docker.md) or swarm (Docker Swarm services on overlay networks, docs/swarm.md)")
	f.StringVar(&opts.WorkDir, "workdir", "", "directory for logs, configs and Redis data (default: a temporary one, removed at exit)")
	f.StringVar(&opts.Bin, "bin", "", "geolab binary the children run as (default: $GEOLAB_BIN, else this executable)")
	f.StringArrayVar(&opts.GatewayArgs, "gateway-arg", nil, "extra flag for every gateway, e.g. --gateway-arg=--send-queue=64 (repeatable)")
	f.StringVar(&state, "state", control.DefaultStatePath(), "state file through which status, fault, heal and down find this lab")
	f.IntVar(&rttSamples, "rtt-samples", 10, "round trips measured per region pair by the RTT self-check (0: skip it)")
	f.BoolVar(&opts.RedisOnly, "redis-only", false, "start Toxiproxy and every region's Redis (or Redis Cluster) with its links, and no gateway, bridge or resolver (no RTT self-check)")
	return cmd
}

func runUp(ctx context.Context, cmd *cobra.Command, topo *topology.Topology, opts lab.Options, state string, rttSamples int) error {
	out := cmd.OutOrStdout()
	t0 := time.Now()
	l, err := lab.Start(ctx, topo, opts)
	if errors.Is(err, provider.ErrNoEngine) {
		return fmt.Errorf("%w (--provider %s)", err, provider.ProcessName)
	}
	if err != nil {
		return err
	}
	defer l.Close()
	srv, err := control.Serve(l)
	if err != nil {
		return err
	}
	defer srv.Close()
	if err := control.WriteState(state, control.State{Pid: os.Getpid(), Control: srv.URL(), Topology: topo.Name, Started: t0}); err != nil {
		return err
	}
	defer os.Remove(state)
	fmt.Fprintf(out, "geolab: %s is up in %s\n\n", topo.Name, time.Since(t0).Round(time.Millisecond))
	control.PrintStatus(out, l.Status(ctx))
	fmt.Fprintf(out, "\ncontrol API %s (state %s)\n", srv.URL(), state)
	if os.Getenv(auth.SecretEnv) == "" && !opts.RedisOnly {
		fmt.Fprintf(out, "tokens: export "+auth.SecretEnv+"='%s' and run 'geolab token --sub NAME --read \"*\" --publish \"*\"'\n", l.Secret())
	}
	if rttSamples > 0 && !opts.RedisOnly {
		checks, err := l.MeasureRTT(ctx, rttSamples)
		if err != nil {
			fmt.Fprintf(out, "RTT self-check failed: %v\n", err)
		}
		control.PrintRTT(out, checks)
	}
	fmt.Fprintln(out, "\nrunning; Ctrl-C or 'geolab down' stops everything")
	select {
	case <-ctx.Done():
	case <-srv.Down():
	}
	fmt.Fprintln(out, "geolab: going down")
	return l.Close()
}

func newStatusCmd() *cobra.Command {
	var state, toxi string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the running lab: processes, endpoints, links, faults, lag",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := stackOrState(cmd); err != nil {
				return err
			}
			if toxi != "" {
				return stackStatus(cmd, toxi, asJSON)
			}
			c, err := openLab(state)
			if err != nil {
				return err
			}
			st, err := c.Status(cmd.Context())
			if err != nil {
				return err
			}
			return printStatus(cmd.OutOrStdout(), asJSON, st, func(w io.Writer) { control.PrintStatus(w, st) })
		},
	}
	cmd.Flags().StringVar(&state, "state", control.DefaultStatePath(), "state file written by 'geolab up'")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	cmd.Flags().StringVar(&toxi, "toxiproxy", "", toxiproxyFlagDoc)
	return cmd
}

func newFaultCmd() *cobra.Command {
	var state, toxi string
	var s fault.Spec
	var kinds []string
	for _, k := range fault.Kinds() {
		kinds = append(kinds, fmt.Sprintf("  %-14s %s", k.Name(), k.Doc()))
	}
	cmd := &cobra.Command{
		Use:   "fault KIND [REGION[/NODE]] [REGION2]",
		Short: "Inject a fault into the running lab (docs/faults.md)",
		Long: "Inject a fault into the lab 'geolab up' runs and print its id. Without --for it\n" +
			"stays until 'geolab heal ID' (or 'geolab heal'); every fault is healed when the lab\n" +
			"goes down.\n\n" +
			"With --toxiproxy HOST:PORT it acts on a stack geolab did not start (the\n" +
			"docker-compose.yml stack) through that Toxiproxy API alone: the network kinds\n" +
			"only (" + strings.Join(fault.NetworkKinds(), ", ") + "). Without --for the fault stays until\n" +
			"'geolab heal --toxiproxy HOST:PORT [ID]'; with --for the command waits and heals it.\n\n" +
			"Kinds:\n" + strings.Join(kinds, "\n"),
		Example: `  geolab fault partition us-east eu-west --mode blackhole --for 30s
  geolab fault latency us-east eu-west --latency 100ms --jitter 10ms
  geolab fault gateway-kill us-east/gw-1
  geolab fault isolate ap-southeast
  geolab fault redis-restart eu-west --lose-data
  geolab fault shard-kill us-east --shard 2
  geolab fault replica-pause us-east --shard 2 --for 8s
  geolab fault slot-migrate us-east --room tenant:7 --shard 3
  geolab fault partition us-east eu-west --toxiproxy 127.0.0.1:8474   # the compose stack`,
		Args: cobra.RangeArgs(1, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			s.Kind = args[0]
			for _, a := range args[1:] {
				region, node, _ := strings.Cut(a, "/")
				s.Regions = append(s.Regions, region)
				if node != "" {
					s.Node = node
				}
			}
			if err := stackOrState(cmd); err != nil {
				return err
			}
			if toxi != "" {
				return stackFault(cmd, toxi, s)
			}
			c, err := openLab(state)
			if err != nil {
				return err
			}
			a, err := c.Inject(cmd.Context(), s)
			if err != nil {
				return err
			}
			until := "until 'geolab heal " + a.ID + "'"
			if s.For > 0 {
				until = "for " + s.For.String()
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s %s injected, %s\n", a.ID, s.Kind, a.Target, until)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&state, "state", control.DefaultStatePath(), "state file written by 'geolab up'")
	f.StringVar(&s.Mode, "mode", "", "partition/isolate: reset (default) or blackhole")
	f.StringVar(&s.Direction, "direction", "", "partition: both (default) or one (the first region cannot reach the second)")
	f.DurationVar(&s.Latency, "latency", 0, "latency: added round-trip time, e.g. 100ms")
	f.DurationVar(&s.Jitter, "jitter", 0, "latency: added round-trip jitter, e.g. 10ms")
	f.IntVar(&s.RateKB, "rate-kb", 0, "bandwidth: cap in KB/s each way")
	f.StringVar(&s.Link, "link", "", "latency/bandwidth: one link by name (see 'geolab status --json') instead of two regions")
	f.BoolVar(&s.LoseData, "lose-data", false, "redis-kill/redis-restart/region-down: Redis comes back empty")
	f.IntVar(&s.Shard, "shard", 0, "shard-kill/shard-failover/replica-pause: the cluster region's shard, numbered from 1 by its lowest slot (default 1); slot-migrate: the shard the slot moves to (default the next)")
	f.StringVar(&s.Room, "room", "", "slow-client: the room the slow clients subscribe to; slot-migrate: the room whose slot moves (default the busiest one a gateway subscribes)")
	f.IntVar(&s.Clients, "clients", 0, "slow-client: how many (default 1)")
	f.DurationVar(&s.For, "for", 0, "heal by itself after this long (default: until healed); with --toxiproxy the command waits that long")
	f.StringVar(&toxi, "toxiproxy", "", toxiproxyFlagDoc)
	return cmd
}

func newHealCmd() *cobra.Command {
	var state, toxi string
	cmd := &cobra.Command{
		Use:   "heal [ID]",
		Short: "Heal one fault by id, or every active fault",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := ""
			if len(args) == 1 {
				id = args[0]
			}
			if err := stackOrState(cmd); err != nil {
				return err
			}
			if toxi != "" {
				return stackHeal(cmd, toxi, id)
			}
			c, err := openLab(state)
			if err != nil {
				return err
			}
			healed, err := c.Heal(cmd.Context(), id)
			return reportHealed(cmd.OutOrStdout(), healed, err)
		},
	}
	cmd.Flags().StringVar(&state, "state", control.DefaultStatePath(), "state file written by 'geolab up'")
	cmd.Flags().StringVar(&toxi, "toxiproxy", "", toxiproxyFlagDoc)
	return cmd
}

// reportHealed prints what a heal healed ("no active faults" when nothing
// was and nothing failed) and returns its error.
func reportHealed(w io.Writer, healed []string, err error) error {
	if len(healed) == 0 && err == nil {
		fmt.Fprintln(w, "no active faults")
	} else if len(healed) > 0 {
		fmt.Fprintf(w, "healed %s\n", strings.Join(healed, ", "))
	}
	return err
}

// openLab opens the lab of the state file, saying how to start one, or
// which flag names another state file, when there is none.
func openLab(state string) (*control.Client, error) {
	c, err := control.Open(state)
	if errors.Is(err, control.ErrNoStateFile) {
		return nil, fmt.Errorf("%w: start one with 'geolab up TOPOLOGY', or pass --state", err)
	}
	return c, err
}

func newDownCmd() *cobra.Command {
	var state string
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop the running lab: heal, then stop every process it started",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := openLab(state)
			if err != nil {
				return err
			}
			if err := c.Down(cmd.Context(), 60*time.Second); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "lab %s (pid %d) is down\n", c.State.Topology, c.State.Pid)
			return nil
		},
	}
	cmd.Flags().StringVar(&state, "state", control.DefaultStatePath(), "state file written by 'geolab up'")
	return cmd
}
