package gateway

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/geolab/geolab/gateway/auth"
	"github.com/geolab/geolab/gateway/broker"
	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/internal/fielderr"
	"github.com/geolab/geolab/internal/httpserve"
	"github.com/geolab/geolab/internal/netprofile"
	"github.com/geolab/geolab/internal/redisaddr"
)

// Subscription modes.
const (
	SubscribeTargeted = "targeted" // SUBSCRIBE per hosted room (default)
	SubscribePattern  = "pattern"  // PSUBSCRIBE every room: only to demonstrate G9's amplification
)

// Config is everything a gateway node needs. Start from DefaultConfig and
// change what differs; Validate says what is wrong before anything starts.
type Config struct {
	Region string // region name, e.g. "us-east"; the origin of every event published here
	Node   string // node name, unique in the region, e.g. "gw-1"
	Listen string // HTTP listen address, e.g. "127.0.0.1:8080"
	// Redis is the region's Redis: host:port ("127.0.0.1:6379"),
	// redis://[user@]host:port[/db], or rediss://… for TLS
	// (internal/redisaddr); never with a password in it. A Redis Cluster
	// is a comma list of seed nodes in those forms, or one URL ending in
	// ?cluster=yes (redisaddr.ClusterForms): rooms then use sharded pub/sub.
	Redis string
	// RedisPassword is the password of Redis's user (or of the default
	// user): the command reads it from $GEOLAB_REDIS_PASSWORD or
	// --redis-password-file. It prints as [redacted].
	RedisPassword redisaddr.Password
	// RedisCAFile is a PEM file of CAs trusted for a rediss:// Redis
	// besides the system's roots (--redis-ca-file); "" for none.
	RedisCAFile string

	Authority *auth.Authority // verifies tokens (one authority for all regions)
	// JWTLeeway is the clock skew tolerated between the token authority and
	// this node: a token's exp may have passed, and its nbf may be ahead, by
	// up to this much; a connection is closed (4002) at exp + JWTLeeway.
	JWTLeeway time.Duration

	SubscribeMode string // SubscribeTargeted or SubscribePattern
	// Federate lists the room patterns whose events this region appends to
	// its federation outbox (the bridge carries them to other regions).
	Federate []string

	History broker.HistoryConfig
	// Durability is when a publish is acked: broker.DurabilityAsync (once
	// the room's primary ran the publish; a failover can lose it) or
	// broker.DurabilityReplicated (once a replica of that primary has it
	// too: WAIT 1 DurabilityTimeout, else error unavailable). Replicated
	// needs a replica of every primary: Start checks.
	Durability string
	// DurabilityTimeout is how long a replicated publish waits for a
	// replica before it is refused with unavailable.
	DurabilityTimeout time.Duration
	RedisLink         netprofile.Profile // timeouts of the gateway→Redis link (DefaultRedisProfile)

	MaxFrameBytes int64   // largest client frame; larger closes with 1009
	MaxDataBytes  int     // largest publish data
	MaxRooms      int     // rooms per connection
	PublishRate   float64 // publishes per second per connection
	PublishBurst  int     // publishes allowed at once
	// PublishWindow is how many publishes of one connection may be read and
	// not yet answered at once: the reader goes on reading while up to this
	// many wait for Redis, sent to it in one pipeline (conn.publishLoop),
	// answered in the order read. 1: each publish is answered before the
	// connection's next frame is read.
	PublishWindow    int
	FrameRate        float64       // frames per second per connection before the flood close (4500)
	FrameBurst       int           // frames allowed at once
	SendQueue        int           // frames queued per connection before the slow-consumer close (4001)
	SendBuffer       int           // kernel send buffer per client socket in bytes (0: the kernel's autotuning, up to megabytes)
	ReplayLimit      int           // most messages one resume replays before answering recovered:false
	ReplayMaxBytes   int64         // most bytes of message frames one resume replays before answering recovered:false
	AllowedOrigins   []string      // browser Origin header patterns allowed; empty: no Origin header, or the same host
	PingInterval     time.Duration // WebSocket ping period
	ReadTimeout      time.Duration // no frame or pong from a client for this long closes it (4004)
	WriteTimeout     time.Duration // one frame's write deadline
	SubscribeTimeout time.Duration // how long a subscribe waits for Redis before answering unavailable
	DrainTimeout     time.Duration // how long a drain waits for clients to go
	// DrainDelay is the least time a drain keeps the port open answering 503
	// draining, clients or not: long enough for a load balancer's health
	// check to see the node not ready before the port closes.
	DrainDelay      time.Duration
	MaxConns        int           // client connections per node (0: no cap); one more is refused with 503 too_many_connections
	MaxConnsPerSub  int           // client connections per token subject on the node (0: no cap); one more: 429 too_many_sub_connections
	HTTPIdleTimeout time.Duration // an idle keep-alive HTTP connection (not a WebSocket) is closed after this long

	Logger *slog.Logger
}

