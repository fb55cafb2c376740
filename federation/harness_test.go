package federation_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/geolab/geolab/federation"
	"github.com/geolab/geolab/gateway"
	"github.com/geolab/geolab/gateway/auth"
	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/internal/redistest"
)

const testSecret = "federation-test-secret-0123456789abcdef0123456789"

var authority = func() *auth.Authority {
	a, err := auth.NewAuthority([]byte(testSecret))
	if err != nil {
		panic(err)
	}
	return a
}()

var federate = []string{"tenant:*"}

// region is one simulated region: its Redis, one gateway, its bridge.
type region struct {
	name   string
	redis  *redistest.Server
	gw     *gateway.Server
	bridge *runningBridge
}

// world is three regions with Toxiproxy on every WAN link: the bridge of X
// reaches Y's Redis only through proxy "X<-Y".
type world struct {
	t       *testing.T
	regions map[string]*region
	names   []string
	tp      *toxiproxy.ApiServer
	proxies map[string]*toxiproxy.Proxy // "X<-Y"
}

func newWorld(t *testing.T, names ...string) *world {
	t.Helper()
	return newWorldWith(t, nil, names...)
}

// newWorldWith is newWorld with mod applied to every gateway's config.
func newWorldWith(t *testing.T, mod func(*gateway.Config), names ...string) *world {
	t.Helper()
	w := &world{t: t, regions: map[string]*region{}, names: names,
		tp:      toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop()),
		proxies: map[string]*toxiproxy.Proxy{}}
	for _, n := range names {
		r := &region{name: n, redis: redistest.Start(t, redistest.Persistent())}
		cfg := gateway.DefaultConfig()
		cfg.Region, cfg.Node, cfg.Listen, cfg.Redis = n, "gw-1", "127.0.0.1:0", r.redis.Addr()
		cfg.Authority, cfg.Federate = authority, federate
		cfg.PublishRate, cfg.PublishBurst, cfg.FrameRate, cfg.FrameBurst = 1e5, 100000, 1e5, 100000
		cfg.Logger = quiet()
		if mod != nil {
			mod(&cfg)
		}
		gw, err := gateway.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := gw.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { gw.Close() })
		r.gw = gw
		w.regions[n] = r
	}
	for _, x := range names {
		for _, y := range names {
			if x == y {
				continue
			}
			p := toxiproxy.NewProxy(w.tp, x+"<-"+y, "127.0.0.1:0", w.regions[y].redis.Addr())
			if err := w.tp.Collection.Add(p, true); err != nil {
				t.Fatalf("proxy %s: %v", p.Name, err)
			}
			w.proxies[p.Name] = p
		}
	}
	t.Cleanup(func() { _ = w.tp.Collection.Clear() })
	for _, r := range w.regions {
		waitFor(t, 10*time.Second, "gateway ready", func() bool { ok, _ := r.gw.Ready(); return ok })
	}
	return w
}

func quiet() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// config is the bridge config of region x: its own Redis direct, every
// other region's through x's WAN proxies.
func (w *world) config(x string) *federation.Config {
	c := &federation.Config{Region: x, Regions: map[string]federation.RegionConfig{}, Federate: federate,
		Lag: federation.LagConfig{Warn: time.Second, Alert: 5 * time.Second}, Block: 200 * time.Millisecond,
		Listen: "127.0.0.1:0"}
	for _, y := range w.names {
		addr := w.regions[y].redis.Addr()
		if y != x {
			addr = w.proxies[x+"<-"+y].Listen
		}
		c.Regions[y] = federation.RegionConfig{Redis: addr}
	}
	c.Defaults()
	return c
}

// runningBridge is a bridge run in this process.
type runningBridge struct {
	b      *federation.Bridge
	cancel context.CancelFunc
	done   chan struct{}
}

func (w *world) startBridges() {
	for _, n := range w.names {
		w.startBridge(n)
	}
}

func (w *world) startBridge(x string) {
	b, err := federation.New(w.config(x), quiet())
	if err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rb := &runningBridge{b: b, cancel: cancel, done: make(chan struct{})}
	go func() { _ = b.Run(ctx); close(rb.done) }()
	w.t.Cleanup(func() { cancel(); <-rb.done })
	w.regions[x].bridge = rb
}

// partition cuts x↔y both ways: "reset" refuses and resets connections,
// "blackhole" holds every byte.
func (w *world) partition(x, y, kind string) {
	for _, name := range []string{x + "<-" + y, y + "<-" + x} {
		p := w.proxies[name]
		switch kind {
		case "reset":
			p.Stop()
		case "blackhole":
			for _, stream := range []string{"upstream", "downstream"} {
				js := fmt.Sprintf(`{"name":"blackhole_%s","type":"timeout","stream":"%s","attributes":{"timeout":0}}`, stream, stream)
				if _, err := p.Toxics.AddToxicJson(strings.NewReader(js)); err != nil {
					w.t.Fatalf("blackhole %s: %v", name, err)
				}
			}
		}
	}
}

func (w *world) heal() {
	for _, p := range w.proxies {
		p.Toxics.ResetToxics(context.Background())
		if !p.Enabled {
			if err := p.Start(); err != nil {
				w.t.Fatalf("heal %s: %v", p.Name, err)
			}
		}
	}
}

