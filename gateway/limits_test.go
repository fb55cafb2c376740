package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/geolab/geolab/gateway"
	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/internal/redistest"
	"github.com/geolab/geolab/internal/wait"
	"github.com/geolab/geolab/internal/wsprobe"
)

// errorsTotal reads geolab_gateway_errors_total{code}.
func errorsTotal(t *testing.T, srv *gateway.Server, code string) float64 {
	t.Helper()
	mfs, err := srv.Registry().Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "geolab_gateway_errors_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "code" && l.GetValue() == code {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// refusal dials /ws for sub and returns the refused handshake's status and
// code; a connection that opens is returned instead.
func refusal(t *testing.T, addr, sub string) (int, string, *wsprobe.Conn) {
	t.Helper()
	c, resp, err := wsprobe.Dial(t, addr, token(t, sub))
	if err == nil {
		return 0, "", c
	}
	if resp == nil {
		t.Fatalf("dial %s: %v, no HTTP answer", sub, err)
	}
	var body struct{ Code string }
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body.Code, nil
}

// readyz asks a node's /readyz over HTTP: its status and JSON reason.
func readyz(t *testing.T, addr string) (int, string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatalf("/readyz: %v", err)
	}
	defer resp.Body.Close()
	var body struct{ Reason string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("/readyz body: %v", err)
	}
	return resp.StatusCode, body.Reason
}

// An idle keep-alive HTTP connection is closed by the node after
// HTTPIdleTimeout, not held for ever.
func TestIdleKeepAliveHTTPConnectionIsClosed(t *testing.T) {
	rs := redistest.Start(t)
	const idle = 300 * time.Millisecond
	gw := startGateway(t, rs.Addr(), "us-east", "gw-1", func(c *gateway.Config) { c.HTTPIdleTimeout = idle })
	nc, err := net.DialTimeout("tcp", gw.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := fmt.Fprintf(nc, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", gw.Addr()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("/healthz: %d, close %v; want 200 on a connection kept alive", resp.StatusCode, resp.Close)
	}
	idleFrom := time.Now()
	const bound = 10 * time.Second
	_ = nc.SetReadDeadline(idleFrom.Add(bound))
	_, err = br.ReadByte()
	if !errors.Is(err, io.EOF) {
		t.Fatalf("an idle keep-alive connection: %v after %s; want closed by the node after %s", err, time.Since(idleFrom).Round(time.Millisecond), idle)
	}
	if took := time.Since(idleFrom); took < idle {
		t.Fatalf("closed after %s, before the idle timeout %s", took, idle)
	}
}

// The node refuses the connection past its caps before the upgrade, with
// the documented status and code, counts it, and takes one again once a
// connection has gone.
func TestConnectionCapsRefuseBeforeUpgrade(t *testing.T) {
	rs := redistest.Start(t)
	for _, tc := range []struct {
		name           string
		maxConns, sub  int
		first, refused string // the subjects of the connections that fill the cap, and of the one refused
		status         int
		code           string
		other          string // a subject still taken at the cap ("" if none)
	}{
		{"per node", 2, 0, "a", "b", http.StatusServiceUnavailable, protocol.CodeTooManyConnections, ""},
		{"per subject", 0, 2, "a", "a", http.StatusTooManyRequests, protocol.CodeTooManySubConnections, "b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gw := startGateway(t, rs.Addr(), "us-east", "gw-"+map[bool]string{true: "n", false: "s"}[tc.maxConns > 0],
				func(c *gateway.Config) { c.MaxConns, c.MaxConnsPerSub = tc.maxConns, tc.sub })
			first := newClient(t, gw.Addr(), tc.first)
			newClient(t, gw.Addr(), tc.first)
			status, code, c := refusal(t, gw.Addr(), tc.refused)
			if c != nil {
				t.Fatalf("connection 3 of %s accepted past the cap", tc.refused)
			}
			if status != tc.status || code != tc.code {
				t.Fatalf("connection 3 refused with %d %q; want %d %q", status, code, tc.status, tc.code)
			}
			if n := errorsTotal(t, gw, tc.code); n != 1 {
				t.Fatalf("errors_total{code=%q} = %v, want 1", tc.code, n)
			}
			if tc.other != "" {
				newClient(t, gw.Addr(), tc.other) // another subject is not capped by a's connections
			}
			first.Close()
			wait.For(t, 10*time.Second, "a connection accepted again once one has gone", func() bool {
				_, _, c := refusal(t, gw.Addr(), tc.refused)
				return c != nil
			})
		})
	}
}

