package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/geolab/geolab/gateway"
	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/internal/redistest"
	"github.com/geolab/geolab/internal/wait"
	"github.com/geolab/geolab/internal/wsprobe"
)

func TestCrossNodeDeliveryCarriesEveryEnvelopeField(t *testing.T) {
	rs := redistest.Start(t)
	gw1 := startGateway(t, rs.Addr(), "us-east", "gw-1")
	gw2 := startGateway(t, rs.Addr(), "us-east", "gw-2")
	sub := newClient(t, gw1.Addr(), "alice")
	pub := newClient(t, gw2.Addr(), "bob")
	sub.Subscribe("tenant:1", nil, nil)

	ack := pub.Publish("tenant:1", "m-1", map[string]int{"n": 1})
	if ack.Type != "ack" || ack.ID != "m-1" || ack.Event == "" || ack.Oseq != 1 {
		t.Fatalf("ack: %+v", ack)
	}
	m := sub.Expect("message")
	if m.ID != ack.Event || m.Room != "tenant:1" || m.Origin != "us-east" || m.Oseq != 1 ||
		m.Epoch == "" || m.Sender != "bob" || dataN(m) != 1 {
		t.Fatalf("message: %+v", m)
	}
	if _, err := time.Parse(time.RFC3339Nano, m.TS); err != nil {
		t.Fatalf("ts %q is not RFC 3339: %v", m.TS, err)
	}
}

func TestTargetedSubscriptionCountsHostingNodes(t *testing.T) {
	rs := redistest.Start(t)
	rdb := rs.Client()
	ctx := context.Background()
	nodes := []*gateway.Server{
		startGateway(t, rs.Addr(), "us-east", "gw-1"),
		startGateway(t, rs.Addr(), "us-east", "gw-2"),
		startGateway(t, rs.Addr(), "us-east", "gw-3"),
	}
	numsub := func() int64 {
		n, err := rdb.PubSubNumSub(ctx, "geolab:ch:{room:t}").Result()
		if err != nil {
			t.Fatalf("PUBSUB NUMSUB: %v", err)
		}
		return n["geolab:ch:{room:t}"]
	}
	// Two clients on gw-1, one on gw-2, none on gw-3: two nodes host the room.
	a := newClient(t, nodes[0].Addr(), "a")
	b := newClient(t, nodes[0].Addr(), "b")
	c := newClient(t, nodes[1].Addr(), "c")
	for _, cl := range []*wsprobe.Conn{a, b, c} {
		cl.Subscribe("room:t", nil, nil)
	}
	wait.For(t, 5*time.Second, "NUMSUB 2", func() bool { return numsub() == 2 })
	// One publish: Redis delivers it to the two hosting nodes, not to gw-3.
	newClient(t, nodes[2].Addr(), "p").Publish("room:t", "one", 1)
	wait.For(t, 5*time.Second, "deliveries on the hosting nodes", func() bool {
		return counter(t, nodes[0], "geolab_gateway_redis_deliveries_total") == 1 &&
			counter(t, nodes[1], "geolab_gateway_redis_deliveries_total") == 1
	})
	if d := counter(t, nodes[2], "geolab_gateway_redis_deliveries_total"); d != 0 {
		t.Fatalf("G9: gw-3 hosts no subscriber of the room yet received %v deliveries", d)
	}
	if pats, _ := rdb.PubSubNumPat(ctx).Result(); pats != 0 {
		t.Fatalf("targeted mode made %d pattern subscriptions", pats)
	}
	a.Send(map[string]any{"type": "unsubscribe", "room": "room:t"})
	c.Send(map[string]any{"type": "unsubscribe", "room": "room:t"})
	wait.For(t, 5*time.Second, "NUMSUB 1 (gw-1 still hosts b)", func() bool { return numsub() == 1 })
	b.Close()
	wait.For(t, 5*time.Second, "NUMSUB 0 after the last subscriber left", func() bool { return numsub() == 0 })

	// Unsubscribing from a room one is not in is an error, not a crash.
	a.Send(map[string]any{"type": "unsubscribe", "room": "room:t"})
	if e := a.Expect("error"); e.Code != protocol.CodeNotSubscribed {
		t.Fatalf("unsubscribe twice: %+v", e)
	}
}

