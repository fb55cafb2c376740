package client

import (
	"context"
	"errors"
	"maps"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/internal/wait"
)

// SubscribeFrom with since {} on a room the client is in sends a subscribe
// with "since":{} and no epochs at once, and the replay that follows is
// delivered (the positions were replaced: the backstop does not drop it).
func TestSubscribeFromEmptySinceAsksForTheWholeHistory(t *testing.T) {
	f := newFake(t, "us-east")
	c, fc, rec := dial(t, f, nil)
	subscribe(t, c, fc, testRoom, subscribedFrame(testRoom, true, 0, "", protocol.Positions{"us-east": 2}, protocol.Epochs{"us-east": "e1"}))
	call := async(t, func() (SubscribeResult, error) {
		return c.SubscribeFrom(context.Background(), testRoom, protocol.Positions{}, nil)
	})
	cf := fc.expect(t, protocol.TypeSubscribe)
	if string(cf.keys["since"]) != "{}" {
		t.Errorf("subscribe from {} = %s, want since {}", cf.raw)
	}
	if _, ok := cf.keys["epochs"]; ok {
		t.Errorf("subscribe from {} carries epochs: %s", cf.raw)
	}
	fc.send(subscribedFrame(testRoom, true, 2, "", protocol.Positions{"us-east": 2}, protocol.Epochs{"us-east": "e1"}))
	fc.send(messageFrame(testRoom, "us-east", "e1", 1))
	fc.send(messageFrame(testRoom, "us-east", "e1", 2))
	res, err := call()
	if err != nil || !res.Resumed || !res.Recovered || res.Missed != 2 {
		t.Fatalf("SubscribeFrom = %+v, %v; want a recovered resume with 2 missed", res, err)
	}
	wait.For(t, bound, "the 2 replayed messages", func() bool { return len(rec.messages()) == 2 })
	if pos, _ := c.Positions(testRoom); !maps.Equal(pos, protocol.Positions{"us-east": 2}) {
		t.Errorf("positions after the replay = %v", pos)
	}
	if st := c.Stats(); st.Duplicates != 0 {
		t.Errorf("backstop dropped %d of the replay", st.Duplicates)
	}
}

// SubscribeFrom with a nil since after Unsubscribe is a live-only subscribe
// (no since key), unlike Subscribe, which resumes from the kept positions;
// the answer's positions become the client's, and the next reconnect
// resumes from them.
func TestSubscribeFromNilSinceIsLive(t *testing.T) {
	f := newFake(t, "us-east")
	c, fc, _ := dial(t, f, nil)
	subscribe(t, c, fc, testRoom, subscribedFrame(testRoom, true, 0, "", protocol.Positions{"us-east": 7}, protocol.Epochs{"us-east": "e1"}))
	if err := c.Unsubscribe(context.Background(), testRoom); err != nil {
		t.Fatal(err)
	}
	fc.expect(t, protocol.TypeUnsubscribe)
	call := async(t, func() (SubscribeResult, error) {
		return c.SubscribeFrom(context.Background(), testRoom, nil, protocol.Epochs{"us-east": "ignored"})
	})
	cf := fc.expect(t, protocol.TypeSubscribe)
	if _, ok := cf.keys["since"]; ok {
		t.Errorf("live subscribe carries since: %s", cf.raw)
	}
	if _, ok := cf.keys["epochs"]; ok {
		t.Errorf("live subscribe carries epochs: %s", cf.raw)
	}
	fc.send(subscribedFrame(testRoom, true, 0, "", protocol.Positions{"us-east": 12}, protocol.Epochs{"us-east": "e1"}))
	if res, err := call(); err != nil || res.Resumed {
		t.Fatalf("SubscribeFrom(nil) = %+v, %v; want a live answer", res, err)
	}
	fc.drop()
	sub := f.accept(t).expect(t, protocol.TypeSubscribe)
	if !maps.Equal(sub.f.Since, protocol.Positions{"us-east": 12}) {
		t.Errorf("resubscribe after the live rejoin = %s, want since the answer's position 12", sub.raw)
	}
}

// Reconnect cuts the connection with no close frame; the client reports
// the disconnect (ErrDropped, will reconnect), connects again and resumes
// its rooms with since. Once the client is closed there is nothing to drop.
func TestReconnectDropsAndResumes(t *testing.T) {
	f := newFake(t, "us-east")
	c, fc1, rec := dial(t, f, nil)
	subscribe(t, c, fc1, testRoom, subscribedFrame(testRoom, true, 0, "", protocol.Positions{"us-east": 3}, protocol.Epochs{"us-east": "e1"}))
	if !c.Reconnect() {
		t.Fatal("Reconnect on a live connection = false")
	}
	fc2 := f.accept(t)
	sub := fc2.expect(t, protocol.TypeSubscribe)
	if !maps.Equal(sub.f.Since, protocol.Positions{"us-east": 3}) || !maps.Equal(sub.f.Epochs, protocol.Epochs{"us-east": "e1"}) {
		t.Errorf("resubscribe after Reconnect = %s", sub.raw)
	}
	<-fc1.done
	if code := fc1.code.Load(); code != 0 && code != websocket.CloseAbnormalClosure {
		t.Errorf("the dropped connection sent close %d, want none (abrupt: 1006 as gorilla reports it)", code)
	}
	waitState(t, rec, "disconnected by Reconnect", func(e StateEvent) bool {
		return e.State == StateDisconnected && e.Conn == 1 && errors.Is(e.Err, ErrDropped) && e.WillReconnect
	})
	waitState(t, rec, "connected again", func(e StateEvent) bool { return e.State == StateConnected && e.Conn == 2 })
	fc2.send(subscribedFrame(testRoom, true, 0, "", protocol.Positions{"us-east": 3}, protocol.Epochs{"us-east": "e1"}))
	wait.For(t, bound, "the resume answered", func() bool { return c.Stats().ResumesRecovered == 1 })
	if st := c.Stats(); st.Reconnects != 1 {
		t.Errorf("stats after Reconnect = %+v, want 1 reconnect", st)
	}
	_ = c.Close()
	if c.Reconnect() {
		t.Error("Reconnect on a closed client = true")
	}
}