func waitFor(t testing.TB, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %s waiting for %s", bound, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wsClient is a raw protocol v1 client that records every message.
type wsClient struct {
	ws   *websocket.Conn
	wmu  sync.Mutex
	mu   sync.Mutex
	msgs []*protocol.ServerFrame
	subs chan *protocol.ServerFrame
	acks chan *protocol.ServerFrame
}

func dial(t testing.TB, addr, sub string) *wsClient {
	t.Helper()
	tok, _ := authority.Issue(sub, []string{"*"}, []string{"*"}, time.Hour, time.Now())
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws", http.Header{"Authorization": {"Bearer " + tok}})
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	c := &wsClient{ws: ws, subs: make(chan *protocol.ServerFrame, 100), acks: make(chan *protocol.ServerFrame, 100000)}
	t.Cleanup(func() { ws.Close() })
	go func() {
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				return
			}
			f, err := protocol.DecodeServerFrame(b)
			if err != nil {
				continue
			}
			switch f.Type {
			case "message":
				c.mu.Lock()
				c.msgs = append(c.msgs, f)
				c.mu.Unlock()
			case "subscribed":
				c.subs <- f
			case "ack", "error":
				c.acks <- f
			}
		}
	}()
	return c
}

func (c *wsClient) send(v any) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.WriteJSON(v)
}

func (c *wsClient) subscribe(t testing.TB, room string, since protocol.Positions, epochs protocol.Epochs) *protocol.ServerFrame {
	t.Helper()
	f := map[string]any{"type": "subscribe", "room": room}
	if since != nil {
		f["since"], f["epochs"] = since, epochs
	}
	c.send(f)
	select {
	case s := <-c.subs:
		return s
	case <-time.After(10 * time.Second):
		t.Fatalf("no subscribed for %s", room)
		return nil
	}
}

// publish publishes and waits for the ack (retrying on unavailable).
func (c *wsClient) publish(t testing.TB, room, id string, n int) *protocol.ServerFrame {
	t.Helper()
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); {
		c.send(map[string]any{"type": "publish", "room": room, "id": id, "data": map[string]int{"n": n}})
		select {
		case f := <-c.acks:
			if f.Type == "ack" {
				return f
			}
			if f.Code != protocol.CodeUnavailable {
				t.Fatalf("publish %s: %+v", id, f)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no ack for %s", id)
		}
	}
	t.Fatalf("publish %s: unavailable for 20s", id)
	return nil
}

func (c *wsClient) messages() []*protocol.ServerFrame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*protocol.ServerFrame(nil), c.msgs...)
}

func (c *wsClient) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.msgs)
}

// checkExactlyOnce: the subscriber got exactly the acked events, each once,
// with oseq rising by one per origin (G2, G3, G7).
func checkExactlyOnce(t testing.TB, who string, msgs []*protocol.ServerFrame, acked map[string]bool) {
	t.Helper()
	seen := map[string]bool{}
	last := map[string]uint64{}
	for _, m := range msgs {
		if seen[m.ID] {
			t.Fatalf("%s: event %s (%s/%d) delivered twice", who, m.ID, m.Origin, m.Oseq)
		}
		seen[m.ID] = true
		if !acked[m.ID] {
			t.Fatalf("%s: event %s was never acked", who, m.ID)
		}
		if prev, ok := last[m.Origin]; ok && m.Oseq != prev+1 {
			t.Fatalf("%s: origin %s oseq %d after %d", who, m.Origin, m.Oseq, prev)
		}
		last[m.Origin] = m.Oseq
	}
	if len(seen) != len(acked) {
		var lost []string
		for id := range acked {
			if !seen[id] {
				lost = append(lost, id)
			}
		}
		sort.Strings(lost)
		t.Fatalf("%s: %d of %d acked events never arrived (e.g. %v)", who, len(lost), len(acked), lost[:min(5, len(lost))])
	}
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// geolabBinary builds cmd/geolab once per test binary, for the tests that
// need a real process to kill -9.
func geolabBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "geolab-fedtest-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "geolab")
		cmd := exec.Command("go", "build", "-o", binPath, "../cmd/geolab")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build geolab: %v", buildErr)
	}
	return binPath
}

// processBridge runs region x's bridge as a real geolab process.
type processBridge struct {
	cmd *exec.Cmd
}

func (w *world) startProcessBridge(x string) *processBridge {
	w.t.Helper()
	bin := geolabBinary(w.t)
	c := w.config(x)
	var sb strings.Builder
	sb.WriteString("regions:\n")
	for _, y := range w.names {
		fmt.Fprintf(&sb, "  %s:\n    redis: %s\n", y, c.Regions[y].Redis)
	}
	sb.WriteString("federate: [\"tenant:*\"]\nblock: 200ms\n")
	path := filepath.Join(w.t.TempDir(), "federation-"+x+".yaml")
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		w.t.Fatal(err)
	}
	cmd := exec.Command(bin, "federation", "--region", x, "--config", path, "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		w.t.Fatalf("start bridge process: %v", err)
	}
	pb := &processBridge{cmd: cmd}
	w.t.Cleanup(func() { pb.kill() })
	return pb
}

// kill sends SIGKILL to the bridge's pid and reaps it.
func (pb *processBridge) kill() {
	if pb.cmd.ProcessState != nil {
		return
	}
	_ = syscall.Kill(pb.cmd.Process.Pid, syscall.SIGKILL)
	_ = pb.cmd.Wait()
}
