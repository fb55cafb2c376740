package redistest

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/geolab/geolab/internal/clusterslot"
	"github.com/geolab/geolab/internal/redisproc"
	"github.com/geolab/geolab/internal/wait"
)

// ClusterNodeTimeout is every test cluster node's cluster-node-timeout: a
// killed primary is marked failed after it, and its replica takes over
// about a second later.
const ClusterNodeTimeout = 2 * time.Second

// clusterBound bounds every wait of a cluster helper (the create, a
// failover, a migration): generous, for a 2-core machine under -race.
const clusterBound = 60 * time.Second

// Cluster is a Redis Cluster of real redis-server processes on loopback,
// started for one test (StartCluster) and killed by pid when it ends.
type Cluster struct {
	t        TB
	replicas int // replicas made by the create, for StartCluster's wait
	dir      string
	nodes    []*ClusterNode
	client   *redis.ClusterClient
}

// ClusterNode is one redis-server of a Cluster.
type ClusterNode struct {
	Addr string // 127.0.0.1:PORT, where clients reach it
	Name string // node-1 … node-N, as started

	srv    *redisproc.Server
	client *redis.Client
}

// Client is a plain (non-cluster) client of this node alone.
func (n *ClusterNode) Client() *redis.Client { return n.client }

// Pid is the node's process id.
func (n *ClusterNode) Pid() int { return n.srv.Pid() }

// Running reports whether the node's process has not exited.
func (n *ClusterNode) Running() bool { return n.srv.Running() }

// Kill sends the node SIGKILL and waits until it exited.
func (n *ClusterNode) Kill() error {
	if err := n.srv.Kill(); err != nil {
		return fmt.Errorf("redistest: %w", err)
	}
	return nil
}

// StartCluster starts primaries × (1 + replicas) redis-server processes
// with cluster mode on, each on a free loopback port with its own cluster
// bus port, makes them one cluster with redis-cli --cluster create, and
// waits (bounded) until every node reports cluster_state:ok with every
// slot served and every replica linked to its primary. When t ends every
// node is killed by pid, and t fails if one is still there. It needs at
// least 3 primaries (redis-cli's minimum).
func StartCluster(t TB, primaries, replicas int) *Cluster {
	t.Helper()
	if primaries < 3 || replicas < 0 {
		t.Fatalf("redistest: a cluster needs at least 3 primaries and no negative replicas, got %d and %d", primaries, replicas)
		return nil
	}
	c := &Cluster{t: t, dir: filepath.Join(t.TempDir(), "cluster"), replicas: primaries * replicas}
	t.Cleanup(c.stop)
	for i := range primaries * (1 + replicas) {
		n, err := c.startNode(fmt.Sprintf("node-%d", i+1))
		if err != nil {
			t.Fatalf("redistest: %v", err)
			return nil
		}
		c.nodes = append(c.nodes, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterBound)
	defer cancel()
	if out, err := redisproc.CreateCluster(ctx, c.Seeds(), replicas); err != nil {
		t.Fatalf("redistest: %v\n%s", err, out)
		return nil
	}
	c.client = redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Seeds(), DisableIdentity: true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}})
	t.Cleanup(func() { _ = c.client.Close() })
	c.WaitHealthy(t)
	// Every replica the create made must have its primary's data before a
	// test may kill a primary: a replica still waiting for its first sync
	// is promoted empty (and WaitHealthy cannot tell one that has not
	// turned replica yet from a primary without slots).
	wait.For(t, clusterBound, fmt.Sprintf("%d replicas synced with their primaries", c.replicas), func() bool {
		return c.syncedReplicas() == c.replicas
	})
	c.waitStreaming(t)
	return c
}

// startNode runs one cluster-enabled redis-server (redisproc.ClusterArgs)
// and waits for its PING; it is killed by pid at cleanup (and by the kernel
// if the test binary dies first).
func (c *Cluster) startNode(name string) (*ClusterNode, error) {
	bus, err := redisproc.FreePort()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := redisproc.Start(ctx, redisproc.Options{Dir: filepath.Join(c.dir, name),
		Args: append(redisproc.ClusterArgs(bus, ClusterNodeTimeout),
			// A replica's first sync starts at once, not after the 5 s
			// diskless-sync delay that batches replicas.
			"--repl-diskless-sync-delay", "0")})
	if err != nil {
		return nil, fmt.Errorf("start redis-server %s: %w", name, err)
	}
	n := &ClusterNode{Addr: srv.Addr(), Name: name, srv: srv}
	n.client = redis.NewClient(&redis.Options{Addr: n.Addr, DisableIdentity: true, MaxRetries: -1,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}})
	return n, nil
}

