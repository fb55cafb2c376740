package main

import (
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/geolab/geolab/gateway"
	"github.com/geolab/geolab/gateway/auth"
	"github.com/geolab/geolab/internal/fielderr"
	"github.com/geolab/geolab/internal/redisaddr"
)

// gatewayFlags names each gateway.Config field a flag sets as that flag,
// for the errors of gateway.Config.Validate.
var gatewayFlags = map[string]string{
	"Region": "--region", "Node": "--node", "Listen": "--listen", "Redis": "--redis", "RedisCAFile": "--redis-ca-file",
	"SubscribeMode": "--subscribe-mode", "Federate": "--federate", "JWTLeeway": "--jwt-leeway",
	"MaxFrameBytes": "--max-frame-bytes", "MaxDataBytes": "--max-data-bytes", "MaxRooms": "--max-rooms",
	"PublishRate": "--publish-rate", "PublishBurst": "--publish-burst", "PublishWindow": "--publish-window",
	"FrameRate": "--frame-rate", "FrameBurst": "--frame-burst",
	"SendQueue": "--send-queue", "SendBuffer": "--send-buffer", "ReplayLimit": "--replay-limit", "ReplayMaxBytes": "--replay-max-bytes",
	"PingInterval": "--ping-interval", "ReadTimeout": "--read-timeout", "WriteTimeout": "--write-timeout",
	"SubscribeTimeout": "--subscribe-timeout", "DrainTimeout": "--drain-timeout", "DrainDelay": "--drain-delay",
	"MaxConns": "--max-conns", "MaxConnsPerSub": "--max-conns-per-sub", "HTTPIdleTimeout": "--http-idle-timeout",
	"Durability": "--durability", "DurabilityTimeout": "--durability-timeout",
}

