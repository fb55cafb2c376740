package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/geolab/geolab/gateway"
	"github.com/geolab/geolab/internal/redistest"
	"github.com/geolab/geolab/internal/wsprobe"
)

// TestOriginRulesAndRefusalsCounted: docs/protocol.md's Origin rules. No
// Origin: allowed. Without --allowed-origin, "same host" is host and port
// (letter case aside); a page opened from a file sends Origin null, refused
// unless a pattern allows "null". Every refusal is a 403 counted in
// geolab_gateway_errors_total{code="forbidden_origin"}, once, also when the
// request names a session.
func TestOriginRulesAndRefusalsCounted(t *testing.T) {
	rs := redistest.Start(t)
	strict := startGateway(t, rs.Addr(), "us-east", "gw-1")
	files := startGateway(t, rs.Addr(), "us-east", "gw-2", func(c *gateway.Config) {
		c.AllowedOrigins = []string{"null", "https://*.example.com"}
	})
	port := strict.Addr()[strings.LastIndex(strict.Addr(), ":"):]
	otherPort := ":1"
	if port == otherPort {
		otherPort = ":2"
	}
	dial := func(addr, host, origin, query string) int {
		h := http.Header{"Authorization": {"Bearer " + token(t, "b")}}
		if origin != "" {
			h.Set("Origin", origin)
		}
		if host != "" {
			h.Set("Host", host)
		}
		ws, resp, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws"+query, h)
		if ws != nil {
			ws.Close()
		}
		if resp == nil {
			t.Fatalf("dial %s with Origin %q: %v", addr, origin, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	cases := []struct {
		name               string
		gw                 *gateway.Server
		host, origin, sess string
		want               int
	}{
		{"not a browser", strict, "", "", "", http.StatusSwitchingProtocols},
		{"same host and port", strict, "", "http://" + strict.Addr(), "", http.StatusSwitchingProtocols},
		{"same host and port, https", strict, "", "https://" + strict.Addr(), "", http.StatusSwitchingProtocols},
		{"same host, letter case aside", strict, "GW.Example.com" + port, "http://gw.example.COM" + port, "", http.StatusSwitchingProtocols},
		{"same host, another port", strict, "", "http://127.0.0.1" + otherPort, "", http.StatusForbidden},
		{"same host, no port", strict, "", "http://127.0.0.1", "", http.StatusForbidden},
		{"another host", strict, "", "https://evil.example.net", "", http.StatusForbidden},
		{"a file page", strict, "", "null", "", http.StatusForbidden},
		{"not http", strict, "", "ws://" + strict.Addr(), "", http.StatusForbidden},
		{"another host, with a session", strict, "", "https://evil.example.net", "?session=s-1", http.StatusForbidden},
		{"a file page, allowed", files, "", "null", "", http.StatusSwitchingProtocols},
		{"a pattern", files, "", "https://app.example.com", "", http.StatusSwitchingProtocols},
		{"no pattern matches", files, "", "https://app.example.org", "", http.StatusForbidden},
	}
	want := map[*gateway.Server]float64{}
	for _, tc := range cases {
		if got := dial(tc.gw.Addr(), tc.host, tc.origin, tc.sess); got != tc.want {
			t.Errorf("%s (Origin %q): status %d, want %d", tc.name, tc.origin, got, tc.want)
		}
		if tc.want == http.StatusForbidden {
			want[tc.gw]++
		}
	}
	for gw, n := range map[string]*gateway.Server{"strict": strict, "files": files} {
		if got := errorsTotal(t, n, "forbidden_origin"); got != want[n] {
			t.Errorf("%s: errors_total{code=forbidden_origin} = %v, want %v", gw, got, want[n])
		}
	}
}

// rawConn is a WebSocket to a gateway read frame by frame as bytes: what
// a client written from docs/protocol.md alone reads.
type rawConn struct {
	t  *testing.T
	ws *websocket.Conn
}

func dialRaw(t *testing.T, addr, sub string) *rawConn {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws", http.Header{"Authorization": {"Bearer " + token(t, sub)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	c := &rawConn{t: t, ws: ws}
	c.next() // welcome
	return c
}

// next reads one frame, as a map of its raw fields.
func (c *rawConn) next() map[string]json.RawMessage {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(wsprobe.Bound))
	_, b, err := c.ws.ReadMessage()
	if err != nil {
		c.t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		c.t.Fatalf("frame %s: %v", b, err)
	}
	return m
}

func (c *rawConn) send(frame string) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		c.t.Fatal(err)
	}
}