// stop kills every node by pid and checks that none is left.
func (c *Cluster) stop() {
	for _, n := range c.nodes {
		_ = n.client.Close()
		pid := n.Pid()
		if err := n.srv.Close(); err != nil {
			c.t.Fatalf("redistest: %v", err)
		}
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			c.t.Fatalf("redistest: redis-server %s (pid %d) still exists after SIGKILL (kill -0: %v)", n.Addr, pid, err)
		}
	}
}

// Seeds are every node's address.
func (c *Cluster) Seeds() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.Addr
	}
	return out
}

// Nodes are every node, killed ones included.
func (c *Cluster) Nodes() []*ClusterNode { return c.nodes }

// Client is a cluster client of the whole cluster (closed when the test ends).
func (c *Cluster) Client() *redis.ClusterClient { return c.client }

// Node returns the node at addr, or nil.
func (c *Cluster) Node(addr string) *ClusterNode {
	for _, n := range c.nodes {
		if n.Addr == addr {
			return n
		}
	}
	return nil
}

func bounded() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 5*time.Second)
}

// Slot is the hash slot of key (CLUSTER KEYSLOT on a live node).
func (c *Cluster) Slot(t TB, key string) int {
	t.Helper()
	for _, n := range c.live() {
		ctx, cancel := bounded()
		s, err := n.client.ClusterKeySlot(ctx, key).Result()
		cancel()
		if err == nil {
			return int(s)
		}
	}
	t.Fatalf("redistest: no live node answers CLUSTER KEYSLOT")
	return -1
}

func (c *Cluster) live() []*ClusterNode {
	var out []*ClusterNode
	for _, n := range c.nodes {
		if n.Running() {
			out = append(out, n)
		}
	}
	return out
}

// nodeInfo is one line of CLUSTER NODES, as a node sees the cluster.
type nodeInfo struct {
	id, addr, primaryID string
	primary, failed     bool
	slots               [][2]int
}

// view is CLUSTER NODES as node n sees it.
func (c *Cluster) view(n *ClusterNode) ([]nodeInfo, error) {
	ctx, cancel := bounded()
	defer cancel()
	s, err := n.client.ClusterNodes(ctx).Result()
	if err != nil {
		return nil, err
	}
	var out []nodeInfo
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		ni := nodeInfo{id: f[0], addr: strings.SplitN(strings.SplitN(f[1], "@", 2)[0], ",", 2)[0],
			primary: strings.Contains(f[2], "master"), failed: strings.Contains(f[2], "fail"), primaryID: f[3]}
		for _, r := range f[8:] {
			if strings.HasPrefix(r, "[") {
				continue // a slot being imported or migrated
			}
			lo, hi, ok := strings.Cut(r, "-")
			if !ok {
				hi = lo
			}
			a, _ := strconv.Atoi(lo)
			b, _ := strconv.Atoi(hi)
			ni.slots = append(ni.slots, [2]int{a, b})
		}
		out = append(out, ni)
	}
	return out, nil
}

// owner is the node serving slot in view, and its replicas.
func owner(view []nodeInfo, slot int) (prim nodeInfo, replicas []nodeInfo, ok bool) {
	for _, ni := range view {
		if !ni.primary || ni.failed {
			continue
		}
		for _, r := range ni.slots {
			if slot >= r[0] && slot <= r[1] {
				prim, ok = ni, true
			}
		}
	}
	if !ok {
		return prim, nil, false
	}
	for _, ni := range view {
		if !ni.primary && ni.primaryID == prim.id && !ni.failed {
			replicas = append(replicas, ni)
		}
	}
	return prim, replicas, true
}

// PrimaryOf is the node serving key's slot now, as every live node agrees.
func (c *Cluster) PrimaryOf(t TB, key string) *ClusterNode {
	t.Helper()
	slot := c.Slot(t, key)
	var addr string
	wait.For(t, clusterBound, "every live node agrees on the primary of slot "+strconv.Itoa(slot), func() bool {
		addr = ""
		for _, n := range c.live() {
			v, err := c.view(n)
			if err != nil {
				return false
			}
			p, _, ok := owner(v, slot)
			if !ok || (addr != "" && p.addr != addr) {
				return false
			}
			addr = p.addr
		}
		return addr != ""
	})
	return c.Node(addr)
}

