package lab_test

// A region on Redis Cluster (topology redis.mode cluster), on real
// processes: the lab makes the cluster, every slot is served, the cluster
// names only the proxies in front of its nodes, and a command for a key
// reaches the key's node through that node's proxy and no other way.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/geolab/geolab/gateway/broker"
	"github.com/geolab/geolab/internal/harness"
	"github.com/geolab/geolab/internal/wsprobe"
	"github.com/geolab/geolab/lab"
	"github.com/geolab/geolab/lab/fault"
	"github.com/geolab/geolab/lab/link"
	"github.com/geolab/geolab/lab/provider"
	"github.com/geolab/geolab/lab/topology"
)

// clusterTopology is one region, us-east, on a cluster of 3 shards of 1
// primary and 1 replica.
func clusterTopology(t *testing.T) *topology.Topology {
	t.Helper()
	topo, err := topology.Parse([]byte(`name: one-cluster
source: "test: no WAN"
regions:
  - name: us-east
    redis: {mode: cluster, shards: 3, replicas: 1}
lan: {ms: 1}
`))
	if err != nil {
		t.Fatal(err)
	}
	return topo
}

// startCluster brings the cluster region up, Redis only (the gateway does
// not speak cluster yet), and closes it when t ends, checking that no node
// outlives Close.
func startCluster(t *testing.T) *lab.Lab {
	t.Helper()
	harness.RequireProvider(t, provider.ProcessName)
	opts := harness.Options(t, lab.Options{RedisOnly: true})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	l, err := lab.Start(ctx, clusterTopology(t), opts)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Logf("cluster region up in %s", time.Since(start).Round(time.Millisecond))
	var pids []int
	for _, n := range l.Region("us-east").Cluster().Nodes() {
		pids = append(pids, n.Pid())
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		for _, pid := range pids {
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("node pid %d still exists after Close (kill -0: %v)", pid, err)
			}
		}
	})
	return l
}