// DefaultPublishWindow is how many publishes of one connection are in
// flight at once unless told otherwise: the window that kept up with the
// fan-out yardstick (BENCHMARKS.md, runs 4 to 6). At 32 a connection whose
// Redis round trip takes 300 ms still publishes about 100 a second, the
// default publish rate, while holding at most 32 × --max-data-bytes (1 MiB
// at the default) of publishes not yet answered; at 60 publishes/s per
// connection 16 filled up once round trips passed 250 ms, 64 did not.
// --publish-window 1 is the unpipelined gateway: each publish answered
// before the connection's next frame is read.
const DefaultPublishWindow = 32

// MaxPublishWindow bounds --publish-window: what one connection may hold of
// the gateway's memory in publishes read and not yet answered
// (MaxPublishWindow × --max-data-bytes).
const MaxPublishWindow = 1024

// DefaultDrainDelay is how long a drain keeps answering 503 draining at
// least: two checks of a load balancer that looks every second. Raise it
// (--drain-delay) to your balancer's interval times its unhealthy threshold.
const DefaultDrainDelay = 2 * time.Second

// RedisPasswordFrom says, in errors, where a gateway's Redis password comes
// from: never the address.
const RedisPasswordFrom = "$" + redisaddr.PasswordEnv + " or --redis-password-file"

// DefaultRedisProfile is the profile of a gateway's link to its region's
// Redis when none is named (""): lan, for a gateway runs next to its
// region's Redis. The profiles themselves are internal/netprofile's.
const DefaultRedisProfile = netprofile.LAN

// ProfileByName returns the Redis link profile called name: lan, wan, or
// DefaultRedisProfile for "".
func ProfileByName(name string) (netprofile.Profile, error) {
	if name == "" {
		name = DefaultRedisProfile
	}
	return netprofile.ByName(name)
}

// DefaultConfig returns a config with every limit set; Region, Node, Listen,
// Redis and Authority are left for the caller.
func DefaultConfig() Config {
	return Config{
		SubscribeMode:     SubscribeTargeted,
		JWTLeeway:         auth.DefaultLeeway,
		History:           broker.DefaultHistory(),
		Durability:        broker.DurabilityAsync,
		DurabilityTimeout: broker.DefaultDurabilityTimeout,
		RedisLink:         netprofile.Lan(),
		MaxFrameBytes:     64 << 10,
		MaxDataBytes:      32 << 10,
		MaxRooms:          100,
		PublishRate:       100,
		PublishBurst:      200,
		PublishWindow:     DefaultPublishWindow,
		FrameRate:         500,
		FrameBurst:        1000,
		SendQueue:         1024,
		SendBuffer:        256 << 10,
		ReplayLimit:       10000,
		ReplayMaxBytes:    64 << 20,
		PingInterval:      10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      5 * time.Second,
		SubscribeTimeout:  5 * time.Second,
		DrainTimeout:      10 * time.Second,
		DrainDelay:        DefaultDrainDelay,
		MaxConns:          10000,
		MaxConnsPerSub:    100,
		HTTPIdleTimeout:   httpserve.IdleTimeout,
	}
}