func TestPatternModeReceivesEveryRoomOnEveryNode(t *testing.T) {
	rs := redistest.Start(t)
	pattern := func(c *gateway.Config) { c.SubscribeMode = gateway.SubscribePattern }
	gw1 := startGateway(t, rs.Addr(), "us-east", "gw-1", pattern)
	gw2 := startGateway(t, rs.Addr(), "us-east", "gw-2", pattern)
	sub := newClient(t, gw1.Addr(), "a")
	pub := newClient(t, gw1.Addr(), "b")
	sub.Subscribe("room:p", nil, nil)
	if n, _ := rs.Client().PubSubNumSub(context.Background(), "geolab:ch:{room:p}").Result(); n["geolab:ch:{room:p}"] != 0 {
		t.Fatalf("pattern mode made a per-room subscription")
	}
	pub.Publish("room:p", "x", 1)
	if m := sub.Expect("message"); m.Oseq != 1 {
		t.Fatalf("pattern mode message: %+v", m)
	}
	// gw-2 hosts nobody in room:p, yet Redis delivered the publish to it too:
	// the amplification targeted subscription avoids (G9).
	wait.For(t, 5*time.Second, "gw-2 received the delivery", func() bool {
		return counter(t, gw2, "geolab_gateway_redis_deliveries_total") == 1
	})
	if d := counter(t, gw2, "geolab_gateway_redis_deliveries_discarded_total"); d != 1 {
		t.Fatalf("gw-2 discarded %v deliveries, want 1", d)
	}
}

// TestRegionOrderAndPerOriginFIFO: many publishers on two nodes, subscribers
// on both: every subscriber gets the same sequence (G1), oseq by 1 (G2), no
// duplicate (G3).
func TestRegionOrderAndPerOriginFIFO(t *testing.T) {
	rs := redistest.Start(t)
	gw1 := startGateway(t, rs.Addr(), "us-east", "gw-1")
	gw2 := startGateway(t, rs.Addr(), "us-east", "gw-2")
	var subs []*wsprobe.Conn
	for i := 0; i < 4; i++ {
		addr := gw1.Addr()
		if i%2 == 1 {
			addr = gw2.Addr()
		}
		s := newClient(t, addr, fmt.Sprintf("sub-%d", i))
		s.Subscribe("room:order", nil, nil)
		subs = append(subs, s)
	}
	const pubs, each = 4, 50
	var wg sync.WaitGroup
	for p := 0; p < pubs; p++ {
		addr := gw1.Addr()
		if p%2 == 1 {
			addr = gw2.Addr()
		}
		pc := newClient(t, addr, fmt.Sprintf("pub-%d", p))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				pc.Send(map[string]any{"type": "publish", "room": "room:order", "id": msgID("p", i), "data": map[string]int{"n": i}})
			}
		}()
	}
	wg.Wait()
	var first []string
	for i, s := range subs {
		msgs := s.Collect(pubs*each, 20*time.Second)
		if len(msgs) != pubs*each {
			t.Fatalf("subscriber %d got %d messages, want %d", i, len(msgs), pubs*each)
		}
		wsprobe.CheckStream(t, fmt.Sprintf("subscriber %d", i), msgs)
		if i == 0 {
			first = ids(msgs)
		} else if !slices.Equal(first, ids(msgs)) {
			t.Fatalf("G1: subscriber %d saw another order than subscriber 0", i)
		}
	}
}

// TestIdempotentPublishAcrossDroppedConnection: G4.
func TestIdempotentPublishAcrossDroppedConnection(t *testing.T) {
	rs := redistest.Start(t)
	gw1 := startGateway(t, rs.Addr(), "us-east", "gw-1")
	gw2 := startGateway(t, rs.Addr(), "us-east", "gw-2")
	sub := newClient(t, gw1.Addr(), "watcher")
	sub.Subscribe("tenant:g4", nil, nil)

	// The first connection sends the publish and drops before reading the ack.
	first := newClient(t, gw1.Addr(), "carol")
	first.Send(map[string]any{"type": "publish", "room": "tenant:g4", "id": "retry-me", "data": 1})
	first.Close()
	m := sub.Expect("message")

	// The retry comes on another node, on a new connection: same event, same ack.
	second := newClient(t, gw2.Addr(), "carol")
	ack := second.Publish("tenant:g4", "retry-me", 1)
	if ack.Type != "ack" || ack.Event != m.ID || ack.Oseq != m.Oseq || !ack.Duplicate || ack.Epoch == "" || ack.Epoch != m.Epoch {
		t.Fatalf("retried ack %+v does not match the event %s/%d of epoch %q", ack, m.ID, m.Oseq, m.Epoch)
	}
	// Another sender with the same client id is another event, of the
	// same life of the room's sequence.
	other := newClient(t, gw2.Addr(), "dave")
	if ack2 := other.Publish("tenant:g4", "retry-me", 1); ack2.Event == m.ID || ack2.Epoch != m.Epoch {
		t.Fatalf("another sender's publish: ack %+v; want another event than carol's %s, of its epoch %q", ack2, m.ID, m.Epoch)
	}
	msgs := sub.Collect(2, 3*time.Second)
	if len(msgs) != 1 || msgs[0].Sender != "dave" {
		t.Fatalf("after the retry the subscriber got %d more messages, want only dave's: %v", len(msgs), ids(msgs))
	}
}

