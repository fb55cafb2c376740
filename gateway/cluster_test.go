package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/geolab/geolab/gateway"
	"github.com/geolab/geolab/gateway/broker"
	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/internal/redistest"
	"github.com/geolab/geolab/internal/wait"
	"github.com/geolab/geolab/internal/wsprobe"
)

// clusterAddr is --redis for a cluster: its seeds, comma-separated.
func clusterAddr(c *redistest.Cluster) string { return strings.Join(c.Seeds(), ",") }

// TestClusterPublishSubscribeResume: the gateway on a 3×1 Redis Cluster.
// Rooms on every shard are published, delivered (G1/G2/G3) and resumed
// (G6) through two nodes; each room's keys and its outbox partition share
// one slot, the deliveries travel on sharded pub/sub only (SPUBLISH: the
// owner's PUBSUB SHARDNUMSUB counts the hosting nodes, and no node has a
// plain subscriber of a room), and each node subscribes each room on the
// primary that owns it.
func TestClusterPublishSubscribeResume(t *testing.T) {
	c := redistest.StartCluster(t, 3, 1)
	fed := func(cfg *gateway.Config) { cfg.Federate = []string{"tenant:*"} }
	gw1 := startGateway(t, clusterAddr(c), "us-east", "gw-1", fed)
	gw2 := startGateway(t, clusterAddr(c), "us-east", "gw-2", fed)
	ctx := context.Background()

	// Rooms until every primary owns one.
	owners := map[string]string{} // room → primary
	for i := 0; len(owners) < 12; i++ {
		room := fmt.Sprintf("tenant:%d", i)
		owners[room] = c.PrimaryOf(t, broker.Clustered.HistoryKey(room)).Addr
	}
	var rooms []string
	seen := map[string]bool{}
	for room, p := range owners {
		if !seen[p] {
			seen[p] = true
			rooms = append(rooms, room)
		}
	}
	if len(rooms) != 3 {
		t.Fatalf("rooms of %d primaries, want 3: %v", len(rooms), owners)
	}
	slices.Sort(rooms)

	s1 := newClient(t, gw1.Addr(), "s1")
	s2 := newClient(t, gw2.Addr(), "s2")
	for _, room := range rooms {
		s1.Subscribe(room, nil, nil)
		s2.Subscribe(room, nil, nil)
	}
	for _, room := range rooms {
		owner := c.Node(owners[room])
		ch := broker.Clustered.Channel(room)
		n, err := owner.Client().PubSubShardNumSub(ctx, ch).Result()
		if err != nil || n[ch] != 2 {
			t.Fatalf("G9: PUBSUB SHARDNUMSUB %s on its owner: %v %v, want 2 (the two hosting nodes)", ch, n, err)
		}
		for _, node := range c.Nodes() {
			if m, err := node.Client().PubSubNumSub(ctx, ch).Result(); err != nil || m[ch] != 0 {
				t.Fatalf("PUBSUB NUMSUB %s on %s: %v %v: a plain subscription of a room", ch, node.Addr, m, err)
			}
		}
	}
	if sh := gw1.Shards(); len(sh) != 3 {
		t.Fatalf("gw-1 subscribes on %v, want one shard per primary", sh)
	}
	// /status says the same: each room's owner, one room each.
	resp, err := http.Get("http://" + gw1.Addr() + "/status")
	if err != nil {
		t.Fatal(err)
	}
	var st gateway.NodeStatus
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	wantShards := map[string]int{}
	for _, room := range rooms {
		wantShards[owners[room]]++
	}
	if err != nil || st.Node != "gw-1" || !maps.Equal(st.Shards, wantShards) {
		t.Fatalf("gw-1 /status: %+v (%v), want shards %v (each room's owner)", st, err, wantShards)
	}

	const n = 40
	want := map[string][]string{}
	for _, room := range rooms {
		want[room] = publishAll(t, gw2.Addr(), "p", room, n, nil)
	}
	for i, s := range []*wsprobe.Conn{s1, s2} {
		msgs := s.Collect(n*len(rooms), 30*time.Second)
		got := map[string][]*protocol.ServerFrame{}
		for _, m := range msgs {
			got[m.Room] = append(got[m.Room], m)
		}
		for _, room := range rooms {
			if !slices.Equal(ids(got[room]), want[room]) {
				t.Fatalf("subscriber %d, room %s: got %d messages, want the %d acked in order", i, room, len(got[room]), n)
			}
			wsprobe.CheckStream(t, fmt.Sprintf("subscriber %d room %s", i, room), got[room])
		}
	}

	// Every key of a room, and the outbox partition its events went to,
	// hash to one slot.
	room := rooms[0]
	slot := c.Slot(t, broker.Clustered.HistoryKey(room))
	stream, counter := broker.Clustered.OutboxOf("us-east", room)
	for _, k := range []string{broker.Clustered.SeqKey(room), broker.Clustered.Channel(room), stream, counter, broker.Clustered.IdemPrefix(room)} {
		if s := c.Slot(t, k); s != slot {
			t.Fatalf("%s is in slot %d, the room's history in %d", k, s, slot)
		}
	}
	if l, err := c.Client().XLen(ctx, stream).Result(); err != nil || l < n {
		t.Fatalf("outbox partition %s holds %d entries (%v), want at least %d", stream, l, err, n)
	}

	// A resume from the middle replays exactly the rest.
	r := newClient(t, gw1.Addr(), "r")
	sub := r.Subscribe(room, protocol.Positions{"us-east": 15}, nil)
	if !sub.Recovered || sub.Missed != n-15 {
		t.Fatalf("resume: %+v, want recovered with %d missed", sub, n-15)
	}
	if got := r.Collect(n-15, 10*time.Second); !slices.Equal(ids(got), want[room][15:]) {
		t.Fatalf("resume replayed %d messages, want the %d after oseq 15", len(got), n-15)
	}
}