// Primaries are the live primaries, as the first live node sees them.
func (c *Cluster) Primaries(t TB) []*ClusterNode {
	t.Helper()
	v, err := c.view(c.live()[0])
	if err != nil {
		t.Fatalf("redistest: CLUSTER NODES: %v", err)
	}
	var out []*ClusterNode
	for _, ni := range v {
		if ni.primary && !ni.failed && len(ni.slots) > 0 {
			if n := c.Node(ni.addr); n != nil && n.Running() {
				out = append(out, n)
			}
		}
	}
	return out
}

// syncedReplicas counts the live replicas whose link to their primary is
// up with no sync in progress.
func (c *Cluster) syncedReplicas() int {
	n := 0
	for _, node := range c.live() {
		ctx, cancel := bounded()
		repl, err := node.client.Info(ctx, "replication").Result()
		cancel()
		if err == nil && strings.Contains(repl, "role:slave") && strings.Contains(repl, "master_link_status:up") &&
			strings.Contains(repl, "master_sync_in_progress:0") {
			n++
		}
	}
	return n
}

// waitStreaming writes a key on every primary and waits (bounded) until
// each of its replicas has it. A replica synced without disk is "online"
// before its primary streams it any write: Redis 7 starts the stream at the
// replica's first REPLCONF ACK, up to a second later, and a primary killed
// before that takes every write since the sync with it (its replica is
// promoted empty).
func (c *Cluster) waitStreaming(t TB) {
	t.Helper()
	if c.replicas == 0 {
		return
	}
	for _, p := range c.Primaries(t) {
		v, err := c.view(p)
		if err != nil {
			t.Fatalf("redistest: CLUSTER NODES: %v", err)
		}
		var slots [][2]int
		for _, ni := range v {
			if ni.addr == p.Addr {
				slots = ni.slots
			}
		}
		key := ""
		for i := 0; i < 100000 && key == ""; i++ {
			k := "redistest:stream:" + strconv.Itoa(i)
			s := c.Slot(t, k)
			for _, r := range slots {
				if s >= r[0] && s <= r[1] {
					key = k
				}
			}
		}
		ctx, cancel := bounded()
		err = p.client.Set(ctx, key, "1", 0).Err()
		cancel()
		if key == "" || err != nil {
			t.Fatalf("redistest: write a key of %s's slots (%q): %v", p.Addr, key, err)
		}
		wait.For(t, clusterBound, "the replicas of "+p.Addr+" have its writes", func() bool {
			ctx, cancel := bounded()
			defer cancel()
			repl, err := p.client.Info(ctx, "replication").Result()
			if err != nil {
				return false
			}
			var off string
			var replicaOffs []string
			for _, line := range strings.Split(repl, "\r\n") {
				if v, ok := strings.CutPrefix(line, "master_repl_offset:"); ok {
					off = v
				}
				if strings.HasPrefix(line, "slave") && strings.Contains(line, "offset=") {
					f := line[strings.Index(line, "offset=")+len("offset="):]
					replicaOffs = append(replicaOffs, strings.SplitN(f, ",", 2)[0])
				}
			}
			if off == "" || off == "0" {
				return false
			}
			for _, o := range replicaOffs {
				if o != off {
					return false
				}
			}
			return true
		})
	}
}

// WaitHealthy waits (bounded) until every live node reports
// cluster_state:ok and all 16384 slots ok, and every live replica's link
// to its primary is up.
func (c *Cluster) WaitHealthy(t TB) {
	t.Helper()
	var last string
	if !wait.Until(clusterBound, func() bool {
		for _, n := range c.live() {
			ctx, cancel := bounded()
			info, err := n.client.ClusterInfo(ctx).Result()
			repl, rerr := n.client.Info(ctx, "replication").Result()
			cancel()
			switch {
			case err != nil || rerr != nil:
				last = fmt.Sprintf("%s: %v %v", n.Addr, err, rerr)
				return false
			case !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_ok:16384"):
				last = n.Addr + ": " + info
				return false
			case strings.Contains(repl, "role:slave") && (!strings.Contains(repl, "master_link_status:up") || !strings.Contains(repl, "master_sync_in_progress:0")):
				last = n.Addr + ": replica not linked: " + repl
				return false
			}
		}
		return true
	}) {
		t.Fatalf("redistest: cluster not healthy within %s: %s", clusterBound, last)
	}
}