// Pings and pongs count in the frame rate: a control frame flood is cut
// with 4500 like any frame flood.
func TestControlFrameFloodIsCut(t *testing.T) {
	rs := redistest.Start(t)
	gw := startGateway(t, rs.Addr(), "us-east", "gw-1", func(c *gateway.Config) { c.FrameRate, c.FrameBurst = 10, 20 })
	for _, kind := range []string{"ping", "pong"} {
		t.Run(kind, func(t *testing.T) {
			c := newClient(t, gw.Addr(), "flood-"+kind)
			for i := 0; i < 500; i++ {
				if kind == "ping" {
					c.SendPing([]byte("x"))
				} else {
					c.SendPong([]byte("x"))
				}
			}
			if code := c.AwaitClose(wsprobe.Bound); code != protocol.CloseFlood {
				t.Fatalf("a %s flood closed with %d, want %d flood", kind, code, protocol.CloseFlood)
			}
		})
	}
	if n := errorsTotal(t, gw, protocol.CloseReason(protocol.CloseFlood)); n != 2 {
		t.Fatalf("errors_total{code=flood} = %v, want 2", n)
	}
}

// A publish that Redis refuses at its maxmemory (noeviction) gets
// redis_oom, is counted, stores nothing, and turns /readyz 503 redis_oom
// until Redis is under its maxmemory again.
func TestRedisOOMIsRefusedCountedAndNotReady(t *testing.T) {
	rs := redistest.Start(t)
	gw := startGateway(t, rs.Addr(), "us-east", "gw-1")
	c := newClient(t, gw.Addr(), "p")
	const room = "room:oom"
	c.Subscribe(room, nil, nil)
	if a := c.Publish(room, "before", 1); a.Type != "ack" {
		t.Fatalf("publish before: %+v", a)
	}
	ctx := context.Background()
	rdb := rs.Client()
	if err := rdb.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.ConfigSet(ctx, "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // the retry with the same id is refused the same way
		if e := c.Publish(room, "during", 2); e.Type != "error" || e.Code != protocol.CodeRedisOOM || e.Ref != "during" {
			t.Fatalf("publish at maxmemory: %+v; want error redis_oom", e)
		}
	}
	if n := errorsTotal(t, gw, protocol.CodeRedisOOM); n != 2 {
		t.Fatalf("errors_total{code=redis_oom} = %v, want 2", n)
	}
	if status, why := readyz(t, gw.Addr()); status != http.StatusServiceUnavailable || why != protocol.CodeRedisOOM {
		t.Fatalf("/readyz at maxmemory: %d %q; want 503 redis_oom", status, why)
	}
	if err := rdb.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, "ready again once Redis is under its maxmemory, with no publish", func() bool {
		status, _ := readyz(t, gw.Addr())
		return status == http.StatusOK
	})
	if a := c.Publish(room, "during", 2); a.Type != "ack" || a.Oseq != 2 || a.Duplicate {
		t.Fatalf("publish after: %+v; want a fresh ack with oseq 2 (the refused attempts stored nothing)", a)
	}
	wait.For(t, wsprobe.Bound, "before and during delivered", func() bool { return c.Count() >= 2 })
	msgs := c.Messages()
	wsprobe.CheckStream(t, "p", msgs)
	if len(msgs) != 2 || msgs[1].Oseq != 2 {
		t.Fatalf("delivered %d messages, want before and during", len(msgs))
	}
}