// TestPartitionTagsSpreadOverTheSlots: partition p's tag hashes into the
// p-th sixteenth of the slots, so that the partitions spread evenly over
// any cluster made with equal slot ranges.
func TestPartitionTagsSpreadOverTheSlots(t *testing.T) {
	c := redistest.StartCluster(t, 3, 0)
	for p := range broker.Partitions {
		s := c.Slot(t, broker.PartitionTag(p))
		if lo, hi := p*16384/broker.Partitions, (p+1)*16384/broker.Partitions; s < lo || s >= hi {
			t.Errorf("partition %d: tag %s is in slot %d, not in [%d, %d)", p, broker.PartitionTag(p), s, lo, hi)
		}
	}
}

// TestRegionLifeOfAClusterChangesWithAnyShardsData: a cluster region's
// data life is every partition's, each in its partition's slot; a primary
// that loses its data (FLUSHALL on it alone) changes the lives of the
// partitions it serves and no other, and a cluster that keeps its data
// keeps its life.
func TestRegionLifeOfAClusterChangesWithAnyShardsData(t *testing.T) {
	c := redistest.StartCluster(t, 3, 0)
	ctx := context.Background()
	b := broker.New(c.Client(), "us-east", broker.DefaultHistory())
	first, err := b.RegionLife(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lives := strings.Split(first, ",")
	if len(lives) != broker.Partitions || slices.Contains(lives, "") {
		t.Fatalf("region life %q: want %d tokens", first, broker.Partitions)
	}
	if again, err := b.RegionLife(ctx); err != nil || again != first {
		t.Fatalf("region life read again: %q %v, want %q", again, err, first)
	}
	flushed := c.PrimaryOf(t, broker.PartitionTag(0))
	if err := flushed.Client().FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	after, err := b.RegionLife(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for p, life := range strings.Split(after, ",") {
		onFlushed := c.PrimaryOf(t, broker.PartitionTag(p)) == flushed
		if changed := life != lives[p]; changed != onFlushed {
			t.Errorf("partition %d (on the flushed primary: %v): life %s → %s", p, onFlushed, lives[p], life)
		}
	}
	if life, err := b.DataLife(ctx, "tenant:x"); err != nil || life != strings.Split(after, ",")[broker.PartitionOf("tenant:x")] {
		t.Fatalf("a room's data life %q %v is not its partition's", life, err)
	}
}

// goTB is a test's TB for a goroutine of its own: a fatal error is
// reported on the test and ends that goroutine alone.
type goTB struct{ *testing.T }

func (g goTB) Fatalf(format string, args ...any) {
	g.T.Errorf(format, args...)
	runtime.Goexit()
}

// g12 publishes n events one at a time into a busy room through gw-2 while
// fault runs (from the 100th), with a subscriber on each of two nodes, then
// 20 more after it: each subscriber gets every acked event exactly once, in
// order, and is never disconnected; each node lost the room's
// subscription and took it up again on the room's new owner.
func g12(t *testing.T, what string, fault func(t redistest.TB, c *redistest.Cluster, key string)) {
	c := redistest.StartCluster(t, 3, 1)
	gw1 := startGateway(t, clusterAddr(c), "us-east", "gw-1")
	gw2 := startGateway(t, clusterAddr(c), "us-east", "gw-2")
	const room, n, after = "room:g12", 300, 20
	s1 := newClient(t, gw1.Addr(), "s1")
	s2 := newClient(t, gw2.Addr(), "s2")
	s1.Subscribe(room, nil, nil)
	s2.Subscribe(room, nil, nil)
	key := broker.Clustered.HistoryKey(room)
	before := c.PrimaryOf(t, key)

	done := make(chan struct{})
	events := publishAll(t, gw2.Addr(), "p", room, n, func(i int) {
		if i == 100 {
			go func() {
				defer close(done)
				fault(goTB{t}, c, key)
			}()
		}
	})
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("%s: the fault did not end within 2 minutes", what)
	}
	if t.Failed() {
		t.FailNow()
	}
	if now := c.PrimaryOf(t, key); now == before {
		t.Fatalf("%s: the room's slot is still on %s", what, before.Addr)
	}
	events = append(events, publishAll(t, gw2.Addr(), "q", room, after, nil)...)
	for i, s := range []*wsprobe.Conn{s1, s2} {
		msgs := s.Collect(n+after, 60*time.Second)
		if !slices.Equal(ids(msgs), events) {
			t.Fatalf("G12 %s: subscriber %d got %d messages, want the %d acked in order; missing oseqs %v",
				what, i, len(msgs), len(events), missing(msgs, n))
		}
		wsprobe.CheckStream(t, fmt.Sprintf("subscriber %d", i), msgs)
		select {
		case <-s.Done():
			t.Fatalf("G12 %s: subscriber %d was disconnected (close %d)", what, i, s.CloseCode())
		default:
		}
	}
	for _, gw := range []*gateway.Server{gw1, gw2} {
		lost := counter(t, gw, "geolab_gateway_redis_disconnects_total")
		filled := counter(t, gw, "geolab_gateway_gap_filled_total")
		t.Logf("G12 %s: a node lost a subscription %v times and filled %v events from history", what, lost, filled)
		if lost < 1 {
			t.Fatalf("G12 %s: the node never lost the room's subscription: the fault did not bite", what)
		}
		wait.For(t, 30*time.Second, "the node subscribes the room on its new owner", func() bool {
			sh := gw.Shards()
			return sh[before.Addr] == 0 && len(sh) > 0
		})
	}
}

// TestG12SlotMigration: the slot of a busy room moves to another primary.
func TestG12SlotMigration(t *testing.T) {
	g12(t, "slot migration", func(t redistest.TB, c *redistest.Cluster, key string) {
		from := c.PrimaryOf(t, key)
		for _, p := range c.Primaries(t) {
			if p != from {
				c.MigrateSlotOf(t, key, p)
				return
			}
		}
	})
}

// TestG12ManualFailover: CLUSTER FAILOVER of the busy room's primary.
func TestG12ManualFailover(t *testing.T) {
	g12(t, "manual failover", func(t redistest.TB, c *redistest.Cluster, key string) {
		c.FailoverOf(t, key)
	})
}

// TestG12PrimaryKilled: the busy room's primary is killed -9 and its
// replica promoted. (On loopback every acked publish reached the replica
// before the kill: the loss of acked publishes that asynchronous
// replication allows is docs/guarantees.md's G12 note.)
func TestG12PrimaryKilled(t *testing.T) {
	g12(t, "primary killed", func(t redistest.TB, c *redistest.Cluster, key string) {
		c.KillPrimaryOf(t, key)
	})
}
