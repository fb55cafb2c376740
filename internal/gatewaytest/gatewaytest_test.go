package gatewaytest_test

import (
	"net"
	"testing"
	"time"

	"github.com/geolab/geolab/gateway"
	"github.com/geolab/geolab/internal/gatewaytest"
	"github.com/geolab/geolab/internal/redistest"
	"github.com/geolab/geolab/internal/wait"
	"github.com/geolab/geolab/internal/wsprobe"
)

var authority = gatewaytest.Authority("gatewaytest-secret-0123456789abcdef0123456789")

func TestTokenMayReadAndWriteItsPatterns(t *testing.T) {
	for _, tc := range []struct {
		patterns     []string
		room, denied string
	}{
		{nil, "anything:1", ""},
		{[]string{"tenant:*", "room:*"}, "room:a", "secret:1"},
	} {
		c, err := authority.Verify(gatewaytest.Token(t, authority, "alice", tc.patterns...), time.Now())
		if err != nil {
			t.Fatalf("%v: %v", tc.patterns, err)
		}
		if c.Subject != "alice" || !c.CanRead(tc.room) || !c.CanPublish(tc.room) {
			t.Errorf("%v: claims %+v cannot read and publish %s", tc.patterns, c, tc.room)
		}
		if tc.denied != "" && (c.CanRead(tc.denied) || c.CanPublish(tc.denied)) {
			t.Errorf("%v: claims %+v reach %s", tc.patterns, c, tc.denied)
		}
		if left := time.Until(c.ExpiresAt.Time); left < 50*time.Minute {
			t.Errorf("%v: the token expires in %v, want an hour", tc.patterns, left)
		}
	}
}

// TestStartIsReadyAndClosedWithTheTest: Start returns a ready node that
// answers a client, with mod applied, and the test's end closes it.
func TestStartIsReadyAndClosedWithTheTest(t *testing.T) {
	rs := redistest.Start(t)
	var addr string
	t.Run("node", func(t *testing.T) {
		srv := gatewaytest.Start(t, authority, rs.Addr(), "eu-west", "gw-7", func(c *gateway.Config) { c.Federate = []string{"tenant:*"} })
		if ok, why := srv.Ready(); !ok {
			t.Fatalf("Start returned a node that is not ready: %s", why)
		}
		addr = srv.Addr()
		c := wsprobe.Open(t, addr, gatewaytest.Token(t, authority, "bob"))
		if w := c.Welcome(); w.Region != "eu-west" || w.Node != "gw-7" {
			t.Fatalf("welcome %+v, want eu-west/gw-7", w)
		}
		if ack := c.Publish("tenant:x", "m-1", 1); ack.Type != "ack" {
			t.Fatalf("publish: %+v", ack)
		}
	})
	wait.For(t, 10*time.Second, "the node's port closed after its test", func() bool {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
		}
		return err != nil
	})
}
