package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/geolab/geolab/internal/fielderr"
	"github.com/geolab/geolab/lab/bench"
)

// fanoutFlags names each bench.FanoutConfig field as the flag that sets it.
var fanoutFlags = map[string]string{
	"Clients": "--clients", "Rooms": "--rooms", "Nodes": "--nodes", "Publishers": "--publishers",
	"Rate": "--rate", "Payload": "--payload", "Duration": "--duration", "Warmup": "--warmup", "Drain": "--drain",
	"RedisShards": "--redis-shards", "RedisReplicas": "--redis-replicas",
}

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Benchmarks of the system under test (make bench)",
	}
	cmd.AddCommand(newBenchFanoutCmd(), newBenchPeersCmd(), newBenchLoadCmd())
	return cmd
}

func newBenchFanoutCmd() *cobra.Command {
	c := bench.DefaultFanout()
	rates := []float64{c.Rate}
	var compareSingle bool
	cmd := &cobra.Command{
		Use:   "fanout",
		Short: "Gateway fan-out: N clients over R rooms on K nodes, fixed publish rate; prints deliveries/s and latency",
		Long: `Start one redis-server (from PATH), or with --redis-shards a Redis Cluster of
redis-server processes, and K gateway nodes in this process on loopback,
connect N WebSocket clients (client i in room i mod R, on node i mod K), publish
at a fixed total rate from --publishers connections with --payload-byte data, and
print delivered messages per second and publish→receive latency percentiles
over the measured window, and, from the window's start until its last delivery
arrived, the CPU time every redis-server and this process (nodes, clients,
publishers) used (from /proc) and the nodes' mean time from a publish frame
read to Redis confirming it (publish). Everything stops by itself after
warmup + duration (+ at most --drain).

Each rate of --rate is one run with a fresh Redis and fresh nodes, one after
the other; with --compare-single each rate runs on one redis-server first and
then on the cluster. All runs print as one table whose first column says which
Redis: single, or cluster SxR (S primaries, R replicas each). A cluster is made
with redis-cli --cluster create (on PATH) and is ready when every node serves
all 16384 slots; the gateways are its cluster clients (sharded pub/sub, one
subscriber per primary), and after each cluster run the table lists what each
primary reported: rooms subscribed on it and its SPUBLISH calls. Every
redis-server is stopped by its pid when its run ends, also on an error or
Ctrl-C. Exits non-zero when a delivery is missing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if compareSingle && c.RedisShards == 0 {
				return &exitError{code: 2, err: errors.New("--compare-single needs --redis-shards 3..8: it compares one redis-server with that cluster")}
			}
			runs, err := fanoutRuns(c, rates, compareSingle)
			if err != nil {
				return fielderr.Rename(err, fanoutFlags)
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			var results []bench.FanoutResult
			var missing int64
			for _, rc := range runs {
				res, err := bench.RunFanout(ctx, rc, cmd.ErrOrStderr())
				if err != nil {
					if len(results) > 0 {
						fmt.Fprintln(cmd.OutOrStdout(), bench.FanoutTable(results))
					}
					return fielderr.Rename(err, fanoutFlags)
				}
				results = append(results, res)
				missing += res.Expected - res.Delivered
			}
			fmt.Fprintln(cmd.OutOrStdout(), bench.FanoutTable(results))
			if missing > 0 {
				return fmt.Errorf("bench: %d deliveries missing", missing)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&c.Clients, "clients", c.Clients, "subscribing WebSocket clients")
	f.IntVar(&c.Rooms, "rooms", c.Rooms, "rooms (client i joins room i mod rooms)")
	f.IntVar(&c.Nodes, "nodes", c.Nodes, "gateway nodes sharing one Redis")
	f.IntVar(&c.Publishers, "publishers", c.Publishers, "publishing connections")
	f.Float64SliceVar(&rates, "rate", rates, "publishes per second, all publishers together; a comma list of `rates` (2000,3000) runs each in turn into one table")
	f.Lookup("rate").DefValue = strconv.FormatFloat(c.Rate, 'f', -1, 64) // not [2000.000000]
	f.IntVar(&c.Payload, "payload", c.Payload, "bytes of each publish's data")
	f.DurationVar(&c.Duration, "duration", c.Duration, "measured window")
	f.DurationVar(&c.Warmup, "warmup", c.Warmup, "publishing before the window opens")
	f.DurationVar(&c.Drain, "drain", c.Drain, "the most time waited after the window for the acks and deliveries it owes: lost is what had not arrived by then")
	f.IntVar(&c.RedisShards, "redis-shards", c.RedisShards, "0: one redis-server; 3..8: a Redis Cluster of that many primaries instead")
	f.IntVar(&c.RedisReplicas, "redis-replicas", c.RedisReplicas, "replicas of each cluster primary, 0..2 (only with --redis-shards)")
	f.BoolVar(&compareSingle, "compare-single", false, "run each rate on one redis-server first, then on the --redis-shards cluster: one table, same run")
	return cmd
}

// fanoutRuns are the runs of bench fanout, in order: each rate, on one
// redis-server first when compareSingle, then on c's Redis. Every run's
// config is checked before any starts.
func fanoutRuns(c bench.FanoutConfig, rates []float64, compareSingle bool) ([]bench.FanoutConfig, error) {
	if len(rates) == 0 || len(rates) > 16 {
		return nil, fmt.Errorf("--rate: give 1 to 16 rates, got %d", len(rates))
	}
	var runs []bench.FanoutConfig
	for _, r := range rates {
		rc := c
		rc.Rate = r
		if compareSingle {
			single := rc
			single.RedisShards, single.RedisReplicas = 0, 0
			runs = append(runs, single)
		}
		runs = append(runs, rc)
	}
	for _, rc := range runs {
		if err := rc.Validate(); err != nil {
			return nil, err
		}
	}
	return runs, nil
}

// loadFlags names each bench.LoadConfig field as the flag that sets it.
var loadFlags = map[string]string{
	"Target": "--target", "URL": "--url", "Secret": "GEOLAB_JWT_SECRET", "Rooms": "--rooms", "SubsPerRoom": "--subs-per-room",
	"Rate": "--rate", "Payload": "--payload", "Duration": "--duration", "Warmup": "--warmup", "Drain": "--drain",
}

// peersFlags names each bench.PeersConfig field as the flag that sets it.
var peersFlags = map[string]string{
	"Rates": "--rates", "Targets": "--targets", "Centrifugo": "--centrifugo", "CentrifugoEngine": "--centrifugo-engine",
	"Rooms": "--rooms", "SubsPerRoom": "--subs-per-room", "Rate": "--rates", "Payload": "--payload",
	"Duration": "--duration", "Warmup": "--warmup", "Drain": "--drain",
}

// addYardstickFlags sets the yardstick's flags, shared by bench load and bench peers.
func addYardstickFlags(cmd *cobra.Command, l *bench.LoadConfig) {
	f := cmd.Flags()
	f.IntVar(&l.Rooms, "rooms", l.Rooms, "rooms, bench:0 … bench:N-1, one publisher connection each")
	f.IntVar(&l.SubsPerRoom, "subs-per-room", l.SubsPerRoom, "subscriber connections per room")
	f.IntVar(&l.Payload, "payload", l.Payload, "bytes of each publish's JSON data, its send time included")
	f.DurationVar(&l.Duration, "duration", l.Duration, "measured window")
	f.DurationVar(&l.Warmup, "warmup", l.Warmup, "publishing before the window opens")
	f.DurationVar(&l.Drain, "drain", l.Drain, "the most time waited after the window for the acks and deliveries it owes")
}

func newBenchPeersCmd() *cobra.Command {
	c := bench.DefaultPeers()
	var targets string
	cmd := &cobra.Command{
		Use:   "peers",
		Short: "Fan-out of one geolab gateway beside Centrifugo, the same load process for both; prints one table (make bench-peers)",
		Long: `For each rate of --rates, and each server of --targets in turn: start a fresh
redis-server (from PATH) and the server on loopback (a geolab gateway of this
binary, or --centrifugo with a config written to a temp dir: anonymous
subscribe and publish in the namespace bench, the Redis engine on its own
redis-server unless --centrifugo-engine memory), then run the load process
'geolab bench load' as a separate process against it: --rooms×--subs-per-room
subscriber connections, one publisher connection per room publishing the rate
per room, --payload-byte JSON data carrying its send time, --warmup then the
--duration window. The CPU of the server and of its redis-server during the
window is read from /proc/PID/stat at the load's window markers. Everything a
step started is stopped by its pid before the next step, also on failure or
Ctrl-C. Prints a Markdown table: offered and delivered rate, % of what the
window's publishes owed that arrived (within --drain), publish→receive
latency p50/p99/p99.9 (one clock: the load process's), publish→ack latency
p50/p99 (how long a publish waited for the server's answer; for geolab the
step's log line adds, from the gateway's /metrics, its mean time from a
publish frame read to Redis confirming it and the frames it wrote per
writev), CPU seconds of each server and per
delivery, of its redis-server and of the load process, and
connections the server cut; then each server's saturation (the highest
delivered rate with 100 % delivered, nobody cut and p99 < 250 ms).
--profile-dir writes each geolab gateway's CPU profile there.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if c.Targets, err = parseTargets(targets); err != nil {
				return &exitError{code: 2, err: err}
			}
			if c.Geolab, err = os.Executable(); err != nil {
				return err
			}
			if c.ProfileDir != "" {
				if err := os.MkdirAll(c.ProfileDir, 0o755); err != nil {
					return err
				}
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			rows, err := bench.RunPeers(ctx, c, cmd.ErrOrStderr())
			if len(rows) > 0 {
				fmt.Fprint(cmd.OutOrStdout(), bench.PeersTable(rows, c))
			}
			return fielderr.Rename(err, peersFlags)
		},
	}
	f := cmd.Flags()
	f.Float64SliceVar(&c.Rates, "rates", c.Rates, "publishes per second per room, one step each")
	f.StringVar(&targets, "targets", "geolab,centrifugo", "servers to run at each rate, in this order: geolab and/or centrifugo")
	f.StringVar(&c.Centrifugo, "centrifugo", "bin/centrifugo", "the centrifugo binary (make bench-peers installs v6.9.1 into bin/)")
	f.StringVar(&c.CentrifugoEngine, "centrifugo-engine", c.CentrifugoEngine, "Centrifugo's engine: redis (its own redis-server, as geolab's) or memory")
	f.StringVar(&c.ProfileDir, "profile-dir", "", "write each geolab gateway's CPU profile to DIR/gateway-rRATE.pprof")
	f.StringVar(&c.Gateway, "gateway-bin", "", "run the geolab gateway of this binary (another build, to compare) instead of this one's")
	f.StringSliceVar(&c.GatewayArgs, "gateway-arg", nil, "an extra flag for each geolab gateway, e.g. --gateway-arg=--send-queue=2048 (repeatable)")
	addYardstickFlags(cmd, &c.Load)
	return cmd
}

