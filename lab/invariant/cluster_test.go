package invariant

// The history/outbox scan on a region that runs a Redis Cluster, against
// real redis-server processes: the keys are the broker's Clustered layout,
// spread over every primary, and the rooms are matched across regions of
// either layout by name.

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/geolab/geolab/gateway/broker"
	"github.com/geolab/geolab/internal/redistest"
	"github.com/geolab/geolab/internal/wait"
)

// publish stores one federated event of sender's message cid in room
// through b and fails t if it is not a new event.
func publish(t *testing.T, b *broker.Broker, room, sender, cid, event string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := b.Publish(ctx, broker.PublishRequest{Room: room, Sender: sender, ClientID: cid, EventID: event,
		Epoch: "ep-" + event, TS: time.Now(), Data: []byte(`{"n":1}`), Federated: true})
	if err != nil || r.Status != "ok" {
		t.Fatalf("publish %s in %s: %+v, %v", event, room, r, err)
	}
}

// carry applies event of room, as from's history holds it, into to, as a
// bridge does.
func carry(t *testing.T, from, to *broker.Broker, room, event string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	es, err := from.Client().XRange(ctx, from.Layout().HistoryKey(room), "-", "+").Result()
	if err != nil {
		t.Fatalf("read %s: %v", room, err)
	}
	for _, e := range es {
		v := e.Values
		frame := fmt.Sprint(v["f"])
		var m struct{ ID, Sender string }
		if err := json.Unmarshal([]byte(frame), &m); err != nil || m.ID != event {
			continue
		}
		q, _ := strconv.ParseUint(fmt.Sprint(v["q"]), 10, 64)
		r, err := to.Apply(ctx, broker.ApplyRequest{Room: room, Origin: fmt.Sprint(v["o"]), Oseq: q, Epoch: fmt.Sprint(v["e"]),
			Frame: []byte(frame), EventID: m.ID, Sender: m.Sender, ClientID: fmt.Sprint(v["c"])})
		if err != nil || r.Status != "ok" {
			t.Fatalf("apply %s into %s: %+v, %v", m.ID, room, r, err)
		}
		return
	}
	t.Fatalf("event %s is not in %s's history of %s", event, from.Layout().HistoryKey(room), room)
}

