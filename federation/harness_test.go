package federation_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"

	"github.com/geolab/geolab/federation"
	"github.com/geolab/geolab/gateway"
	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/internal/gatewaytest"
	"github.com/geolab/geolab/internal/redistest"
	"github.com/geolab/geolab/internal/testbin"
	"github.com/geolab/geolab/internal/wsprobe"
)

const testSecret = "federation-test-secret-0123456789abcdef0123456789"

var authority = gatewaytest.Authority(testSecret)

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
		r.gw = gatewaytest.Start(t, authority, r.redis.Addr(), n, "gw-1", func(c *gateway.Config) {
			c.Federate = federate
			if mod != nil {
				mod(c)
			}
		})
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

func (w *world) startBridge(x string) { w.startBridgeLog(x, quiet()) }

// startBridgeLog is startBridge with the bridge logging to log.
func (w *world) startBridgeLog(x string, log *slog.Logger) {
	b, err := federation.New(w.config(x), log)
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

// dial opens a raw protocol v1 connection to the gateway at addr for sub
// (addr may carry a query: "?session=s-1"). It is closed when the test
// ends; a test that dials in a loop closes each connection as it goes.
func dial(t testing.TB, addr, sub string) *wsprobe.Conn {
	t.Helper()
	return wsprobe.Open(t, addr, gatewaytest.Token(t, authority, sub))
}

// publishBound is how long a publish may meet "unavailable" (its region's
// Redis or gateway briefly gone) before the test fails.
const publishBound = 20 * time.Second

// publish publishes event n as id into room and returns its ack.
func publish(c *wsprobe.Conn, room, id string, n int) *protocol.ServerFrame {
	return c.PublishAcked(room, id, map[string]int{"n": n}, publishBound)
}

// checkExactlyOnce: the subscriber got exactly the acked events, each once,
// with oseq rising by one per origin (G2, G3, G7).
func checkExactlyOnce(t testing.TB, who string, msgs []*protocol.ServerFrame, acked map[string]bool) {
	t.Helper()
	wsprobe.CheckStream(t, who, msgs)
	seen := map[string]bool{}
	for _, m := range msgs {
		seen[m.ID] = true
		if !acked[m.ID] {
			t.Fatalf("%s: event %s was never acked", who, m.ID)
		}
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

// processBridge runs region x's bridge as a real geolab process.
type processBridge struct {
	cmd *exec.Cmd
}

func (w *world) startProcessBridge(x string) *processBridge {
	w.t.Helper()
	bin, err := testbin.Path()
	if err != nil {
		w.t.Fatal(err)
	}
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

// runBridge starts a bridge of cfg (Defaults applied) in the background,
// stopped when the test ends.
func runBridge(t *testing.T, cfg *federation.Config) {
	t.Helper()
	cfg.Defaults()
	b, err := federation.New(cfg, quiet())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = b.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}
