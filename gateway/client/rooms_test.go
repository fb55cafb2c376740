package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/internal/wait"
)

func TestResumeSendsSinceAndEpochsOfLastDelivered(t *testing.T) {
	f := newFake(t, "us-east")
	c, fc1, rec := dial(t, f, nil)
	subscribe(t, c, fc1, testRoom, subscribedFrame(testRoom, true, 0, "", protocol.Positions{"us-east": 3}, protocol.Epochs{"us-east": "e1"}))
	fc1.send(messageFrame(testRoom, "us-east", "e1", 4))
	fc1.send(messageFrame(testRoom, "us-east", "e1", 5))
	fc1.send(messageFrame(testRoom, "eu-west", "e2", 1))
	wait.For(t, bound, "3 messages", func() bool { return len(rec.messages()) == 3 })
	fc1.closeWith(protocol.CloseSlowConsumer, "send queue full")

	fc2 := f.accept(t)
	sub := fc2.expect(t, protocol.TypeSubscribe)
	if sub.f.Room != testRoom || !maps.Equal(sub.f.Since, protocol.Positions{"us-east": 5, "eu-west": 1}) ||
		!maps.Equal(sub.f.Epochs, protocol.Epochs{"us-east": "e1", "eu-west": "e2"}) {
		t.Fatalf("resubscribe = %s", sub.raw)
	}
	fc2.send(subscribedFrame(testRoom, true, 1, "", protocol.Positions{"us-east": 6, "eu-west": 1},
		protocol.Epochs{"us-east": "e1", "eu-west": "e2"}))
	fc2.send(messageFrame(testRoom, "us-east", "e1", 6))
	wait.For(t, bound, "replayed message", func() bool { return len(rec.messages()) == 4 })

	pos, _ := c.Positions(testRoom)
	if !maps.Equal(pos, protocol.Positions{"us-east": 6, "eu-west": 1}) {
		t.Errorf("positions after resume = %v", pos)
	}
	subs := rec.subscribed()
	last := subs[len(subs)-1]
	if !last.Resumed || !last.Recovered || last.Missed != 1 || last.Conn != 2 || last.Unasked {
		t.Errorf("resume event = %+v", last)
	}
	if st := c.Stats(); st.ResumesRecovered != 1 || st.Duplicates != 0 || st.Gaps != 0 {
		t.Errorf("stats = %+v", st)
	}
}

// A testRoom that was empty when joined must resume with since {} — "replay all
// I missed" — not without since, which would mean "live only" and lose what
// was published meanwhile.
func TestResumeOfEmptyRoomSendsEmptySince(t *testing.T) {
	f := newFake(t, "us-east")
	c, fc1, _ := dial(t, f, nil)
	subscribe(t, c, fc1, testRoom, subscribedFrame(testRoom, true, 0, "", nil, nil))
	fc1.drop()
	sub := f.accept(t).expect(t, protocol.TypeSubscribe)
	if string(sub.keys["since"]) != "{}" || sub.f.Since == nil {
		t.Errorf("resubscribe of an empty room = %s, want since {}", sub.raw)
	}
}

func TestRecoveredFalseResetsPositions(t *testing.T) {
	f := newFake(t, "us-east")
	c, fc1, rec := dial(t, f, nil)
	subscribe(t, c, fc1, testRoom, subscribedFrame(testRoom, true, 0, "",
		protocol.Positions{"us-east": 5, "eu-west": 2}, protocol.Epochs{"us-east": "e1", "eu-west": "e2"}))
	fc1.drop()

	fc2 := f.accept(t)
	fc2.expect(t, protocol.TypeSubscribe)
	fc2.send(subscribedFrame(testRoom, false, 0, protocol.ReasonHistoryTrimmed, protocol.Positions{"us-east": 40}, protocol.Epochs{"us-east": "e1"}))
	wait.For(t, bound, "positions replaced", func() bool {
		pos, ep := c.Positions(testRoom)
		return maps.Equal(pos, protocol.Positions{"us-east": 40}) && maps.Equal(ep, protocol.Epochs{"us-east": "e1"})
	})
	wait.For(t, bound, "resume reported", func() bool { return len(rec.subscribed()) == 2 })
	subs := rec.subscribed()
	if last := subs[len(subs)-1]; last.Recovered || !last.Resumed || last.Reason != protocol.ReasonHistoryTrimmed || last.Unasked {
		t.Errorf("resume event = %+v", last)
	}

	fc2.send(messageFrame(testRoom, "us-east", "e1", 40)) // at the new position: a duplicate
	fc2.send(messageFrame(testRoom, "us-east", "e1", 41)) // next after it: no gap
	wait.For(t, bound, "message 41", func() bool { return len(rec.messages()) == 1 })
	if m := rec.messages()[0]; m.Oseq != 41 || m.Gap {
		t.Errorf("message = %+v", m)
	}
	if st := c.Stats(); st.ResumesNotRecovered != 1 || st.Gaps != 0 || st.Duplicates != 1 {
		t.Errorf("stats = %+v", st)
	}
}

