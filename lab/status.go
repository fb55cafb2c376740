package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/geolab/geolab/federation"
	"github.com/geolab/geolab/lab/fault"
	"github.com/geolab/geolab/lab/link"
	"github.com/geolab/geolab/lab/provider"
	"github.com/geolab/geolab/lab/resolver"
)

// Status is a snapshot of a running lab, as `geolab status --json` prints it.
type Status struct {
	Topology  string            `json:"topology"`
	Provider  string            `json:"provider"`
	WorkDir   string            `json:"work_dir"`
	Toxiproxy string            `json:"toxiproxy"`
	Resolver  string            `json:"resolver"`
	Uptime    string            `json:"uptime"`
	Regions   []RegionStatus    `json:"regions"`
	Links     []link.Link       `json:"links"`
	Faults    []fault.Active    `json:"faults"`
	Health    []resolver.Health `json:"health"`
}

// RegionStatus is one region's part of Status.
type RegionStatus struct {
	Name string `json:"name"`
	// Redis is the region's one Redis (zero when it runs a cluster).
	Redis NodeStatus `json:"redis"`
	// Cluster is the region's Redis Cluster (nil when it runs one Redis).
	Cluster  *ClusterStatus  `json:"cluster,omitempty"`
	Gateways []NodeStatus    `json:"gateways"`
	Bridge   *NodeStatus     `json:"bridge,omitempty"`
	Lag      []FeedLagStatus `json:"lag,omitempty"`
	// Endpoints maps a client's home region to the ws:// URLs of this
	// region's gateways as such a client reaches them.
	Endpoints map[string][]string `json:"endpoints"`
}

// ClusterStatus is a Redis Cluster region's nodes and shards.
type ClusterStatus struct {
	// Nodes are every node's process, redis-1 … redis-N, with the
	// address it announces (its proxy: where clients reach it).
	Nodes []ClusterNodeStatus `json:"nodes"`
	// Shards are the primaries that serve slots now, with their replicas
	// and slot ranges, as a running node reports them.
	Shards []ShardStatus `json:"shards"`
	// Error says why Shards is empty: no node answered.
	Error string `json:"error,omitempty"`
	// Subscribers are the region's gateways and, for each, the hosted
	// rooms it subscribes (sharded pub/sub) on each primary, as its
	// /status answers.
	Subscribers []ShardSubscriber `json:"subscribers,omitempty"`
}

// ShardSubscriber is one gateway's sharded pub/sub on a cluster region.
type ShardSubscriber struct {
	Gateway string `json:"gateway"` // gw-1 …
	// Rooms maps a node (its ID, redis-K; its address if the cluster
	// names one the lab does not know) to the hosted rooms the gateway
	// subscribes there.
	Rooms map[string]int `json:"rooms"`
	// Error says why Rooms is unknown: the gateway did not answer.
	Error string `json:"error,omitempty"`
}

// ClusterNodeStatus is one cluster node's process.
type ClusterNodeStatus struct {
	NodeStatus
	ID        string `json:"id"`        // redis-1 …
	Announced string `json:"announced"` // the proxy it announces
}

// ShardStatus is one shard: its primary, its replicas and its slot
// ranges ("0-5460").
type ShardStatus struct {
	Index    int      `json:"index"`
	Primary  string   `json:"primary"` // a node's ID; "" when none is up
	Replicas []string `json:"replicas"`
	Failed   []string `json:"failed,omitempty"`
	Slots    []string `json:"slots"`
}