func parseTargets(s string) ([]string, error) {
	var out []string
	for _, t := range strings.Split(s, ",") {
		t = strings.TrimSpace(t)
		if t != bench.TargetGeolab && t != bench.TargetCentrifugo {
			return nil, fmt.Errorf("--targets %q: want geolab and/or centrifugo, comma-separated", s)
		}
		out = append(out, t)
	}
	return out, nil
}

func newBenchLoadCmd() *cobra.Command {
	c := bench.DefaultLoad()
	cmd := &cobra.Command{
		Use:   "load --target geolab|centrifugo --url WS_URL",
		Short: "The load process of bench peers: subscribers and publishers against one server; prints JSON lines",
		Long: `Connect --rooms×--subs-per-room subscriber connections (subscriber i in room
bench:(i mod rooms)) and one publisher connection per room to the server at
--url, speaking geolab's protocol v1 (tokens minted with the GEOLAB_JWT_SECRET
environment variable, one subject per connection) or Centrifugo's JSON client
protocol (anonymous). Each publisher publishes --rate times a second for
--warmup and then the --duration window, --payload-byte JSON data carrying the
send time of publishes sent in the window. Prints JSON lines on stdout:
{"event":"connected"}, {"event":"window_start"}, {"event":"window_end"} as they
happen (bench peers reads the servers' CPU at them), and the result: what the
window's publishes owed (less those refused) and what arrived within --drain, the
deliveries received during the window, publish→receive latency quantiles,
publish→ack latency quantiles (ack_p50_ms, ack_p99_ms), this process's CPU in
the window, and the connections the server closed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c.Secret = []byte(os.Getenv("GEOLAB_JWT_SECRET"))
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			_, err := bench.RunLoad(ctx, c, cmd.OutOrStdout(), cmd.ErrOrStderr())
			return fielderr.Rename(err, loadFlags)
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.Target, "target", c.Target, "the server's protocol: geolab or centrifugo")
	f.StringVar(&c.URL, "url", "", "the server's WebSocket URL, e.g. ws://127.0.0.1:8080/ws or ws://127.0.0.1:8000/connection/websocket")
	f.Float64Var(&c.Rate, "rate", c.Rate, "publishes per second per room")
	addYardstickFlags(cmd, &c)
	return cmd
}
