package gateway_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/geolab/geolab/gateway"
	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/internal/redistest"
	"github.com/geolab/geolab/internal/wait"
	"github.com/geolab/geolab/internal/wsprobe"
)

// skewed issues a token for sub valid from now+from (nbf) to now+to (exp):
// what a token authority whose clock is off would hand out.
func skewed(t *testing.T, sub string, from, to time.Duration) string {
	t.Helper()
	tok, err := authority.Issue(sub, rooms, rooms, to-from, time.Now().Add(from))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestTokenClockSkewLeeway: a token whose exp passed, or whose nbf is
// still ahead, by less than --jwt-leeway (default 5s) is accepted, and a
// connection on an expired one is closed with 4002 once the leeway too has
// passed. Beyond the leeway, both are 401 token_expired, as docs/protocol.md
// says; with no leeway, so are both skewed tokens.
func TestTokenClockSkewLeeway(t *testing.T) {
	rs := redistest.Start(t)
	gw := startGateway(t, rs.Addr(), "us-east", "gw-1")
	exact := startGateway(t, rs.Addr(), "us-east", "gw-2", func(c *gateway.Config) { c.JWTLeeway = 0 })

	justExpired := skewed(t, "late", -time.Hour, -2*time.Second)
	notYet := skewed(t, "early", 2*time.Second, time.Hour)
	c := wsprobe.Open(t, gw.Addr(), notYet)
	c.Subscribe("room:skew", nil, nil)
	late := wsprobe.Open(t, gw.Addr(), justExpired)
	// exp was 2–3 s ago: the connection lives until exp + 5 s.
	if code := late.AwaitClose(15 * time.Second); code != protocol.CloseTokenExpired {
		t.Fatalf("connection on a token within the leeway closed with %d, want %d", code, protocol.CloseTokenExpired)
	}

	dialRefused(t, gw.Addr(), skewed(t, "old", -time.Hour, -10*time.Second), http.StatusUnauthorized, protocol.CodeTokenExpired)
	dialRefused(t, gw.Addr(), skewed(t, "future", time.Minute, time.Hour), http.StatusUnauthorized, protocol.CodeTokenExpired)
	dialRefused(t, exact.Addr(), skewed(t, "late", -time.Hour, -2*time.Second), http.StatusUnauthorized, protocol.CodeTokenExpired)
	dialRefused(t, exact.Addr(), skewed(t, "early", 2*time.Second, time.Hour), http.StatusUnauthorized, protocol.CodeTokenExpired)
}

// TestTokenWithinLeewayIsNotClosedAtOnce: a connection accepted on a token
// whose exp passed within the leeway is served until exp + leeway, not cut
// at once for an exp already behind.
func TestTokenWithinLeewayIsNotClosedAtOnce(t *testing.T) {
	rs := redistest.Start(t)
	gw := startGateway(t, rs.Addr(), "us-east", "gw-1", func(c *gateway.Config) { c.JWTLeeway = time.Minute })
	c := wsprobe.Open(t, gw.Addr(), skewed(t, "late", -time.Hour, -time.Second))
	c.Subscribe("room:late", nil, nil)
	wait.Never(t, time.Second, "the connection closed within its leeway", func() bool { return c.CloseCode() != 0 })
	c.Send(map[string]any{"type": "ping"})
	c.Expect("pong")
}

// TestBearerSchemeIsCaseInsensitive: "bearer x" and "BEARER x" are
// "Bearer x" (the scheme name is case-insensitive, RFC 9110 §11.1).
func TestBearerSchemeIsCaseInsensitive(t *testing.T) {
	rs := redistest.Start(t)
	gw := startGateway(t, rs.Addr(), "us-east", "gw-1")
	for _, scheme := range []string{"Bearer", "bearer", "BEARER", "bEaReR"} {
		h := http.Header{"Authorization": {scheme + " " + token(t, "case")}}
		ws, resp, err := websocket.DefaultDialer.Dial("ws://"+gw.Addr()+"/ws", h)
		if err != nil {
			status := "no response"
			if resp != nil {
				status = resp.Status
			}
			t.Errorf("%s: %v (%s)", scheme, err, status)
			continue
		}
		var w protocol.Welcome
		if err := ws.ReadJSON(&w); err != nil || w.Type != protocol.TypeWelcome {
			t.Errorf("%s: no welcome: %v %+v", scheme, err, w)
		}
		ws.Close()
	}
}
