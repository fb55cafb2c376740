package gateway_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/geolab/geolab/gateway"
	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/internal/redistest"
	"github.com/geolab/geolab/internal/wait"
	"github.com/geolab/geolab/internal/wsprobe"
)

// TestResumeOfOwnOriginAheadIsNotRecovered: a region is the authority on
// its own origin's sequence. A resume that names a position of that origin
// the region does not have cannot be federation lag: it is history the
// region lost, so the answer is recovered:false (ahead_of_history), never a
// "recovered" whose floor would silently drop the region's next events. A
// position of another origin may still be ahead in a federated room.
func TestResumeOfOwnOriginAheadIsNotRecovered(t *testing.T) {
	rs := redistest.Start(t)
	gw := startGateway(t, rs.Addr(), "us-east", "gw-1", func(c *gateway.Config) { c.Federate = []string{"tenant:*"} })
	pub := newClient(t, gw.Addr(), "p")
	c := newClient(t, gw.Addr(), "c")

	// A room this region has no record of, and no epoch to name a life.
	s := c.Subscribe("tenant:unknown", protocol.Positions{"us-east": 7}, nil)
	if s.Recovered || s.Reason != protocol.ReasonAheadOfHistory || len(s.Position) != 0 {
		t.Fatalf("resume at us-east 7 of a room us-east never had: %+v, want recovered:false ahead_of_history", s)
	}

	// A room it has, at a position past its last own oseq, in its epoch.
	for i := 0; i < 5; i++ {
		pub.Publish("tenant:known", msgID("k", i), i)
	}
	epoch := c.Subscribe("tenant:known", nil, nil).Epochs["us-east"]
	for _, ep := range []protocol.Epochs{nil, {"us-east": epoch}} {
		s = c.Subscribe("tenant:known", protocol.Positions{"us-east": 8}, ep)
		if s.Recovered || s.Reason != protocol.ReasonAheadOfHistory || s.Position["us-east"] != 5 || s.Epochs["us-east"] != epoch {
			t.Fatalf("resume at us-east 8 (epochs %v) of a room at 5: %+v, want recovered:false ahead_of_history at 5", ep, s)
		}
	}
	// The next event is 6: the client, told where live delivery starts,
	// gets it; a floor at the client's 8 would have dropped it unannounced.
	ack := pub.Publish("tenant:known", "k-next", 6)
	if m := c.Expect("message"); m.Oseq != 6 || m.ID != ack.Event {
		t.Fatalf("after the answer at 5 the client got %+v, want oseq 6 (%s)", m, ack.Event)
	}

	// Another origin ahead in a federated room is federation lag: recovered,
	// nothing replayed, and this region's own position at its tip is fine.
	s = c.Subscribe("tenant:known", protocol.Positions{"us-east": 6, "eu-west": 18}, protocol.Epochs{"us-east": epoch, "eu-west": "w1"})
	if !s.Recovered || s.Missed != 0 {
		t.Fatalf("resume with eu-west ahead (lag) and us-east at the tip: %+v, want recovered:true, 0 missed", s)
	}
}

// TestResumeOfOwnEpochLostWithRedisIsEpochChanged: the region's Redis
// restarted without persistence and nothing was published since, so the
// region holds no epoch of its own origin for the room. A client naming the
// epoch it had is told epoch_changed (that life of the sequence is gone),
// not recovered:true; the first event of the new life then comes as the
// first of its sequence, with no second announcement.
func TestResumeOfOwnEpochLostWithRedisIsEpochChanged(t *testing.T) {
	rs := redistest.Start(t)
	gw := startGateway(t, rs.Addr(), "us-east", "gw-1")
	pub := newClient(t, gw.Addr(), "p")
	for i := 0; i < 3; i++ {
		pub.Publish("tenant:lost", msgID("l", i), i)
	}
	s := pub.Subscribe("tenant:lost", nil, nil)
	old := s.Epochs["us-east"]
	if s.Position["us-east"] != 3 || old == "" {
		t.Fatalf("subscribed before the restart: %+v", s)
	}
	if err := rs.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := rs.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, "ready after the restart", func() bool { ok, _ := gw.Ready(); return ok })

	c := newClient(t, gw.Addr(), "c")
	s = c.Subscribe("tenant:lost", protocol.Positions{"us-east": 3}, protocol.Epochs{"us-east": old})
	if s.Recovered || s.Reason != protocol.ReasonEpochChanged || len(s.Position) != 0 || len(s.Epochs) != 0 {
		t.Fatalf("resume with the epoch Redis lost: %+v, want recovered:false epoch_changed, no position", s)
	}
	noEpoch := newClient(t, gw.Addr(), "c2")
	if s := noEpoch.Subscribe("tenant:lost", protocol.Positions{"us-east": 3}, nil); s.Recovered || s.Reason != protocol.ReasonAheadOfHistory {
		t.Fatalf("resume at 3 without an epoch after the loss: %+v, want recovered:false ahead_of_history", s)
	}
	ack := pub.PublishAcked("tenant:lost", "after", 1, 10*time.Second)
	f, ok := c.Next(wsprobe.Bound, "subscribed", "message")
	if !ok || f.Type != "message" || f.Oseq != 1 || f.Epoch == old || f.ID != ack.Event {
		t.Fatalf("after the epoch_changed answer the client got %+v, want the new life's oseq 1 (%s) unannounced", f, ack.Event)
	}
}