// TestRegionOnAClusterScansEveryPrimary: a cluster region's histories, one
// per room on whichever primary owns the room's partition, are all read
// (a SCAN through a cluster client runs on one node only), their rooms
// named without the partition tag; an echo in any outbox partition, an
// event stored twice and a pattern subscription on any node are counted.
func TestRegionOnAClusterScansEveryPrimary(t *testing.T) {
	c := redistest.StartCluster(t, 3, 0)
	cc := c.Client()
	b := broker.New(cc, "us-east", broker.DefaultHistory())
	ctx := context.Background()

	// Rooms until every primary owns two.
	perPrimary := map[string][]string{}
	var rooms []string
	for i := 0; len(perPrimary) < 3 || slices.ContainsFunc(slices.Collect(maps.Values(perPrimary)), func(r []string) bool { return len(r) < 2 }); i++ {
		if i > 1000 {
			t.Fatalf("no two rooms on each of 3 primaries in 1000 names: %v", perPrimary)
		}
		room := fmt.Sprintf("tenant:%d", i)
		p := c.PrimaryOf(t, broker.Clustered.HistoryKey(room)).Addr
		if len(perPrimary[p]) < 2 {
			perPrimary[p] = append(perPrimary[p], room)
			rooms = append(rooms, room)
		}
	}
	published := 0
	for _, room := range rooms {
		for i := range 4 {
			publish(t, b, room, "alice", fmt.Sprintf("m-%d", i), fmt.Sprintf("%s-e%d", room, i))
			published++
		}
	}

	var clean Counts
	if err := clean.region(ctx, cc, "us-east", Options{}); err != nil {
		t.Fatalf("region: %v", err)
	}
	if clean.OwnEvents != published || clean.HistoryDuplicates != 0 || clean.OutboxEchoes != 0 || clean.PatternSubscriptions != 0 {
		t.Fatalf("clean cluster: own %d (want %d), duplicates %d, echoes %d, patterns %d; examples %v",
			clean.OwnEvents, published, clean.HistoryDuplicates, clean.OutboxEchoes, clean.PatternSubscriptions, clean.Examples)
	}
	got := map[string]int{}
	for _, e := range clean.stored {
		got[e.Room]++
	}
	for _, room := range rooms {
		if got[room] != 4 {
			t.Errorf("room %s: %d events read, want 4 (rooms read: %v)", room, got[room], got)
		}
	}

	// One event stored twice, one echo in the outbox partition of the last
	// room, one pattern subscription on the last node.
	last := rooms[len(rooms)-1]
	dup, err := cc.XRangeN(ctx, broker.Clustered.HistoryKey(rooms[0]), "-", "+", 1).Result()
	if err != nil || len(dup) != 1 {
		t.Fatalf("read %s: %v", rooms[0], err)
	}
	if err := cc.XAdd(ctx, &redis.XAddArgs{Stream: broker.Clustered.HistoryKey(rooms[0]), Values: dup[0].Values}).Err(); err != nil {
		t.Fatalf("XADD a duplicate: %v", err)
	}
	stream, _ := broker.Clustered.OutboxOf("us-east", last)
	if err := cc.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: map[string]any{"r": last, "o": "eu-west", "q": 1, "e": "x", "f": "{}"}}).Err(); err != nil {
		t.Fatalf("XADD an echo: %v", err)
	}
	node := c.Nodes()[len(c.Nodes())-1].Client()
	ps := node.PSubscribe(ctx, "geolab:ch:*")
	t.Cleanup(func() { _ = ps.Close() })
	wait.For(t, 10*time.Second, "the pattern subscription on "+node.Options().Addr, func() bool {
		n, err := node.PubSubNumPat(ctx).Result()
		return err == nil && n == 1
	})
	var broken Counts
	if err := broken.region(ctx, cc, "us-east", Options{}); err != nil {
		t.Fatalf("region: %v", err)
	}
	if broken.HistoryDuplicates != 1 || broken.OutboxEchoes != 1 || broken.PatternSubscriptions != 1 || broken.OwnEvents != published {
		t.Fatalf("broken cluster: duplicates %d, echoes %d, patterns %d (want 1 each), own %d (want %d); examples %v",
			broken.HistoryDuplicates, broken.OutboxEchoes, broken.PatternSubscriptions, broken.OwnEvents, published, broken.Examples)
	}
}

// TestRoomsMatchAcrossLayouts: a retry that overtook its first attempt's
// event, between a cluster region and a one-Redis region, is one publish
// that became two events (one retries_overtaken), not two publishes of two
// differently named rooms each holding both events.
func TestRoomsMatchAcrossLayouts(t *testing.T) {
	cl := redistest.StartCluster(t, 3, 0)
	one := redistest.Start(t)
	a := broker.New(cl.Client(), "a", broker.DefaultHistory())
	b := broker.New(one.Client(), "b", broker.DefaultHistory())
	room := "tenant:x"
	publish(t, a, room, "alice", "m-1", "e1")
	publish(t, b, room, "alice", "m-1", "e2") // the retry, in b before e1 got there
	carry(t, a, b, room, "e1")
	carry(t, b, a, room, "e2")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var c Counts
	if err := c.region(ctx, cl.Client(), "a", Options{}); err != nil {
		t.Fatalf("region a: %v", err)
	}
	if err := c.region(ctx, one.Client(), "b", Options{}); err != nil {
		t.Fatalf("region b: %v", err)
	}
	c.publishes()
	if c.RetriesOvertaken != 1 || c.Recreated != 0 || c.OwnEvents != 2 {
		t.Fatalf("overtaken %d (want 1), recreated %d (want 0), own %d (want 2); examples %v", c.RetriesOvertaken, c.Recreated, c.OwnEvents, c.Examples)
	}
}
