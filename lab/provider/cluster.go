package provider

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/geolab/geolab/internal/redisproc"
)

// The cluster's timing (redis.conf's cluster-* settings) and the lab's
// bounds on making it.
const (
	// ClusterNodeTimeout is every node's cluster-node-timeout: how long a
	// node may not answer before the others mark it failed, and its replica
	// takes over a few hundred milliseconds later. Short, so that a
	// shard-kill fails over in seconds; not so short that a 2-core machine
	// running the race detector makes nodes look failed.
	ClusterNodeTimeout = 3 * time.Second
	// clusterCreateTimeout bounds redis-cli --cluster create.
	clusterCreateTimeout = 60 * time.Second
	// ClusterReadyTimeout bounds the wait, after the create, until every
	// node serves every slot and every replica has synced.
	ClusterReadyTimeout = 60 * time.Second
	// clusterSlots is the number of hash slots of every Redis Cluster.
	clusterSlots = 16384
	// minShards is what redis-cli --cluster create accepts.
	minShards = 3
)

// StartRedisCluster runs s.Shards × (1 + s.Replicas) redis-server nodes with
// cluster mode on, each in Dir/redis-REGION/redis-K, and makes them one
// cluster with redis-cli --cluster create.
//
// Each node announces the address s.Announce returns for it (the lab's
// proxy in front of it), so that everything a client learns from the cluster
// (CLUSTER SLOTS, MOVED, ASK) names the proxies only, and its own cluster
// bus port (cluster-port = cluster-announce-bus-port, a port of its own): the
// nodes' gossip and failure detection do not go through the proxies, so a
// fault on a proxy is a fault between clients and the node, not inside the
// cluster. Replication does go through them: a replica follows its primary
// at the primary's announced address (Redis has no separate announce for
// it).
//
// redis-cli is given the announced addresses: it MEETs the nodes at the
// address and bus port they report, and its final check reads CLUSTER
// NODES, which names the announced addresses anyway, so it must reach them
// there. It returns once every node reports cluster_state:ok with all 16384
// slots served, s.Shards primaries each with s.Replicas replicas, and every
// replica's link to its primary up (bounded by ClusterReadyTimeout).
func (p *Process) StartRedisCluster(ctx context.Context, s RedisClusterSpec) (RedisCluster, error) {
	fail := func(err error) (RedisCluster, error) {
		return nil, fmt.Errorf("provider process: redis cluster of %s: %w", s.Region, err)
	}
	switch {
	case s.Shards < minShards:
		return fail(fmt.Errorf("%d shards: redis-cli --cluster create needs at least %d primaries", s.Shards, minShards))
	case s.Replicas < 0:
		return fail(fmt.Errorf("%d replicas: must not be negative", s.Replicas))
	case s.Announce == nil:
		return fail(errors.New("RedisClusterSpec.Announce is required: the nodes announce the addresses it returns"))
	}
	dir := filepath.Join(p.Dir, "redis-"+s.Region)
	c := &processCluster{region: s.Region, shards: s.Shards, replicas: s.Replicas}
	for i := range s.Shards * (1 + s.Replicas) {
		n, err := p.startClusterNode(ctx, s, dir, fmt.Sprintf("redis-%d", i+1))
		if err != nil {
			return fail(err)
		}
		c.nodes = append(c.nodes, n)
	}
	if err := c.create(ctx, filepath.Join(dir, "cluster-create.log")); err != nil {
		return fail(err)
	}
	if err := Ready(ctx, ClusterReadyTimeout, "every slot served", c.ready); err != nil {
		return fail(err)
	}
	return c, nil
}

// startClusterNode picks the node's address and bus port, asks for the
// address it announces, and starts it (kept, so that Close stops it).
func (p *Process) startClusterNode(ctx context.Context, s RedisClusterSpec, dir, id string) (*clusterNode, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	bus, err := redisproc.FreePort()
	if err != nil {
		return nil, err
	}
	announced, err := s.Announce(id, addr)
	if err != nil {
		return nil, fmt.Errorf("%s: announce: %w", id, err)
	}
	host, port, err := net.SplitHostPort(announced)
	if err != nil || net.ParseIP(host) == nil {
		return nil, fmt.Errorf("%s: announced address %q: want IP:PORT (cluster-announce-ip takes an IP)", id, announced)
	}
	busPort := strconv.Itoa(bus)
	srv, err := redisproc.Start(ctx, redisproc.Options{
		Addr: addr, Dir: filepath.Join(dir, id), Persistent: s.Persistent,
		Args: append(redisproc.ClusterArgs(bus, ClusterNodeTimeout),
			"--cluster-announce-ip", host,
			"--cluster-announce-port", port,
			"--cluster-announce-bus-port", busPort),
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", id, err)
	}
	n := &clusterNode{redisNode: redisNode{name: "redis " + s.Region + "/" + id, srv: srv}, id: id, announced: announced}
	p.keep(n)
	return n, nil
}

// clusterConfigFile is the file in a node's directory where it keeps its
// view of the cluster: Wipe keeps it.
const clusterConfigFile = redisproc.ClusterConfigFile

// processCluster is a Redis Cluster of local redis-server processes.
type processCluster struct {
	region           string
	shards, replicas int
	nodes            []*clusterNode
}

// Nodes lists every node, redis-1 … redis-N.
func (c *processCluster) Nodes() []ClusterNode {
	out := make([]ClusterNode, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n
	}
	return out
}

// Seeds lists every node's announced address.
func (c *processCluster) Seeds() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.announced
	}
	return out
}