// KillPrimaryOf kills -9 the primary serving key's slot and waits
// (bounded) until one of its replicas serves the slot instead, as every
// live node agrees, and the cluster is healthy again. It returns the
// killed node and the promoted one.
func (c *Cluster) KillPrimaryOf(t TB, key string) (killed, promoted *ClusterNode) {
	t.Helper()
	killed = c.PrimaryOf(t, key)
	if err := killed.Kill(); err != nil {
		t.Fatalf("%v", err)
	}
	promoted = c.waitNewPrimary(t, key, killed)
	return killed, promoted
}

// FailoverOf runs CLUSTER FAILOVER on a replica of the primary serving
// key's slot (a manual, coordinated failover: the replica catches up with
// its primary first) and waits (bounded) until it serves the slot. It
// returns the old primary and the new one.
func (c *Cluster) FailoverOf(t TB, key string) (old, promoted *ClusterNode) {
	t.Helper()
	old = c.PrimaryOf(t, key)
	v, err := c.view(old)
	if err != nil {
		t.Fatalf("redistest: CLUSTER NODES: %v", err)
	}
	_, replicas, ok := owner(v, c.Slot(t, key))
	if !ok || len(replicas) == 0 {
		t.Fatalf("redistest: the primary %s of %q has no replica to fail over to", old.Addr, key)
	}
	rep := c.Node(replicas[0].addr)
	ctx, cancel := bounded()
	err = rep.client.Do(ctx, "CLUSTER", "FAILOVER").Err()
	cancel()
	if err != nil {
		t.Fatalf("redistest: CLUSTER FAILOVER on %s: %v", rep.Addr, err)
	}
	promoted = c.waitNewPrimary(t, key, old)
	return old, promoted
}

func (c *Cluster) waitNewPrimary(t TB, key string, old *ClusterNode) *ClusterNode {
	t.Helper()
	slot := c.Slot(t, key)
	var addr string
	wait.For(t, clusterBound, "a new primary of slot "+strconv.Itoa(slot)+" that every live node agrees on", func() bool {
		addr = ""
		for _, n := range c.live() {
			v, err := c.view(n)
			if err != nil {
				return false
			}
			p, _, ok := owner(v, slot)
			if !ok || p.addr == old.Addr || (addr != "" && p.addr != addr) {
				return false
			}
			addr = p.addr
		}
		return addr != ""
	})
	c.WaitHealthy(t)
	return c.Node(addr)
}

