package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2/client"
	"github.com/gorilla/websocket"

	"github.com/geolab/geolab/gateway"
	"github.com/geolab/geolab/gateway/broker"
	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/internal/redistest"
	"github.com/geolab/geolab/internal/toxitest"
	"github.com/geolab/geolab/internal/wait"
	"github.com/geolab/geolab/internal/wsprobe"
)

// sessionKey is where session.lua keeps a session's ownership record.
func sessionKey(id string) string { return "geolab:session:{" + id + "}" }

// dialRefused dials a connection that must be refused with status and,
// when code is not "", that handshake code in the JSON body.
func dialRefused(t *testing.T, addr, tok string, status int, code string) {
	t.Helper()
	c, resp, err := wsprobe.Dial(t, addr, tok)
	if err == nil {
		c.Close()
		t.Fatalf("dial %s: connected, want %d %s", addr, status, code)
	}
	if resp == nil || resp.StatusCode != status {
		t.Fatalf("dial %s: %v %v, want status %d", addr, err, resp, status)
	}
	defer resp.Body.Close()
	var body struct{ Code, Message string }
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if body.Code != code || (code != "" && body.Message == "") {
		t.Fatalf("dial %s: body %+v, want code %q and a message", addr, body, code)
	}
}

// TestSessionIsBoundToItsSubject: a session belongs to the token subject
// that first claimed it. Another subject naming it (query or header) is
// refused with 403 session_forbidden and changes nothing; the owner still
// connects with it.
func TestSessionIsBoundToItsSubject(t *testing.T) {
	rs := redistest.Start(t)
	gw := startGateway(t, rs.Addr(), "us-east", "gw-1")
	alice := wsprobe.Open(t, gw.Addr()+"?session=s-bound", token(t, "alice"))
	if w := alice.Welcome(); w.Session != "s-bound" {
		t.Fatalf("welcome %+v, want session s-bound", w)
	}
	before, _ := rs.Client().HGetAll(context.Background(), sessionKey("s-bound")).Result()
	if before["sub"] != "alice" || before["region"] != "us-east" {
		t.Fatalf("record %v, want region us-east and sub alice", before)
	}

	dialRefused(t, gw.Addr()+"?session=s-bound", token(t, "bob"), http.StatusForbidden, protocol.CodeSessionForbidden)
	h := http.Header{"Authorization": {"Bearer " + token(t, "bob")}, "X-Geolab-Session": {"s-bound"}}
	ws, resp, err := websocket.DefaultDialer.Dial("ws://"+gw.Addr()+"/ws", h)
	if err == nil {
		ws.Close()
		t.Fatal("bob connected with alice's session in the X-Geolab-Session header")
	}
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("header: %v %v, want 403", err, resp)
	}
	after, _ := rs.Client().HGetAll(context.Background(), sessionKey("s-bound")).Result()
	if after["sub"] != "alice" || after["epoch"] != before["epoch"] || after["region"] != "us-east" {
		t.Fatalf("bob's refused claims changed the record: %v, was %v", after, before)
	}
	// alice's connection is untouched, and she connects with it again.
	alice.Send(map[string]any{"type": "ping"})
	alice.Expect("pong")
	again := wsprobe.Open(t, gw.Addr()+"?session=s-bound", token(t, "alice"))
	if w := again.Welcome(); w.Session != "s-bound" {
		t.Fatalf("alice again: welcome %+v", w)
	}
	// Bob's own session is his.
	wsprobe.Open(t, gw.Addr()+"?session=s-bob", token(t, "bob"))
}