// systemClient is a cluster client as the system under test has one: seeded
// with the announced addresses and dialing what the cluster names, with
// short timeouts and few retries so that a closed proxy shows at once.
func systemClient(t *testing.T, seeds []string) *redis.ClusterClient {
	t.Helper()
	c := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: seeds, MaxRetries: 1, MaxRedirects: 2, DisableIdentity: true,
		DialTimeout: 500 * time.Millisecond, ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestClusterRegion(t *testing.T) {
	l := startCluster(t)
	ctx := context.Background()
	reg := l.Region("us-east")
	c := reg.Cluster()
	nodes := c.Nodes()
	if len(nodes) != 6 || reg.Redis() != nil {
		t.Fatalf("%d nodes (want 3 shards × 2 = 6), Redis() %v (want nil for a cluster)", len(nodes), reg.Redis())
	}

	// Every node runs behind a LAN link of its own, which it announces.
	proxies := map[string]string{} // announced → node
	own := map[string]string{}     // own address → node
	for _, n := range nodes {
		ln, ok := l.Net().Get(link.Name(link.LAN, "us-east", "us-east", n.ID()))
		if !ok || ln.Listen != n.Announced() || ln.Upstream != n.Addr() {
			t.Fatalf("%s: link %+v (found %v), want listen %s upstream %s", n.ID(), ln, ok, n.Announced(), n.Addr())
		}
		if !n.Running() {
			t.Fatalf("%s (pid %d) not running", n.ID(), n.Pid())
		}
		proxies[n.Announced()], own[n.Addr()] = n.ID(), n.ID()
	}
	if got := reg.RedisAddrs(); !slices.Equal(got, c.Seeds()) || len(got) != 6 {
		t.Fatalf("RedisAddrs %v, want the 6 seeds %v", got, c.Seeds())
	}

	// Every slot is served, and CLUSTER SLOTS names only the proxies: asked
	// of every node (directly), every primary and replica address in it is
	// a proxy and no node's own port.
	for _, n := range nodes {
		rc := redis.NewClient(&redis.Options{Addr: n.Addr(), DisableIdentity: true, MaxRetries: -1})
		//lint:ignore SA1019 CLUSTER SLOTS is what the announced addresses are checked against; CLUSTER SHARDS says the same in another shape
		slots, err := rc.ClusterSlots(ctx).Result()
		_ = rc.Close()
		if err != nil {
			t.Fatalf("CLUSTER SLOTS of %s: %v", n.ID(), err)
		}
		served := 0
		for _, s := range slots {
			served += s.End - s.Start + 1
			if len(s.Nodes) != 2 {
				t.Errorf("%s: slots %d-%d served by %d nodes, want a primary and a replica", n.ID(), s.Start, s.End, len(s.Nodes))
			}
			for _, sn := range s.Nodes {
				if _, ok := proxies[sn.Addr]; !ok {
					t.Errorf("%s: CLUSTER SLOTS %d-%d names %s, not a proxy (own addresses: %v)", n.ID(), s.Start, s.End, sn.Addr, own)
				}
				if _, ok := own[sn.Addr]; ok {
					t.Errorf("%s: CLUSTER SLOTS names %s, a node's own address: a client would go around Toxiproxy", n.ID(), sn.Addr)
				}
			}
		}
		if served != 16384 {
			t.Errorf("%s: CLUSTER SLOTS serves %d slots, want 16384", n.ID(), served)
		}
	}

	// The shards as the lab reports them: 3, each a primary and a replica,
	// the slot ranges covering every slot once.
	st := l.Status(ctx)
	cs := st.Regions[0].Cluster
	if cs == nil || cs.Error != "" || len(cs.Shards) != 3 || len(cs.Nodes) != 6 {
		t.Fatalf("status cluster %+v, want 3 shards of 6 nodes", cs)
	}
	covered := 0
	seen := map[string]bool{}
	for _, sh := range cs.Shards {
		if sh.Primary == "" || len(sh.Replicas) != 1 {
			t.Errorf("shard %d: primary %q replicas %v", sh.Index, sh.Primary, sh.Replicas)
		}
		for _, id := range append([]string{sh.Primary}, sh.Replicas...) {
			if seen[id] {
				t.Errorf("node %s in two shards", id)
			}
			seen[id] = true
		}
		for _, r := range sh.Slots {
			a, b, _ := strings.Cut(r, "-")
			lo, _ := strconv.Atoi(a)
			hi, _ := strconv.Atoi(b)
			covered += hi - lo + 1
		}
	}
	if covered != 16384 {
		t.Errorf("the shards' slot ranges cover %d slots, want 16384", covered)
	}

	// A one-node client of a cluster region is refused, naming what to use.
	if _, err := reg.RedisClient(); err == nil || !strings.Contains(err.Error(), "RedisClusterClient") {
		t.Errorf("RedisClient of a cluster region: %v, want an error naming RedisClusterClient", err)
	}

	// A command for a key reaches the key's primary through its proxy: with
	// that proxy closed the command fails, and only that proxy matters.
	sys := systemClient(t, c.Seeds())
	key := "{geolab:cluster-test}k"
	if err := sys.Set(ctx, key, "v1", 0).Err(); err != nil {
		t.Fatalf("SET through the proxies: %v", err)
	}
	primary := primaryOf(t, ctx, sys, key, proxies)
	other := keyOnAnotherNode(t, ctx, sys, primary, proxies)
	lanOf := link.Name(link.LAN, "us-east", "us-east", primary)
	if err := l.Net().Disable(lanOf, "cluster-test"); err != nil {
		t.Fatal(err)
	}
	if err := sys.Set(ctx, key, "v2", 0).Err(); err == nil {
		t.Fatalf("SET %s succeeded with %s's proxy %s closed: the client reached the node around Toxiproxy", key, primary, lanOf)
	}
	// Another shard's key still works: the other proxies are open.
	if err := sys.Set(ctx, other, "x", 0).Err(); err != nil {
		t.Fatalf("SET %s (another shard) with only %s closed: %v", other, lanOf, err)
	}
	// The lab's own client dials the nodes directly: it reads through the cut.
	labc, err := reg.RedisUniversalClient()
	if err != nil {
		t.Fatal(err)
	}
	defer labc.Close()
	if v, err := labc.Get(ctx, key).Result(); err != nil || v != "v1" {
		t.Fatalf("the lab's own client, %s's proxy closed: GET %q %v, want v1", primary, v, err)
	}
	if err := l.Net().Enable(lanOf, "cluster-test"); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, 10*time.Second, "SET through the reopened proxy", func() bool { return sys.Set(ctx, key, "v3", 0).Err() == nil })
	if v, err := labc.Get(ctx, key).Result(); err != nil || v != "v3" {
		t.Fatalf("GET %s after the proxy reopened: %q %v, want v3", key, v, err)
	}
}

