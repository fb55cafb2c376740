package gateway_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/geolab/geolab/gateway"
	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/internal/redistest"
	"github.com/geolab/geolab/internal/wsprobe"
)

// TestBadFramesGetErrorFramesAndTheConnectionSurvives covers every malformed
// frame a client can send: each gets its documented error code, and the same
// connection still works afterwards.
func TestBadFramesGetErrorFramesAndTheConnectionSurvives(t *testing.T) {
	rs := redistest.Start(t)
	gw := startGateway(t, rs.Addr(), "us-east", "gw-1")
	c := newClient(t, gw.Addr(), "mallory")
	cases := []struct {
		name, frame, code, ref string
	}{
		{"malformed JSON", `{"type":"subscribe",`, protocol.CodeBadJSON, ""},
		{"not an object", `[1,2,3]`, protocol.CodeBadJSON, ""},
		{"no type", `{"room":"room:a"}`, protocol.CodeUnknownType, "room:a"},
		{"unknown type", `{"type":"teleport","room":"room:a"}`, protocol.CodeUnknownType, "room:a"},
		{"type not a string", `{"type":7}`, protocol.CodeUnknownType, ""},
		{"subscribe without room", `{"type":"subscribe"}`, protocol.CodeBadFrame, ""},
		{"room not a string", `{"type":"subscribe","room":42}`, protocol.CodeBadFrame, ""},
		{"bad room name", `{"type":"subscribe","room":"room with spaces"}`, protocol.CodeBadRoom, "room with spaces"},
		{"room too long", `{"type":"subscribe","room":"` + strings.Repeat("r", 129) + `"}`, protocol.CodeBadRoom, strings.Repeat("r", 128)},
		{"bad since", `{"type":"subscribe","room":"room:a","since":{"us-east":-1}}`, protocol.CodeBadSince, "room:a"},
		{"bad since origin", `{"type":"subscribe","room":"room:a","since":{"US EAST":1}}`, protocol.CodeBadSince, "room:a"},
		{"forbidden room", `{"type":"subscribe","room":"secret:1"}`, protocol.CodeForbidden, "secret:1"},
		{"publish without id", `{"type":"publish","room":"room:a","data":1}`, protocol.CodeBadFrame, "room:a"},
		{"publish bad id", `{"type":"publish","room":"room:a","id":"a b","data":1}`, protocol.CodeBadID, "a b"},
		{"publish room not a string", `{"type":"publish","room":5,"id":"m-1","data":1}`, protocol.CodeBadFrame, "m-1"},
		{"publish bad room", `{"type":"publish","room":"bad room","id":"m-2","data":1}`, protocol.CodeBadRoom, "m-2"},
		{"publish without data", `{"type":"publish","room":"room:a","id":"x"}`, protocol.CodeBadFrame, "x"},
		{"publish forbidden", `{"type":"publish","room":"secret:1","id":"y","data":1}`, protocol.CodeForbidden, "y"},
		{"publish data too large", `{"type":"publish","room":"room:a","id":"z","data":"` + strings.Repeat("d", 40000) + `"}`, protocol.CodeDataTooLarge, "z"},
	}
	for _, tc := range cases {
		c.SendRaw([]byte(tc.frame))
		f := c.Expect("error")
		if f.Code != tc.code || f.Ref != tc.ref || f.Message == "" {
			t.Errorf("%s: got error %+v, want code %s ref %q and a message", tc.name, f, tc.code, tc.ref)
		}
	}
	// Binary frames are not protocol v1.
	c.SendBinary([]byte{1, 2, 3})
	if f := c.Expect("error"); f.Code != protocol.CodeBadJSON {
		t.Errorf("binary frame: %+v", f)
	}
	// The connection still works.
	c.Send(map[string]any{"type": "ping"})
	c.Expect("pong")
	c.Subscribe("room:a", nil, nil)
}

func TestOversizedFrameClosesWith1009(t *testing.T) {
	rs := redistest.Start(t)
	gw := startGateway(t, rs.Addr(), "us-east", "gw-1")
	c := newClient(t, gw.Addr(), "big")
	c.SendRaw([]byte(`{"type":"publish","room":"room:a","id":"x","data":"` + strings.Repeat("d", 70000) + `"}`))
	if code := c.AwaitClose(wsprobe.Bound); code != protocol.CloseMessageTooBig {
		t.Fatalf("oversized frame: close %d (%v), want 1009", code, c.ReadErr())
	}
	// The process survives: a new connection works.
	c2 := newClient(t, gw.Addr(), "next")
	c2.Subscribe("room:a", nil, nil)
}

func TestTokensAreCheckedAtTheDoor(t *testing.T) {
	rs := redistest.Start(t)
	gw := startGateway(t, rs.Addr(), "us-east", "gw-1")
	forged := func() string {
		claims := jwt.MapClaims{"sub": "eve", "read": []string{"*"}, "exp": time.Now().Add(time.Hour).Unix()}
		s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte("not-the-secret-0123456789abcdef0123"))
		return s
	}()
	expired, err := authority.Issue("old", []string{"*"}, nil, time.Minute, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, tok, code string }{
		{"missing", "", "unauthorized"},
		{"garbage", "not.a.jwt", "unauthorized"},
		{"forged", forged, "unauthorized"},
		{"expired", expired, "token_expired"},
	}
	for _, tc := range cases {
		c, resp, err := wsprobe.Dial(t, gw.Addr(), tc.tok)
		if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			if c != nil {
				c.Close()
			}
			t.Errorf("%s token: want 401, got %v %v", tc.name, err, resp)
			continue
		}
		var body struct{ Code, Message string }
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if body.Code != tc.code || body.Message == "" {
			t.Errorf("%s token: body %+v, want code %s", tc.name, body, tc.code)
		}
	}
	// ?token= works as well as the header.
	c, resp, err := wsprobe.Dial(t, gw.Addr()+"?token="+token(t, "q"), "")
	if err != nil {
		t.Fatalf("?token=: %v %v", err, resp)
	}
	c.Close()
}

