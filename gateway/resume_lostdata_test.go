package gateway_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/geolab/geolab/gateway"
	"github.com/geolab/geolab/gateway/broker"
	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/internal/redistest"
	"github.com/geolab/geolab/internal/wsprobe"
)

// lostData is two federated regions after us-east's Redis lost all its
// data: a client that had us-east 1..3 and us-west 1..3 of room tenant:1
// has resumed on us-east and been answered recovered:false epoch_changed.
type lostData struct {
	room    string
	west    *redistest.Server
	gwEast  *gateway.Server
	pubEast *wsprobe.Conn
	pubWest *wsprobe.Conn
	bEast   *broker.Broker // what us-east's bridge applies with
	had     []*protocol.ServerFrame
	since   protocol.Positions
	epochs  protocol.Epochs
	c       *wsprobe.Conn // the resumed client
}

// westOutbox returns us-west's federation outbox: what us-east's bridge
// reads and applies.
func (l *lostData) westOutbox(t *testing.T) []map[string]any {
	t.Helper()
	return outbox(t, l.west, "us-west")
}

// apply applies one outbox entry of us-west in us-east, as the bridge does.
func (l *lostData) apply(t *testing.T, v map[string]any) {
	t.Helper()
	if st := applyEntry(t, l.bEast, v); st != "ok" {
		t.Fatalf("apply us-west oseq %v in us-east: %s", v["q"], st)
	}
}

// outbox returns region's federation outbox in rs, entry by entry: what
// the other regions' bridges read and apply.
func outbox(t *testing.T, rs *redistest.Server, region string) []map[string]any {
	t.Helper()
	msgs, err := rs.Client().XRange(context.Background(), broker.OutboxKey(region), "-", "+").Result()
	if err != nil {
		t.Fatalf("%s's outbox: %v", region, err)
	}
	out := make([]map[string]any, len(msgs))
	for i, m := range msgs {
		out[i] = m.Values
	}
	return out
}

// applyEntry applies one outbox entry with b, as a bridge does, and
// returns the script's status ("ok", "dup" or "gap").
func applyEntry(t *testing.T, b *broker.Broker, v map[string]any) string {
	t.Helper()
	q, _ := strconv.ParseUint(v["q"].(string), 10, 64)
	res, err := b.Apply(context.Background(), broker.ApplyRequest{Room: v["r"].(string), Origin: v["o"].(string),
		Oseq: q, Epoch: v["e"].(string), Frame: []byte(v["f"].(string))})
	if err != nil {
		t.Fatalf("apply %s oseq %d: %v", v["o"], q, err)
	}
	return res.Status
}

// framesUntil returns the subscribed and message frames c gets up to and
// including the message with event id last.
func framesUntil(t *testing.T, c *wsprobe.Conn, last string) []*protocol.ServerFrame {
	t.Helper()
	var got []*protocol.ServerFrame
	for {
		f, ok := c.Next(wsprobe.Bound, "subscribed", "message")
		if !ok {
			t.Fatalf("no frame after %d (read: %v); want %s last", len(got), c.ReadErr(), last)
		}
		got = append(got, f)
		if f.Type == "message" && f.ID == last {
			return got
		}
	}
}

func logFrames(t *testing.T, got []*protocol.ServerFrame) {
	t.Helper()
	for _, f := range got {
		t.Logf("got %s %s %s/%d epoch %q reason %q position %v epochs %v",
			f.Type, f.ID, f.Origin, f.Oseq, f.Epoch, f.Reason, f.Position, f.Epochs)
	}
}

