package federation

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/geolab/geolab/gateway/auth"
	"github.com/geolab/geolab/gateway/broker"
	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/internal/fielderr"
	"github.com/geolab/geolab/internal/netprofile"
	"github.com/geolab/geolab/internal/redisaddr"
)

// Config is one bridge's view of the federation. The bridge of Region reads
// the outbox of every other region from its Redis (as this bridge reaches it:
// in the lab, through the WAN link's Toxiproxy proxy) and applies federated
// events to Region's Redis.
type Config struct {
	Region  string                  `yaml:"-"`
	Regions map[string]RegionConfig `yaml:"regions"`
	// Federate lists the room patterns that cross regions; every other room
	// stays in its region even if an outbox holds it.
	Federate []string  `yaml:"federate"`
	Lag      LagConfig `yaml:"lag"`
	// Batch is the most events read from a remote outbox in one round trip;
	// Block is how long one read waits for new events.
	Batch int           `yaml:"batch"`
	Block time.Duration `yaml:"block"`
	// Listen serves /healthz, /readyz, /metrics and /status ("" = off).
	Listen string `yaml:"listen"`
	// Profile names the timeouts of the links to remote outboxes
	// (internal/netprofile): "wan" or "lan"; "" is DefaultProfile. The link
	// to this region's own Redis is always LocalProfile.
	Profile string `yaml:"profile"`
	// MaxFrameBytes bounds the frame of one outbox event: a longer one is
	// refused (oversize). It must stay above the frames the gateways make
	// (their --max-data-bytes plus the envelope).
	MaxFrameBytes int `yaml:"max_frame_bytes"`
	// Durability is when an applied event counts as applied, so that the
	// checkpoint may pass it: broker.DurabilityAsync (once this region's
	// primary ran the apply; a failover can lose it after the checkpoint
	// moved) or broker.DurabilityReplicated (once a replica of that primary
	// has it too: WAIT 1 DurabilityTimeout, else the apply is retried).
	// "" is async.
	Durability string `yaml:"durability"`
	// DurabilityTimeout is how long a replicated apply waits for a replica
	// before it is retried (0: broker.DefaultDurabilityTimeout).
	DurabilityTimeout time.Duration `yaml:"durability_timeout"`
}

// DefaultMaxFrameBytes is max_frame_bytes when the file names none: 1 MiB,
// far above a frame of the gateways' default 32 KiB of data.
const DefaultMaxFrameBytes = 1 << 20

// RegionConfig is one region as this bridge reaches it.
type RegionConfig struct {
	// Redis is host:port, redis://[user@]host:port[/db], or rediss://…
	// for TLS (internal/redisaddr); never with a password in it. A region
	// that runs a Redis Cluster is a comma list of seed nodes in those
	// forms, or one URL ending in ?cluster=yes (redisaddr.ClusterForms).
	Redis string `yaml:"redis"`
	// PasswordFile holds the password of Redis's user (or of the default
	// user). Without it the password is the environment variable
	// redisaddr.RegionPasswordEnv(region) (GEOLAB_REDIS_PASSWORD_US_EAST),
	// or none when that is unset.
	PasswordFile string `yaml:"password_file"`
	// CAFile is a PEM file of CAs trusted for a rediss:// Redis besides
	// the system's roots.
	CAFile string `yaml:"ca_file"`
}

// passwordFrom says, in errors, where the password of region's Redis
// comes from.
func passwordFrom(region string) string {
	return "regions." + region + ".password_file or $" + redisaddr.RegionPasswordEnv(region)
}

// conn reads region's password (its password_file, else its environment
// variable) and returns how to reach its Redis. Errors name the region's
// key, never the password.
func (c *Config) conn(region string) (redisaddr.Conn, error) {
	rc := c.Regions[region]
	pw, err := redisaddr.ReadPassword(rc.PasswordFile, redisaddr.RegionPasswordEnv(region))
	if err != nil {
		return redisaddr.Conn{}, fmt.Errorf("regions.%s.password_file: %w", region, err)
	}
	return redisaddr.Conn{Addr: rc.Redis, Password: pw, CAFile: rc.CAFile,
		PasswordFrom: passwordFrom(region), CAFrom: "regions." + region + ".ca_file"}, nil
}

// The profiles of the bridge's links to Redis (internal/netprofile).
const (
	// DefaultProfile is the profile of the links to remote outboxes when
	// the config names none (profile: ""): wan, for they cross regions.
	DefaultProfile = netprofile.WAN
	// LocalProfile is the profile of the link to this region's own Redis,
	// whatever the config says: lan, for the bridge runs in its region.
	LocalProfile = netprofile.LAN
)

// The replication-lag thresholds a config that names none gets (the seeds'
// 1 s and 5 s): the one definition the lab and its tests use too.
const (
	DefaultLagWarn  = time.Second
	DefaultLagAlert = 5 * time.Second
)

// LagConfig holds the replication-lag thresholds: investigate at Warn, alert
// at Alert.
type LagConfig struct {
	Warn  time.Duration `yaml:"warn"`
	Alert time.Duration `yaml:"alert"`
}

