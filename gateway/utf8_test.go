package gateway_test

import (
	"context"
	"testing"
	"time"

	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/internal/redistest"
)

// TestPublishDataThatIsNotUnicodeIsRefused: gorilla does not check that a
// text message is UTF-8 and encoding/json copies a raw message's bytes and
// escapes as they are, so a publish can carry bytes that are not UTF-8 or a
// lone surrogate escape. Forwarded, a browser would fail the connection, and
// from the history every resume of the room. Each is refused with bad_utf8
// (its id as ref): nothing stored, nothing forwarded. A surrogate pair is
// Unicode and goes through.
func TestPublishDataThatIsNotUnicodeIsRefused(t *testing.T) {
	rs := redistest.Start(t)
	gw := startGateway(t, rs.Addr(), "us-east", "gw-1")
	const room = "room:utf8"
	sub := newClient(t, gw.Addr(), "watcher")
	sub.Subscribe(room, nil, nil)
	pub := newClient(t, gw.Addr(), "mallory")
	frame := func(id, data string) []byte {
		return []byte(`{"type":"publish","room":"` + room + `","id":"` + id + `","data":` + data + `}`)
	}
	for _, tc := range []struct{ name, id, data string }{
		{"raw byte 0xff in a string", "raw-ff", "\"\xff\""},
		{"a surrogate encoded as UTF-8", "raw-surrogate", "{\"k\":\"\xed\xb2\x80\"}"},
		{"a truncated sequence", "raw-cut", "[\"caf\xc3\"]"},
		{"lone low surrogate escape", "esc-low", `"\udc80"`},
		{"lone high surrogate escape", "esc-high", `{"k":"x\uD800y"}`},
	} {
		pub.SendRaw(frame(tc.id, tc.data))
		f := pub.Expect("ack", "error")
		if f.Type != "error" || f.Code != protocol.CodeBadUTF8 || f.Ref != tc.id || f.Message == "" {
			t.Errorf("%s: %+v, want error %s with ref %s", tc.name, f, protocol.CodeBadUTF8, tc.id)
		}
	}
	// A surrogate pair is fine, and marks the end: nothing refused came
	// before it.
	pub.SendRaw(frame("pair", `"\ud83d\ude00"`))
	if f := pub.Expect("ack", "error"); f.Type != "ack" {
		t.Fatalf("surrogate pair: %+v, want an ack", f)
	}
	msgs := sub.Collect(1, 5*time.Second)
	if len(msgs) != 1 || string(msgs[0].Data) != `"\ud83d\ude00"` {
		t.Fatalf("subscriber got %d messages %v, want only the surrogate pair", len(msgs), ids(msgs))
	}
	if more := sub.Collect(1, 300*time.Millisecond); len(more) != 0 {
		t.Fatalf("subscriber got more: %v", ids(more))
	}
	if n, err := rs.Client().XLen(context.Background(), "geolab:h:{"+room+"}").Result(); err != nil || n != 1 {
		t.Fatalf("history holds %d events (%v), want 1", n, err)
	}
	// The connection is still open.
	pub.Send(map[string]any{"type": "ping"})
	pub.Expect("pong")
}