// create makes the nodes one cluster (redisproc.CreateCluster on the
// announced addresses) and keeps redis-cli's output in logFile.
func (c *processCluster) create(ctx context.Context, logFile string) error {
	ctx, cancel := context.WithTimeout(ctx, clusterCreateTimeout)
	defer cancel()
	out, err := redisproc.CreateCluster(ctx, c.Seeds(), c.replicas)
	_ = os.WriteFile(logFile, out, 0o644)
	if err != nil {
		return fmt.Errorf("%w\n--- tail of %s ---\n%s", err, logFile, tail(out, 2048))
	}
	return nil
}

// tail is the end of b, at most max bytes.
func tail(b []byte, max int) string {
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return strings.TrimSpace(string(b))
}

// ready checks the whole cluster once: every node sees every slot served
// and the expected shards, each replica's link to its primary is up.
func (c *processCluster) ready() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, n := range c.nodes {
		rc := directClient(n.Addr())
		err := c.nodeReady(ctx, rc, n)
		_ = rc.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", n.id, err)
		}
	}
	return nil
}

func (c *processCluster) nodeReady(ctx context.Context, rc *redis.Client, n *clusterNode) error {
	info, err := rc.ClusterInfo(ctx).Result()
	if err != nil {
		return err
	}
	fields := infoFields(info)
	if fields["cluster_state"] != "ok" || fields["cluster_slots_ok"] != strconv.Itoa(clusterSlots) {
		return fmt.Errorf("cluster_state:%s, cluster_slots_ok:%s", fields["cluster_state"], fields["cluster_slots_ok"])
	}
	if want := strconv.Itoa(len(c.nodes)); fields["cluster_known_nodes"] != want {
		return fmt.Errorf("knows %s nodes, want %s", fields["cluster_known_nodes"], want)
	}
	shards, err := rc.ClusterShards(ctx).Result()
	if err != nil {
		return err
	}
	serving := 0
	for _, sh := range shards {
		if len(sh.Slots) == 0 {
			continue
		}
		serving++
		if len(sh.Nodes) != 1+c.replicas {
			return fmt.Errorf("a shard of %d nodes, want %d", len(sh.Nodes), 1+c.replicas)
		}
		for _, node := range sh.Nodes {
			if node.Health != "online" {
				return fmt.Errorf("node %s:%d is %s", node.IP, node.Port, node.Health)
			}
		}
	}
	if serving != c.shards {
		return fmt.Errorf("%d shards serve slots, want %d", serving, c.shards)
	}
	repl, err := rc.Info(ctx, "replication").Result()
	if err != nil {
		return err
	}
	if f := infoFields(repl); f["role"] == "slave" && f["master_link_status"] != "up" {
		return fmt.Errorf("replica of %s:%s: link %s", f["master_host"], f["master_port"], f["master_link_status"])
	}
	return nil
}

// Shards asks the first node that answers (directly, not through its
// proxy) for CLUSTER SHARDS.
func (c *processCluster) Shards(ctx context.Context) ([]Shard, error) {
	var errs []error
	for _, n := range c.nodes {
		if !n.Running() || n.Paused() {
			continue
		}
		sh, err := c.shardsFrom(ctx, n)
		if err == nil {
			return sh, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", n.id, err))
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("provider process: redis cluster of %s: no node is running", c.region)
	}
	return nil, fmt.Errorf("provider process: redis cluster of %s: no node answers CLUSTER SHARDS: %w", c.region, errors.Join(errs...))
}

func (c *processCluster) shardsFrom(ctx context.Context, n *clusterNode) ([]Shard, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	rc := directClient(n.Addr())
	defer rc.Close()
	reply, err := rc.ClusterShards(ctx).Result()
	if err != nil {
		return nil, err
	}
	byAddr := map[string]*clusterNode{}
	for _, n := range c.nodes {
		byAddr[n.announced] = n
	}
	var out []Shard
	for _, sh := range reply {
		if len(sh.Slots) == 0 {
			continue // a primary that lost its slots (failed over): its nodes are in the shard that took them
		}
		s := Shard{}
		for _, r := range sh.Slots {
			s.Slots = append(s.Slots, [2]int{int(r.Start), int(r.End)})
		}
		slices.SortFunc(s.Slots, func(a, b [2]int) int { return a[0] - b[0] })
		for _, node := range sh.Nodes {
			cn, ok := byAddr[net.JoinHostPort(node.IP, strconv.FormatInt(node.Port, 10))]
			if !ok {
				return nil, fmt.Errorf("CLUSTER SHARDS names %s:%d, which is no node's announced address", node.IP, node.Port)
			}
			switch {
			case node.Health == "failed":
				s.Failed = append(s.Failed, cn)
			case node.Role == "master":
				s.Primary = cn
			default:
				s.Replicas = append(s.Replicas, cn)
			}
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Shard) int { return a.Slots[0][0] - b.Slots[0][0] })
	for i := range out {
		out[i].Index = i + 1
	}
	return out, nil
}

// directClient is a client of one node at its own address: the lab's way
// in, which no proxy fault cuts. It never retries, so that a dead node
// shows as an error at once.
func directClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr: addr, MaxRetries: -1, DisableIdentity: true, PoolSize: 1,
		DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
}

// infoFields reads the key:value lines of an INFO or CLUSTER INFO reply.
func infoFields(s string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			out[k] = v
		}
	}
	return out
}

// clusterNode is one node of a processCluster.
type clusterNode struct {
	redisNode
	id        string
	announced string
}

// ID is the node's name in its region: redis-1 … redis-N.
func (n *clusterNode) ID() string { return n.id }

// Announced is the address the node announces (its proxy).
func (n *clusterNode) Announced() string { return n.announced }

// Wipe removes the node's data but keeps its cluster config file: the
// node comes back empty and still a member of the cluster (as a replica,
// it then copies its primary's data again).
func (n *clusterNode) Wipe() error {
	return n.redisNode.wipe(clusterConfigFile)
}