// TestSessionIsClaimedOnlyAfterTheUpgrade: a request the upgrade refuses (a
// browser Origin the node does not allow, a GET that is no WebSocket
// handshake) claims nothing, and one from a refused Origin does not learn
// whose a session is.
func TestSessionIsClaimedOnlyAfterTheUpgrade(t *testing.T) {
	rs := redistest.Start(t)
	gw := startGateway(t, rs.Addr(), "us-east", "gw-1")
	ctx := context.Background()
	exists := func(id string) bool {
		n, err := rs.Client().Exists(ctx, sessionKey(id)).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n == 1
	}

	// A browser on a foreign origin.
	h := http.Header{"Authorization": {"Bearer " + token(t, "alice")}, "Origin": {"https://evil.example.net"}}
	ws, resp, err := websocket.DefaultDialer.Dial("ws://"+gw.Addr()+"/ws?session=s-origin", h)
	if err == nil {
		ws.Close()
		t.Fatal("a foreign Origin connected")
	}
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign Origin: %v %v, want 403", err, resp)
	}
	if exists("s-origin") {
		t.Fatal("a request from a refused Origin claimed its session")
	}

	// A plain GET, no WebSocket handshake.
	req, _ := http.NewRequest(http.MethodGet, "http://"+gw.Addr()+"/ws?session=s-plain", nil)
	req.Header.Set("Authorization", "Bearer "+token(t, "alice"))
	plain, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	plain.Body.Close()
	if plain.StatusCode != http.StatusBadRequest {
		t.Fatalf("plain GET: status %d, want 400 from the upgrader", plain.StatusCode)
	}
	if exists("s-plain") {
		t.Fatal("a GET that was no WebSocket handshake claimed its session")
	}

	// A session bound to alice: a foreign Origin gets the Origin's refusal,
	// not session_forbidden.
	wsprobe.Open(t, gw.Addr()+"?session=s-alice", token(t, "alice"))
	h = http.Header{"Authorization": {"Bearer " + token(t, "bob")}, "Origin": {"https://evil.example.net"}}
	ws, resp, err = websocket.DefaultDialer.Dial("ws://"+gw.Addr()+"/ws?session=s-alice", h)
	if err == nil {
		ws.Close()
		t.Fatal("a foreign Origin connected")
	}
	var body struct{ Code string }
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || body.Code == protocol.CodeSessionForbidden {
		t.Fatalf("foreign Origin on a bound session: %d %q, want gorilla's plain 403", resp.StatusCode, body.Code)
	}

	// What the upgrade takes is claimed.
	wsprobe.Open(t, gw.Addr()+"?session=s-ok", token(t, "alice"))
	if !exists("s-ok") {
		t.Fatal("an upgraded connection did not claim its session")
	}
}