// clusterStatus reads the nodes' processes, and asks the cluster for its
// shards (a short timeout: a cluster that does not answer shows none).
func (l *Lab) clusterStatus(ctx context.Context, c provider.RedisCluster) ClusterStatus {
	var cs ClusterStatus
	for _, n := range c.Nodes() {
		cs.Nodes = append(cs.Nodes, ClusterNodeStatus{NodeStatus: nodeStatus(n, n.Addr()), ID: n.ID(), Announced: n.Announced()})
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	shards, err := c.Shards(ctx)
	if err != nil {
		cs.Error = err.Error()
	}
	for _, sh := range shards {
		ss := ShardStatus{Index: sh.Index, Replicas: ids(sh.Replicas), Failed: ids(sh.Failed)}
		if sh.Primary != nil {
			ss.Primary = sh.Primary.ID()
		}
		for _, r := range sh.Slots {
			ss.Slots = append(ss.Slots, fmt.Sprintf("%d-%d", r[0], r[1]))
		}
		cs.Shards = append(cs.Shards, ss)
	}
	return cs
}

// gatewayShards asks gateway g (/status, a short timeout) where it
// subscribes, and names each primary by its node ID.
func gatewayShards(ctx context.Context, g *Gateway, c provider.RedisCluster) ShardSubscriber {
	out := ShardSubscriber{Gateway: g.ID, Rooms: map[string]int{}}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+g.Listen+"/status", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		out.Error = err.Error()
		return out
	}
	defer resp.Body.Close()
	var st struct {
		Shards map[string]int `json:"shards"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		out.Error = fmt.Sprintf("/status: %v", err)
		return out
	}
	byAddr := map[string]string{}
	for _, n := range c.Nodes() {
		byAddr[n.Announced()] = n.ID()
	}
	for addr, rooms := range st.Shards {
		name := addr
		if id, ok := byAddr[addr]; ok {
			name = id
		}
		out.Rooms[name] += rooms
	}
	return out
}

// ids lists the nodes' IDs.
func ids(ns []provider.ClusterNode) []string {
	out := []string{}
	for _, n := range ns {
		out = append(out, n.ID())
	}
	return out
}

// NodeStatus is one process's state.
type NodeStatus struct {
	Name    string `json:"name"`
	Addr    string `json:"addr"`
	Pid     int    `json:"pid"`
	Running bool   `json:"running"`
	Paused  bool   `json:"paused"`
}

// FeedLagStatus is the replication lag of one of the bridge's feeds (its
// pull of one origin's outbox).
type FeedLagStatus = federation.FeedStatus

// Status gathers the lab's state now (bridge lag is asked over HTTP, with a
// short timeout; a bridge that does not answer shows no lag).
func (l *Lab) Status(ctx context.Context) Status {
	s := Status{Topology: l.topo.Name, Provider: l.opts.Provider, WorkDir: l.opts.WorkDir, Toxiproxy: l.net.URL(),
		Resolver: l.ResolverURL(), Uptime: time.Since(l.started).Round(time.Second).String(),
		Links: l.net.Select(nil), Faults: l.faults.List()}
	if l.res != nil {
		s.Health = l.res.Health()
	}
	for _, r := range l.topo.Regions {
		reg := l.regions[r.Name]
		rs := RegionStatus{Name: r.Name, Endpoints: map[string][]string{}}
		if reg.cluster != nil {
			cs := l.clusterStatus(ctx, reg.cluster)
			for _, g := range reg.gateways {
				cs.Subscribers = append(cs.Subscribers, gatewayShards(ctx, g, reg.cluster))
			}
			rs.Cluster = &cs
		} else {
			rs.Redis = nodeStatus(reg.redis, reg.redis.Addr())
		}
		for _, g := range reg.gateways {
			rs.Gateways = append(rs.Gateways, nodeStatus(g, g.Listen))
		}
		for _, home := range l.topo.RegionNames() {
			rs.Endpoints[home] = l.Endpoints(home, r.Name)
		}
		if reg.bridge != nil {
			ns := nodeStatus(reg.bridge, reg.bridge.Listen)
			rs.Bridge = &ns
			if bs, err := l.BridgeStatus(ctx, r.Name); err == nil {
				rs.Lag = bs.Feeds
			}
		}
		s.Regions = append(s.Regions, rs)
	}
	return s
}

type named interface {
	Name() string
	Pid() int
	Running() bool
	Paused() bool
}

func nodeStatus(n named, addr string) NodeStatus {
	return NodeStatus{Name: n.Name(), Addr: addr, Pid: n.Pid(), Running: n.Running(), Paused: n.Paused()}
}

// BridgeStatus asks a region's bridge for its feeds' state (/status).
func (l *Lab) BridgeStatus(ctx context.Context, region string) (federation.Status, error) {
	var st federation.Status
	b := l.Region(region).bridge
	if b == nil {
		return st, fmt.Errorf("lab: region %s runs no bridge", region)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+b.Listen+"/status", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, fmt.Errorf("lab: bridge %s status: %w", region, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("lab: bridge %s status: %w", region, err)
	}
	return st, nil
}