func startLostData(t *testing.T) *lostData {
	t.Helper()
	ctx := context.Background()
	federate := func(c *gateway.Config) { c.Federate = []string{"tenant:*"} }
	east := redistest.Start(t)
	l := &lostData{room: "tenant:1", west: redistest.Start(t)}
	l.gwEast = startGateway(t, east.Addr(), "us-east", "gw-e1", federate)
	gwWest := startGateway(t, l.west.Addr(), "us-west", "gw-w1", federate)
	l.bEast = broker.New(east.Client(), "us-east", broker.DefaultHistory())
	l.pubEast = newClient(t, l.gwEast.Addr(), "pe")
	l.pubWest = newClient(t, gwWest.Addr(), "pw")

	// A client of us-east gets us-east 1..3 and us-west 1..3.
	c := newClient(t, l.gwEast.Addr(), "c")
	c.Subscribe(l.room, nil, nil)
	for i := 1; i <= 3; i++ {
		if a := l.pubWest.Publish(l.room, msgID("w", i), i); a.Type != "ack" {
			t.Fatalf("publish w-%d in us-west: %+v", i, a)
		}
		l.pubEast.Publish(l.room, msgID("e", i), i)
	}
	for _, v := range l.westOutbox(t) {
		l.apply(t, v)
	}
	l.had = c.Collect(6, 5*time.Second)
	if len(l.had) != 6 {
		t.Fatalf("the client got %d of 6 messages before the loss", len(l.had))
	}
	l.since, l.epochs = protocol.Positions{}, protocol.Epochs{}
	for _, m := range l.had {
		l.since[m.Origin], l.epochs[m.Origin] = max(l.since[m.Origin], m.Oseq), m.Epoch
	}
	if l.since["us-east"] != 3 || l.since["us-west"] != 3 {
		t.Fatalf("the client's positions before the loss: %v, want us-east 3, us-west 3", l.since)
	}
	c.Close()

	// us-east's Redis loses everything (and the bridge's checkpoint with
	// it); the client comes back.
	if err := east.Client().FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	l.c = newClient(t, l.gwEast.Addr(), "c")
	s := l.c.Subscribe(l.room, l.since, l.epochs)
	if s.Recovered || s.Reason != protocol.ReasonEpochChanged || len(s.Position) != 0 || len(s.Epochs) != 0 {
		t.Fatalf("resume after us-east lost its data: %+v, want recovered:false epoch_changed, no position", s)
	}
	return l
}

// TestResumeAfterRegionLostDataDropsReappliedFederatedEvents: us-east's
// Redis loses all its data. A client resuming there with positions of
// us-east (its own origin) and us-west is answered recovered:false
// epoch_changed with no position: the region has nothing now. us-east's
// federation bridge, whose checkpoint went with the data, then re-applies
// us-west's outbox from its start, in the same epoch. The client is not
// sent again what it said it had of us-west (counted as duplicates
// dropped); it gets what follows, and us-east's new life, unannounced.
func TestResumeAfterRegionLostDataDropsReappliedFederatedEvents(t *testing.T) {
	l := startLostData(t)
	if a := l.pubWest.Publish(l.room, msgID("w", 4), 4); a.Type != "ack" || a.Oseq != 4 {
		t.Fatalf("publish w-4 in us-west: %+v", a)
	}
	dropped := counter(t, l.gwEast, "geolab_gateway_duplicates_dropped_total")
	outbox := l.westOutbox(t)
	if len(outbox) != 4 {
		t.Fatalf("us-west's outbox holds %d entries, want 4", len(outbox))
	}
	for _, v := range outbox { // the bridge replays from the start
		l.apply(t, v)
	}
	ack := l.pubEast.Publish(l.room, "e-after", 4)
	if ack.Type != "ack" || ack.Oseq != 1 {
		t.Fatalf("us-east's first publish after the loss: %+v, want oseq 1", ack)
	}
	got := framesUntil(t, l.c, ack.Event)
	if len(got) != 2 || got[0].Type != "message" || got[0].Origin != "us-west" || got[0].Oseq != 4 ||
		got[0].Epoch != l.epochs["us-west"] {
		logFrames(t, got)
		t.Fatalf("after the resume the client got %d frames, want us-west oseq 4 then us-east's new oseq 1", len(got))
	}
	for _, m := range l.had {
		if m.ID == got[0].ID {
			t.Fatalf("event %s (%s/%d) sent to the client twice", m.ID, m.Origin, m.Oseq)
		}
	}
	if d := counter(t, l.gwEast, "geolab_gateway_duplicates_dropped_total") - dropped; d != 3 {
		t.Fatalf("duplicates dropped by the re-application: %v, want 3 (us-west 1..3)", d)
	}
}