// MigrateSlotOf moves key's slot, with every key in it, to the primary to
// (which must be another primary), the way redis-cli --cluster reshard
// does (clusterslot.Migrate: CLUSTER SETSLOT IMPORTING on to, MIGRATING on
// the owner, MIGRATE of the slot's keys in batches until none is left, then
// SETSLOT NODE on to, on the owner and on every other primary), and waits
// until every live node sees it on to. It returns the old owner.
func (c *Cluster) MigrateSlotOf(t TB, key string, to *ClusterNode) *ClusterNode {
	t.Helper()
	slot := c.Slot(t, key)
	from := c.PrimaryOf(t, key)
	if from == to {
		t.Fatalf("redistest: slot %d is on %s already", slot, to.Addr)
	}
	var others []clusterslot.Node
	for _, p := range c.Primaries(t) {
		if p != to && p != from {
			others = append(others, clusterslot.Node{Name: p.Addr, Client: p.client, Addr: p.Addr})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterBound)
	defer cancel()
	if err := clusterslot.Migrate(ctx, slot,
		clusterslot.Node{Name: from.Addr, Client: from.client, Addr: from.Addr},
		clusterslot.Node{Name: to.Addr, Client: to.client, Addr: to.Addr}, others); err != nil {
		t.Fatalf("redistest: migrate slot %d from %s to %s: %v", slot, from.Addr, to.Addr, err)
	}
	wait.For(t, clusterBound, "every live node sees slot "+strconv.Itoa(slot)+" on "+to.Addr, func() bool {
		for _, n := range c.live() {
			v, err := c.view(n)
			if err != nil {
				return false
			}
			if p, _, ok := owner(v, slot); !ok || p.addr != to.Addr {
				return false
			}
		}
		return true
	})
	return from
}

// ReplicasOf are the live replicas of the primary serving key's slot, as
// that primary sees them (CLUSTER NODES).
func (c *Cluster) ReplicasOf(t TB, key string) []*ClusterNode {
	t.Helper()
	p := c.PrimaryOf(t, key)
	v, err := c.view(p)
	if err != nil {
		t.Fatalf("redistest: CLUSTER NODES on %s: %v", p.Addr, err)
	}
	_, replicas, _ := owner(v, c.Slot(t, key))
	var out []*ClusterNode
	for _, r := range replicas {
		if n := c.Node(r.addr); n != nil && n.Running() {
			out = append(out, n)
		}
	}
	return out
}

// CutReplicaOf leaves the primary of key's slot writing alone while its one
// replica still counts as its replica: the replica is frozen (Freeze, thawed
// at the end of the test if still frozen) and the primary drops its
// replication link (CLIENT KILL TYPE replica), so that what the primary
// acks from now on is on no replica until Thaw. It waits until the primary
// has no replica connected and returns the two; a slot whose primary has
// other than one replica fails the test.
func (c *Cluster) CutReplicaOf(t TB, key string) (primary, replica *ClusterNode) {
	t.Helper()
	primary = c.PrimaryOf(t, key)
	replicas := c.ReplicasOf(t, key)
	if len(replicas) != 1 {
		t.Fatalf("the room's primary %s has replicas %v, want one", primary.Addr, replicas)
	}
	replica = replicas[0]
	if err := replica.Freeze(); err != nil {
		t.Fatalf("redistest: freeze %s: %v", replica.Addr, err)
	}
	t.Cleanup(func() {
		if replica.Frozen() {
			_ = replica.Thaw()
		}
	})
	ctx := context.Background()
	if err := primary.Client().Do(ctx, "CLIENT", "KILL", "TYPE", "replica").Err(); err != nil {
		t.Fatalf("CLIENT KILL TYPE replica on %s: %v", primary.Addr, err)
	}
	wait.For(t, 30*time.Second, "the room's primary has no replica connected", func() bool {
		info, err := primary.Client().Info(ctx, "replication").Result()
		return err == nil && strings.Contains(info, "connected_slaves:0\r\n")
	})
	return primary, replica
}

// Freeze stops the node's process (SIGSTOP by pid, redisproc's Pause):
// it reads, answers and replicates nothing until Thaw, while its sockets
// stay open.
func (n *ClusterNode) Freeze() error {
	if err := n.srv.Pause(); err != nil {
		return fmt.Errorf("redistest: %w", err)
	}
	return nil
}

// Thaw continues a node stopped by Freeze (SIGCONT by pid).
func (n *ClusterNode) Thaw() error {
	if err := n.srv.Resume(); err != nil {
		return fmt.Errorf("redistest: %w", err)
	}
	return nil
}

// Frozen reports whether Freeze was called and Thaw has not been since.
func (n *ClusterNode) Frozen() bool { return n.srv.Paused() }

// Restart starts a killed node again on its address and directory: it
// rejoins the cluster with its nodes.conf (a primary whose slots were taken
// over comes back as a replica of the node that took them). It waits
// (bounded) until the cluster is healthy, every replica the create made is
// synced with its primary again, and every primary streams its writes to
// its replicas.
func (c *Cluster) Restart(t TB, n *ClusterNode) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clusterBound)
	err := n.srv.Restart(ctx)
	cancel()
	if err != nil {
		t.Fatalf("redistest: restart %s: %v", n.Addr, err)
	}
	c.WaitHealthy(t)
	wait.For(t, clusterBound, fmt.Sprintf("%d replicas synced with their primaries", c.replicas), func() bool {
		return c.syncedReplicas() == c.replicas
	})
	c.waitStreaming(t)
}

// TakeOver makes replica, a replica of the killed primary of key's slot,
// take the slot over by itself (CLUSTER FAILOVER TAKEOVER: no vote of the
// other primaries, no handshake with the dead one), for a replica the
// cluster will not elect in time (one that was frozen while its primary
// died), and waits (bounded) until every live node sees it serve the slot
// and the cluster is healthy. An error of the TAKEOVER because the replica
// got elected meanwhile is no failure.
func (c *Cluster) TakeOver(t TB, key string, killed, replica *ClusterNode) {
	t.Helper()
	ctx, cancel := bounded()
	err := replica.client.Do(ctx, "CLUSTER", "FAILOVER", "TAKEOVER").Err()
	cancel()
	if err != nil {
		ctx, cancel := bounded()
		role, rerr := replica.client.Do(ctx, "ROLE").Slice()
		cancel()
		if rerr != nil || len(role) == 0 || role[0] != "master" {
			t.Fatalf("redistest: CLUSTER FAILOVER TAKEOVER on %s: %v (ROLE: %v %v)", replica.Addr, err, role, rerr)
		}
	}
	if got := c.waitNewPrimary(t, key, killed); got != replica {
		t.Fatalf("redistest: slot of %q taken over by %v, not %s", key, got, replica.Addr)
	}
}