func TestTokenExpiringWhileConnectedCloses4002(t *testing.T) {
	rs := redistest.Start(t)
	gw := startGateway(t, rs.Addr(), "us-east", "gw-1")
	tok, err := authority.Issue("brief", []string{"*"}, nil, 2*time.Second, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c := wsprobe.Open(t, gw.Addr(), tok)
	if code := c.AwaitClose(15 * time.Second); code != protocol.CloseTokenExpired || !protocol.Reconnectable(code) {
		t.Fatalf("close %d, want %d token_expired (reconnect range)", code, protocol.CloseTokenExpired)
	}
}

func TestPublishFloodIsRateLimitedAndFrameFloodCloses(t *testing.T) {
	rs := redistest.Start(t)
	gw := startGateway(t, rs.Addr(), "us-east", "gw-1", func(c *gateway.Config) {
		c.PublishRate, c.PublishBurst = 5, 5
		c.FrameRate, c.FrameBurst = 50, 100
	})
	c := newClient(t, gw.Addr(), "flooder")
	acks, limited := 0, 0
	for i := 0; i < 40; i++ {
		f := c.Publish("room:flood", msgID("f", i), i)
		switch {
		case f.Type == "ack":
			acks++
		case f.Code == protocol.CodeRateLimited && f.Ref == msgID("f", i):
			limited++
		default:
			t.Fatalf("publish %d: %+v", i, f)
		}
	}
	if limited == 0 || acks < 5 || acks > 15 {
		t.Fatalf("40 publishes at a 5/s limit: %d acked, %d rate_limited", acks, limited)
	}
	// The connection survived the publish flood.
	c.Send(map[string]any{"type": "ping"})
	c.Expect("pong")

	// A flood of frames far over the frame rate closes with 4500.
	for i := 0; i < 500; i++ {
		c.Send(map[string]any{"type": "ping"})
	}
	if code := c.AwaitClose(wsprobe.Bound); code != protocol.CloseFlood || protocol.Reconnectable(code) {
		t.Fatalf("frame flood: close %d (%v), want %d (no-reconnect range)", code, c.ReadErr(), protocol.CloseFlood)
	}
	// The process survives.
	newClient(t, gw.Addr(), "next").Subscribe("room:flood", nil, nil)
}

func TestConfigValidateNamesTheField(t *testing.T) {
	base := gateway.DefaultConfig()
	base.Region, base.Node, base.Listen, base.Redis, base.Authority = "us-east", "gw-1", "127.0.0.1:0", "127.0.0.1:1", authority
	cases := []struct {
		name string
		mod  func(*gateway.Config)
		want string
	}{
		{"no region", func(c *gateway.Config) { c.Region = "" }, "Region"},
		{"bad region", func(c *gateway.Config) { c.Region = "US East" }, "Region"},
		{"no listen", func(c *gateway.Config) { c.Listen = "" }, "Listen"},
		{"no redis", func(c *gateway.Config) { c.Redis = "" }, "Redis"},
		{"no secret", func(c *gateway.Config) { c.Authority = nil }, "GEOLAB_JWT_SECRET"},
		{"bad mode", func(c *gateway.Config) { c.SubscribeMode = "psub" }, "SubscribeMode"},
		{"bad federate", func(c *gateway.Config) { c.Federate = []string{"a b"} }, "Federate"},
		{"send queue", func(c *gateway.Config) { c.SendQueue = 1 }, "SendQueue"},
		{"read timeout", func(c *gateway.Config) { c.ReadTimeout = c.PingInterval }, "ReadTimeout"},
	}
	for _, tc := range cases {
		c := base
		tc.mod(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %s", tc.name, err, tc.want)
		}
	}
	if err := base.Validate(); err != nil {
		t.Fatalf("the base config is valid: %v", err)
	}
	if _, err := gateway.New(gateway.Config{}); err == nil || !errors.Is(err, err) {
		t.Fatalf("empty config accepted")
	}
}

func TestBrowserOriginsAreChecked(t *testing.T) {
	rs := redistest.Start(t)
	strict := startGateway(t, rs.Addr(), "us-east", "gw-1")
	open := startGateway(t, rs.Addr(), "us-east", "gw-2", func(c *gateway.Config) {
		c.AllowedOrigins = []string{"https://*.example.com"}
	})
	dialOrigin := func(addr, origin string) (int, error) {
		h := http.Header{"Authorization": {"Bearer " + token(t, "b")}}
		if origin != "" {
			h.Set("Origin", origin)
		}
		ws, resp, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws", h)
		if ws != nil {
			ws.Close()
		}
		if resp == nil {
			return 0, err
		}
		return resp.StatusCode, err
	}
	cases := []struct {
		addr, origin string
		want         int
	}{
		{strict.Addr(), "", http.StatusSwitchingProtocols},                        // not a browser
		{strict.Addr(), "http://" + strict.Addr(), http.StatusSwitchingProtocols}, // same host
		{strict.Addr(), "https://evil.example.net", http.StatusForbidden},
		{open.Addr(), "https://app.example.com", http.StatusSwitchingProtocols},
		{open.Addr(), "https://app.example.org", http.StatusForbidden},
	}
	for _, tc := range cases {
		if code, err := dialOrigin(tc.addr, tc.origin); code != tc.want {
			t.Errorf("Origin %q: status %d (%v), want %d", tc.origin, code, err, tc.want)
		}
	}
}