// TestSessionRecordsExpire: a session's record lives --session-ttl after
// its last claim in the region: every connect restarts it.
func TestSessionRecordsExpire(t *testing.T) {
	rs := redistest.Start(t)
	const ttl = time.Hour
	gw := startGateway(t, rs.Addr(), "us-east", "gw-1", func(c *gateway.Config) { c.History.SessionTTL = ttl })
	ctx := context.Background()
	pttl := func() time.Duration {
		d, err := rs.Client().PTTL(ctx, sessionKey("s-ttl")).Result()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	wsprobe.Open(t, gw.Addr()+"?session=s-ttl", token(t, "alice")).Close()
	if d := pttl(); d <= ttl-time.Minute || d > ttl {
		t.Fatalf("a taken session's record expires in %v, want about %v", d, ttl)
	}
	// Nearly run out; a reconnect (kept: this region owns it) restarts it.
	if err := rs.Client().PExpire(ctx, sessionKey("s-ttl"), 30*time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	wsprobe.Open(t, gw.Addr()+"?session=s-ttl", token(t, "alice")).Close()
	if d := pttl(); d <= ttl-time.Minute || d > ttl {
		t.Fatalf("after a reconnect the record expires in %v, want about %v again", d, ttl)
	}
	// A refused claim restarts nothing.
	if err := rs.Client().PExpire(ctx, sessionKey("s-ttl"), 30*time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	dialRefused(t, gw.Addr()+"?session=s-ttl", token(t, "bob"), http.StatusForbidden, protocol.CodeSessionForbidden)
	if d := pttl(); d > 30*time.Second {
		t.Fatalf("a refused claim restarted the record's TTL: %v", d)
	}
	if _, err := gateway.New(func() gateway.Config {
		c := gateway.DefaultConfig()
		c.Region, c.Node, c.Listen, c.Redis, c.Authority = "us-east", "gw-9", "127.0.0.1:0", rs.Addr(), authority
		c.History.SessionTTL = 0
		return c
	}()); err == nil {
		t.Fatal("a session TTL of 0 was accepted")
	}
}

// TestSessionRecordsGoToTheOutboxOnlyWhenTheRegionFederates: a region whose
// gateways federate no room runs no bridge, so nothing would ever read a
// session record from its outbox: none is written. A federating region
// writes each take there, with the session's subject.
func TestSessionRecordsGoToTheOutboxOnlyWhenTheRegionFederates(t *testing.T) {
	rs := redistest.Start(t)
	ctx := context.Background()
	local := startGateway(t, rs.Addr(), "us-east", "gw-1")
	fed := startGateway(t, rs.Addr(), "eu-west", "gw-1", func(c *gateway.Config) { c.Federate = []string{"tenant:*"} })

	wsprobe.Open(t, local.Addr()+"?session=s-local", token(t, "alice")).Close()
	if n, _ := rs.Client().XLen(ctx, "geolab:outbox:us-east").Result(); n != 0 {
		t.Fatalf("a region that does not federate wrote %d session records to its outbox", n)
	}
	if n, _ := rs.Client().Exists(ctx, "geolab:outbox:us-east:n").Result(); n != 0 {
		t.Fatal("a region that does not federate counted a session record in its outbox")
	}
	h, _ := rs.Client().HGetAll(ctx, sessionKey("s-local")).Result()
	if h["region"] != "us-east" || h["sub"] != "alice" {
		t.Fatalf("the local claim's record: %v", h)
	}

	wsprobe.Open(t, fed.Addr()+"?session=s-fed", token(t, "alice")).Close()
	wsprobe.Open(t, fed.Addr()+"?session=s-fed", token(t, "alice")).Close() // kept: no second record
	msgs, err := rs.Client().XRange(ctx, "geolab:outbox:eu-west", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 {
		t.Fatalf("federating region's outbox holds %d entries, want the one take", len(msgs))
	}
	v := msgs[0].Values
	if v["t"] != "s" || v["s"] != "s-fed" || v["g"] != "eu-west" || v["o"] != "eu-west" || v["u"] != "alice" || v["p"] == "" {
		t.Fatalf("session record %v", v)
	}
}

// TestSessionBoundDuringTheHandshakeCloses4501: the check before the
// upgrade found the session free for two subjects at once, and the first
// claim (after the upgrade) bound it to its subject. The other connection
// is closed with 4501 session_forbidden before any welcome; the winner
// keeps it. Redis's CLIENT PAUSE WRITE holds both claims (scripts) while it
// lets the checks (reads) through, so both handshakes are in the race.
func TestSessionBoundDuringTheHandshakeCloses4501(t *testing.T) {
	rs := redistest.Start(t)
	gw := startGateway(t, rs.Addr(), "us-east", "gw-1", func(c *gateway.Config) {
		c.RedisLink.ReadTimeout = 10 * time.Second // a claim waits out the pause
	})
	ctx := context.Background()
	blocked := func() int {
		info, _ := rs.Client().InfoMap(ctx, "clients").Result()
		n, _ := strconv.Atoi(info["Clients"]["blocked_clients"])
		return n
	}
	if err := rs.Client().Do(ctx, "CLIENT", "PAUSE", 10000, "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rs.Client().Do(ctx, "CLIENT", "UNPAUSE").Err() })
	conns := map[string]*wsprobe.Conn{}
	for i, sub := range []string{"alice", "bob"} {
		c, _, err := wsprobe.Dial(t, gw.Addr()+"?session=s-race", token(t, sub))
		if err != nil {
			t.Fatalf("%s's handshake: %v (the check before the upgrade should find the session free)", sub, err)
		}
		conns[sub] = c
		wait.For(t, 5*time.Second, sub+"'s claim waits in Redis", func() bool { return blocked() == i+1 })
	}
	if err := rs.Client().Do(ctx, "CLIENT", "UNPAUSE").Err(); err != nil {
		t.Fatal(err)
	}
	var winner, loser string
	wait.For(t, wsprobe.Bound, "one of the two connections closed", func() bool {
		for sub, c := range conns {
			if c.CloseCode() != 0 {
				loser = sub
				return true
			}
		}
		return false
	})
	for sub := range conns {
		if sub != loser {
			winner = sub
		}
	}
	if code := conns[loser].CloseCode(); code != protocol.CloseSessionForbidden || protocol.Reconnectable(code) {
		t.Fatalf("%s's connection closed with %d, want %d session_forbidden (do not reconnect)", loser, code, protocol.CloseSessionForbidden)
	}
	if _, ok := conns[loser].Next(0, "welcome"); ok {
		t.Fatalf("%s got a welcome before the close", loser)
	}
	if w := conns[winner].Expect("welcome"); w.Session != "s-race" {
		t.Fatalf("%s's welcome %+v", winner, w)
	}
	if h, _ := rs.Client().HGetAll(ctx, sessionKey("s-race")).Result(); h["sub"] != winner {
		t.Fatalf("record %v, want %s's", h, winner)
	}
}

// Every refused handshake is counted in geolab_gateway_errors_total under
// its code, a malformed session id and a session of another subject too.
func TestSessionRefusalsAreCounted(t *testing.T) {
	rs := redistest.Start(t)
	gw := startGateway(t, rs.Addr(), "us-east", "gw-1")
	alice := wsprobe.Open(t, gw.Addr()+"?session=s-counted", token(t, "alice"))
	alice.Welcome()
	dialRefused(t, gw.Addr()+"?session=bad%20id", token(t, "alice"), http.StatusBadRequest, protocol.CodeBadSession)
	dialRefused(t, gw.Addr()+"?session=s-counted", token(t, "bob"), http.StatusForbidden, protocol.CodeSessionForbidden)
	if n := errorsTotal(t, gw, protocol.CodeBadSession); n != 1 {
		t.Errorf("errors_total{code=%q} = %v, want 1", protocol.CodeBadSession, n)
	}
	if n := errorsTotal(t, gw, protocol.CodeSessionForbidden); n != 1 {
		t.Errorf("errors_total{code=%q} = %v, want 1", protocol.CodeSessionForbidden, n)
	}
}

// TestSessionTakenWhileThePubSubLinkIsDownCloses4003: G11 when the notice
// is lost. The bridge applies another region's takeover while this
// gateway's pub/sub connection is down (its Redis link cut through
// Toxiproxy), so the "taken" notice reaches nobody; once the link is back
// the gateway rechecks the records of the sessions it serves and closes
// the stale one with 4003. (Found by the lab's fence probe: a takeover
// applied the moment a region's Redis came back was never fenced.)
func TestSessionTakenWhileThePubSubLinkIsDownCloses4003(t *testing.T) {
	rs := redistest.Start(t)
	proxy, err := toxiproxy.NewClient(toxitest.Start(t)).CreateProxy("gw-redis", "127.0.0.1:0", rs.Addr())
	if err != nil {
		t.Fatal(err)
	}
	gw := startGateway(t, proxy.Listen, "us-east", "gw-1")
	holder := wsprobe.Open(t, gw.Addr()+"?session=s-lost-notice", token(t, "alice"))
	if w := holder.Welcome(); w.Session != "s-lost-notice" {
		t.Fatalf("welcome %+v", w)
	}
	ctx := context.Background()
	epoch, err := rs.Client().HGet(ctx, sessionKey("s-lost-notice"), "epoch").Int64()
	if err != nil {
		t.Fatal(err)
	}
	if err := proxy.Disable(); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, "the gateway's pub/sub connection gone from Redis", func() bool {
		n, err := rs.Client().PubSubNumSub(ctx, broker.SessionsChannel).Result()
		return err == nil && n[broker.SessionsChannel] == 0
	})
	own, err := broker.New(rs.Client(), "us-east", broker.DefaultHistory()).ApplySession(ctx, "s-lost-notice", "eu-west", epoch+1, "alice")
	if err != nil || own.Status != "won" {
		t.Fatalf("apply eu-west's takeover: %+v %v", own, err)
	}
	if err := proxy.Enable(); err != nil {
		t.Fatal(err)
	}
	if code := holder.AwaitClose(20 * time.Second); code != protocol.CloseSessionTakenOver {
		t.Fatalf("the holder ended with %d, want %d once the gateway was back on Redis", code, protocol.CloseSessionTakenOver)
	}
}
