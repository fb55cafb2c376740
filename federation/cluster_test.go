package federation_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/geolab/geolab/federation"
	"github.com/geolab/geolab/gateway"
	"github.com/geolab/geolab/gateway/broker"
	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/internal/gatewaytest"
	"github.com/geolab/geolab/internal/redistest"
	"github.com/geolab/geolab/internal/wait"
	"github.com/geolab/geolab/internal/wsprobe"
)

// TestBridgeBetweenAClusterAndOneRedis: us-east runs a 3×1 Redis Cluster,
// eu-west one Redis. Events published on both sides into rooms of several
// outbox partitions cross both ways and reach every subscriber of both
// regions exactly once, in per-origin order (G7), also across a restart of
// the bridge that reads the cluster's partitions (each from its own
// checkpoint); us-east's events sit in the partitions of their rooms.
func TestBridgeBetweenAClusterAndOneRedis(t *testing.T) {
	cl := redistest.StartCluster(t, 3, 1)
	eu := redistest.Start(t)
	seeds := strings.Join(cl.Seeds(), ",")
	fed := func(c *gateway.Config) { c.Federate = federate }
	gws := map[string]*gateway.Server{
		"us-east": gatewaytest.Start(t, authority, seeds, "us-east", "gw-1", fed),
		"eu-west": gatewaytest.Start(t, authority, eu.Addr(), "eu-west", "gw-1", fed),
	}
	config := func(x string) *federation.Config {
		c := &federation.Config{Region: x, Federate: federate, Block: 200 * time.Millisecond, Listen: "127.0.0.1:0",
			Regions: map[string]federation.RegionConfig{"us-east": {Redis: seeds}, "eu-west": {Redis: eu.Addr()}}}
		c.Defaults()
		return c
	}
	start := func(x string) (stop func()) {
		b, err := federation.New(config(x), quiet())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = b.Run(ctx); close(done) }()
		var once bool
		stop = func() {
			if !once {
				once = true
				cancel()
				<-done
			}
		}
		t.Cleanup(stop)
		return stop
	}
	start("us-east")
	stopEU := start("eu-west")

	var rooms []string
	parts := map[int]bool{}
	for i := 0; len(parts) < 4; i++ {
		room := fmt.Sprintf("tenant:c%d", i)
		if p := broker.PartitionOf(room); !parts[p] {
			parts[p] = true
			rooms = append(rooms, room)
		}
	}
	subs := map[string]*wsprobe.Conn{}
	for name, gw := range gws {
		subs[name] = dial(t, gw.Addr(), "sub-"+name)
		for _, room := range rooms {
			subs[name].Subscribe(room, nil, nil)
		}
	}
	pubs := map[string]*wsprobe.Conn{}
	for name, gw := range gws {
		pubs[name] = dial(t, gw.Addr(), "pub-"+name)
	}
	acked := map[string]map[string]bool{} // room → event ids
	for _, room := range rooms {
		acked[room] = map[string]bool{}
	}
	const n = 30
	total := 0
	for i := 0; i < n; i++ {
		if i == n/2 {
			// The bridge reading the cluster stops mid-stream and starts
			// again from its per-partition checkpoints.
			stopEU()
			stopEU = start("eu-west")
		}
		for _, room := range rooms {
			for _, name := range []string{"us-east", "eu-west"} {
				ack := publish(pubs[name], room, fmt.Sprintf("%s-%s-%d", name, room, i), i)
				acked[room][ack.Event] = true
				total++
			}
		}
	}
	for name, s := range subs {
		msgs := s.Collect(total, 60*time.Second)
		byRoom := map[string][]*protocol.ServerFrame{}
		for _, m := range msgs {
			byRoom[m.Room] = append(byRoom[m.Room], m)
		}
		for _, room := range rooms {
			checkExactlyOnce(t, name+" "+room, byRoom[room], acked[room])
		}
		wait.Never(t, 500*time.Millisecond, name+": a message more (a duplicate)", func() bool { return s.Count() > total })
	}
	// us-east's events are in the partitions of their rooms.
	ctx := context.Background()
	for _, room := range rooms {
		stream, _ := broker.Clustered.OutboxOf("us-east", room)
		msgs, err := cl.Client().XRange(ctx, stream, "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for _, m := range msgs {
			if m.Values["r"] == room {
				got++
			}
		}
		if got != n {
			t.Fatalf("outbox partition %s holds %d events of %s, want %d", stream, got, room, n)
		}
	}
}

