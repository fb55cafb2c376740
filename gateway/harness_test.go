package gateway_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/geolab/geolab/gateway"
	"github.com/geolab/geolab/gateway/auth"
	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/internal/redistest"
)

const testSecret = "gateway-test-secret-0123456789abcdef0123456789"

var authority = func() *auth.Authority {
	a, err := auth.NewAuthority([]byte(testSecret))
	if err != nil {
		panic(err)
	}
	return a
}()

func token(t testing.TB, sub string, ttl time.Duration) string {
	t.Helper()
	tok, err := authority.Issue(sub, []string{"tenant:*", "room:*"}, []string{"tenant:*", "room:*"}, ttl, time.Now())
	if err != nil {
		t.Fatalf("issue token: %v", err)
	}
	return tok
}

// startGateway runs one node on a free port; mod adjusts its config.
func startGateway(t testing.TB, redisAddr, region, node string, mod ...func(*gateway.Config)) *gateway.Server {
	t.Helper()
	cfg := gateway.DefaultConfig()
	cfg.Region, cfg.Node, cfg.Listen, cfg.Redis = region, node, "127.0.0.1:0", redisAddr
	cfg.Authority = authority
	// Tests publish as fast as Redis answers; the rate limit has its own test.
	cfg.PublishRate, cfg.PublishBurst = 100000, 100000
	cfg.FrameRate, cfg.FrameBurst = 100000, 100000
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	for _, m := range mod {
		m(&cfg)
	}
	srv, err := gateway.New(cfg)
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("gateway start: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	waitFor(t, 10*time.Second, "gateway ready", func() bool { ok, _ := srv.Ready(); return ok })
	return srv
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func startRedis(t testing.TB, opts ...redistest.Option) *redistest.Server {
	t.Helper()
	return redistest.Start(t, opts...)
}

// waitFor polls cond until it holds or the bound passes.
func waitFor(t testing.TB, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %s waiting for %s", bound, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wsClient is a raw protocol v1 client: it records every frame it reads.
type wsClient struct {
	t      testing.TB
	ws     *websocket.Conn
	frames chan *protocol.ServerFrame
	closed chan struct{}
	mu     sync.Mutex
	code   int // close code received, when closed
	err    error
	wmu    sync.Mutex
}

func dialRaw(addr, tok string) (*wsClient, *http.Response, error) {
	h := http.Header{}
	if tok != "" {
		h.Set("Authorization", "Bearer "+tok)
	}
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	ws, resp, err := d.Dial("ws://"+addr+"/ws", h)
	if err != nil {
		return nil, resp, err
	}
	c := &wsClient{ws: ws, frames: make(chan *protocol.ServerFrame, 100000), closed: make(chan struct{})}
	go c.readLoop()
	return c, resp, nil
}

func (c *wsClient) readLoop() {
	defer close(c.closed)
	for {
		_, b, err := c.ws.ReadMessage()
		if err != nil {
			c.mu.Lock()
			c.err = err
			var ce *websocket.CloseError
			if ok := asCloseError(err, &ce); ok {
				c.code = ce.Code
			}
			c.mu.Unlock()
			return
		}
		f, err := protocol.DecodeServerFrame(b)
		if err != nil {
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
			return
		}
		c.frames <- f
	}
}

func asCloseError(err error, ce **websocket.CloseError) bool {
	e, ok := err.(*websocket.CloseError)
	if ok {
		*ce = e
	}
	return ok
}

func (c *wsClient) send(f any) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b, _ := json.Marshal(f)
	_ = c.ws.WriteMessage(websocket.TextMessage, b)
}

func (c *wsClient) sendRaw(b []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.WriteMessage(websocket.TextMessage, b)
}

// next returns the next frame of one of the types (others are skipped and
// fail the test if they are messages: a message must never be skipped).
func (c *wsClient) next(bound time.Duration, types ...string) (*protocol.ServerFrame, bool) {
	timer := time.NewTimer(bound)
	defer timer.Stop()
	for {
		select {
		case f := <-c.frames:
			for _, want := range types {
				if f.Type == want {
					return f, true
				}
			}
		case <-timer.C:
			return nil, false
		}
	}
}

func (c *wsClient) expect(types ...string) *protocol.ServerFrame {
	if t, ok := c.t.(interface{ Helper() }); ok {
		t.Helper()
	}
	f, ok := c.next(10*time.Second, types...)
	if !ok {
		c.t.Fatalf("no %v frame within 10s (read error: %v)", types, c.readErr())
	}
	return f
}

func (c *wsClient) readErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *wsClient) closeCode() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.code
}

func (c *wsClient) subscribe(room string, since protocol.Positions, epochs protocol.Epochs) *protocol.ServerFrame {
	f := map[string]any{"type": "subscribe", "room": room}
	if since != nil {
		f["since"] = since
	}
	if epochs != nil {
		f["epochs"] = epochs
	}
	c.send(f)
	s := c.expect("subscribed", "error")
	if s.Type != "subscribed" {
		c.t.Fatalf("subscribe %s: %+v", room, s)
	}
	return s
}

// publish sends one publish and waits for its ack or error.
func (c *wsClient) publish(room, id string, data any) *protocol.ServerFrame {
	c.send(map[string]any{"type": "publish", "room": room, "id": id, "data": data})
	return c.expect("ack", "error")
}

// collect reads messages until n arrived or the bound passes.
func (c *wsClient) collect(n int, bound time.Duration) []*protocol.ServerFrame {
	var out []*protocol.ServerFrame
	end := time.Now().Add(bound)
	for len(out) < n && time.Now().Before(end) {
		f, ok := c.next(time.Until(end), "message")
		if ok {
			out = append(out, f)
		}
	}
	return out
}

// newClient dials with a fresh token; the client's t is set for expect.
func newClient(t testing.TB, addr, sub string) *wsClient {
	t.Helper()
	c, resp, err := dialRaw(addr, token(t, sub, time.Hour))
	if err != nil {
		t.Fatalf("dial %s: %v (%v)", addr, err, resp)
	}
	c.t = t
	t.Cleanup(func() { c.ws.Close() })
	w := c.expect("welcome")
	if w.Session == "" || w.Region == "" || w.Node == "" {
		t.Fatalf("welcome lacks a field: %+v", w)
	}
	return c
}

// checkStream asserts G2 and G3 on what one subscriber received: per origin,
// oseq goes up by exactly 1 from the first message, and no id repeats.
func checkStream(t testing.TB, who string, msgs []*protocol.ServerFrame) {
	t.Helper()
	seen := map[string]bool{}
	last := map[string]uint64{}
	for i, m := range msgs {
		if seen[m.ID] {
			t.Fatalf("%s: G3: id %s delivered twice (message %d)", who, m.ID, i)
		}
		seen[m.ID] = true
		if prev, ok := last[m.Origin]; ok && m.Oseq != prev+1 {
			t.Fatalf("%s: G2: origin %s oseq %d follows %d (message %d)", who, m.Origin, m.Oseq, prev, i)
		}
		last[m.Origin] = m.Oseq
	}
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
