package lab_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/geolab/geolab/gateway/client"
	"github.com/geolab/geolab/internal/testbin"
	"github.com/geolab/geolab/lab"
	"github.com/geolab/geolab/lab/topology"
)

func TestMain(m *testing.M) {
	bin, err := testbin.Path()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("GEOLAB_BIN", bin)
	os.Exit(m.Run())
}

func startLab(t *testing.T, file string, opts lab.Options) *lab.Lab {
	t.Helper()
	topo, err := topology.Load("../topologies/" + file)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	l, err := lab.Start(ctx, topo, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return l
}

// probe is one client that records the ids it received per room.
type probe struct {
	c    *client.Client
	mu   sync.Mutex
	got  map[string][]string // room → event ids
	name string
}

func dialProbe(t *testing.T, l *lab.Lab, name string, endpoints []string, rooms ...string) *probe {
	t.Helper()
	p := &probe{got: map[string][]string{}, name: name}
	tok, err := l.Token(name, []string{"*"}, []string{"*"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p.c, err = client.Dial(context.Background(), client.Options{
		Endpoints: endpoints, Token: func(context.Context) (string, error) { return tok, nil },
		MaxBackoff: 500 * time.Millisecond,
		OnMessage: func(m client.Message) {
			p.mu.Lock()
			p.got[m.Room] = append(p.got[m.Room], m.ID)
			p.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatalf("%s: dial: %v", name, err)
	}
	t.Cleanup(func() { _ = p.c.Close() })
	for _, r := range rooms {
		if _, err := p.c.Subscribe(ctx, r); err != nil {
			t.Fatalf("%s: subscribe %s: %v", name, r, err)
		}
	}
	return p
}

func (p *probe) has(room, id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, x := range p.got[room] {
		if x == id {
			return true
		}
	}
	return false
}

func (p *probe) publish(t *testing.T, room, id string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ack, err := p.c.Publish(ctx, room, id, map[string]string{"from": p.name})
	if err != nil {
		t.Fatalf("%s: publish %s: %v", p.name, id, err)
	}
	return ack.Event
}

// eventually polls cond every 20 ms until it holds or bound passes.
func eventually(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("not within %s: %s", bound, what)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, not synchronising
	}
}

func alive(pid int) bool { return pid > 0 && syscall.Kill(pid, 0) == nil }

func TestThreeRegionsComeUpAndLeaveNothingBehind(t *testing.T) {
	topo, err := topology.Load("../topologies/three-region.yaml")
	if err != nil {
		t.Fatal(err)
	}
	l, err := lab.Start(context.Background(), topo, lab.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := l.Status(context.Background())
	var pids []int
	gateways, bridges := 0, 0
	for _, r := range st.Regions {
		if !r.Redis.Running {
			t.Errorf("redis of %s not running", r.Name)
		}
		pids = append(pids, r.Redis.Pid)
		for _, g := range r.Gateways {
			if !g.Running {
				t.Errorf("%s not running", g.Name)
			}
			gateways++
			pids = append(pids, g.Pid)
		}
		if r.Bridge != nil && r.Bridge.Running {
			bridges++
			pids = append(pids, r.Bridge.Pid)
		}
	}
	if len(st.Regions) != 3 || gateways < 6 || bridges != 3 {
		t.Fatalf("want 3 regions, ≥6 gateways, 3 bridges; got %d, %d, %d", len(st.Regions), gateways, bridges)
	}
	// 3 homes × 6 gateways client links, 6 LAN links, 6 WAN links.
	if n := len(st.Links); n != 18+6+6 {
		t.Errorf("links: got %d, want 30", n)
	}
	a, err := l.Resolver().Resolve("eu-west")
	if err != nil || a.Region != "eu-west" || len(a.Endpoints) != 6 {
		t.Errorf("resolve eu-west: %+v, %v", a, err)
	}
	for _, pid := range pids {
		if !alive(pid) {
			t.Fatalf("pid %d not alive while the lab runs", pid)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("pid %d still alive after Close", pid)
		}
	}
}

func TestInjectedRTTMatchesTheTopology(t *testing.T) {
	l := startLab(t, "three-region.yaml", lab.Options{})
	checks, err := l.MeasureRTT(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(checks) != 3 {
		t.Fatalf("want 3 pairs, got %d", len(checks))
	}
	for _, c := range checks {
		t.Logf("%s-%s configured %s measured %s", c.A, c.B, c.Configured, c.Measured)
		if !c.OK {
			t.Errorf("%s-%s: measured %s, configured %s (tolerance %s)", c.A, c.B, c.Measured, c.Configured, lab.Tolerance(c.Configured))
		}
	}
}

// Every cross-region path goes through Toxiproxy: isolating a region stops
// every delivery from and to it; healing brings them all (and what was
// published meanwhile) back.
func TestIsolateStopsEveryCrossRegionDelivery(t *testing.T) {
	l := startLab(t, "three-region.yaml", lab.Options{})
	const room = "tenant:iso"
	// Inside each region's datacenter: a client on gateway gw-1 directly.
	inside := map[string]*probe{}
	for _, r := range l.Topology().RegionNames() {
		inside[r] = dialProbe(t, l, "in-"+r, []string{"ws://" + l.Region(r).Gateway(1).Listen + "/ws"}, room)
	}
	before := inside["us-east"].publish(t, room, "before")
	for r, p := range inside {
		eventually(t, 20*time.Second, "before reaches "+r, func() bool { return p.has(room, before) })
	}
	if _, err := l.Isolate("ap-southeast"); err != nil {
		t.Fatal(err)
	}
	fromUS := inside["us-east"].publish(t, room, "during-us")
	fromAP := inside["ap-southeast"].publish(t, room, "during-ap")
	eventually(t, 20*time.Second, "us-east → eu-west during isolation", func() bool { return inside["eu-west"].has(room, fromUS) })
	eventually(t, 5*time.Second, "ap-southeast's own message at home", func() bool { return inside["ap-southeast"].has(room, fromAP) })
	// eu-west got us-east's message, which took longer than ap-southeast's
	// RTT would: had a path around Toxiproxy existed, it would be there too.
	marker := inside["us-east"].publish(t, room, "marker-us")
	eventually(t, 20*time.Second, "marker reaches eu-west", func() bool { return inside["eu-west"].has(room, marker) })
	if inside["ap-southeast"].has(room, fromUS) || inside["ap-southeast"].has(room, marker) {
		t.Fatal("a message reached the isolated region")
	}
	if inside["us-east"].has(room, fromAP) || inside["eu-west"].has(room, fromAP) {
		t.Fatal("a message left the isolated region")
	}
	if err := l.Heal(); err != nil {
		t.Fatal(err)
	}
	for r, p := range inside {
		for _, id := range []string{fromUS, fromAP, marker} {
			eventually(t, 30*time.Second, id+" reaches "+r+" after heal", func() bool { return p.has(room, id) })
		}
	}
}
