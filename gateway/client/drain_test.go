package client_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/geolab/geolab/gateway"
	"github.com/geolab/geolab/gateway/client"
	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/internal/gatewaytest"
	"github.com/geolab/geolab/internal/redistest"
	"github.com/geolab/geolab/internal/wait"
)

// TestClientLeavesADrainingNodeAtOnce: a draining node says bye and serves
// its clients until its drain timeout (a minute here). The client does not
// wait for it: it closes with going_away, moves to the next node and
// resumes, with nothing lost and nothing twice; the node, its last client
// gone, ends its drain long before the timeout.
func TestClientLeavesADrainingNodeAtOnce(t *testing.T) {
	rs := redistest.Start(t)
	a := gatewaytest.Authority(secret)
	gw1 := gatewaytest.Start(t, a, rs.Addr(), "us-east", "gw-1", func(c *gateway.Config) { c.DrainTimeout = time.Minute })
	gw2 := gatewaytest.Start(t, a, rs.Addr(), "us-east", "gw-2")
	rec := &recorder{}
	var mu sync.Mutex
	var states []client.StateEvent
	tok := gatewaytest.Token(t, a, "watcher")
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c, err := client.Dial(ctx, client.Options{
		Endpoints: []string{"ws://" + gw1.Addr() + "/ws", "ws://" + gw2.Addr() + "/ws"},
		Token:     func(context.Context) (string, error) { return tok, nil },
		// Long enough that waiting for the node's close would show.
		WriteTimeout: 30 * time.Second, PingInterval: 30 * time.Second,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		OnMessage: func(m client.Message) { rec.mu.Lock(); rec.msgs = append(rec.msgs, m); rec.mu.Unlock() },
		OnState:   func(e client.StateEvent) { mu.Lock(); states = append(states, e); mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	const room = "tenant:drain"
	if _, err := c.Subscribe(ctx, room); err != nil {
		t.Fatal(err)
	}
	pub, _ := dialClient(t, a, "pub", "ws://"+gw2.Addr()+"/ws")
	for i := 0; i < 5; i++ {
		if _, err := pub.Publish(ctx, room, fmt.Sprintf("d-%d", i), i); err != nil {
			t.Fatal(err)
		}
	}
	wait.For(t, 10*time.Second, "5 messages on gw-1", func() bool { return rec.count() == 5 })

	drained := make(chan struct{})
	go func() { gw1.Drain(); close(drained) }()
	wait.For(t, 10*time.Second, "the client on gw-2", func() bool { return c.Node() == "gw-2" })
	select {
	case <-drained:
	case <-time.After(10 * time.Second):
		t.Fatal("gw-1's drain did not end after its only client left")
	}
	mu.Lock()
	left := false
	for _, e := range states {
		if e.State == client.StateDisconnected && e.Code == protocol.CloseGoingAway && e.WillReconnect {
			left = true
		}
	}
	mu.Unlock()
	if !left {
		t.Fatal("no disconnect with 1001 and a reconnect after the bye")
	}
	for i := 5; i < 10; i++ {
		if _, err := pub.Publish(ctx, room, fmt.Sprintf("d-%d", i), i); err != nil {
			t.Fatal(err)
		}
	}
	wait.For(t, 10*time.Second, "10 messages", func() bool { return rec.count() >= 10 })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for i, m := range rec.msgs {
		if m.Oseq != uint64(i+1) {
			t.Fatalf("message %d has oseq %d", i, m.Oseq)
		}
	}
	if len(rec.msgs) != 10 {
		t.Fatalf("%d messages, want 10", len(rec.msgs))
	}
}
