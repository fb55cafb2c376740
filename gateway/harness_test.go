package gateway_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/geolab/geolab/gateway"
	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/internal/gatewaytest"
	"github.com/geolab/geolab/internal/wsprobe"
)

const testSecret = "gateway-test-secret-0123456789abcdef0123456789"

var authority = gatewaytest.Authority(testSecret)

// rooms are what the tests' tokens may read and write: "secret:*" is not
// among them, so that a forbidden room can be tried.
var rooms = []string{"tenant:*", "room:*"}

func token(t testing.TB, sub string) string {
	t.Helper()
	return gatewaytest.Token(t, authority, sub, rooms...)
}

// startGateway runs one node on a free port; mod adjusts its config.
func startGateway(t testing.TB, redisAddr, region, node string, mod ...func(*gateway.Config)) *gateway.Server {
	t.Helper()
	return gatewaytest.Start(t, authority, redisAddr, region, node, mod...)
}

// newClient opens a raw protocol v1 connection with a fresh token for sub
// and checks its welcome. It is closed when the test ends; a test that
// opens clients in a loop closes each as it goes.
func newClient(t testing.TB, addr, sub string) *wsprobe.Conn {
	t.Helper()
	c := wsprobe.Open(t, addr, token(t, sub))
	if w := c.Welcome(); w.Session == "" || w.Region == "" || w.Node == "" {
		t.Fatalf("welcome lacks a field: %+v", w)
	}
	return c
}

func ids(msgs []*protocol.ServerFrame) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.ID
	}
	return out
}

func dataN(m *protocol.ServerFrame) int {
	var d struct{ N int }
	_ = json.Unmarshal(m.Data, &d)
	return d.N
}

// counter reads one counter or gauge of a node's registry (summed over labels).
func counter(t testing.TB, srv *gateway.Server, name string) float64 {
	t.Helper()
	mfs, err := srv.Registry().Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if c := m.GetCounter(); c != nil {
				sum += c.GetValue()
			}
			if g := m.GetGauge(); g != nil {
				sum += g.GetValue()
			}
		}
		return sum
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func msgID(prefix string, i int) string { return fmt.Sprintf("%s-%d", prefix, i) }