// primaryOf names the node whose proxy serves key's slot, as the cluster
// tells a client.
func primaryOf(t *testing.T, ctx context.Context, c *redis.ClusterClient, key string, proxies map[string]string) string {
	t.Helper()
	slot, err := c.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	//lint:ignore SA1019 as above: CLUSTER SLOTS, deprecated in Redis 7 but served by it
	slots, err := c.ClusterSlots(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range slots {
		if int64(s.Start) <= slot && slot <= int64(s.End) {
			id, ok := proxies[s.Nodes[0].Addr]
			if !ok {
				t.Fatalf("slot %d served at %s, not a proxy", slot, s.Nodes[0].Addr)
			}
			return id
		}
	}
	t.Fatalf("slot %d of %s is served by no node", slot, key)
	return ""
}

// keyOnAnotherNode finds a key whose primary is not node.
func keyOnAnotherNode(t *testing.T, ctx context.Context, c *redis.ClusterClient, node string, proxies map[string]string) string {
	t.Helper()
	for i := range 64 {
		k := fmt.Sprintf("{geolab:other-%d}k", i)
		if primaryOf(t, ctx, c, k, proxies) != node {
			return k
		}
	}
	t.Fatalf("64 keys all on %s", node)
	return ""
}

// TestClusterRefusedOnDocker: the docker and swarm providers do not run a
// cluster, and lab.Start says so before it starts anything.
func TestClusterRefusedOnDocker(t *testing.T) {
	for _, p := range []string{provider.DockerName, provider.SwarmName} {
		_, err := lab.Start(context.Background(), clusterTopology(t), lab.Options{Provider: p})
		if err == nil || !errors.Is(err, provider.ErrClusterNeedsProcess) || !strings.Contains(err.Error(), "region us-east: redis mode cluster on the "+p+" provider") {
			t.Fatalf("%s: error %v, want the region named and provider.ErrClusterNeedsProcess", p, err)
		}
	}
}

// shardNow is shard n of us-east as the cluster reports it now.
func shardNow(t *testing.T, l *lab.Lab, n int) (provider.Shard, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	shards, err := l.Region("us-east").Cluster().Shards(ctx)
	if err != nil || len(shards) < n {
		return provider.Shard{}, false
	}
	return shards[n-1], true
}

// ids names nodes by ID.
func nodeIDs(ns []provider.ClusterNode) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.ID())
	}
	return out
}

// writeAndReplicate writes key=v on primary (directly: it owns key's slot)
// and waits until a replica has it (WAIT 1), so that a failover keeps it.
func writeAndReplicate(t *testing.T, primary provider.ClusterNode, key, v string) {
	t.Helper()
	ctx := context.Background()
	rc := redis.NewClient(&redis.Options{Addr: primary.Addr(), DisableIdentity: true, MaxRetries: -1, PoolSize: 1})
	defer rc.Close()
	if err := rc.Set(ctx, key, v, 0).Err(); err != nil {
		t.Fatalf("SET %s on %s: %v", key, primary.ID(), err)
	}
	if n, err := rc.Wait(ctx, 1, 5*time.Second).Result(); err != nil || n < 1 {
		t.Fatalf("WAIT 1 on %s: %d %v", primary.ID(), n, err)
	}
}