// TestBridgeFollowsAnOriginShardThatFailedOver: us-east runs a 3×1 Redis
// Cluster, and eu-west's bridge reads its outbox partitions from every
// shard in one read. The primary of a shard that holds none of the room's
// keys is killed -9 and its replica takes over: a dead primary answers
// errors, never MOVED, so the bridge must read the slot map again by itself
// (go-redis otherwise keeps the old one for a minute) before its reads of
// every partition, the room's too, go through. Events published after the
// takeover reach eu-west's subscriber well within that minute.
func TestBridgeFollowsAnOriginShardThatFailedOver(t *testing.T) {
	cl := redistest.StartCluster(t, 3, 1)
	eu := redistest.Start(t)
	seeds := strings.Join(cl.Seeds(), ",")
	fed := func(c *gateway.Config) { c.Federate = federate }
	us := gatewaytest.Start(t, authority, seeds, "us-east", "gw-1", fed)
	euGW := gatewaytest.Start(t, authority, eu.Addr(), "eu-west", "gw-1", fed)
	runBridge(t, &federation.Config{Region: "eu-west", Federate: federate, Block: 200 * time.Millisecond, Listen: "127.0.0.1:0",
		Regions: map[string]federation.RegionConfig{"us-east": {Redis: seeds}, "eu-west": {Redis: eu.Addr()}}})

	const room = "tenant:failover"
	roomKey := broker.Clustered.HistoryKey(room)
	roomPrimary := cl.PrimaryOf(t, roomKey)
	var other string // a key of an outbox partition on another shard
	for _, p := range broker.Clustered.Outboxes("us-east") {
		if cl.PrimaryOf(t, p.Stream) != roomPrimary {
			other = p.Stream
			break
		}
	}
	if other == "" {
		t.Fatal("every outbox partition is on the room's shard")
	}
	sub := dial(t, euGW.Addr(), "sub")
	sub.Subscribe(room, nil, nil)
	pub := dial(t, us.Addr(), "pub")
	publish(pub, room, "before", 0)
	if got := sub.Collect(1, 30*time.Second); len(got) != 1 {
		t.Fatalf("eu-west got %d events before the failover, want 1", len(got))
	}

	// The bound is well under go-redis's minute: the bridge's reads of
	// the dead primary's partitions fail until it reads the map again.
	failOverThenDeliver(t, cl, other, pub, sub, room, "eu-west", "the bridge still reads from the dead primary")
}

// failOverThenDeliver kills -9 the primary of key's shard, has its one
// replica take over, publishes 5 events into room through pub, and fails t
// unless sub (in region) gets them within 20 s, saying why as stuck.
func failOverThenDeliver(t *testing.T, cl *redistest.Cluster, key string, pub, sub *wsprobe.Conn, room, region, stuck string) {
	t.Helper()
	victim := cl.PrimaryOf(t, key)
	replicas := cl.ReplicasOf(t, key)
	if len(replicas) != 1 {
		t.Fatalf("the shard of %s has replicas %v, want one", key, replicas)
	}
	if err := victim.Kill(); err != nil {
		t.Fatal(err)
	}
	cl.TakeOver(t, key, victim, replicas[0])
	taken := time.Now()
	const n = 5
	for i := range n {
		publish(pub, room, fmt.Sprintf("after-%d", i), i)
	}
	if got := sub.Collect(n, 20*time.Second); len(got) != n {
		t.Fatalf("%s got %d of the %d events published after the takeover within 20 s: %s", region, len(got), n, stuck)
	}
	t.Logf("%s had the %d events %s after the takeover", region, n, time.Since(taken).Round(100*time.Millisecond))
}

// TestBridgeFollowsALocalShardThatFailedOver: the mirror of the test
// above. us-east, where the bridge applies, runs a 3×1 Redis Cluster; the
// primary of the shard holding the bridge's checkpoint of eu-west
// (geolab:fed:ckpt:eu-west) is killed -9 and its replica takes over, while
// the room's own keys are on another shard. Every retry loop of the feed on
// its own region's Redis reads the slot map again after a failure, as the
// apply always did: without that the checkpoint's save kept going to the
// dead primary, and the feed applied nothing more until the killed node
// came back (the chaos spec "through a shard-kill under load" ended with
// the feed still catching up). Events published after the takeover reach
// us-east's subscriber well within go-redis's own minute.
func TestBridgeFollowsALocalShardThatFailedOver(t *testing.T) {
	cl := redistest.StartCluster(t, 3, 1)
	eu := redistest.Start(t)
	seeds := strings.Join(cl.Seeds(), ",")
	fed := func(c *gateway.Config) { c.Federate = federate }
	us := gatewaytest.Start(t, authority, seeds, "us-east", "gw-1", fed)
	euGW := gatewaytest.Start(t, authority, eu.Addr(), "eu-west", "gw-1", fed)
	runBridge(t, &federation.Config{Region: "us-east", Federate: federate, Block: 200 * time.Millisecond, Listen: "127.0.0.1:0",
		Regions: map[string]federation.RegionConfig{"us-east": {Redis: seeds}, "eu-west": {Redis: eu.Addr()}}})

	const checkpoint = "geolab:fed:ckpt:eu-west"
	victim := cl.PrimaryOf(t, checkpoint)
	var room string // a room whose keys are on another shard
	for i := 0; room == ""; i++ {
		r := fmt.Sprintf("tenant:local-failover-%d", i)
		if cl.PrimaryOf(t, broker.Clustered.HistoryKey(r)) != victim {
			room = r
		}
	}
	sub := dial(t, us.Addr(), "sub")
	sub.Subscribe(room, nil, nil)
	pub := dial(t, euGW.Addr(), "pub")
	publish(pub, room, "before", 0)
	if got := sub.Collect(1, 30*time.Second); len(got) != 1 {
		t.Fatalf("us-east got %d events before the failover, want 1", len(got))
	}
	wait.For(t, 30*time.Second, "the bridge's checkpoint of eu-west saved in us-east", func() bool {
		return cl.Client().Exists(context.Background(), checkpoint).Val() == 1
	})
	failOverThenDeliver(t, cl, checkpoint, pub, sub, room, "us-east", "the bridge still works on the dead primary")
}
