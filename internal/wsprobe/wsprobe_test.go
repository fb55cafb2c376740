package wsprobe_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/internal/wait"
	"github.com/geolab/geolab/internal/wsprobe"
)

// recorder is a TB that keeps its cleanups and failures for inspection.
type recorder struct {
	cleanups []func()
	failed   []string
}

func (r *recorder) Helper()          {}
func (r *recorder) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = append(r.failed, fmt.Sprintf(format, args...))
}

func (r *recorder) cleanup() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

// fakeGateway accepts connections with token "ok" (401 otherwise), sends a
// welcome naming the session of its ?session=, then hands the connection to
// script. ended is closed when a connection's server side has read an
// error: the client went.
type fakeGateway struct {
	srv   *httptest.Server
	ended chan struct{}
}

func newFakeGateway(t *testing.T, script func(ws *websocket.Conn)) *fakeGateway {
	t.Helper()
	g := &fakeGateway{ended: make(chan struct{}, 16)}
	up := websocket.Upgrader{}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer ok" {
			http.Error(w, `{"code":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		_ = ws.WriteJSON(map[string]any{"type": "welcome", "session": r.URL.Query().Get("session"), "region": "r", "node": "n"})
		script(ws)
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				g.ended <- struct{}{}
				return
			}
		}
	}))
	t.Cleanup(g.srv.Close)
	return g
}

func (g *fakeGateway) addr() string { return strings.TrimPrefix(g.srv.URL, "http://") }

func message(room, origin string, oseq uint64) map[string]any {
	return map[string]any{"type": "message", "room": room, "id": fmt.Sprintf("%s-%d", origin, oseq), "origin": origin, "oseq": oseq}
}

func TestNextTakesFramesInOrderAndMessagesKeepsEveryMessage(t *testing.T) {
	g := newFakeGateway(t, func(ws *websocket.Conn) {
		_ = ws.WriteJSON(message("room:a", "o", 1))
		_ = ws.WriteJSON(map[string]any{"type": "subscribed", "room": "room:a"})
		_ = ws.WriteJSON(message("room:a", "o", 2))
		_ = ws.WriteJSON(message("room:a", "o", 3))
	})
	c := wsprobe.Open(t, g.addr()+"?session=s-9", "ok")
	if w := c.Welcome(); w.Session != "s-9" || w.Region != "r" {
		t.Fatalf("welcome %+v: the query did not reach the gateway", w)
	}
	if s := c.Expect("subscribed"); s.Room != "room:a" {
		t.Fatalf("subscribed frame %+v", s)
	}
	// Message 1 came before the subscribed frame: Next passed it.
	if got := c.Collect(5, 200*time.Millisecond); len(got) != 2 || got[0].Oseq != 2 || got[1].Oseq != 3 {
		t.Fatalf("Collect after the subscribed frame: %d messages, want oseq 2 and 3", len(got))
	}
	wait.For(t, wsprobe.Bound, "3 messages recorded", func() bool { return c.Count() == 3 })
	if m := c.Messages(); m[0].Oseq != 1 {
		t.Fatalf("Messages()[0] = %+v, want oseq 1", m[0])
	}
	if _, ok := c.Next(0, "message"); ok {
		t.Fatal("Next returned a frame already taken")
	}
}

func TestDialRefusedReturnsTheResponse(t *testing.T) {
	g := newFakeGateway(t, func(*websocket.Conn) {})
	r := &recorder{}
	c, resp, err := wsprobe.Dial(r, g.addr(), "forged")
	if err == nil || c != nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("Dial with a bad token: %v %v %v, want the 401", c, resp, err)
	}
	if len(r.cleanups) != 0 {
		t.Fatalf("a refused Dial registered %d cleanups", len(r.cleanups))
	}
}

func TestCleanupClosesTheConnection(t *testing.T) {
	g := newFakeGateway(t, func(*websocket.Conn) {})
	r := &recorder{}
	c := wsprobe.Open(r, g.addr(), "ok")
	if len(r.failed) != 0 {
		t.Fatal(r.failed)
	}
	c.Close() // early, as a loop does: the cleanup's Close is then a no-op
	select {
	case <-g.ended:
	case <-time.After(wsprobe.Bound):
		t.Fatal("the gateway still holds the connection after Close")
	}
	r.cleanup()
	c2 := wsprobe.Open(r, g.addr(), "ok")
	r.cleanup()
	select {
	case <-c2.Done():
	default:
		t.Fatal("the test's cleanup left the connection open")
	}
	select {
	case <-g.ended:
	case <-time.After(wsprobe.Bound):
		t.Fatal("the gateway still holds the connection after the cleanup")
	}
}

func TestAwaitCloseReturnsTheGatewaysCode(t *testing.T) {
	g := newFakeGateway(t, func(ws *websocket.Conn) {
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(protocol.CloseSlowConsumer, "slow"), time.Now().Add(time.Second))
	})
	c := wsprobe.Open(t, g.addr(), "ok")
	if code := c.AwaitClose(wsprobe.Bound); code != protocol.CloseSlowConsumer {
		t.Fatalf("AwaitClose = %d, want %d (read: %v)", code, protocol.CloseSlowConsumer, c.ReadErr())
	}
	// Nothing more can come: Next says so at once.
	start := time.Now()
	if _, ok := c.Next(time.Minute, "message"); ok || time.Since(start) > 5*time.Second {
		t.Fatalf("Next on an ended connection: %v after %v", ok, time.Since(start))
	}
}

func TestAwaitCloseFailsOnAnOpenConnection(t *testing.T) {
	g := newFakeGateway(t, func(*websocket.Conn) {})
	r := &recorder{}
	defer r.cleanup()
	c := wsprobe.Open(r, g.addr(), "ok")
	c.AwaitClose(50 * time.Millisecond)
	if len(r.failed) != 1 || !strings.Contains(r.failed[0], "still open") {
		t.Fatalf("failures %q, want one saying the connection is still open", r.failed)
	}
}

// TestPublishAckedRetriesTheSameIDWhileUnavailable: the gateway answers
// unavailable twice, then acks; every attempt carries the same id.
func TestPublishAckedRetriesTheSameIDWhileUnavailable(t *testing.T) {
	ids := make(chan string, 10)
	g := newFakeGateway(t, func(ws *websocket.Conn) {
		for n := 1; ; n++ {
			var f struct{ Type, Room, ID string }
			if err := ws.ReadJSON(&f); err != nil {
				return
			}
			ids <- f.ID
			if n < 3 {
				_ = ws.WriteJSON(map[string]any{"type": "error", "ref": f.ID, "code": protocol.CodeUnavailable})
				continue
			}
			_ = ws.WriteJSON(map[string]any{"type": "ack", "id": f.ID, "event": "ev-1", "oseq": 1})
		}
	})
	c := wsprobe.Open(t, g.addr(), "ok")
	ack := c.PublishAcked("room:a", "p-1", 1, wsprobe.Bound)
	if ack == nil || ack.Event != "ev-1" {
		t.Fatalf("ack %+v", ack)
	}
	close(ids)
	var got []string
	for id := range ids {
		got = append(got, id)
	}
	if strings.Join(got, ",") != "p-1,p-1,p-1" {
		t.Fatalf("the gateway saw ids %v, want p-1 three times", got)
	}
}

func TestPublishAckedFailsOnAnotherError(t *testing.T) {
	g := newFakeGateway(t, func(ws *websocket.Conn) {
		var f struct{ ID string }
		if ws.ReadJSON(&f) == nil {
			_ = ws.WriteJSON(map[string]any{"type": "error", "ref": f.ID, "code": protocol.CodeForbidden})
		}
	})
	r := &recorder{}
	defer r.cleanup()
	c := wsprobe.Open(r, g.addr(), "ok")
	if ack := c.PublishAcked("secret:1", "p-1", 1, wsprobe.Bound); ack != nil || len(r.failed) != 1 || !strings.Contains(r.failed[0], protocol.CodeForbidden) {
		t.Fatalf("PublishAcked on forbidden: ack %+v, failures %q", ack, r.failed)
	}
}

func TestCheckStream(t *testing.T) {
	f := func(id, origin string, oseq uint64) *protocol.ServerFrame {
		return &protocol.ServerFrame{Type: "message", ID: id, Origin: origin, Oseq: oseq}
	}
	cases := []struct {
		name string
		msgs []*protocol.ServerFrame
		want string // in the failure; none: passes
	}{
		{"in order", []*protocol.ServerFrame{f("a", "x", 4), f("b", "y", 1), f("c", "x", 5)}, ""},
		{"gap", []*protocol.ServerFrame{f("a", "x", 4), f("c", "x", 6)}, "G2"},
		{"duplicate", []*protocol.ServerFrame{f("a", "x", 4), f("b", "x", 5), f("a", "x", 4)}, "G3"},
	}
	for _, tc := range cases {
		r := &recorder{}
		wsprobe.CheckStream(r, tc.name, tc.msgs)
		if tc.want == "" && len(r.failed) != 0 || tc.want != "" && (len(r.failed) == 0 || !strings.Contains(r.failed[0], tc.want)) {
			t.Errorf("%s: failures %q, want %q", tc.name, r.failed, tc.want)
		}
	}
}
