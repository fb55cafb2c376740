package gateway

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/geolab/geolab/gateway/auth"
	"github.com/geolab/geolab/gateway/broker"
	"github.com/geolab/geolab/gateway/protocol"
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
	Redis  string // the region's Redis, e.g. "127.0.0.1:6379"

	Authority *auth.Authority // verifies tokens (one authority for all regions)

	SubscribeMode string // SubscribeTargeted or SubscribePattern
	// Federate lists the room patterns whose events this region appends to
	// its federation outbox (the bridge carries them to other regions).
	Federate []string

	History   broker.HistoryConfig
	RedisLink RedisProfile // timeouts of the gateway→Redis link

	MaxFrameBytes    int64         // largest client frame; larger closes with 1009
	MaxDataBytes     int           // largest publish data
	MaxRooms         int           // rooms per connection
	PublishRate      float64       // publishes per second per connection
	PublishBurst     int           // publishes allowed at once
	FrameRate        float64       // frames per second per connection before the flood close (4500)
	FrameBurst       int           // frames allowed at once
	SendQueue        int           // frames queued per connection before the slow-consumer close (4001)
	SendBuffer       int           // kernel send buffer per client socket in bytes (0: the kernel's autotuning, up to megabytes)
	ReplayLimit      int           // most messages one resume replays before answering recovered:false
	AllowedOrigins   []string      // browser Origin header patterns allowed; empty: no Origin header, or the same host
	PingInterval     time.Duration // WebSocket ping period
	ReadTimeout      time.Duration // no frame or pong from a client for this long closes it (4004)
	WriteTimeout     time.Duration // one frame's write deadline
	SubscribeTimeout time.Duration // how long a subscribe waits for Redis before answering unavailable
	DrainTimeout     time.Duration // how long a drain waits for clients to go

	Logger *slog.Logger
}

// RedisProfile holds the timeouts of a link to Redis. Profiles are named so
// that topologies can say "lan" or "wan" instead of repeating numbers.
type RedisProfile struct {
	DialTimeout  time.Duration
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	MaxRetries   int
	Subscriber   broker.SubscriberConfig
}

// LANProfile suits a gateway next to its region's Redis: fail fast, so that a
// blip is noticed in about two seconds and clients get "unavailable" rather
// than a hang.
func LANProfile() RedisProfile {
	return RedisProfile{DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second,
		MaxRetries: 1, Subscriber: broker.DefaultSubscriberConfig()}
}

// WANProfile starts from LANProfile for a link that crosses regions: every
// round trip pays the RTT, so timeouts stretch to several RTTs.
func WANProfile() RedisProfile {
	p := LANProfile()
	p.DialTimeout = 3 * time.Second             // a handshake is several RTTs
	p.ReadTimeout = 3 * time.Second             // a 300 ms RTT with jitter must not time out
	p.WriteTimeout = 3 * time.Second            // same
	p.Subscriber.DeadAfter = 6 * time.Second    // pings cross the WAN too
	p.Subscriber.PingInterval = 2 * time.Second // fewer pings per RTT
	return p
}

// ProfileByName returns "lan" or "wan".
func ProfileByName(name string) (RedisProfile, error) {
	switch name {
	case "lan", "":
		return LANProfile(), nil
	case "wan":
		return WANProfile(), nil
	}
	return RedisProfile{}, fmt.Errorf("unknown redis profile %q (lan or wan)", name)
}

// DefaultConfig returns a config with every limit set; Region, Node, Listen,
// Redis and Authority are left for the caller.
func DefaultConfig() Config {
	return Config{
		SubscribeMode:    SubscribeTargeted,
		History:          broker.DefaultHistory(),
		RedisLink:        LANProfile(),
		MaxFrameBytes:    64 << 10,
		MaxDataBytes:     32 << 10,
		MaxRooms:         100,
		PublishRate:      100,
		PublishBurst:     200,
		FrameRate:        500,
		FrameBurst:       1000,
		SendQueue:        1024,
		SendBuffer:       256 << 10,
		ReplayLimit:      10000,
		PingInterval:     10 * time.Second,
		ReadTimeout:      30 * time.Second,
		WriteTimeout:     5 * time.Second,
		SubscribeTimeout: 5 * time.Second,
		DrainTimeout:     10 * time.Second,
	}
}

// Validate checks the config, naming the first field at fault.
func (c *Config) Validate() error {
	if err := protocol.ValidOrigin(c.Region); err != nil {
		return fmt.Errorf("--region: %w", err)
	}
	if err := protocol.ValidOrigin(c.Node); err != nil {
		return fmt.Errorf("--node: %w", err)
	}
	if c.Listen == "" {
		return fmt.Errorf("--listen is required (e.g. 127.0.0.1:8080)")
	}
	if c.Redis == "" {
		return fmt.Errorf("--redis is required (e.g. 127.0.0.1:6379)")
	}
	if c.Authority == nil {
		return fmt.Errorf("no JWT secret: set %s or --jwt-secret-file", auth.SecretEnv)
	}
	if c.SubscribeMode != SubscribeTargeted && c.SubscribeMode != SubscribePattern {
		return fmt.Errorf("--subscribe-mode %q: want %s or %s", c.SubscribeMode, SubscribeTargeted, SubscribePattern)
	}
	for _, p := range c.Federate {
		if err := auth.ValidPattern(p); err != nil {
			return fmt.Errorf("--federate %q: %w", p, err)
		}
	}
	if err := c.History.Validate(); err != nil {
		return fmt.Errorf("history: %w", err)
	}
	positive := []struct {
		name string
		ok   bool
	}{
		{"--max-frame-bytes", c.MaxFrameBytes >= 512},
		{"--max-data-bytes", c.MaxDataBytes >= 1 && int64(c.MaxDataBytes) < c.MaxFrameBytes},
		{"--max-rooms", c.MaxRooms >= 1},
		{"--publish-rate", c.PublishRate > 0},
		{"--publish-burst", c.PublishBurst >= 1},
		{"--frame-rate", c.FrameRate > 0},
		{"--frame-burst", c.FrameBurst >= 1},
		{"--send-queue", c.SendQueue >= 16},
		{"--send-buffer", c.SendBuffer >= 0},
		{"--replay-limit", c.ReplayLimit >= 1},
		{"--ping-interval", c.PingInterval > 0},
		{"--read-timeout", c.ReadTimeout > c.PingInterval},
		{"--write-timeout", c.WriteTimeout > 0},
		{"--subscribe-timeout", c.SubscribeTimeout > 0},
		{"--drain-timeout", c.DrainTimeout >= 0},
	}
	for _, p := range positive {
		if !p.ok {
			return fmt.Errorf("%s is out of range (see geolab gateway --help)", p.name)
		}
	}
	return nil
}

// federated reports whether room's events go to the federation outbox.
func (c *Config) federated(room string) bool {
	for _, p := range c.Federate {
		if auth.MatchPattern(p, room) {
			return true
		}
	}
	return false
}