// docExample returns the fields of the first one-line JSON example in
// docs/protocol.md that starts with prefix and holds with.
func docExample(t *testing.T, prefix, with string) map[string]json.RawMessage {
	t.Helper()
	f, err := os.Open("../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); strings.HasPrefix(line, prefix) && strings.Contains(line, with) {
			var m map[string]json.RawMessage
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("docs/protocol.md example %s: %v", line, err)
			}
			return m
		}
	}
	t.Fatalf("docs/protocol.md has no example starting %s with %s", prefix, with)
	return nil
}

func keys(m map[string]json.RawMessage) []string { return slices.Sorted(maps.Keys(m)) }

// TestAcksAreAsDocumented: the first ack of a publish has exactly the
// fields of docs/protocol.md's ack example (no "duplicate": it is there
// only when true). A retry with the same id but other data gets the first
// publish's ack with "duplicate":true and its data is dropped: one event,
// the first data. The same id in another room is another event.
func TestAcksAreAsDocumented(t *testing.T) {
	rs := redistest.Start(t)
	gw := startGateway(t, rs.Addr(), "us-east", "gw-1")
	const room = "tenant:acks"
	sub := newClient(t, gw.Addr(), "watcher")
	sub.Subscribe(room, nil, nil)
	c := dialRaw(t, gw.Addr(), "pub")

	c.send(`{"type":"publish","room":"` + room + `","id":"m-1","data":{"v":1}}`)
	first := c.next()
	if got, doc := keys(first), keys(docExample(t, `{"type":"ack"`, ``)); !slices.Equal(got, doc) {
		t.Errorf("first ack has fields %v, docs/protocol.md's example %v", got, doc)
	}
	if string(first["type"]) != `"ack"` || string(first["id"]) != `"m-1"` || string(first["room"]) != `"`+room+`"` {
		t.Fatalf("first ack %v", first)
	}

	c.send(`{"type":"publish","room":"` + room + `","id":"m-1","data":{"v":2}}`)
	retry := c.next()
	if string(retry["duplicate"]) != "true" || string(retry["event"]) != string(first["event"]) ||
		string(retry["oseq"]) != string(first["oseq"]) || string(retry["id"]) != `"m-1"` {
		t.Fatalf("retry with other data: %v, want the first ack (event %s, oseq %s) with duplicate:true",
			retry, first["event"], first["oseq"])
	}
	if got, doc := keys(retry), keys(docExample(t, `{"type":"ack"`, `"duplicate":true`)); !slices.Equal(got, doc) {
		t.Errorf("retry ack has fields %v, docs/protocol.md's example %v", got, doc)
	}

	c.send(`{"type":"publish","room":"tenant:acks-2","id":"m-1","data":{"v":3}}`)
	other := c.next()
	if _, dup := other["duplicate"]; dup || string(other["event"]) == string(first["event"]) {
		t.Fatalf("the same id in another room: %v, want a new event", other)
	}

	msgs := sub.Collect(2, 500*time.Millisecond)
	if len(msgs) != 1 || string(msgs[0].Data) != `{"v":1}` {
		t.Fatalf("subscriber got %d messages (%v), want one, with the first data", len(msgs), ids(msgs))
	}
	if n, err := rs.Client().XLen(context.Background(), "geolab:h:{"+room+"}").Result(); err != nil || n != 1 {
		t.Fatalf("history holds %d events (%v), want 1", n, err)
	}
}