// TestResumeOverReplayMaxBytesIsHistoryTrimmed: a resume whose missed
// events pass --replay-max-bytes is answered recovered:false
// history_trimmed before anything is sent: no partial replay, then live
// delivery from the tip. Under the bound the same room resumes.
func TestResumeOverReplayMaxBytesIsHistoryTrimmed(t *testing.T) {
	rs := redistest.Start(t)
	gw := startGateway(t, rs.Addr(), "us-east", "gw-1", func(c *gateway.Config) { c.ReplayMaxBytes = 100 << 10 })
	pub := newClient(t, gw.Addr(), "p")
	payload := strings.Repeat("x", 20000)
	for i := 0; i < 10; i++ {
		pub.Publish("tenant:big", msgID("b", i), payload)
	}
	c := newClient(t, gw.Addr(), "c")
	s := c.Subscribe("tenant:big", protocol.Positions{"us-east": 0}, nil)
	if s.Recovered || s.Reason != protocol.ReasonHistoryTrimmed || s.Missed != 0 || s.Position["us-east"] != 10 {
		t.Fatalf("resume of 10 × 20 KB over a 100 KiB replay bound: %+v, want recovered:false history_trimmed at 10", s)
	}
	if extra := c.Collect(1, 300*time.Millisecond); len(extra) != 0 {
		t.Fatalf("recovered:false replayed oseq %d", extra[0].Oseq)
	}
	s = c.Subscribe("tenant:big", protocol.Positions{"us-east": 7}, nil)
	if !s.Recovered || s.Missed != 3 {
		t.Fatalf("resume of 3 × 20 KB under the bound: %+v, want recovered:true, 3 missed", s)
	}
	for i, m := range c.Collect(3, 5*time.Second) {
		if m.Oseq != uint64(8+i) {
			t.Fatalf("replayed message %d has oseq %d, want %d", i, m.Oseq, 8+i)
		}
	}
}

// TestResumeStreamsReplayWhileLivePublishesContinue: a replay far larger
// than the client's send queue, with publishes going on during it, reaches
// a client that reads: every event after its position, in order, exactly
// once, replay and live alike, and the client is not cut for being sent
// more than its queue holds at once.
func TestResumeStreamsReplayWhileLivePublishesContinue(t *testing.T) {
	rs := redistest.Start(t)
	// The resuming client's node has a small queue; the publishers are on
	// another node, whose acks are not what is tested.
	gw := startGateway(t, rs.Addr(), "us-east", "gw-1", func(c *gateway.Config) { c.SendQueue = 256 })
	gw2 := startGateway(t, rs.Addr(), "us-east", "gw-2")
	pub := newClient(t, gw2.Addr(), "p")
	const room, before, during, from = "tenant:stream", 3000, 1000, 100
	payload := strings.Repeat("y", 2000)
	for i := 0; i < before; i++ {
		if f := pub.Publish(room, msgID("a", i), payload); f.Type != "ack" {
			t.Fatalf("publish %d: %+v", i, f)
		}
	}
	live := newClient(t, gw2.Addr(), "live")
	c := newClient(t, gw.Addr(), "c")
	// The live publishes are sent without waiting for their acks, so that
	// the gateway stores them while the resume is being answered.
	go func() {
		for i := 0; i < during; i++ {
			live.Send(map[string]any{"type": "publish", "room": room, "id": msgID("l", i), "data": i})
		}
	}()
	s := c.Subscribe(room, protocol.Positions{"us-east": from}, nil)
	if !s.Recovered || s.Missed != int(s.Position["us-east"])-from {
		t.Fatalf("resume at %d: %+v, want recovered:true with everything after %d missed", from, s, from)
	}
	for i := 0; i < during; i++ {
		if f := live.Expect("ack", "error"); f.Type != "ack" {
			t.Fatalf("live publish: %+v", f)
		}
	}
	const want = before + during - from
	msgs := c.Collect(want, 60*time.Second)
	if len(msgs) != want {
		t.Fatalf("the resumed client got %d of %d events (read ended: %v, close code %d)", len(msgs), want, c.ReadErr(), c.CloseCode())
	}
	wsprobe.CheckStream(t, "resumed client", msgs)
	if msgs[0].Oseq != from+1 || msgs[want-1].Oseq != before+during {
		t.Fatalf("the resumed client got oseq %d..%d, want %d..%d", msgs[0].Oseq, msgs[want-1].Oseq, from+1, before+during)
	}
	if extra := c.Collect(1, 300*time.Millisecond); len(extra) != 0 {
		t.Fatalf("an extra message after everything: oseq %d", extra[0].Oseq)
	}
}