// The gateway announces a gap it cannot fill with an unasked subscribed
// frame naming the origins concerned: their positions are replaced, the
// others kept.
func TestUnaskedRecoveredFalseReplacesNamedOrigins(t *testing.T) {
	f := newFake(t, "us-east")
	c, fc, rec := dial(t, f, nil)
	subscribe(t, c, fc, testRoom, subscribedFrame(testRoom, true, 0, "",
		protocol.Positions{"us-east": 5, "eu-west": 2}, protocol.Epochs{"us-east": "e1", "eu-west": "e2"}))
	fc.send(subscribedFrame(testRoom, false, 0, protocol.ReasonHistoryLost, protocol.Positions{"us-east": 9}, protocol.Epochs{"us-east": "e9"}))
	fc.send(messageFrame(testRoom, "us-east", "e9", 10))
	wait.For(t, bound, "message after the gap", func() bool { return len(rec.messages()) == 1 })

	pos, ep := c.Positions(testRoom)
	if !maps.Equal(pos, protocol.Positions{"us-east": 10, "eu-west": 2}) || !maps.Equal(ep, protocol.Epochs{"us-east": "e9", "eu-west": "e2"}) {
		t.Errorf("positions = %v %v", pos, ep)
	}
	subs := rec.subscribed()
	if last := subs[len(subs)-1]; !last.Unasked || last.Recovered || last.Reason != protocol.ReasonHistoryLost {
		t.Errorf("unasked event = %+v", last)
	}
	if st := c.Stats(); st.GapsAnnounced != 1 || st.Gaps != 0 || st.EpochChanges != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestBackstopDropsAndCountsDuplicates(t *testing.T) {
	f := newFake(t, "us-east")
	c, fc, rec := dial(t, f, nil)
	subscribe(t, c, fc, testRoom, subscribedFrame(testRoom, true, 0, "", protocol.Positions{"us-east": 3}, protocol.Epochs{"us-east": "e1"}))
	for _, q := range []uint64{4, 5, 5, 4, 6} {
		fc.send(messageFrame(testRoom, "us-east", "e1", q))
	}
	wait.For(t, bound, "3 messages", func() bool { return len(rec.messages()) == 3 })
	var got []uint64
	for _, m := range rec.messages() {
		got = append(got, m.Oseq)
	}
	if fmt.Sprint(got) != "[4 5 6]" {
		t.Errorf("delivered %v, want [4 5 6]", got)
	}
	if st := c.Stats(); st.Duplicates != 2 || st.Messages != 3 || st.Gaps != 0 {
		t.Errorf("stats = %+v", st)
	}
	var onWire int
	for _, fr := range rec.rawFrames() {
		if fr.Dir == In && bytes.Contains(fr.Data, []byte(`"type":"message"`)) {
			onWire++
		}
	}
	if onWire != 5 {
		t.Errorf("OnFrame saw %d message frames, want all 5 (before the backstop)", onWire)
	}
}

func TestBackstopCountsGap(t *testing.T) {
	f := newFake(t, "us-east")
	c, fc, rec := dial(t, f, nil)
	subscribe(t, c, fc, testRoom, subscribedFrame(testRoom, true, 0, "", protocol.Positions{"us-east": 3}, protocol.Epochs{"us-east": "e1"}))
	fc.send(messageFrame(testRoom, "us-east", "e1", 4))
	fc.send(messageFrame(testRoom, "us-east", "e1", 7))
	wait.For(t, bound, "2 messages", func() bool { return len(rec.messages()) == 2 })
	ms := rec.messages()
	if ms[0].Gap || !ms[1].Gap || ms[1].Oseq != 7 {
		t.Errorf("messages = %+v", ms)
	}
	if st := c.Stats(); st.Gaps != 1 || st.Duplicates != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestBackstopAcceptsEpochChange(t *testing.T) {
	f := newFake(t, "us-east")
	c, fc, rec := dial(t, f, nil)
	subscribe(t, c, fc, testRoom, subscribedFrame(testRoom, true, 0, "", protocol.Positions{"us-east": 5}, protocol.Epochs{"us-east": "e1"}))
	fc.send(messageFrame(testRoom, "us-east", "e2", 1)) // the sequence restarted
	fc.send(messageFrame(testRoom, "us-east", "e2", 2))
	fc.send(messageFrame(testRoom, "us-east", "e2", 2)) // a duplicate in the new epoch
	fc.send(messageFrame(testRoom, "eu-west", "x1", 8)) // an origin never seen: just added
	wait.For(t, bound, "3 messages", func() bool { return len(rec.messages()) == 3 })
	pos, ep := c.Positions(testRoom)
	if !maps.Equal(pos, protocol.Positions{"us-east": 2, "eu-west": 8}) || !maps.Equal(ep, protocol.Epochs{"us-east": "e2", "eu-west": "x1"}) {
		t.Errorf("positions = %v %v", pos, ep)
	}
	if st := c.Stats(); st.EpochChanges != 1 || st.Duplicates != 1 || st.Gaps != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestUnsubscribeLeavesSetKeepsPositions(t *testing.T) {
	f := newFake(t, "us-east")
	c, fc, _ := dial(t, f, nil)
	subscribe(t, c, fc, testRoom, subscribedFrame(testRoom, true, 0, "", protocol.Positions{"us-east": 7}, protocol.Epochs{"us-east": "e1"}))
	if err := c.Unsubscribe(context.Background(), testRoom); err != nil {
		t.Fatal(err)
	}
	if uf := fc.expect(t, protocol.TypeUnsubscribe); uf.f.Room != testRoom {
		t.Errorf("unsubscribe frame = %s", uf.raw)
	}
	cf, res := subscribe(t, c, fc, testRoom, subscribedFrame(testRoom, true, 0, "", protocol.Positions{"us-east": 7}, protocol.Epochs{"us-east": "e1"}))
	if !maps.Equal(cf.f.Since, protocol.Positions{"us-east": 7}) || !res.Resumed {
		t.Errorf("subscribe after unsubscribe = %s, result %+v; want a resume from 7", cf.raw, res)
	}
}

// Subscribe, Unsubscribe, Subscribe again before any answer: the second
// Subscribe sends its own frame and returns the answer to it, not to the
// first (which the unsubscribe undid at the gateway).
func TestSubscribeAfterUnsubscribeInFlight(t *testing.T) {
	f := newFake(t, "us-east")
	c, fc, _ := dial(t, f, nil)
	first := async(t, func() (SubscribeResult, error) { return c.Subscribe(context.Background(), testRoom) })
	fc.expect(t, protocol.TypeSubscribe)
	if err := c.Unsubscribe(context.Background(), testRoom); err != nil {
		t.Fatal(err)
	}
	if _, err := first(); !errors.Is(err, errUnsubscribed) {
		t.Errorf("first Subscribe = %v, want errUnsubscribed", err)
	}
	fc.expect(t, protocol.TypeUnsubscribe)
	second := async(t, func() (SubscribeResult, error) { return c.Subscribe(context.Background(), testRoom) })
	fc.expect(t, protocol.TypeSubscribe)
	fc.send(subscribedFrame(testRoom, true, 0, "", protocol.Positions{"us-east": 1}, nil))
	fc.send(subscribedFrame(testRoom, true, 0, "", protocol.Positions{"us-east": 2}, nil))
	res, err := second()
	if err != nil || res.Position["us-east"] != 2 {
		t.Errorf("second Subscribe = %+v, %v; want the answer to its own frame", res, err)
	}
}

func TestSubscribeErrorTakesRoomOutOfSet(t *testing.T) {
	f := newFake(t, "us-east")
	c, fc1, _ := dial(t, f, nil)
	call := async(t, func() (SubscribeResult, error) { return c.Subscribe(context.Background(), "secret:1") })
	fc1.expect(t, protocol.TypeSubscribe)
	fc1.send(protocol.ErrorFrame{Type: protocol.TypeError, Ref: "secret:1", Code: protocol.CodeForbidden, Message: "no"})
	_, err := call()
	var se *ServerError
	if !errors.As(err, &se) || se.Code != protocol.CodeForbidden || se.Ref != "secret:1" {
		t.Fatalf("Subscribe = %v", err)
	}
	if err := c.Unsubscribe(context.Background(), "secret:1"); !errors.As(err, &se) || se.Code != protocol.CodeNotSubscribed {
		t.Errorf("Unsubscribe of a refused room = %v", err)
	}
	// After a reconnect the refused testRoom is not subscribed again: the first
	// frame on the new connection is the publish below.
	fc1.drop()
	fc2 := f.accept(t)
	wait.For(t, bound, "reconnected", func() bool { return c.Session() == "s2" })
	wp := async(t, func() (Ack, error) { return c.Publish(context.Background(), testRoom, "after", 1) })
	fc2.expect(t, protocol.TypePublish)
	fc2.send(ackFrame("after", "ev", 1))
	if _, err := wp(); err != nil {
		t.Fatal(err)
	}
}

func TestResubscribeRefusedIsRetried(t *testing.T) {
	f := newFake(t, "us-east")
	c, fc1, rec := dial(t, f, nil)
	subscribe(t, c, fc1, testRoom, subscribedFrame(testRoom, true, 0, "", protocol.Positions{"us-east": 2}, protocol.Epochs{"us-east": "e1"}))
	fc1.drop()
	fc2 := f.accept(t)
	fc2.expect(t, protocol.TypeSubscribe)
	fc2.send(protocol.ErrorFrame{Type: protocol.TypeError, Ref: testRoom, Code: protocol.CodeUnavailable, Message: "redis down"})
	again := fc2.expect(t, protocol.TypeSubscribe)
	if !maps.Equal(again.f.Since, protocol.Positions{"us-east": 2}) {
		t.Errorf("retried resubscribe = %s", again.raw)
	}
	fc2.send(subscribedFrame(testRoom, true, 0, "", protocol.Positions{"us-east": 2}, protocol.Epochs{"us-east": "e1"}))
	wait.For(t, bound, "refusal then answer reported", func() bool {
		s := rec.subscribed()
		return len(s) == 3 && s[1].Err != nil && s[1].WillRetry && s[2].Recovered && s[2].Conn == 2
	})
}

// FuzzHandleFrame feeds arbitrary gateway frames to the client's frame
// handling: it must never panic.
func FuzzHandleFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"welcome","session":"s","region":"r","node":"n"}`,
		`{"type":"subscribed","room":"a","recovered":false,"position":{"x":1},"epochs":{"x":"e"}}`,
		`{"type":"message","room":"a","origin":"x","oseq":2,"epoch":"e","data":{}}`,
		`{"type":"message","room":"a","origin":"x","oseq":0,"epoch":""}`,
		`{"type":"ack","id":"p"}`, `{"type":"error","ref":"a","code":"unavailable"}`,
		`{"type":"error","ref":"p","code":"rate_limited"}`, `{"type":"bye","reconnect":true}`,
		`{"type":"nope"}`, `[]`, `{"type":"subscribed","room":"a","position":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c := &Client{o: Options{MinBackoff: time.Millisecond, MaxBackoff: time.Second}.withDefaults(),
			rooms: map[string]*room{}, pending: map[string]*pendingPublish{}, events: newEventQueue()}
		c.log, c.rnd = c.o.Logger, c.o.Rand
		cn := &conn{no: 1, kick: make(chan struct{}, 1), log: c.log}
		c.cur = cn
		c.rooms["a"] = &room{name: "a", wanted: true, sent: []bool{true}, awaitConn: 1,
			pos: protocol.Positions{"x": 1}, ep: protocol.Epochs{"x": "e"}, tracked: true}
		c.pending["p"] = &pendingPublish{id: "p", notify: make(chan struct{}, 1)}
		fr, err := protocol.DecodeServerFrame(b)
		if err != nil {
			return
		}
		c.handle(cn, fr)
		c.handle(cn, fr)
	})
}