// keyIn finds a key whose slot shard serves.
func keyIn(t *testing.T, c *redis.ClusterClient, sh provider.Shard) string {
	t.Helper()
	for i := range 256 {
		k := fmt.Sprintf("{geolab:shard-%d}k", i)
		slot, err := c.ClusterKeySlot(context.Background(), k).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range sh.Slots {
			if int64(r[0]) <= slot && slot <= int64(r[1]) {
				return k
			}
		}
	}
	t.Fatalf("no key of 256 in shard %d", sh.Index)
	return ""
}

// TestShardKill: kill -9 of shard 1's primary; its replica takes over with
// the replicated data, clients reach it through its proxy; the heal brings
// the killed node back as the new primary's replica.
func TestShardKill(t *testing.T) {
	l := startCluster(t)
	ctx := context.Background()
	before, ok := shardNow(t, l, 1)
	if !ok || before.Primary == nil || len(before.Replicas) != 1 {
		t.Fatalf("shard 1 before: %+v", before)
	}
	victim, heir := before.Primary, before.Replicas[0]
	sys := systemClient(t, l.Region("us-east").Cluster().Seeds())
	key := keyIn(t, sys, before)
	writeAndReplicate(t, victim, key, "kept")

	a, err := l.Inject(ctx, fault.Spec{Kind: "shard-kill", Regions: []string{"us-east"}})
	if err != nil {
		t.Fatal(err)
	}
	if a.Spec.Shard != 1 || a.Target != "us-east/shard-1" {
		t.Errorf("recorded %+v (target %s), want the default shard 1", a.Spec, a.Target)
	}
	if victim.Running() {
		t.Fatalf("%s (pid %d) still running after shard-kill", victim.ID(), victim.Pid())
	}
	start := time.Now()
	harness.WaitFor(t, 60*time.Second, heir.ID()+" promoted", func() bool {
		sh, ok := shardNow(t, l, 1)
		return ok && sh.Primary != nil && sh.Primary.ID() == heir.ID()
	})
	t.Logf("%s took over from %s in %s", heir.ID(), victim.ID(), time.Since(start).Round(100*time.Millisecond))
	// go-redis reloads its slot map on MOVED, or every
	// ClusterStateReloadInterval (60 s): a dead primary's proxy answers EOF,
	// not MOVED, so a client must reload on such errors itself.
	harness.WaitFor(t, 30*time.Second, "GET through the new primary's proxy", func() bool {
		v, err := sys.Get(ctx, key).Result()
		if err != nil {
			sys.ReloadState(ctx)
		}
		return err == nil && v == "kept"
	})

	harness.Heal(t, l)
	harness.WaitFor(t, 60*time.Second, victim.ID()+" back as "+heir.ID()+"'s replica", func() bool {
		sh, ok := shardNow(t, l, 1)
		return ok && victim.Running() && sh.Primary != nil && sh.Primary.ID() == heir.ID() &&
			slices.Equal(nodeIDs(sh.Replicas), []string{victim.ID()}) && len(sh.Failed) == 0
	})
	if len(l.Faults().List()) != 0 {
		t.Fatalf("faults still active after heal: %v", l.Faults().List())
	}
}

