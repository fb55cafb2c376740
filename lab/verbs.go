package lab

import (
	"context"
	"fmt"
	"time"

	"github.com/geolab/geolab/federation"
	"github.com/geolab/geolab/lab/fault"
	"github.com/geolab/geolab/lab/link"
	"github.com/geolab/geolab/lab/provider"
	"github.com/geolab/geolab/lab/resolver"
	"github.com/geolab/geolab/lab/topology"
)

// Topology is the topology the lab runs.
func (l *Lab) Topology() *topology.Topology { return l.topo }

// Net is the lab's set of Toxiproxy links.
func (l *Lab) Net() *link.Net { return l.net }

// Faults is the lab's book of injected faults.
func (l *Lab) Faults() *fault.Book { return l.faults }

// Started is when Start began: time zero of the lab's history.
func (l *Lab) Started() time.Time { return l.started }

// Lag is the replication-lag thresholds the lab's bridges run with
// (Options.LagWarn and LagAlert, defaults filled in).
func (l *Lab) Lag() federation.LagConfig {
	return federation.LagConfig{Warn: l.opts.LagWarn, Alert: l.opts.LagAlert}
}

// WorkDir is where logs, configs and Redis data live.
func (l *Lab) WorkDir() string { return l.opts.WorkDir }

// Region returns a running region; it panics on a name the topology does
// not have (a bug in the caller, as an index out of range is).
func (l *Lab) Region(name string) *Region {
	r, ok := l.regions[name]
	if !ok {
		panic(fmt.Sprintf("lab: no region %q in topology %s", name, l.topo.Name))
	}
	return r
}

// Gateway returns node i (from 1) of the region; it panics when there is none.
func (r *Region) Gateway(i int) *Gateway {
	if i < 1 || i > len(r.gateways) {
		panic(fmt.Sprintf("lab: region %s has gateways 1..%d, not %d", r.Name, len(r.gateways), i))
	}
	return r.gateways[i-1]
}

// Gateways lists the region's gateways.
func (r *Region) Gateways() []*Gateway { return r.gateways }

// Redis is the region's Redis; nil when the region runs a Redis Cluster
// (Cluster).
func (r *Region) Redis() provider.Redis { return r.redis }

// Cluster is the region's Redis Cluster; nil when the region runs one
// Redis (Redis).
func (r *Region) Cluster() provider.RedisCluster { return r.cluster }

// Bridge is the region's federation bridge (nil in a one-region lab or a
// region that federates nothing).
func (r *Region) Bridge() *Bridge { return r.bridge }

// RedisOf implements fault.World. A cluster region has no one Redis: it is
// an error naming the cluster's faults.
func (l *Lab) RedisOf(region string) (provider.Redis, error) {
	r, ok := l.regions[region]
	if !ok {
		return nil, fmt.Errorf("no region %q", region)
	}
	if r.cluster != nil {
		return nil, fmt.Errorf("region %s runs a Redis Cluster, not one Redis: act on one of its shards (shard-kill, shard-failover)", region)
	}
	return r.redis, nil
}

// ClusterOf implements fault.World: the region's Redis Cluster, or an
// error when it runs one Redis.
func (l *Lab) ClusterOf(region string) (provider.RedisCluster, error) {
	r, ok := l.regions[region]
	if !ok {
		return nil, fmt.Errorf("no region %q", region)
	}
	if r.cluster == nil {
		return nil, fmt.Errorf("region %s runs one Redis, not a Redis Cluster (topology redis.mode standalone)", region)
	}
	return r.cluster, nil
}

// GatewayOf implements fault.World.
func (l *Lab) GatewayOf(region, node string) (provider.Node, error) {
	g, err := l.gateway(region, node)
	if err != nil {
		return nil, err
	}
	return g.Node, nil
}

// GatewayAddr implements fault.World: the gateway's own address, with
// nothing between (provider.HostRouted's Direct).
func (l *Lab) GatewayAddr(region, node string) (string, error) {
	g, err := l.gateway(region, node)
	if err != nil {
		return "", err
	}
	if hr, ok := l.prov.(provider.HostRouted); ok {
		return hr.Direct(g.Listen), nil
	}
	return g.Listen, nil
}

func (l *Lab) gateway(region, node string) (*Gateway, error) {
	r, ok := l.regions[region]
	if !ok {
		return nil, fmt.Errorf("no region %q", region)
	}
	for _, g := range r.gateways {
		if g.ID == node {
			return g, nil
		}
	}
	return nil, fmt.Errorf("region %s has no gateway %q", region, node)
}

// BridgeOf implements fault.World.
func (l *Lab) BridgeOf(region string) (provider.Node, error) {
	r, ok := l.regions[region]
	if !ok {
		return nil, fmt.Errorf("no region %q", region)
	}
	if r.bridge == nil {
		return nil, fmt.Errorf("region %s runs no bridge", region)
	}
	return r.bridge.Node, nil
}

// Token mints a client token the lab's gateways accept.
func (l *Lab) Token(sub string, read, publish []string, ttl time.Duration) (string, error) {
	return l.auth.Issue(sub, read, publish, ttl, time.Now())
}

// Secret is the JWT secret every gateway of the lab verifies with.
func (l *Lab) Secret() []byte { return l.opts.Secret }

// Endpoints lists the ws:// URLs through which a client living in home
// reaches the gateways of region, through its client links.
func (l *Lab) Endpoints(home, region string) []string {
	var out []string
	for _, g := range l.Region(region).gateways {
		ln, ok := l.net.Get(link.Name(link.Client, home, region, g.ID))
		if ok {
			out = append(out, "ws://"+ln.Listen+"/ws")
		}
	}
	return out
}

// ResolverURL is the resolver's base URL (GET /resolve?home=REGION); ""
// in a lab started with Options.RedisOnly.
func (l *Lab) ResolverURL() string {
	if l.res == nil {
		return ""
	}
	return l.res.URL()
}

// Resolver is the lab's GeoDNS stand-in.
func (l *Lab) Resolver() *resolver.Resolver { return l.res }

// Lookup returns a resolver client for a client living in home, for the Go
// client's Options.Resolve.
func (l *Lab) Lookup(home string) *resolver.Lookup {
	return &resolver.Lookup{URL: l.res.URL(), Home: home}
}

// Inject applies a fault (docs/faults.md) and records it.
func (l *Lab) Inject(ctx context.Context, s fault.Spec) (fault.Active, error) {
	return l.faults.Inject(ctx, s)
}

// Partition cuts regions a and b apart, both ways, by reset.
func (l *Lab) Partition(a, b string) (fault.Active, error) {
	return l.Inject(context.Background(), fault.Spec{Kind: "partition", Regions: []string{a, b}})
}

// Blackhole cuts regions a and b apart, both ways: connections hang.
func (l *Lab) Blackhole(a, b string) (fault.Active, error) {
	return l.Inject(context.Background(), fault.Spec{Kind: "partition", Regions: []string{a, b}, Mode: "blackhole"})
}

// Isolate cuts region r's datacenter off the network (reset).
func (l *Lab) Isolate(r string) (fault.Active, error) {
	return l.Inject(context.Background(), fault.Spec{Kind: "isolate", Regions: []string{r}})
}

// Heal heals every active fault, newest first.
func (l *Lab) Heal() error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return l.faults.HealAll(ctx)
}

// ResolveFunc returns, for a client living in home, a resolver lookup with
// its own TTL cache: the Go client's Options.Resolve.
func (l *Lab) ResolveFunc(home string) func(ctx context.Context) ([]string, error) {
	return l.Lookup(home).Resolve
}
