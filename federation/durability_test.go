package federation_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/geolab/geolab/federation"
	"github.com/geolab/geolab/gateway"
	"github.com/geolab/geolab/gateway/broker"
	"github.com/geolab/geolab/internal/gatewaytest"
	"github.com/geolab/geolab/internal/redistest"
	"github.com/geolab/geolab/internal/wait"
)

// appliedOseqs are the oseqs of origin's events in room's history on node.
func appliedOseqs(t *testing.T, node *redistest.ClusterNode, room, origin string) []uint64 {
	t.Helper()
	msgs, err := node.Client().XRange(context.Background(), broker.Clustered.HistoryKey(room), "-", "+").Result()
	if err != nil {
		return nil
	}
	var out []uint64
	for _, m := range msgs {
		if o, _ := m.Values["o"].(string); o != origin {
			continue
		}
		q, _ := m.Values["q"].(string)
		n, err := strconv.ParseUint(q, 10, 64)
		if err != nil {
			t.Fatalf("history entry %s: oseq %q", m.ID, q)
		}
		out = append(out, n)
	}
	return out
}

// seq is 1..n.
func seq(n int) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		out[i] = uint64(i + 1)
	}
	return out
}

// TestBridgeReplicatedDurabilityLosesNoApply: eu-west runs a 3×1 Redis
// Cluster and a bridge with durability replicated; us-east, one Redis,
// publishes into a federated room. While the room's replica in eu-west is
// cut off (frozen, its replication link killed), the bridge applies the
// next events to the primary but no replica confirms them, so it retries
// them and does not move its checkpoint; the primary is then killed -9 and
// the replica takes over without them. The bridge applies them again on
// the new primary: eu-west ends with every event of us-east once, in order
// (with async durability the bridge would have moved past them, and they
// would be gone from eu-west).
func TestBridgeReplicatedDurabilityLosesNoApply(t *testing.T) {
	cl := redistest.StartCluster(t, 3, 1)
	us := redistest.Start(t)
	seeds := strings.Join(cl.Seeds(), ",")
	fed := func(c *gateway.Config) { c.Federate = federate }
	gw := gatewaytest.Start(t, authority, us.Addr(), "us-east", "gw-1", fed)
	runBridge(t, &federation.Config{Region: "eu-west", Federate: federate, Block: 200 * time.Millisecond,
		Durability: broker.DurabilityReplicated, DurabilityTimeout: 200 * time.Millisecond,
		Regions: map[string]federation.RegionConfig{"us-east": {Redis: us.Addr()}, "eu-west": {Redis: seeds}}})

	const room, n = "tenant:durable-apply", 5
	key := broker.Clustered.HistoryKey(room)
	first := cl.PrimaryOf(t, key)
	pub := dial(t, gw.Addr(), "p")
	for i := range n {
		publish(pub, room, fmt.Sprintf("a-%d", i), i)
	}
	wait.For(t, 30*time.Second, "eu-west's primary has us-east's first events", func() bool {
		return slices.Equal(appliedOseqs(t, first, room, "us-east"), seq(n))
	})

	primary, replica := cl.CutReplicaOf(t, key)
	if primary != first {
		t.Fatalf("the room's primary moved from %s to %s during the test", first.Addr, primary.Addr)
	}
	for i := range n {
		publish(pub, room, fmt.Sprintf("b-%d", i), n+i)
	}
	// The bridge applies the next event to the primary and, no replica
	// confirming it, retries it there: the primary holds it, the bridge
	// has not gone past it.
	wait.For(t, 30*time.Second, "eu-west's primary has the first event applied while the replica was cut off", func() bool {
		return slices.Equal(appliedOseqs(t, primary, room, "us-east"), seq(n+1))
	})

	if err := primary.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := replica.Thaw(); err != nil {
		t.Fatal(err)
	}
	cl.TakeOver(t, key, primary, replica)
	cl.Restart(t, primary)
	wait.For(t, 60*time.Second, "eu-west's new primary has every event of us-east once, in order", func() bool {
		return slices.Equal(appliedOseqs(t, replica, room, "us-east"), seq(2*n))
	})
}

// TestBridgeReplicatedDurabilityNeedsAReplica: a bridge with durability
// replicated into a region whose Redis has no replica stops at start,
// naming the setting and the region.
func TestBridgeReplicatedDurabilityNeedsAReplica(t *testing.T) {
	eu, us := redistest.Start(t), redistest.Start(t)
	cfg := &federation.Config{Region: "eu-west", Federate: federate, Durability: broker.DurabilityReplicated,
		Regions: map[string]federation.RegionConfig{"us-east": {Redis: us.Addr()}, "eu-west": {Redis: eu.Addr()}}}
	cfg.Defaults()
	b, err := federation.New(cfg, quiet())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = b.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "durability replicated: regions.eu-west: the Redis has no replica") {
		t.Fatalf("Run: %v, want an error naming durability replicated and regions.eu-west", err)
	}
}
