package redisaddr

import (
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ClusterForms names the ways an address names a Redis Cluster, for errors
// and help. One address in one of the Forms, without the cluster option,
// is one plain Redis, as before.
const ClusterForms = "a comma list of seed nodes in one of the forms (host:port,host:port,… or redis://[user@]host:port,redis://[user@]host:port,…), or one redis:// or rediss:// URL ending in ?cluster=yes"

// clusterQuery is the one query option a URL may carry: the address is a
// seed of a Redis Cluster.
var clusterQuery = map[string]bool{"cluster=yes": true, "cluster=true": true, "cluster=1": true}

// Target is where an address leads: one Redis, or a Redis Cluster known by
// its seed nodes.
type Target struct {
	// Node is the go-redis options of the one Redis, or those every node
	// of the cluster is dialled with (Addr: the first seed).
	Node *redis.Options
	// Seeds are the seed addresses (host:port) of a cluster, in the order
	// given; none for one Redis.
	Seeds []string
}

// Cluster reports whether the target is a Redis Cluster.
func (t Target) Cluster() bool { return len(t.Seeds) > 0 }

// ParseTarget reads addr: one address in one of the Forms (one Redis, as
// Parse reads it), or a cluster in one of the ClusterForms. Every seed of a
// cluster must share the scheme (TLS or not) and the user, and name no
// database: a cluster has database 0 only.
func ParseTarget(addr, passwordFrom string) (Target, error) {
	parts := strings.Split(addr, ",")
	cluster := len(parts) > 1
	var t Target
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if p == "" {
			return Target{}, fmt.Errorf("seed %d of the cluster address is empty: want %s", i+1, ClusterForms)
		}
		if base, q, ok := strings.Cut(p, "?"); ok && strings.Contains(base, "://") && clusterQuery[q] {
			p, cluster = base, true
		}
		o, err := Parse(p, passwordFrom)
		if err != nil {
			if len(parts) > 1 {
				return Target{}, fmt.Errorf("seed %d of the cluster: %w", i+1, err)
			}
			return Target{}, err
		}
		if i == 0 {
			t.Node = o
		} else if (o.TLSConfig != nil) != (t.Node.TLSConfig != nil) || o.Username != t.Node.Username {
			return Target{}, fmt.Errorf("seed %d of the cluster: every seed must have the first one's scheme and user: a cluster's nodes are reached one way", i+1)
		}
		t.Seeds = append(t.Seeds, o.Addr)
		if cluster && o.DB != 0 {
			return Target{}, fmt.Errorf("seed %d of the cluster names database %d: a Redis Cluster has database 0 only", i+1, o.DB)
		}
	}
	if !cluster {
		t.Seeds = nil
	}
	return t, nil
}

// Target is Options for an address that may name a cluster: the node
// options (password, TLS and CA as Options makes them) and the seeds.
func (c Conn) Target() (Target, error) {
	t, err := ParseTarget(c.Addr, c.PasswordFrom)
	if err != nil {
		return Target{}, err
	}
	if err := c.complete(t.Node); err != nil {
		return Target{}, err
	}
	return t, nil
}

// ClusterOptions are the go-redis cluster options of a cluster target:
// its seeds, and the node options' user, password, TLS, timeouts,
// retries, client name and identity. MaxRedirects is raised from go-redis's
// 3 to 8, so that a command keeps following a slot that moves (MOVED, ASK,
// TRYAGAIN while a slot migrates) a little longer before it fails.
func (t Target) ClusterOptions() *redis.ClusterOptions {
	n := t.Node
	return &redis.ClusterOptions{
		Addrs: t.Seeds, Username: n.Username, Password: n.Password, TLSConfig: n.TLSConfig,
		DialTimeout: n.DialTimeout, ReadTimeout: n.ReadTimeout, WriteTimeout: n.WriteTimeout,
		MaxRetries: n.MaxRetries, MaxRedirects: 8, ClientName: n.ClientName, DisableIdentity: n.DisableIdentity,
		PoolSize: n.PoolSize, MaintNotificationsConfig: n.MaintNotificationsConfig,
	}
}

// NewClient makes the client of the target: a *redis.ClusterClient for a
// cluster, a *redis.Client for one Redis.
func (t Target) NewClient() redis.UniversalClient {
	if t.Cluster() {
		return redis.NewClusterClient(t.ClusterOptions())
	}
	return redis.NewClient(t.Node)
}
