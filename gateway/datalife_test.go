package gateway_test

import (
	"context"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2/client"

	"github.com/geolab/geolab/gateway/broker"
	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/internal/redistest"
	"github.com/geolab/geolab/internal/toxitest"
	"github.com/geolab/geolab/internal/wait"
)

// TestRedisThatLostItsDataTwiceWhileTheLinkWasDownIsAnnounced: G5/G6, found
// by geolab explore (scenarios/redis-lost-twice-before-refill.yaml). One
// gateway's pub/sub link is cut (Toxiproxy) while its Redis comes back empty,
// takes publishes through a second gateway, and comes back empty again.
// When the link returns, the history the gateway fills from no longer holds
// those publishes, and its subscriber, who had nothing of the region's origin
// yet (no position to see a jump from), must be told before the next life's
// events, not handed oseq 1 of a new epoch as if nothing happened.
func TestRedisThatLostItsDataTwiceWhileTheLinkWasDownIsAnnounced(t *testing.T) {
	rs := redistest.Start(t) // no persistence: every restart comes back empty
	proxy, err := toxiproxy.NewClient(toxitest.Start(t)).CreateProxy("gw-redis", "127.0.0.1:0", rs.Addr())
	if err != nil {
		t.Fatal(err)
	}
	gw := startGateway(t, proxy.Listen, "us-east", "gw-1")
	other := startGateway(t, rs.Addr(), "us-east", "gw-2")
	const room = "tenant:lives"
	sub := newClient(t, gw.Addr(), "s")
	if s := sub.Subscribe(room, nil, nil); len(s.Position) != 0 {
		t.Fatalf("a new room has positions %v", s.Position)
	}
	ctx := context.Background()
	if err := proxy.Disable(); err != nil {
		t.Fatal(err)
	}
	channel := broker.Standalone.Channel(room)
	wait.For(t, 10*time.Second, "the gateway's pub/sub connection gone from Redis", func() bool {
		n, err := rs.Client().PubSubNumSub(ctx, channel).Result()
		return err == nil && n[channel] == 0
	})
	restartEmpty := func() {
		t.Helper()
		if err := rs.Kill(); err != nil {
			t.Fatal(err)
		}
		if err := rs.Restart(ctx); err != nil {
			t.Fatal(err)
		}
	}
	restartEmpty()
	pub := newClient(t, other.Addr(), "p")
	for i := range 5 {
		if ack := pub.PublishAcked(room, msgID("lost", i), i, 20*time.Second); ack.Oseq != uint64(i+1) {
			t.Fatalf("publish %d into the second life: %+v", i, ack)
		}
	}
	restartEmpty()
	if err := proxy.Enable(); err != nil {
		t.Fatal(err)
	}
	f, ok := sub.Next(20*time.Second, "subscribed", "message")
	if !ok {
		t.Fatalf("the subscriber was told nothing once the link was back (read: %v)", sub.ReadErr())
	}
	if f.Type != "subscribed" || f.Recovered || f.Reason != protocol.ReasonEpochChanged ||
		f.Epochs["us-east"] != "" || f.Position["us-east"] != 0 || len(f.Position) != 1 {
		t.Fatalf("first frame after the link came back: %+v, want an unasked recovered:false epoch_changed naming us-east at 0 with an empty epoch", f)
	}
	ack := pub.PublishAcked(room, "after", 1, 20*time.Second)
	m, ok := sub.Next(20*time.Second, "subscribed", "message")
	if !ok || m.Type != "message" || m.ID != ack.Event || m.Oseq != 1 {
		t.Fatalf("after the notice: %+v, want the third life's first event %s at oseq 1 and no second notice", m, ack.Event)
	}
	if n := counter(t, gw, "geolab_gateway_redis_data_lost_total"); n != 1 {
		t.Fatalf("geolab_gateway_redis_data_lost_total = %v, want 1", n)
	}
}
