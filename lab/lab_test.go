package lab_test

// Contract tests of a whole lab, run on every provider that can run here
// (harness.RunWithProvider): it comes up and leaves nothing behind, its links
// carry the topology's RTT, and every cross-region path goes through
// Toxiproxy. The fault kinds one by one are in fault_test.go.

import (
	"context"
	"testing"
	"time"

	"github.com/geolab/geolab/internal/harness"
	"github.com/geolab/geolab/lab"
)

// TestThreeRegionsComeUpAndLeaveNothingBehind starts three-region.yaml:
// every Redis, gateway and bridge runs as a live pid of this machine, every
// link and the resolver are there; Close leaves none of those pids alive.
func TestThreeRegionsComeUpAndLeaveNothingBehind(t *testing.T) {
	harness.RunWithProvider(t, func(t *testing.T, opts lab.Options) {
		l := harness.StartLab(t, "three-region.yaml", opts) // closed below; the cleanup's Close is then a no-op
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
			if !harness.Alive(pid) {
				t.Fatalf("pid %d not alive while the lab runs", pid)
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		for _, pid := range pids {
			if harness.Alive(pid) {
				t.Errorf("pid %d still alive after Close", pid)
			}
		}
	})
}

// TestInjectedRTTMatchesTheTopology measures each region pair's RTT through
// the client links and compares it with the topology's figure.
func TestInjectedRTTMatchesTheTopology(t *testing.T) {
	harness.RunWithProvider(t, func(t *testing.T, opts lab.Options) {
		l := harness.StartLab(t, "three-region.yaml", opts)
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
	})
}

// Every cross-region path goes through Toxiproxy: isolating a region stops
// every delivery from and to it; healing brings them all (and what was
// published meanwhile) back.
func TestIsolateStopsEveryCrossRegionDelivery(t *testing.T) {
	harness.RunWithProvider(t, func(t *testing.T, opts lab.Options) {
		l := harness.StartLab(t, "three-region.yaml", opts)
		const room = "tenant:iso"
		// Inside each region's datacenter: a client on gateway gw-1 directly.
		inside := map[string]*harness.Probe{}
		for _, r := range l.Topology().RegionNames() {
			inside[r] = harness.Dial(t, l, "in-"+r, []string{harness.Direct(l, r, 1)}, room)
		}
		before := inside["us-east"].Publish(room, "before")
		for r, p := range inside {
			harness.WaitFor(t, 20*time.Second, "before reaches "+r, func() bool { return p.Has(room, before) })
		}
		if _, err := l.Isolate("ap-southeast"); err != nil { // the lab's own verb
			t.Fatal(err)
		}
		fromUS := inside["us-east"].Publish(room, "during-us")
		fromAP := inside["ap-southeast"].Publish(room, "during-ap")
		harness.WaitFor(t, 20*time.Second, "us-east → eu-west during isolation", func() bool { return inside["eu-west"].Has(room, fromUS) })
		harness.WaitFor(t, 5*time.Second, "ap-southeast's own message at home", func() bool { return inside["ap-southeast"].Has(room, fromAP) })
		// eu-west got us-east's message, which took longer than ap-southeast's
		// RTT would: had a path around Toxiproxy existed, it would be there too.
		marker := inside["us-east"].Publish(room, "marker-us")
		harness.WaitFor(t, 20*time.Second, "marker reaches eu-west", func() bool { return inside["eu-west"].Has(room, marker) })
		if inside["ap-southeast"].Has(room, fromUS) || inside["ap-southeast"].Has(room, marker) {
			t.Fatal("a message reached the isolated region")
		}
		if inside["us-east"].Has(room, fromAP) || inside["eu-west"].Has(room, fromAP) {
			t.Fatal("a message left the isolated region")
		}
		harness.Heal(t, l)
		for r, p := range inside {
			for _, id := range []string{fromUS, fromAP, marker} {
				harness.WaitFor(t, 30*time.Second, id+" reaches "+r+" after heal", func() bool { return p.Has(room, id) })
			}
		}
	})
}