// publishAll publishes n messages one at a time, retrying each with the same
// id until it is acked (Redis may be gone for a while); returns acked ids.
func publishAll(t *testing.T, addr, sender, room string, n int, during func(i int)) []string {
	t.Helper()
	pc := newClient(t, addr, sender)
	defer pc.Close()
	var events []string
	for i := 0; i < n; i++ {
		if during != nil {
			during(i)
		}
		events = append(events, pc.PublishAcked(room, msgID(sender, i), map[string]int{"n": i}, 30*time.Second).Event)
	}
	return events
}

// TestResubscribeAfterClientKill: G5 with CLIENT KILL of every connection.
func TestResubscribeAfterClientKill(t *testing.T) {
	rs := redistest.Start(t)
	gw1 := startGateway(t, rs.Addr(), "us-east", "gw-1")
	gw2 := startGateway(t, rs.Addr(), "us-east", "gw-2")
	s1 := newClient(t, gw1.Addr(), "s1")
	s2 := newClient(t, gw2.Addr(), "s2")
	s1.Subscribe("room:g5", nil, nil)
	s2.Subscribe("room:g5", nil, nil)
	rdb := rs.Client()
	const n = 300
	events := publishAll(t, gw2.Addr(), "p", "room:g5", n, func(i int) {
		if i%75 == 40 {
			if err := rdb.Do(context.Background(), "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
				t.Logf("client kill: %v", err)
			}
		}
	})
	for i, s := range []*wsprobe.Conn{s1, s2} {
		msgs := s.Collect(n, 30*time.Second)
		if !slices.Equal(ids(msgs), events) {
			t.Fatalf("G5: subscriber %d got %d messages, want the %d acked in order; missing oseqs %v", i, len(msgs), len(events), missing(msgs, n))
		}
		wsprobe.CheckStream(t, fmt.Sprintf("subscriber %d", i), msgs)
	}
}

// missing lists the oseqs 1..n a subscriber did not get.
func missing(msgs []*protocol.ServerFrame, n int) []uint64 {
	got := map[uint64]bool{}
	for _, m := range msgs {
		got[m.Oseq] = true
	}
	var out []uint64
	for q := uint64(1); q <= uint64(n); q++ {
		if !got[q] {
			out = append(out, q)
		}
	}
	return out
}

// TestResubscribeAfterRedisRestart: G5 across a restart of a persistent Redis.
func TestResubscribeAfterRedisRestart(t *testing.T) {
	rs := redistest.Start(t, redistest.Persistent())
	gw1 := startGateway(t, rs.Addr(), "us-east", "gw-1")
	gw2 := startGateway(t, rs.Addr(), "us-east", "gw-2")
	s1 := newClient(t, gw1.Addr(), "s1")
	s1.Subscribe("room:restart", nil, nil)
	const n = 120
	events := publishAll(t, gw2.Addr(), "p", "room:restart", n, func(i int) {
		if i == 50 {
			if err := rs.Stop(); err != nil {
				t.Fatalf("stop redis: %v", err)
			}
			if ok, _ := gw1.Ready(); ok {
				// /readyz goes false once the pub/sub link is noticed dead.
				wait.For(t, 10*time.Second, "gateway not ready while Redis is down", func() bool { ok, _ := gw1.Ready(); return !ok })
			}
			go func() { _ = rs.Restart(context.Background()) }()
		}
	})
	msgs := s1.Collect(n, 30*time.Second)
	if !slices.Equal(ids(msgs), events) {
		t.Fatalf("G5: subscriber got %d messages, want the %d acked in order", len(msgs), len(events))
	}
	wsprobe.CheckStream(t, "subscriber", msgs)
}

