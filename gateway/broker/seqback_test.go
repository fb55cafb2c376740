package broker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/geolab/geolab/gateway/broker"
	"github.com/geolab/geolab/internal/redistest"
)

// TestPublishBehindWhatWasSeenStartsANewEpoch: publish.lua compares the
// room's sequence with PublishRequest.Seen. A sequence at or above it, or
// under another epoch, goes on as always; one below it under the same
// epoch (Redis lost events that were handed out: a replica promoted before
// it had them, made here by setting the counter back) starts a new epoch,
// the request's, at oseq 1, and the history holds the new event under it.
func TestPublishBehindWhatWasSeenStartsANewEpoch(t *testing.T) {
	rs := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := broker.New(rs.Client(), "us-east", broker.DefaultHistory())
	n := 0
	publish := func(epoch string, seen broker.SeqSeen) broker.Result {
		t.Helper()
		n++
		id := string(rune('a' + n))
		r, err := b.Publish(ctx, broker.PublishRequest{Room: "room:s", Sender: "alice", ClientID: id, EventID: "ev-" + id,
			Epoch: epoch, TS: time.Now(), Data: []byte(`1`), Seen: seen})
		if err != nil || r.Status != "ok" {
			t.Fatalf("publish %s: %+v %v", id, r, err)
		}
		return r
	}
	for i := 1; i <= 3; i++ {
		if r := publish("e1", broker.SeqSeen{}); r.Epoch != "e1" || r.Oseq != uint64(i) {
			t.Fatalf("publish %d: epoch %s oseq %d", i, r.Epoch, r.Oseq)
		}
	}
	// At or below the room's sequence, or of another epoch: nothing changes.
	for _, seen := range []broker.SeqSeen{{Epoch: "e1", Oseq: 3}, {Epoch: "e1", Oseq: 1}, {Epoch: "e0", Oseq: 99}} {
		if r := publish("e2", seen); r.Epoch != "e1" || r.Oseq != uint64(n) {
			t.Fatalf("seen %+v: epoch %s oseq %d, want e1 %d", seen, r.Epoch, r.Oseq, n)
		}
	}
	// The sequence went back: 6 was handed out, Redis holds 4.
	if err := rs.Client().HSet(ctx, broker.Standalone.SeqKey("room:s"), "q:us-east", 4).Err(); err != nil {
		t.Fatal(err)
	}
	if r := publish("e2", broker.SeqSeen{Epoch: "e1", Oseq: 6}); r.Epoch != "e2" || r.Oseq != 1 {
		t.Fatalf("behind what was seen: epoch %s oseq %d, want a new epoch e2 at 1", r.Epoch, r.Oseq)
	}
	if r := publish("e3", broker.SeqSeen{Epoch: "e2", Oseq: 1}); r.Epoch != "e2" || r.Oseq != 2 {
		t.Fatalf("after the new epoch: epoch %s oseq %d, want e2 2", r.Epoch, r.Oseq)
	}
	h, err := rs.Client().XRange(ctx, broker.Standalone.HistoryKey("room:s"), "-", "+").Result()
	if err != nil || len(h) != 8 || h[6].Values["e"] != "e2" || h[6].Values["q"] != "1" {
		t.Fatalf("history %v (%v): want 8 entries, the 7th e2/1", h, err)
	}
}