// TestReplicaPauseThenShardKillLosesWhatOnlyThePrimaryHad: replica-pause
// freezes shard 1's replica and cuts its replication link, so a write the
// primary acks meanwhile reaches no replica (WAIT counts none); a shard-kill
// of that primary, then the replica continued (the pause healed), promotes
// a replica that has what was written before the pause and not what was
// written during it: the acked-but-lost edge of docs/guarantees.md, made by
// two faults. The heals bring the killed node back as a replica.
func TestReplicaPauseThenShardKillLosesWhatOnlyThePrimaryHad(t *testing.T) {
	l := startCluster(t)
	ctx := context.Background()
	before, ok := shardNow(t, l, 1)
	if !ok || before.Primary == nil || len(before.Replicas) != 1 {
		t.Fatalf("shard 1 before: %+v", before)
	}
	primary, replica := before.Primary, before.Replicas[0]
	sys := systemClient(t, l.Region("us-east").Cluster().Seeds())
	key := keyIn(t, sys, before)
	writeAndReplicate(t, primary, key, "kept")

	pause, err := l.Inject(ctx, fault.Spec{Kind: "replica-pause", Regions: []string{"us-east"}})
	if err != nil {
		t.Fatal(err)
	}
	if pause.Target != "us-east/shard-1" || !replica.Paused() || !primary.Running() || primary.Paused() {
		t.Fatalf("after replica-pause: target %s, replica %s paused %v, primary %s running %v paused %v",
			pause.Target, replica.ID(), replica.Paused(), primary.ID(), primary.Running(), primary.Paused())
	}
	rc := redis.NewClient(&redis.Options{Addr: primary.Addr(), DisableIdentity: true, MaxRetries: -1, PoolSize: 1})
	defer rc.Close()
	if err := rc.Set(ctx, key, "acked by the primary alone", 0).Err(); err != nil {
		t.Fatalf("SET on %s during the pause: %v", primary.ID(), err)
	}
	if n, err := rc.Wait(ctx, 1, 500*time.Millisecond).Result(); err != nil || n != 0 {
		t.Fatalf("WAIT 1 on %s during the pause: %d replicas confirmed (err %v), want 0: the replica still follows", primary.ID(), n, err)
	}

	if _, err := l.Inject(ctx, fault.Spec{Kind: "shard-kill", Regions: []string{"us-east"}}); err != nil {
		t.Fatal(err)
	}
	if err := l.Faults().Heal(ctx, pause.ID); err != nil {
		t.Fatalf("heal replica-pause: %v", err)
	}
	if replica.Paused() {
		t.Fatalf("%s still frozen after the heal", replica.ID())
	}
	harness.WaitFor(t, 60*time.Second, replica.ID()+" promoted", func() bool {
		sh, ok := shardNow(t, l, 1)
		return ok && sh.Primary != nil && sh.Primary.ID() == replica.ID()
	})
	harness.WaitFor(t, 30*time.Second, "GET through the new primary's proxy", func() bool {
		_, err := sys.Get(ctx, key).Result()
		if err != nil {
			sys.ReloadState(ctx)
		}
		return err == nil
	})
	if v, err := sys.Get(ctx, key).Result(); err != nil || v != "kept" {
		t.Fatalf("the promoted replica has %q (err %v), want %q: the write acked during the pause should be lost", v, err, "kept")
	}

	harness.Heal(t, l)
	harness.WaitFor(t, 60*time.Second, primary.ID()+" back as "+replica.ID()+"'s replica", func() bool {
		sh, ok := shardNow(t, l, 1)
		return ok && primary.Running() && sh.Primary != nil && sh.Primary.ID() == replica.ID() &&
			slices.Equal(nodeIDs(sh.Replicas), []string{primary.ID()}) && len(sh.Failed) == 0
	})
}