// TestResumeAfterRegionLostDataAnnouncesAnotherEpochOfFederatedOrigin: as
// above, but us-west lost its data too and numbers from 1 in a new epoch.
// The client, which said it had us-west 3 of the old epoch, is told with an
// unasked epoch_changed frame before the new life's first event.
func TestResumeAfterRegionLostDataAnnouncesAnotherEpochOfFederatedOrigin(t *testing.T) {
	l := startLostData(t)
	if err := l.west.Client().FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	a := l.pubWest.PublishAcked(l.room, "w-new", 1, 10*time.Second)
	outbox := l.westOutbox(t)
	if len(outbox) != 1 {
		t.Fatalf("us-west's outbox holds %d entries, want 1", len(outbox))
	}
	epoch, _ := outbox[0]["e"].(string)
	if a.Oseq != 1 || epoch == "" || epoch == l.epochs["us-west"] {
		t.Fatalf("us-west's first publish after its loss: %+v in epoch %q, want oseq 1 in a new epoch", a, epoch)
	}
	l.apply(t, outbox[0])
	got := framesUntil(t, l.c, a.Event)
	if len(got) != 2 || got[0].Type != "subscribed" || got[0].Recovered || got[0].Reason != protocol.ReasonEpochChanged ||
		got[0].Epochs["us-west"] != epoch || got[1].Oseq != 1 || got[1].Epoch != epoch {
		logFrames(t, got)
		t.Fatalf("after the resume the client got %d frames, want epoch_changed for us-west then its new oseq 1", len(got))
	}
}

// TestResumeWhileTheBridgeReappliesDropsWhatTheClientHad: as
// TestResumeAfterRegionLostDataDropsReappliedFederatedEvents, but us-east's
// bridge has already re-applied us-west 1 when the client resumes with
// us-west 3 (found by geolab explore: 205 events sent twice). The answer
// (recovered:false, us-east's own epoch lost) names us-west at the client's
// position 3, not the region's 1, and the re-applied 2..3 are not sent again.
func TestResumeWhileTheBridgeReappliesDropsWhatTheClientHad(t *testing.T) {
	ctx := context.Background()
	federate := func(c *gateway.Config) { c.Federate = []string{"tenant:*"} }
	east, west := redistest.Start(t), redistest.Start(t)
	room := "tenant:1"
	gwEast := startGateway(t, east.Addr(), "us-east", "gw-e1", federate)
	gwWest := startGateway(t, west.Addr(), "us-west", "gw-w1", federate)
	bEast := broker.New(east.Client(), "us-east", broker.DefaultHistory())
	l := &lostData{west: west}
	apply := func(v map[string]any) string { return applyEntry(t, bEast, v) }
	pubEast, pubWest := newClient(t, gwEast.Addr(), "pe"), newClient(t, gwWest.Addr(), "pw")
	c := newClient(t, gwEast.Addr(), "c")
	c.Subscribe(room, nil, nil)
	for i := 1; i <= 3; i++ {
		if a := pubWest.Publish(room, msgID("w", i), i); a.Type != "ack" {
			t.Fatalf("publish w-%d in us-west: %+v", i, a)
		}
		pubEast.Publish(room, msgID("e", i), i)
	}
	for _, v := range l.westOutbox(t) {
		apply(v)
	}
	had := c.Collect(6, 5*time.Second)
	if len(had) != 6 {
		t.Fatalf("the client got %d of 6 messages before the loss", len(had))
	}
	since, epochs := protocol.Positions{}, protocol.Epochs{}
	for _, m := range had {
		since[m.Origin], epochs[m.Origin] = max(since[m.Origin], m.Oseq), m.Epoch
	}
	c.Close()

	if err := east.Client().FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	outbox := l.westOutbox(t)
	if st := apply(outbox[0]); st != "ok" { // the bridge starts over: us-west 1
		t.Fatalf("re-applying us-west 1: %s", st)
	}
	r := newClient(t, gwEast.Addr(), "c")
	s := r.Subscribe(room, since, epochs)
	if s.Recovered || s.Reason != protocol.ReasonEpochChanged || s.Position["us-west"] != 3 || s.Epochs["us-west"] != epochs["us-west"] {
		t.Fatalf("resume while us-west is re-applied: %+v, want recovered:false epoch_changed naming us-west at the client's 3", s)
	}
	if _, named := s.Position["us-east"]; named {
		t.Fatalf("resume answer names us-east, whose life here was lost: %+v", s)
	}
	if a := pubWest.Publish(room, msgID("w", 4), 4); a.Type != "ack" || a.Oseq != 4 {
		t.Fatalf("publish w-4 in us-west: %+v", a)
	}
	for _, v := range l.westOutbox(t)[1:] {
		apply(v)
	}
	got := r.Collect(1, 5*time.Second)
	if len(got) != 1 || got[0].Origin != "us-west" || got[0].Oseq != 4 {
		logFrames(t, got)
		t.Fatalf("after the resume the client got %d messages, want us-west 4 alone", len(got))
	}
	if extra := r.Collect(1, 300*time.Millisecond); len(extra) != 0 {
		logFrames(t, extra)
		t.Fatal("a message after us-west 4: re-applied events sent again")
	}
}