// TestEndOriginWithHeldEndsOnlyTheRoomsTheOriginLost: EndOrigin given what
// the origin holds ends a room whose applied life the origin holds below
// it, or under another epoch, or not at all, and leaves a room the origin
// still holds whole (and publishes "end" on the ended rooms' channels
// only); without held it ends them all.
func TestEndOriginWithHeldEndsOnlyTheRoomsTheOriginLost(t *testing.T) {
	rs := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := broker.New(rs.Client(), "eu-west", broker.DefaultHistory())
	rooms := []string{"room:behind", "room:whole", "room:ahead", "room:other-epoch", "room:gone"}
	for _, room := range rooms {
		for q := uint64(1); q <= 5; q++ {
			r, err := b.Apply(ctx, broker.ApplyRequest{Room: room, Origin: "us-east", Oseq: q, Epoch: "e1",
				Frame: []byte(`{"type":"message"}`)})
			if err != nil || r.Status != "ok" {
				t.Fatalf("apply %s %d: %+v %v", room, q, r, err)
			}
		}
	}
	origin := map[string]broker.SeqSeen{
		"room:behind": {Epoch: "e1", Oseq: 3}, "room:whole": {Epoch: "e1", Oseq: 5}, "room:ahead": {Epoch: "e1", Oseq: 9},
		"room:other-epoch": {Epoch: "e2", Oseq: 7},
	}
	ps := rs.Client().PSubscribe(ctx, "geolab:ch:*")
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	n, err := b.EndOrigin(ctx, "us-east", func(_ context.Context, room string) (string, uint64, error) {
		return origin[room].Epoch, origin[room].Oseq, nil
	}, nil)
	if err != nil || n != 3 {
		t.Fatalf("EndOrigin with held: %d rooms ended (%v), want 3: behind, other-epoch, gone", n, err)
	}
	for _, room := range rooms {
		e, err := rs.Client().HGet(ctx, broker.Standalone.SeqKey(room), "e:us-east").Result()
		if err != nil {
			t.Fatal(err)
		}
		if kept := room == "room:whole" || room == "room:ahead"; kept != (e == "e1") {
			t.Errorf("%s: epoch of us-east %q after EndOrigin; kept %v", room, e, kept)
		}
	}
	ended := map[string]bool{}
	for range 3 {
		m, err := ps.ReceiveMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ended[broker.RoomOfChannel(m.Channel)] = m.Payload == "end us-east\n"
	}
	if !ended["room:behind"] || !ended["room:other-epoch"] || !ended["room:gone"] {
		t.Fatalf("end notices on %v, want behind, other-epoch and gone", ended)
	}
	if n, err := b.EndOrigin(ctx, "us-east", nil, nil); err != nil || n != 2 {
		t.Fatalf("EndOrigin without held: %d more rooms ended (%v), want the 2 left", n, err)
	}
}

// TestEndOriginWithUnheldTellsEveryoneInARoomThatHadNothing: a room of
// this region that holds no life of the origin (none of its events was
// ever applied here) may still have lost events the origin acked and
// never shipped. With unheld, EndOrigin ends it too, once the room
// federates here (unheld returns true), and publishes "end <origin> all",
// which a gateway reads as a notice for every subscriber; a room unheld
// refuses (local) is left alone, and a room with a life is ended as
// before. Found by geolab explore (two-region, seed 1, run 24: lost 172).
func TestEndOriginWithUnheldTellsEveryoneInARoomThatHadNothing(t *testing.T) {
	rs := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := broker.New(rs.Client(), "eu-west", broker.DefaultHistory())
	apply := func(room, origin string) {
		r, err := b.Apply(ctx, broker.ApplyRequest{Room: room, Origin: origin, Oseq: 1, Epoch: "e1", Frame: []byte(`{"type":"message"}`)})
		if err != nil || r.Status != "ok" {
			t.Fatalf("apply %s of %s: %+v %v", room, origin, r, err)
		}
	}
	apply("tenant:had", "us-east")
	apply("tenant:nothing", "ap-south") // the room exists here, with nothing of us-east
	apply("local:nothing", "ap-south")
	ps := rs.Client().PSubscribe(ctx, "geolab:ch:*")
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	federated := func(room string) bool { return strings.HasPrefix(room, "tenant:") }
	n, err := b.EndOrigin(ctx, "us-east", nil, federated)
	if err != nil || n != 2 {
		t.Fatalf("EndOrigin with unheld: %d rooms ended (%v), want 2: tenant:had and tenant:nothing", n, err)
	}
	got := map[string]string{}
	for range 2 {
		m, err := ps.ReceiveMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got[broker.RoomOfChannel(m.Channel)] = m.Payload
	}
	if got["tenant:had"] != "end us-east\n" || got["tenant:nothing"] != "end us-east all\n" {
		t.Fatalf("notices %q, want tenant:had's end and tenant:nothing's end for all", got)
	}
	d, err := broker.ParseDelivery("tenant:nothing", got["tenant:nothing"])
	if err != nil || !d.Ended || !d.EndedForAll || d.Origin != "us-east" {
		t.Fatalf("the notice for all reads as %+v (%v)", d, err)
	}
	if e, err := rs.Client().HGet(ctx, broker.Standalone.SeqKey("local:nothing"), "e:us-east").Result(); err == nil {
		t.Fatalf("local:nothing got us-east's state (epoch %q): a room that does not federate was ended", e)
	}
}