// Validate checks the config. Its error is a *fielderr.Error naming the
// first field at fault (as Config names it), its value and its bound.
func (c *Config) Validate() error {
	if err := protocol.ValidOrigin(c.Region); err != nil {
		return fielderr.Wrap("Region", nil, err)
	}
	if err := protocol.ValidOrigin(c.Node); err != nil {
		return fielderr.Wrap("Node", nil, err)
	}
	if c.Listen == "" {
		return fielderr.Missing("Listen", "(e.g. 127.0.0.1:8080)")
	}
	if c.Redis == "" {
		return fielderr.Missing("Redis", "(e.g. 127.0.0.1:6379)")
	}
	target, err := redisaddr.ParseTarget(c.Redis, RedisPasswordFrom)
	if err != nil {
		return fielderr.Wrap("Redis", nil, err)
	}
	ro := target.Node
	if ro.Username != "" && c.RedisPassword == "" {
		return fielderr.Wrap("Redis", nil, fmt.Errorf("names the user %q but no password was given: give it in %s", ro.Username, RedisPasswordFrom))
	}
	if c.RedisCAFile != "" && ro.TLSConfig == nil {
		return fielderr.New("RedisCAFile", c.RedisCAFile, "is given, but", "the Redis address is not a rediss:// URL: the CA would not be used")
	}
	if c.Authority == nil {
		return fielderr.Missing("Authority", "(no JWT secret: auth.LoadSecret reads "+auth.SecretEnv+" or a file)")
	}
	if c.JWTLeeway < 0 || c.JWTLeeway > auth.MaxLeeway {
		return fielderr.New("JWTLeeway", c.JWTLeeway, "must be between 0 and", auth.MaxLeeway)
	}
	if c.SubscribeMode != SubscribeTargeted && c.SubscribeMode != SubscribePattern {
		return fielderr.New("SubscribeMode", c.SubscribeMode, "must be", SubscribeTargeted+" or "+SubscribePattern)
	}
	if c.SubscribeMode == SubscribePattern && target.Cluster() {
		return fielderr.New("SubscribeMode", c.SubscribeMode, "cannot be used", "on a Redis Cluster: rooms are published with SPUBLISH there, which no pattern subscription hears (use "+SubscribeTargeted+")")
	}
	for _, p := range c.Federate {
		if err := auth.ValidPattern(p); err != nil {
			return fielderr.Wrap("Federate", p, err)
		}
	}
	if c.Durability != broker.DurabilityAsync && c.Durability != broker.DurabilityReplicated {
		return fielderr.New("Durability", c.Durability, "must be", broker.DurabilityAsync+" or "+broker.DurabilityReplicated)
	}
	if c.DurabilityTimeout < time.Millisecond || c.DurabilityTimeout > broker.MaxDurabilityTimeout {
		return fielderr.New("DurabilityTimeout", c.DurabilityTimeout, "must be between 1ms and", broker.MaxDurabilityTimeout)
	}
	if err := c.History.Validate(); err != nil {
		return fmt.Errorf("history: %w", err)
	}
	for _, b := range []struct {
		ok  bool
		err *fielderr.Error
	}{
		{c.MaxFrameBytes >= 512, fielderr.New("MaxFrameBytes", c.MaxFrameBytes, "must be at least", 512)},
		{c.MaxDataBytes >= 1, fielderr.New("MaxDataBytes", c.MaxDataBytes, "must be at least", 1)},
		{int64(c.MaxDataBytes) < c.MaxFrameBytes, fielderr.Than("MaxDataBytes", c.MaxDataBytes, "must be below", "MaxFrameBytes", c.MaxFrameBytes)},
		{c.MaxRooms >= 1, fielderr.New("MaxRooms", c.MaxRooms, "must be at least", 1)},
		{c.PublishRate > 0, fielderr.New("PublishRate", c.PublishRate, "must be above", 0)},
		{c.PublishBurst >= 1, fielderr.New("PublishBurst", c.PublishBurst, "must be at least", 1)},
		{c.PublishWindow >= 1 && c.PublishWindow <= MaxPublishWindow, fielderr.New("PublishWindow", c.PublishWindow, "must be in", fmt.Sprintf("1..%d", MaxPublishWindow))},
		{c.FrameRate > 0, fielderr.New("FrameRate", c.FrameRate, "must be above", 0)},
		{c.FrameBurst >= 1, fielderr.New("FrameBurst", c.FrameBurst, "must be at least", 1)},
		{c.SendQueue >= 16, fielderr.New("SendQueue", c.SendQueue, "must be at least", 16)},
		{c.SendBuffer >= 0, fielderr.New("SendBuffer", c.SendBuffer, "must not be below", 0)},
		{c.ReplayLimit >= 1, fielderr.New("ReplayLimit", c.ReplayLimit, "must be at least", 1)},
		{c.ReplayMaxBytes >= 1, fielderr.New("ReplayMaxBytes", c.ReplayMaxBytes, "must be at least", 1)},
		{c.PingInterval > 0, fielderr.New("PingInterval", c.PingInterval, "must be above", 0)},
		{c.ReadTimeout > c.PingInterval, fielderr.Than("ReadTimeout", c.ReadTimeout, "must be above", "PingInterval", c.PingInterval)},
		{c.WriteTimeout > 0, fielderr.New("WriteTimeout", c.WriteTimeout, "must be above", 0)},
		{c.SubscribeTimeout > 0, fielderr.New("SubscribeTimeout", c.SubscribeTimeout, "must be above", 0)},
		{c.DrainTimeout >= 0, fielderr.New("DrainTimeout", c.DrainTimeout, "must not be below", 0)},
		{c.DrainDelay >= 0, fielderr.New("DrainDelay", c.DrainDelay, "must not be below", 0)},
		{c.MaxConns >= 0, fielderr.New("MaxConns", c.MaxConns, "must not be below", 0)},
		{c.MaxConnsPerSub >= 0, fielderr.New("MaxConnsPerSub", c.MaxConnsPerSub, "must not be below", 0)},
		{c.HTTPIdleTimeout > 0, fielderr.New("HTTPIdleTimeout", c.HTTPIdleTimeout, "must be above", 0)},
	} {
		if !b.ok {
			return b.err
		}
	}
	return nil
}

// federates reports whether this region federates at all: a bridge runs to
// carry its outbox, so session ownership records go there too.
func (c *Config) federates() bool { return len(c.Federate) > 0 }

// federated reports whether room's events go to the federation outbox.
func (c *Config) federated(room string) bool {
	for _, p := range c.Federate {
		if auth.MatchPattern(p, room) {
			return true
		}
	}
	return false
}