// TestResumeAheadOfTheRegionsLifeGetsNothingTwice: us-east lost its data
// and started its room's sequence over (epoch B); a client had B 1..2 on
// us-east, then resumes on us-west, whose bridge has not reached B yet (it
// holds A 1..3). The answer is epoch_changed at us-west's A 3; when the
// bridge ends A there and applies B 1..3, the client gets B 3 alone, not
// B 1..2 again (found by geolab explore on two-region, seed 1: 9 events
// sent twice).
func TestResumeAheadOfTheRegionsLifeGetsNothingTwice(t *testing.T) {
	ctx := context.Background()
	federate := func(c *gateway.Config) { c.Federate = []string{"tenant:*"} }
	east, west := redistest.Start(t), redistest.Start(t)
	room := "tenant:1"
	gwEast := startGateway(t, east.Addr(), "us-east", "gw-e1", federate)
	gwWest := startGateway(t, west.Addr(), "us-west", "gw-w1", federate)
	bWest := broker.New(west.Client(), "us-west", broker.DefaultHistory())
	eastOutbox := func() []map[string]any { return outbox(t, east, "us-east") }
	apply := func(v map[string]any) { applyEntry(t, bWest, v) }
	pub := newClient(t, gwEast.Addr(), "pe")
	for i := 1; i <= 3; i++ {
		pub.Publish(room, msgID("a", i), i)
	}
	for _, v := range eastOutbox() {
		apply(v)
	}
	if err := east.Client().FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, gwEast.Addr(), "c")
	c.Subscribe(room, nil, nil)
	for i := 1; i <= 2; i++ {
		if a := pub.PublishAcked(room, msgID("b", i), i, 10*time.Second); a.Oseq != uint64(i) {
			t.Fatalf("us-east's publish b-%d after its loss: oseq %d, want %d", i, a.Oseq, i)
		}
	}
	had := c.Collect(2, 5*time.Second)
	if len(had) != 2 || had[1].Oseq != 2 {
		logFrames(t, had)
		t.Fatalf("the client got %d of us-east's B 1..2", len(had))
	}
	epochB := had[1].Epoch
	c.Close()

	r := newClient(t, gwWest.Addr(), "c")
	s := r.Subscribe(room, protocol.Positions{"us-east": 2}, protocol.Epochs{"us-east": epochB})
	if s.Recovered || s.Reason != protocol.ReasonEpochChanged || s.Position["us-east"] != 3 || s.Epochs["us-east"] == epochB {
		t.Fatalf("resume on us-west with us-east's B 2: %+v, want recovered:false epoch_changed at us-west's A 3", s)
	}
	// us-west's bridge finds us-east's outbox started over: it ends A in
	// the room and applies B.
	if _, err := bWest.EndOrigin(ctx, "us-east", broker.HeldBy(east.Client(), "us-east"), nil); err != nil {
		t.Fatal(err)
	}
	last := pub.PublishAcked(room, msgID("b", 3), 3, 10*time.Second)
	for _, v := range eastOutbox() {
		apply(v)
	}
	got := framesUntil(t, r, last.Event)
	var msgs []*protocol.ServerFrame
	for _, f := range got {
		if f.Type == "message" {
			msgs = append(msgs, f)
		}
	}
	if len(msgs) != 1 || msgs[0].Oseq != 3 || msgs[0].Epoch != epochB {
		logFrames(t, got)
		t.Fatalf("after the resume the client got %d messages, want us-east's B 3 alone", len(msgs))
	}
}
