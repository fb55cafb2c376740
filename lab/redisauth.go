package lab

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/geolab/geolab/gateway/broker"
	"github.com/geolab/geolab/internal/redisaddr"
	"github.com/geolab/geolab/internal/redisproc"
	"github.com/geolab/geolab/lab/provider"
	"github.com/geolab/geolab/lab/topology"
)

// A region whose topology asks for redis.acl runs its Redis with these ACL
// users only (the default user off), each with a password the lab makes
// for the run. The passwords reach the gateways and the bridges through
// their environment, never their command line.
const (
	// RedisLabUser is the lab's own user (every key, channel and command):
	// redisproc checks readiness as it, and Region.RedisOptions logs in as
	// it to inspect the region's data.
	RedisLabUser = "geolab-lab"
	// RedisGatewayUser is the region's gateways' user: broker.ACLRules.
	RedisGatewayUser = "geolab-gateway"
	// RedisBridgeUser is the user every bridge reads the region's outbox
	// as, and the region's own bridge applies as: broker.ACLRules.
	RedisBridgeUser = "geolab-bridge"
)

// redisAuth is how a region's Redis is reached: over TLS or not, and as
// which users with which passwords (none without ACL).
type redisAuth struct {
	tls       bool
	passwords map[string]redisaddr.Password // user → password; nil without ACL
}

// newRedisAuth makes the region's users and their passwords, when its
// topology asks for ACL.
func newRedisAuth(r topology.Redis) *redisAuth {
	a := &redisAuth{tls: r.TLS}
	if r.ACL {
		a.passwords = map[string]redisaddr.Password{}
		for _, u := range []string{RedisLabUser, RedisGatewayUser, RedisBridgeUser} {
			b := make([]byte, 24)
			_, _ = rand.Read(b)
			a.passwords[u] = redisaddr.Password(base64.RawURLEncoding.EncodeToString(b))
		}
	}
	return a
}

// spec is the RedisSpec of the region's Redis.
func (a *redisAuth) spec(region string, r topology.Redis) provider.RedisSpec {
	s := provider.RedisSpec{Region: region, Persistent: r.Persistence, TLS: a.tls}
	if a.passwords != nil {
		s.Users = []redisproc.User{
			{Name: RedisLabUser, Password: string(a.passwords[RedisLabUser]), Rules: "~* &* +@all"},
			{Name: RedisGatewayUser, Password: string(a.passwords[RedisGatewayUser]), Rules: broker.ACLRules},
			{Name: RedisBridgeUser, Password: string(a.passwords[RedisBridgeUser]), Rules: broker.ACLRules},
		}
	}
	return s
}

// plain reports whether the region's Redis is reached as always: host:port,
// no user, no TLS.
func (a *redisAuth) plain() bool { return !a.tls && a.passwords == nil }

// url is the address of the Redis at addr (a proxy or the server itself)
// as user: host:port for a plain region (what every binary takes), else
// redis:// or rediss:// with the user when the region has ACL.
func (a *redisAuth) url(user, addr string) string {
	if a.plain() {
		return addr
	}
	scheme := "redis://"
	if a.tls {
		scheme = "rediss://"
	}
	if a.passwords == nil {
		return scheme + addr
	}
	return scheme + user + "@" + addr
}

// RedisOptions are go-redis options for the lab's own client of the
// region's Redis (its direct address, not a proxy): with TLS, trusting the
// lab's CA; with ACL, as RedisLabUser. Tests and specs inspect a region's
// data with them. For a region that runs a Redis Cluster they are an error
// (a one-node client would half-work: MOVED for every slot of another
// shard): use RedisClusterClient or RedisUniversalClient.
func (r *Region) RedisOptions() (*redis.Options, error) {
	if r.cluster != nil {
		return nil, r.errCluster()
	}
	a := r.auth
	c := redisaddr.Conn{Addr: a.url(RedisLabUser, r.redis.Addr()), Password: a.passwords[RedisLabUser],
		PasswordFrom: "the lab's generated password", CAFrom: "the lab's CA"}
	if a.tls {
		c.CAFile = r.redis.CAFile()
	}
	o, err := c.Options()
	if err != nil {
		return nil, fmt.Errorf("lab: redis of %s: %w", r.Name, err)
	}
	return o, nil
}

// errCluster is the refusal of a one-node client of a cluster region.
func (r *Region) errCluster() error {
	return fmt.Errorf("lab: redis of %s: the region runs a Redis Cluster: a one-node client would get MOVED for every slot of another shard; use RedisClusterClient or RedisUniversalClient", r.Name)
}

// RedisClient is a go-redis client of the region's Redis, with
// RedisOptions; the caller closes it. For a cluster region it is an error
// (RedisOptions).
func (r *Region) RedisClient() (*redis.Client, error) {
	o, err := r.RedisOptions()
	if err != nil {
		return nil, err
	}
	return redis.NewClient(o), nil
}

// RedisAddrs are the addresses a client of the region's Redis is given: a
// cluster's seeds, every node's announced address (its proxy: CLUSTER
// SLOTS and MOVED name those only); for one Redis, its own address (the
// gateways reach it through LAN links of their own instead).
func (r *Region) RedisAddrs() []string {
	if r.cluster != nil {
		return r.cluster.Seeds()
	}
	return []string{r.redis.Addr()}
}

// RedisClusterOptions are go-redis cluster options for the lab's own client
// of the region's Redis Cluster. It is seeded with the announced addresses
// but dials each node at its own address (a Dialer that maps one to the
// other), as RedisOptions does for one Redis: the lab inspects the data
// even while a fault holds a node's proxy closed. A client of the system
// under test must not do that: it dials what the cluster announces. For a
// standalone region they are an error.
func (r *Region) RedisClusterOptions() (*redis.ClusterOptions, error) {
	if r.cluster == nil {
		return nil, fmt.Errorf("lab: redis of %s: the region runs one Redis, not a cluster: use RedisClient", r.Name)
	}
	direct := map[string]string{}
	for _, n := range r.cluster.Nodes() {
		direct[n.Announced()] = n.Addr()
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &redis.ClusterOptions{
		Addrs: r.cluster.Seeds(),
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if own, ok := direct[addr]; ok {
				addr = own
			}
			return d.DialContext(ctx, network, addr)
		},
	}, nil
}

// RedisClusterClient is a go-redis cluster client of the region's Redis
// Cluster, with RedisClusterOptions; the caller closes it.
func (r *Region) RedisClusterClient() (*redis.ClusterClient, error) {
	o, err := r.RedisClusterOptions()
	if err != nil {
		return nil, err
	}
	return redis.NewClusterClient(o), nil
}

// RedisUniversalClient is the lab's own client of the region's Redis,
// whichever it runs: RedisClusterClient for a cluster, RedisClient for one
// Redis. The caller closes it.
func (r *Region) RedisUniversalClient() (redis.UniversalClient, error) {
	if r.cluster != nil {
		c, err := r.RedisClusterClient()
		if err != nil {
			return nil, err
		}
		return c, nil
	}
	c, err := r.RedisClient()
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return c, nil
}
