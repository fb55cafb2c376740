package client_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/internal/gatewaytest"
	"github.com/geolab/geolab/internal/redistest"
	"github.com/geolab/geolab/internal/wait"
)

// TestReconnectResumesOnARealGateway: the client drops its own connection
// (Reconnect) while others publish; it connects again, resumes with since
// and gets exactly what was published meanwhile, once each, in order.
func TestReconnectResumesOnARealGateway(t *testing.T) {
	rs := redistest.Start(t)
	a := gatewaytest.Authority(secret)
	gw := gatewaytest.Start(t, a, rs.Addr(), "us-east", "gw-1")
	ep := "ws://" + gw.Addr() + "/ws"
	const room = "tenant:churn"
	c, rec := dialClient(t, a, "roamer", ep)
	if _, err := c.Subscribe(context.Background(), room); err != nil {
		t.Fatal(err)
	}
	pub, _ := dialClient(t, a, "pub", ep)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 20 {
		if i == 5 && !c.Reconnect() {
			t.Fatal("Reconnect on a live connection = false")
		}
		if _, err := pub.Publish(ctx, room, fmt.Sprintf("r-%d", i), i); err != nil {
			t.Fatal(err)
		}
	}
	wait.For(t, 20*time.Second, "20 messages through the reconnect", func() bool { return rec.count() >= 20 })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for i, m := range rec.msgs {
		if m.Oseq != uint64(i+1) {
			t.Fatalf("message %d has oseq %d", i, m.Oseq)
		}
	}
	if st := c.Stats(); st.Reconnects != 1 || st.ResumesRecovered != 1 || st.Duplicates != 0 || st.Gaps != 0 {
		t.Fatalf("stats after Reconnect: %+v (want one recovered resume, no duplicate, no gap)", st)
	}
}

// TestSubscribeFromEmptySinceReplaysTheStoredHistory: a client in a room
// asks again from since {}: the gateway replays the room's whole retained
// history in its region, and the client delivers it.
func TestSubscribeFromEmptySinceReplaysTheStoredHistory(t *testing.T) {
	rs := redistest.Start(t)
	a := gatewaytest.Authority(secret)
	gw := gatewaytest.Start(t, a, rs.Addr(), "us-east", "gw-1")
	ep := "ws://" + gw.Addr() + "/ws"
	const room = "local:us-east:1"
	pub, _ := dialClient(t, a, "pub", ep)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 4 {
		if _, err := pub.Publish(ctx, room, fmt.Sprintf("h-%d", i), i); err != nil {
			t.Fatal(err)
		}
	}
	c, rec := dialClient(t, a, "probe", ep)
	if res, err := c.Subscribe(ctx, room); err != nil || res.Position["us-east"] != 4 {
		t.Fatalf("live subscribe: %+v, %v; want position 4", res, err)
	}
	res, err := c.SubscribeFrom(ctx, room, protocol.Positions{}, nil)
	if err != nil || !res.Resumed || !res.Recovered || res.Missed != 4 {
		t.Fatalf("SubscribeFrom {}: %+v, %v; want 4 missed, recovered", res, err)
	}
	wait.For(t, 10*time.Second, "the 4 stored events", func() bool { return rec.count() == 4 })
}