func TestRedisDownGivesUnavailableAndNoCrash(t *testing.T) {
	rs := redistest.Start(t)
	gw := startGateway(t, rs.Addr(), "us-east", "gw-1", func(c *gateway.Config) { c.SubscribeTimeout = time.Second })
	c := newClient(t, gw.Addr(), "a")
	if err := rs.Kill(); err != nil {
		t.Fatal(err)
	}
	if f := c.Publish("room:down", "x", 1); f.Type != "error" || f.Code != protocol.CodeUnavailable || f.Ref != "x" {
		t.Fatalf("publish with Redis down: %+v", f)
	}
	wait.For(t, 10*time.Second, "readyz false", func() bool {
		resp, err := http.Get("http://" + gw.Addr() + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	c.Send(map[string]any{"type": "subscribe", "room": "room:down"})
	if f := c.Expect("error"); f.Code != protocol.CodeUnavailable || f.Ref != "room:down" {
		t.Fatalf("subscribe with Redis down: %+v", f)
	}
	if err := rs.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, "ready again", func() bool { ok, _ := gw.Ready(); return ok })
	c.Subscribe("room:down", nil, nil)
	if f := c.Publish("room:down", "y", 1); f.Type != "ack" {
		t.Fatalf("publish after Redis returned: %+v", f)
	}
}

// TestResumeRecovered: G6, the good way: exactly the missed messages, then live.
func TestResumeRecovered(t *testing.T) {
	rs := redistest.Start(t)
	gw := startGateway(t, rs.Addr(), "us-east", "gw-1")
	pub := newClient(t, gw.Addr(), "p")
	c := newClient(t, gw.Addr(), "c")
	s := c.Subscribe("tenant:r", nil, nil)
	if len(s.Position) != 0 {
		t.Fatalf("a new room has positions %v", s.Position)
	}
	for i := 0; i < 5; i++ {
		pub.Publish("tenant:r", msgID("a", i), map[string]int{"n": i})
	}
	got := c.Collect(5, 5*time.Second)
	last := got[len(got)-1]
	c.Close()
	for i := 5; i < 12; i++ {
		pub.Publish("tenant:r", msgID("a", i), map[string]int{"n": i})
	}
	c2 := newClient(t, gw.Addr(), "c")
	s2 := c2.Subscribe("tenant:r", protocol.Positions{"us-east": last.Oseq}, protocol.Epochs{"us-east": last.Epoch})
	if !s2.Recovered || s2.Missed != 7 {
		t.Fatalf("resume: %+v, want recovered with 7 missed", s2)
	}
	pub.Publish("tenant:r", "live", map[string]int{"n": 12})
	msgs := c2.Collect(8, 5*time.Second)
	if len(msgs) != 8 {
		t.Fatalf("got %d messages after the resume, want 7 missed + 1 live", len(msgs))
	}
	for i, m := range msgs {
		if m.Oseq != uint64(6+i) {
			t.Fatalf("message %d has oseq %d, want %d", i, m.Oseq, 6+i)
		}
	}
	if extra := c2.Collect(1, 300*time.Millisecond); len(extra) != 0 {
		t.Fatalf("an extra message after the resume: %+v", extra[0])
	}
}

// TestResumeNotRecovered: G6, the other way: trimmed history and a lost epoch
// answer recovered:false with a reason and replay nothing.
func TestResumeNotRecovered(t *testing.T) {
	rs := redistest.Start(t)
	gw := startGateway(t, rs.Addr(), "us-east", "gw-1", func(c *gateway.Config) { c.History.MaxLen = 10 })
	pub := newClient(t, gw.Addr(), "p")
	for i := 0; i < 300; i++ {
		pub.Publish("tenant:trim", msgID("t", i), i)
	}
	c := newClient(t, gw.Addr(), "c")
	s := c.Subscribe("tenant:trim", protocol.Positions{"us-east": 3}, nil)
	if s.Recovered || s.Reason != protocol.ReasonHistoryTrimmed || s.Position["us-east"] != 300 {
		t.Fatalf("resume past trimmed history: %+v", s)
	}
	if extra := c.Collect(1, 300*time.Millisecond); len(extra) != 0 {
		t.Fatalf("recovered:false replayed %+v", extra[0])
	}
	// A client from another life of the sequence: epoch mismatch.
	s = c.Subscribe("tenant:trim", protocol.Positions{"us-east": 299}, protocol.Epochs{"us-east": "old-epoch"})
	if s.Recovered || s.Reason != protocol.ReasonEpochChanged {
		t.Fatalf("resume with an old epoch: %+v", s)
	}
	// Ahead of history with no epoch to tell why.
	s = c.Subscribe("tenant:trim", protocol.Positions{"us-east": 5000}, nil)
	if s.Recovered || s.Reason != protocol.ReasonAheadOfHistory {
		t.Fatalf("resume ahead of history: %+v", s)
	}
}

// TestRedisLostHistoryAnnouncesEpochChange: a Redis restart without
// persistence restarts the sequence under a new epoch, and both the live
// subscriber and a resuming client are told, never silently renumbered.
func TestRedisLostHistoryAnnouncesEpochChange(t *testing.T) {
	rs := redistest.Start(t)
	gw := startGateway(t, rs.Addr(), "us-east", "gw-1")
	pub := newClient(t, gw.Addr(), "p")
	live := newClient(t, gw.Addr(), "live")
	live.Subscribe("tenant:e", nil, nil)
	for i := 0; i < 3; i++ {
		pub.Publish("tenant:e", msgID("e", i), i)
	}
	before := live.Collect(3, 5*time.Second)
	old := before[2]
	if err := rs.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := rs.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, "ready after restart", func() bool { ok, _ := gw.Ready(); return ok })
	var ack *protocol.ServerFrame
	wait.For(t, 10*time.Second, "publish after restart", func() bool {
		ack = pub.Publish("tenant:e", "after", 1)
		return ack.Type == "ack"
	})
	notice := live.Expect("subscribed")
	if notice.Recovered || notice.Reason != protocol.ReasonEpochChanged || notice.Epochs["us-east"] == old.Epoch {
		t.Fatalf("live subscriber's notice: %+v", notice)
	}
	m := live.Expect("message")
	if m.Oseq != 1 || m.Epoch == old.Epoch || m.ID != ack.Event {
		t.Fatalf("first message of the new epoch: %+v (old epoch %s)", m, old.Epoch)
	}
	c := newClient(t, gw.Addr(), "c")
	s := c.Subscribe("tenant:e", protocol.Positions{"us-east": old.Oseq}, protocol.Epochs{"us-east": old.Epoch})
	if s.Recovered || s.Reason != protocol.ReasonEpochChanged {
		t.Fatalf("resume with the lost epoch: %+v", s)
	}
}

// TestSlowConsumerIsCutOthersKeepReceiving: G10.
func TestSlowConsumerIsCutOthersKeepReceiving(t *testing.T) {
	rs := redistest.Start(t)
	// The write timeout outlasts the test's pause, so that what the slow
	// client has not read stays deliverable and its close code reaches it.
	small := func(c *gateway.Config) { c.SendQueue = 16; c.WriteTimeout = 30 * time.Second }
	gw := startGateway(t, rs.Addr(), "us-east", "gw-1", small)

	// The slow client reads its welcome and subscribed frames, then nothing.
	h := http.Header{"Authorization": {"Bearer " + token(t, "slow")}}
	slow, _, err := websocket.DefaultDialer.Dial("ws://"+gw.Addr()+"/ws", h)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer slow.Close()
	_, _, _ = slow.ReadMessage() // welcome
	_ = slow.WriteJSON(map[string]any{"type": "subscribe", "room": "room:slow"})
	_, _, _ = slow.ReadMessage() // subscribed

	fast := newClient(t, gw.Addr(), "fast")
	fast.Subscribe("room:slow", nil, nil)
	pub := newClient(t, gw.Addr(), "pub")
	payload := strings.Repeat("x", 30000)
	const n = 600
	for i := 0; i < n; i++ {
		if f := pub.Publish("room:slow", msgID("s", i), payload); f.Type != "ack" {
			t.Fatalf("publish %d: %+v", i, f)
		}
	}
	msgs := fast.Collect(n, 30*time.Second)
	if len(msgs) != n {
		t.Fatalf("the fast client got %d of %d messages while another was slow", len(msgs), n)
	}
	wsprobe.CheckStream(t, "fast", msgs)

	// Now read what the slow client had buffered: it ends in close 4001.
	_ = slow.SetReadDeadline(time.Now().Add(30 * time.Second))
	var closeErr *websocket.CloseError
	for {
		_, _, err := slow.ReadMessage()
		if err != nil {
			if !errors.As(err, &closeErr) {
				t.Fatalf("slow client ended with %v, not a close frame", err)
			}
			break
		}
	}
	if closeErr.Code != protocol.CloseSlowConsumer {
		t.Fatalf("slow client closed with %d, want %d slow_consumer", closeErr.Code, protocol.CloseSlowConsumer)
	}
	if !protocol.Reconnectable(closeErr.Code) {
		t.Fatalf("slow_consumer must be in the reconnect range")
	}
}

// A drain says bye, refuses new connections and reports not ready while
// the client that has not left yet is still served, and closes it with
// going_away at the drain timeout. (cmd/geolab's
// TestGatewaySIGTERMDrainsBehindAnOpenPort drains a real process.)
func TestDrainSaysByeThenGoingAway(t *testing.T) {
	rs := redistest.Start(t)
	gw := startGateway(t, rs.Addr(), "us-east", "gw-1", func(c *gateway.Config) { c.DrainTimeout = 2 * time.Second })
	c := newClient(t, gw.Addr(), "c")
	c.Subscribe("room:d", nil, nil)
	done := make(chan struct{})
	go func() { gw.Drain(); close(done) }()
	bye := c.Expect("bye")
	if bye.Code != "going_away" || !bye.Reconnect {
		t.Fatalf("bye: %+v", bye)
	}
	if ok, why := gw.Ready(); ok || why != "draining" {
		t.Fatalf("ready while draining: %v %s", ok, why)
	}
	if late, resp, err := wsprobe.Dial(t, gw.Addr(), token(t, "late")); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		if late != nil {
			late.Close()
		}
		t.Fatalf("a connection during drain was not refused with 503: %v", err)
	}
	if s := c.Subscribe("room:d2", nil, nil); s.Room != "room:d2" {
		t.Fatalf("a client not gone yet is not served during the drain: %+v", s)
	}
	if code := c.AwaitClose(wsprobe.Bound); code != protocol.CloseGoingAway {
		t.Fatalf("closed with %d at the drain timeout, want 1001", code)
	}
	<-done
}

