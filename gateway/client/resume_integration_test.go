package client_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/geolab/geolab/gateway/client"
	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/internal/gatewaytest"
	"github.com/geolab/geolab/internal/redistest"
	"github.com/geolab/geolab/internal/wait"
)

// TestClientResumeAfterItsRegionLostTheEpoch: the client's region lost its
// Redis data (no persistence) and nothing was published since. The client
// reconnects and resumes with the epoch it had; the region, the authority on
// its own origin, answers recovered:false epoch_changed with no position for
// that origin. The client takes the frame's positions, so that the new
// life's first event, oseq 1, is delivered as the start of a sequence: not
// dropped as a duplicate of its old oseq 1..3, not counted as a gap.
func TestClientResumeAfterItsRegionLostTheEpoch(t *testing.T) {
	rs := redistest.Start(t)
	a := gatewaytest.Authority(secret)
	gw1 := gatewaytest.Start(t, a, rs.Addr(), "us-east", "gw-1")
	gw2 := gatewaytest.Start(t, a, rs.Addr(), "us-east", "gw-2")
	const room = "tenant:lost"
	c, rec := dialClient(t, a, "watcher", "ws://"+gw1.Addr()+"/ws", "ws://"+gw2.Addr()+"/ws")
	if _, err := c.Subscribe(context.Background(), room); err != nil {
		t.Fatal(err)
	}
	pub, _ := dialClient(t, a, "pub", "ws://"+gw2.Addr()+"/ws")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 0; i < 3; i++ {
		if _, err := pub.Publish(ctx, room, fmt.Sprintf("a-%d", i), i); err != nil {
			t.Fatal(err)
		}
	}
	wait.For(t, 10*time.Second, "3 messages", func() bool { return rec.count() == 3 })
	_, epochs := c.Positions(room)
	old := epochs["us-east"]

	if err := rs.Kill(); err != nil {
		t.Fatal(err)
	}
	// gw-1 goes while Redis is down: the watcher reconnects to gw-2 and
	// resumes at us-east 3 of the lost epoch once Redis is back. (Had gw-1
	// lived to see Redis back, it would have told the watcher unasked that
	// the data was lost, before any resume.)
	gw1.Close()
	if err := rs.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, "gw-2 ready after the restart", func() bool { ok, _ := gw2.Ready(); return ok })
	var resumed client.SubscribedEvent
	wait.For(t, 20*time.Second, "the resume answered on the new connection", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for _, e := range rec.subs {
			if e.Resumed && !e.Unasked {
				resumed = e
				return true
			}
		}
		return false
	})
	if resumed.Recovered || resumed.Reason != protocol.ReasonEpochChanged {
		t.Fatalf("resume with the epoch its region lost: %+v, want recovered:false epoch_changed", resumed)
	}
	if pos, ep := c.Positions(room); len(pos) != 0 || len(ep) != 0 {
		t.Fatalf("positions after the answer: %v %v, want none (the frame names none)", pos, ep)
	}

	ack, err := pub.Publish(ctx, room, "after", 1)
	if err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, "the new life's first event", func() bool { return rec.count() == 4 })
	rec.mu.Lock()
	m := rec.msgs[3]
	rec.mu.Unlock()
	if m.ID != ack.Event || m.Oseq != 1 || m.Epoch == old || m.Gap {
		t.Fatalf("after the answer: %+v, want %s at oseq 1 of a new epoch (not %s), no gap", m, ack.Event, old)
	}
	if st := c.Stats(); st.Duplicates != 0 || st.Gaps != 0 || st.ResumesNotRecovered != 1 || st.GapsAnnounced != 0 {
		t.Fatalf("stats: %+v (want one resume not recovered, no duplicate, gap or unasked announcement)", st)
	}
}
