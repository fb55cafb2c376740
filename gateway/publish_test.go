package gateway_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/geolab/geolab/gateway"
	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/internal/redistest"
	"github.com/geolab/geolab/internal/wsprobe"
)

// TestPipelinedPublishesKeepTheClientsOrder: one connection sends a burst
// of publishes into one room without waiting for acks, with a publish
// window of 16 (a real redis-server). They go to Redis in pipelines
// (publish_batches_total < publishes), yet: the acks come back in the order
// sent, the i-th publish gets oseq i (G2: numbered in the order the client
// sent them), a refused publish in the middle is answered at its place, a
// repeated id in the burst is a dup with the first one's oseq and nobody
// gets it twice (G4), a ping sent after the burst is answered after every
// ack, and subscribers on this node and another see oseq 1..N in order.
func TestPipelinedPublishesKeepTheClientsOrder(t *testing.T) {
	rs := redistest.Start(t)
	window := func(c *gateway.Config) {
		c.PublishWindow, c.PublishRate, c.PublishBurst = 16, 10000, 10000
		c.FrameRate, c.FrameBurst = 10000, 10000
	}
	gw1 := startGateway(t, rs.Addr(), "us-east", "gw-1", window)
	gw2 := startGateway(t, rs.Addr(), "us-east", "gw-2", window)
	subs := []*wsprobe.Conn{newClient(t, gw1.Addr(), "sub-1"), newClient(t, gw2.Addr(), "sub-2")}
	for _, s := range subs {
		s.Subscribe("room:burst", nil, nil)
	}
	pub := newClient(t, gw1.Addr(), "pub")

	const n, refusedAt = 600, 300
	for i := 0; i < n; i++ {
		if i == refusedAt {
			pub.Send(map[string]any{"type": "publish", "room": "secret:x", "id": "refused", "data": 0})
		}
		pub.Send(map[string]any{"type": "publish", "room": "room:burst", "id": msgID("p", i), "data": map[string]int{"n": i}})
	}
	pub.Send(map[string]any{"type": "publish", "room": "room:burst", "id": msgID("p", 0), "data": map[string]int{"n": 0}})
	pub.Send(map[string]any{"type": "ping"})

	for i := 0; i <= n; i++ {
		if i == refusedAt {
			if f := pub.Expect("ack", "error", "pong"); f.Type != "error" || f.Ref != "refused" || f.Code != protocol.CodeForbidden {
				t.Fatalf("answer %d: want the refused publish's forbidden error at its place, got %+v", i, f)
			}
		}
		f := pub.Expect("ack", "error", "pong")
		switch {
		case i == n: // the repeated first id
			if f.Type != "ack" || f.ID != msgID("p", 0) || f.Oseq != 1 || !f.Duplicate {
				t.Fatalf("the repeated id %s: want a dup ack of oseq 1, got %+v", msgID("p", 0), f)
			}
		case f.Type != "ack" || f.ID != msgID("p", i) || f.Oseq != uint64(i+1) || f.Duplicate:
			t.Fatalf("answer to publish %d: want the ack of %s with oseq %d, got %+v", i, msgID("p", i), i+1, f)
		}
	}
	if f := pub.Expect("ack", "error", "pong"); f.Type != "pong" {
		t.Fatalf("after the acks: want the pong, got %+v", f)
	}
	if b, p := counter(t, gw1, "geolab_gateway_publish_batches_total"), float64(n+1); b >= p || b < 1 {
		t.Errorf("%v batches for %v publishes: the publishes were not pipelined", b, p)
	}

	// The writer counts its writes: each carries at least one frame.
	if w, f := counter(t, gw1, "geolab_gateway_writes_total"), counter(t, gw1, "geolab_gateway_frames_out_total"); w < 1 || f < w {
		t.Errorf("%v writes for %v frames out: want at least one write and no more writes than frames", w, f)
	}
	// A last publish marks the end: had the repeated id been stored again,
	// it would come before this one.
	if f := pub.Publish("room:burst", "last", map[string]int{"n": n}); f.Type != "ack" || f.Oseq != n+1 {
		t.Fatalf("the last publish: want the ack of oseq %d, got %+v", n+1, f)
	}
	for i, s := range subs {
		msgs := s.Collect(n+1, 30*time.Second)
		if len(msgs) != n+1 {
			t.Fatalf("subscriber %d got %d messages, want %d", i, len(msgs), n+1)
		}
		wsprobe.CheckStream(t, fmt.Sprintf("subscriber %d", i), msgs)
		for j, m := range msgs {
			if m.Oseq != uint64(j+1) || dataN(m) != j || m.Sender != "pub" {
				t.Fatalf("subscriber %d: message %d is oseq %d data %d from %s, want oseq %d data %d from pub", i, j, m.Oseq, dataN(m), m.Sender, j+1, j)
			}
		}
	}
}

// TestPublishWindowIsBounded: the config refuses a window outside
// 1..MaxPublishWindow, naming the field.
func TestPublishWindowIsBounded(t *testing.T) {
	for _, w := range []int{0, -1, gateway.MaxPublishWindow + 1} {
		c := gateway.DefaultConfig()
		c.Region, c.Node, c.Listen, c.Redis, c.Authority = "us-east", "gw-1", "127.0.0.1:0", "127.0.0.1:6379", authority
		c.PublishWindow = w
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), "PublishWindow") || !strings.Contains(err.Error(), fmt.Sprint(w)) {
			t.Errorf("window %d: want an error naming PublishWindow and the value, got %v", w, err)
		}
	}
}