// TestResumeOfAnotherRegionsLocalRoom: a client that failed over from
// eu-west resumes a room that is local to eu-west in us-east. us-east will
// never hold eu-west's sequence of that room: recovered:false (G8), not a
// silent "recovered" that skips everything. A federated room is different:
// us-east may simply be behind, and the stranded events arrive later.
func TestResumeOfAnotherRegionsLocalRoom(t *testing.T) {
	rs := redistest.Start(t)
	gw := startGateway(t, rs.Addr(), "us-east", "gw-1", func(c *gateway.Config) { c.Federate = []string{"tenant:*"} })
	c := newClient(t, gw.Addr(), "c")
	s := c.Subscribe("room:eu-west-local", protocol.Positions{"eu-west": 18}, protocol.Epochs{"eu-west": "e1"})
	if s.Recovered || s.Reason != protocol.ReasonAheadOfHistory {
		t.Fatalf("resume of eu-west's local room in us-east: %+v, want recovered:false ahead_of_history", s)
	}
	s = c.Subscribe("tenant:fo", protocol.Positions{"eu-west": 18}, protocol.Epochs{"eu-west": "e1"})
	if !s.Recovered {
		t.Fatalf("resume of a federated room in a region behind the client: %+v, want recovered:true", s)
	}
}

// TestSubscribersJoiningTogetherMissNothing: many clients subscribe to one
// room on one node at the same moment while it is being published to. Each
// must receive every event published after its subscribed frame, even when
// another subscriber's snapshot, taken later, already held that event
// (a room-level "already dispatched" mark taken from one snapshot once
// dropped it for the others).
func TestSubscribersJoiningTogetherMissNothing(t *testing.T) {
	rs := redistest.Start(t)
	gw := startGateway(t, rs.Addr(), "us-east", "gw-1")
	pub := newClient(t, gw.Addr(), "p")
	for round := 0; round < 20; round++ {
		room := fmt.Sprintf("tenant:join-%d", round)
		const n = 6
		subs := make([]*wsprobe.Conn, n)
		for i := range subs {
			subs[i] = newClient(t, gw.Addr(), fmt.Sprintf("s%d", i))
		}
		var wg sync.WaitGroup
		for _, s := range subs {
			wg.Add(1)
			go func() { defer wg.Done(); s.Send(map[string]any{"type": "subscribe", "room": room}) }()
		}
		for i := 0; i < 5; i++ {
			pub.Publish(room, msgID(room, i), i)
		}
		wg.Wait()
		for i, s := range subs {
			sub := s.Expect("subscribed")
			pos := sub.Position["us-east"]
			want := 5 - int(pos)
			got := s.Collect(want, 5*time.Second)
			if len(got) != want {
				t.Fatalf("round %d: subscriber %d subscribed at oseq %d and got %d of the %d events after it", round, i, pos, len(got), want)
			}
			s.Close() // 20 rounds of 6: each round's clients go with it
		}
	}
}