// TestShardFailover: CLUSTER FAILOVER hands shard 2 to its replica, and the
// heal hands it back; clients follow through the proxies both times.
func TestShardFailover(t *testing.T) {
	l := startCluster(t)
	ctx := context.Background()
	before, ok := shardNow(t, l, 2)
	if !ok || before.Primary == nil || len(before.Replicas) != 1 {
		t.Fatalf("shard 2 before: %+v", before)
	}
	primary, replica := before.Primary, before.Replicas[0]
	sys := systemClient(t, l.Region("us-east").Cluster().Seeds())
	key := keyIn(t, sys, before)
	if err := sys.Set(ctx, key, "v1", 0).Err(); err != nil {
		t.Fatal(err)
	}

	if _, err := l.Inject(ctx, fault.Spec{Kind: "shard-failover", Regions: []string{"us-east"}, Shard: 2}); err != nil {
		t.Fatal(err)
	}
	if !primary.Running() || !replica.Running() {
		t.Fatal("a manual failover stopped a node")
	}
	harness.WaitFor(t, 15*time.Second, replica.ID()+" serves shard 2", func() bool {
		sh, ok := shardNow(t, l, 2)
		return ok && sh.Primary != nil && sh.Primary.ID() == replica.ID() && slices.Equal(nodeIDs(sh.Replicas), []string{primary.ID()})
	})
	harness.WaitFor(t, 15*time.Second, "the client follows to the new primary", func() bool {
		v, err := sys.Get(ctx, key).Result()
		return err == nil && v == "v1" && sys.Set(ctx, key, "v2", 0).Err() == nil
	})

	harness.Heal(t, l)
	harness.WaitFor(t, 15*time.Second, primary.ID()+" serves shard 2 again", func() bool {
		sh, ok := shardNow(t, l, 2)
		return ok && sh.Primary != nil && sh.Primary.ID() == primary.ID() && slices.Equal(nodeIDs(sh.Replicas), []string{replica.ID()})
	})
	harness.WaitFor(t, 15*time.Second, "the client follows back", func() bool {
		v, err := sys.Get(ctx, key).Result()
		return err == nil && v == "v2"
	})
}

// TestShardFaultsRefuseAStandaloneRegion: a shard fault on a region that
// runs one Redis is refused before it acts, naming the region's mode.
func TestShardFaultsRefuseAStandaloneRegion(t *testing.T) {
	l := harness.StartLab(t, "single-region.yaml", lab.Options{RedisOnly: true})
	for _, kind := range []string{"shard-kill", "shard-failover", "slot-migrate", "replica-pause"} {
		_, err := l.Inject(context.Background(), fault.Spec{Kind: kind, Regions: []string{"us-east"}})
		if err == nil || !strings.Contains(err.Error(), "us-east runs one Redis (redis.mode standalone)") {
			t.Errorf("%s on a standalone region: %v", kind, err)
		}
	}
	if !l.Region("us-east").Redis().Running() {
		t.Fatal("the region's Redis is down after refused shard faults")
	}
}

// TestClusterStatusShowsWhereGatewaysSubscribe: on a cluster region with
// gateways, the lab's status names, for each gateway, the primary (by node
// ID) on which it subscribes each hosted room, as the gateway's /status
// says: the room's owner, and nothing for a gateway that hosts no room.
func TestClusterStatusShowsWhereGatewaysSubscribe(t *testing.T) {
	harness.RequireProvider(t, provider.ProcessName)
	topo := clusterTopology(t)
	topo.Regions[0].Gateways = 2
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l, err := lab.Start(ctx, topo, harness.Options(t, lab.Options{}))
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	tok, err := l.Token("status-probe", []string{"*"}, []string{"*"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	room := "tenant:status"
	c := wsprobe.Open(t, l.Region("us-east").Gateway(1).Listen, tok)
	c.Subscribe(room, nil, nil)

	sys := systemClient(t, l.Region("us-east").Cluster().Seeds())
	slot, err := sys.ClusterKeySlot(ctx, broker.Clustered.Channel(room)).Result()
	if err != nil {
		t.Fatal(err)
	}
	owner := ""
	shards, err := l.Region("us-east").Cluster().Shards(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, sh := range shards {
		for _, r := range sh.Slots {
			if int(slot) >= r[0] && int(slot) <= r[1] {
				owner = sh.Primary.ID()
			}
		}
	}
	var subs []lab.ShardSubscriber
	harness.WaitFor(t, 15*time.Second, "gw-1 subscribing "+room+" on "+owner+" in the status", func() bool {
		subs = l.Status(ctx).Regions[0].Cluster.Subscribers
		return len(subs) == 2 && subs[0].Rooms[owner] == 1 && len(subs[0].Rooms) == 1
	})
	if subs[0].Gateway != "gw-1" || subs[1].Gateway != "gw-2" || len(subs[1].Rooms) != 0 || subs[1].Error != "" {
		t.Fatalf("subscribers %+v, want gw-1 on %s with 1 room and gw-2 on none", subs, owner)
	}
}
