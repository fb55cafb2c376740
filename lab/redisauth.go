package lab

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"

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
// data with them.
func (r *Region) RedisOptions() (*redis.Options, error) {
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

// RedisClient is a go-redis client of the region's Redis, with
// RedisOptions; the caller closes it.
func (r *Region) RedisClient() (*redis.Client, error) {
	o, err := r.RedisOptions()
	if err != nil {
		return nil, err
	}
	return redis.NewClient(o), nil
}