// WithDefaults returns c with each zero threshold set to its default
// (DefaultLagWarn, DefaultLagAlert).
func (c LagConfig) WithDefaults() LagConfig {
	if c.Warn == 0 {
		c.Warn = DefaultLagWarn
	}
	if c.Alert == 0 {
		c.Alert = DefaultLagAlert
	}
	return c
}

// Validate checks the thresholds: Warn positive, Alert not below Warn. Its
// error is a *fielderr.Error on lag.warn or lag.alert (the file's keys).
func (c LagConfig) Validate() error {
	switch {
	case c.Warn <= 0:
		return fielderr.New("lag.warn", c.Warn, "must be above", 0)
	case c.Alert < c.Warn:
		return fielderr.Than("lag.alert", c.Alert, "must not be below", "lag.warn", c.Warn)
	}
	return nil
}

// Defaults fills what a file left out.
func (c *Config) Defaults() {
	c.Lag = c.Lag.WithDefaults()
	if c.Batch == 0 {
		c.Batch = 256
	}
	if c.Block == 0 {
		c.Block = 500 * time.Millisecond
	}
	if c.Profile == "" {
		c.Profile = DefaultProfile
	}
	if c.MaxFrameBytes == 0 {
		c.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if c.Durability == "" {
		c.Durability = broker.DurabilityAsync
	}
	if c.DurabilityTimeout == 0 {
		c.DurabilityTimeout = broker.DefaultDurabilityTimeout
	}
}

// Validate names the first thing wrong: a file key, or region (the
// bridge's own region, which the file does not hold). A field out of bounds
// is a *fielderr.Error.
func (c *Config) Validate() error {
	if err := protocol.ValidOrigin(c.Region); err != nil {
		return fielderr.Wrap("region", nil, err)
	}
	if len(c.Regions) < 2 {
		return fmt.Errorf("regions: need this region and at least one other, got %d", len(c.Regions))
	}
	if _, ok := c.Regions[c.Region]; !ok {
		return fielderr.New("region", c.Region, "is not in the file", "(have "+strings.Join(c.names(), ", ")+")")
	}
	for _, name := range c.names() {
		if err := protocol.ValidOrigin(name); err != nil {
			return fmt.Errorf("regions.%s: %w", name, err)
		}
		rc := c.Regions[name]
		if rc.Redis == "" {
			return fmt.Errorf("regions.%s.redis: missing (%s)", name, redisaddr.Forms)
		}
		t, err := redisaddr.ParseTarget(rc.Redis, passwordFrom(name))
		if err != nil {
			return fmt.Errorf("regions.%s.redis: %w", name, err)
		}
		ro := t.Node
		if rc.CAFile != "" && ro.TLSConfig == nil {
			return fmt.Errorf("regions.%s.ca_file: given, but regions.%s.redis is not a rediss:// URL: the CA would not be used", name, name)
		}
	}
	if len(c.Federate) == 0 {
		return fmt.Errorf("federate: no room patterns: nothing would cross regions")
	}
	for i, p := range c.Federate {
		if err := auth.ValidPattern(p); err != nil {
			return fmt.Errorf("federate[%d]: %w", i, err)
		}
	}
	if err := c.Lag.Validate(); err != nil {
		return err
	}
	switch {
	case c.Batch < 1 || c.Batch > 10000:
		return fielderr.New("batch", c.Batch, "must be in", "1..10000")
	case c.Block < 10*time.Millisecond || c.Block > 10*time.Second:
		return fielderr.New("block", c.Block, "must be in", "10ms..10s")
	case c.MaxFrameBytes < 1<<10 || c.MaxFrameBytes > 64<<20:
		return fielderr.New("max_frame_bytes", c.MaxFrameBytes, "must be in", "1024..67108864")
	case c.Durability != "" && c.Durability != broker.DurabilityAsync && c.Durability != broker.DurabilityReplicated:
		return fielderr.New("durability", c.Durability, "must be", broker.DurabilityAsync+" or "+broker.DurabilityReplicated)
	case c.DurabilityTimeout != 0 && (c.DurabilityTimeout < time.Millisecond || c.DurabilityTimeout > broker.MaxDurabilityTimeout):
		return fielderr.New("durability_timeout", c.DurabilityTimeout, "must be in", "1ms..1m")
	}
	_, err := netprofile.ByName(c.Profile)
	return err
}

func (c *Config) names() []string {
	out := make([]string, 0, len(c.Regions))
	for n := range c.Regions {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Remotes are the other regions, sorted.
func (c *Config) Remotes() []string {
	var out []string
	for _, n := range c.names() {
		if n != c.Region {
			out = append(out, n)
		}
	}
	return out
}

// Federated reports whether room crosses regions.
func (c *Config) Federated(room string) bool {
	for _, p := range c.Federate {
		if auth.MatchPattern(p, room) {
			return true
		}
	}
	return false
}

// ParseConfig reads a bridge config. Unknown keys and wrong kinds are
// errors naming the line; region is the bridge's own region.
func ParseConfig(data []byte, region string) (*Config, error) {
	c := &Config{Region: region}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("federation config is empty")
		}
		return nil, fmt.Errorf("federation config: %w", err)
	}
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("federation config: %w", err)
	}
	return c, nil
}

// LoadConfig reads a bridge config file.
func LoadConfig(path, region string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("federation: read config: %w", err)
	}
	c, err := ParseConfig(b, region)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}