func newGatewayCmd(g *globalFlags) *cobra.Command {
	cfg := gateway.DefaultConfig()
	var secretFile, profile, redisPasswordFile, cpuProfile string
	cmd := &cobra.Command{
		Use:   "gateway --region R --node N --listen ADDR --redis ADDR",
		Short: "Run one WebSocket gateway node (protocol v1 on /ws)",
		Long: `Run one gateway node of a region. It serves protocol v1 on /ws (docs/protocol.md),
/healthz, /readyz and /metrics, and uses the region's Redis for publish, history
and fan-out. The JWT secret comes from the GEOLAB_JWT_SECRET environment variable
or --jwt-secret-file, never from a flag value. --redis is host:port, or a URL
redis://[user@]host:port[/db] with an ACL user (rediss:// for TLS, verified against
the system's roots and --redis-ca-file); the user's password comes from the
GEOLAB_REDIS_PASSWORD environment variable or --redis-password-file, never from the
URL. A Redis Cluster is a comma list of seed nodes in those forms
(127.0.0.1:7001,127.0.0.1:7002) or one URL ending in ?cluster=yes: rooms then use
sharded pub/sub and follow their slots (docs/guarantees.md, G12). A Redis that
refuses the user, the password or the TLS stops the node with an error saying
which. SIGTERM or SIGINT drains: /readyz and new connections get 503 draining
while the port stays open, every client gets
{"type":"bye","code":"going_away","reconnect":true}, and the node exits once they
have gone (but not before --drain-delay), or at --drain-timeout, closing those
still connected with 1001.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			secret, err := loadSecret(secretFile)
			if err != nil {
				return err
			}
			if cfg.Authority, err = auth.NewAuthority(secret); err != nil {
				return err
			}
			if cfg.RedisPassword, err = redisaddr.ReadPassword(redisPasswordFile, redisaddr.PasswordEnv); err != nil {
				return fmt.Errorf("--redis-password-file: %w", err)
			}
			if cfg.RedisLink, err = gateway.ProfileByName(profile); err != nil {
				return fielderr.Rename(err, map[string]string{"profile": "--redis-profile"})
			}
			cfg.Logger = log
			if cpuProfile != "" {
				stop, err := startCPUProfile(cpuProfile)
				if err != nil {
					return err
				}
				defer stop()
			}
			srv, err := gateway.New(cfg)
			if err != nil {
				return fielderr.Rename(err, gatewayFlags)
			}
			if err := srv.Start(); err != nil {
				return err
			}
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
			<-sig
			srv.Drain()
			return srv.Close()
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Region, "region", "", "region this node serves, e.g. us-east (required; a-z 0-9 -)")
	f.StringVar(&cfg.Node, "node", "", "node name, unique in the region, e.g. gw-1 (required)")
	f.StringVar(&cfg.Listen, "listen", "", "HTTP listen address, e.g. 127.0.0.1:8080 (required)")
	f.StringVar(&cfg.Redis, "redis", "", "the region's Redis: host:port, redis://[user@]host:port[/db] or rediss://… for TLS, e.g. 127.0.0.1:6379; a Redis Cluster: seeds as a comma list, or one URL ending in ?cluster=yes (required; no password in it)")
	f.StringVar(&redisPasswordFile, "redis-password-file", "", "file holding the Redis user's password (default: the GEOLAB_REDIS_PASSWORD environment variable; none when unset)")
	f.StringVar(&cfg.RedisCAFile, "redis-ca-file", "", "PEM file of CAs trusted for a rediss:// Redis besides the system's roots")
	f.StringVar(&secretFile, "jwt-secret-file", "", "file holding the JWT secret (default: the GEOLAB_JWT_SECRET environment variable)")
	f.DurationVar(&cfg.JWTLeeway, "jwt-leeway", cfg.JWTLeeway, "clock skew tolerated: a token's exp may have passed, and its nbf may be ahead, by up to this much (0..5m)")
	f.StringVar(&cfg.SubscribeMode, "subscribe-mode", cfg.SubscribeMode, "targeted (SUBSCRIBE per hosted room) or pattern (PSUBSCRIBE every room: only to demonstrate G9's amplification)")
	f.StringSliceVar(&cfg.Federate, "federate", nil, "room pattern whose events go to the region's federation outbox, e.g. tenant:* (repeatable); with any, session ownership records go there too")
	f.StringVar(&cfg.Durability, "durability", cfg.Durability, "when a publish is acked: async (once the room's primary stored it; a failover can lose it) or replicated (once a replica of that primary has it too, else error unavailable; needs a replica of every primary, checked at start)")
	f.DurationVar(&cfg.DurabilityTimeout, "durability-timeout", cfg.DurabilityTimeout, "with --durability replicated: how long a publish waits for a replica before it is refused with unavailable (1ms..1m)")
	f.StringVar(&profile, "redis-profile", gateway.DefaultRedisProfile, "timeouts of the link to Redis: lan or wan")
	f.Int64Var(&cfg.History.MaxLen, "history-maxlen", cfg.History.MaxLen, "events kept per room history stream (approximate)")
	f.DurationVar(&cfg.History.MaxAge, "history-max-age", cfg.History.MaxAge, "age bound of a room's history (0 = none)")
	f.DurationVar(&cfg.History.DedupWindow, "dedup-window", cfg.History.DedupWindow, "how long a publish's (sender, id) is remembered for idempotent retries")
	f.Int64Var(&cfg.History.OutboxMaxLen, "outbox-maxlen", cfg.History.OutboxMaxLen, "events kept in the region's federation outbox (approximate)")
	f.DurationVar(&cfg.History.SessionTTL, "session-ttl", cfg.History.SessionTTL, "how long a session's ownership record lives after the session was last claimed (connected) in this region")
	f.Int64Var(&cfg.MaxFrameBytes, "max-frame-bytes", cfg.MaxFrameBytes, "largest client frame; larger closes with 1009")
	f.IntVar(&cfg.MaxDataBytes, "max-data-bytes", cfg.MaxDataBytes, "largest publish data (compact JSON); larger gets error data_too_large")
	f.IntVar(&cfg.MaxRooms, "max-rooms", cfg.MaxRooms, "rooms one connection may be in")
	f.Float64Var(&cfg.PublishRate, "publish-rate", cfg.PublishRate, "publishes per second per connection; over it: error rate_limited")
	f.IntVar(&cfg.PublishBurst, "publish-burst", cfg.PublishBurst, "publishes allowed at once above the rate")
	f.IntVar(&cfg.PublishWindow, "publish-window", cfg.PublishWindow, "publishes of one connection read and not yet answered at once, sent to Redis in one pipeline, acked in the order read (1: each answered before the next frame is read; at most 1024; 32 keeps up with bench peers' yardstick, see BENCHMARKS.md)")
	f.Float64Var(&cfg.FrameRate, "frame-rate", cfg.FrameRate, "frames per second per connection, pings and pongs included; over it (past the burst): close 4500 flood")
	f.IntVar(&cfg.FrameBurst, "frame-burst", cfg.FrameBurst, "frames allowed at once above the frame rate")
	f.IntVar(&cfg.SendQueue, "send-queue", cfg.SendQueue, "frames queued per client before the slow-consumer close 4001")
	f.IntVar(&cfg.SendBuffer, "send-buffer", cfg.SendBuffer, "kernel send buffer per client socket, bytes (0: kernel autotuning, which lets a slow client hold megabytes before --send-queue fills)")
	f.IntVar(&cfg.ReplayLimit, "replay-limit", cfg.ReplayLimit, "most messages one resume replays; more answers recovered:false")
	f.Int64Var(&cfg.ReplayMaxBytes, "replay-max-bytes", cfg.ReplayMaxBytes, "most bytes of messages one resume replays; more answers recovered:false")
	f.StringSliceVar(&cfg.AllowedOrigins, "allowed-origin", nil, "browser Origin allowed, * wildcards (repeatable; default: no Origin header, or the same host and port as the request)")
	f.DurationVar(&cfg.PingInterval, "ping-interval", cfg.PingInterval, "WebSocket ping period")
	f.DurationVar(&cfg.ReadTimeout, "read-timeout", cfg.ReadTimeout, "close 4004 when nothing (frame or pong) came from a client for this long")
	f.DurationVar(&cfg.WriteTimeout, "write-timeout", cfg.WriteTimeout, "write deadline of one frame")
	f.DurationVar(&cfg.SubscribeTimeout, "subscribe-timeout", cfg.SubscribeTimeout, "how long a subscribe waits for Redis before error unavailable")
	f.DurationVar(&cfg.DrainTimeout, "drain-timeout", cfg.DrainTimeout, "how long a drain waits for clients to leave before closing them with 1001")
	f.DurationVar(&cfg.DrainDelay, "drain-delay", cfg.DrainDelay, "the least time a drain answers 503 draining before the port closes, clients or not: a load balancer's health check must see it (0: none)")
	f.IntVar(&cfg.MaxConns, "max-conns", cfg.MaxConns, "client connections per node; one more is refused with 503 too_many_connections (0 = no cap)")
	f.IntVar(&cfg.MaxConnsPerSub, "max-conns-per-sub", cfg.MaxConnsPerSub, "client connections per token subject on the node; one more is refused with 429 too_many_sub_connections (0 = no cap)")
	f.DurationVar(&cfg.HTTPIdleTimeout, "http-idle-timeout", cfg.HTTPIdleTimeout, "an idle keep-alive HTTP connection (not a WebSocket) is closed after this long")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the node's whole life to this file, for go tool pprof (bench peers --profile-dir)")
	return cmd
}

// startCPUProfile profiles the process's CPU into path until stop.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
