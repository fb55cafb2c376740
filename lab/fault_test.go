package lab_test

// The provider contract: every fault kind (docs/faults.md), injected into a
// real lab, observed on real traffic, and healed — on every provider that
// can run here (harness.RunWithProvider: a subtest per provider). After each
// heal the book is empty and no link carries anything but its base latency.

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/geolab/geolab/gateway/client"
	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/internal/harness"
	"github.com/geolab/geolab/lab"
	"github.com/geolab/geolab/lab/fault"
	"github.com/geolab/geolab/lab/link"
)

// ---- partition -------------------------------------------------------------

// TestPartition cuts us-east from us-west in each mode and direction and
// checks what real traffic sees: federation stops both ways (a pull needs
// its request to arrive and its answer to return), what a client crossing
// the cut sees at its link, and that everything published during the cut
// arrives exactly once, in order, after the heal.
func TestPartition(t *testing.T) {
	harness.RunWithProvider(t, func(t *testing.T, opts lab.Options) {
		cases := []struct {
			mode, direction string
			// dial is what a client of us-east sees on a fresh connection to a
			// us-west gateway through its link: "refused" (TCP), "reset" (TCP
			// accepted, the handshake fails at once) or "hangs" (the handshake
			// times out).
			dial string
			// oneWay: requests from us-west still reach us-east; only the
			// answers are lost.
			oneWay bool
		}{
			{"reset", "both", "refused", false},
			{"blackhole", "both", "hangs", false},
			{"reset", "one", "reset", false},
			{"blackhole", "one", "hangs", true},
		}
		for _, tc := range cases {
			t.Run(tc.mode+"/"+tc.direction, func(t *testing.T) {
				testPartition(t, opts, tc.mode, tc.direction, tc.dial, tc.oneWay)
			})
		}
	})
}

func testPartition(t *testing.T, opts lab.Options, mode, direction, dial string, oneWay bool) {
	l := harness.StartLab(t, "two-region.yaml", opts)
	const room = "tenant:part"
	east := harness.Dial(t, l, "east", []string{harness.Direct(l, "us-east", 1)}, room)
	west := harness.Dial(t, l, "west", []string{harness.Direct(l, "us-west", 1)}, room)
	// A client living in us-west, connected to a us-east gateway across
	// the WAN (client.us-west.us-east.gw-1).
	far := harness.DialWatch(t, l, "far", func(o *client.Options) {
		o.Endpoints = []string{harness.Via(t, l, "us-west", "us-east", 1)}
		o.PingInterval = time.Second // a silent connection is given up after 3 s
		o.DialTimeout = time.Second
	})
	before := east.Publish(room, "before")
	harness.WaitFor(t, 20*time.Second, "before crosses to us-west", func() bool { return west.Has(room, before) })
	crossing := harness.Link(t, l, link.Client, "us-east", "us-west", "gw-1").Listen
	if c, err := harness.Handshake(l, crossing, 5*time.Second); err != nil {
		t.Fatalf("handshake across the WAN before the cut: %v", err)
	} else {
		c.Close()
	}

	spec := fault.Spec{Kind: "partition", Regions: []string{"us-east", "us-west"}, Mode: mode, Direction: direction}
	harness.Inject(t, l, spec)
	var farAck <-chan harness.PubResult
	if oneWay {
		// us-west → us-east still passes: far's publish, sent on its open
		// connection before anything times it out, reaches the us-east
		// gateway and is stored, but its ack never comes back.
		farAck = far.AsyncPublish(room, "far-during", 60*time.Second)
	}
	// far's connection crosses the cut: it ends (reset, or a heartbeat
	// timeout when blackholed).
	harness.WaitFor(t, 10*time.Second, "far's connection across the cut ends", func() bool {
		return far.SawState(func(e client.StateEvent) bool { return e.State == client.StateDisconnected })
	})
	if mode == "reset" {
		// Both bridges see their link fail at their next read. (After a
		// blackhole they should notice by timeout, but do not yet: see
		// TestBlackholedBridgeLinkGoesDown.)
		harness.WaitFor(t, 20*time.Second, "us-west's bridge sees its link to us-east down", func() bool { return harness.BridgeDown(l, "us-west", "us-east") })
		harness.WaitFor(t, 20*time.Second, "us-east's bridge sees its link to us-west down", func() bool { return harness.BridgeDown(l, "us-east", "us-west") })
	}

	// What a us-east client sees dialling a us-west gateway.
	start := time.Now()
	raw, err := net.DialTimeout("tcp", crossing, 2*time.Second)
	switch {
	case dial == "refused":
		if err == nil {
			raw.Close()
			t.Fatalf("TCP dial across a reset partition succeeded")
		}
	case err != nil:
		t.Fatalf("TCP dial across a %s partition: %v (want accepted)", mode, err)
	default:
		raw.Close()
		c, err := harness.Handshake(l, crossing, time.Second)
		if err == nil {
			c.Close()
			t.Fatalf("WebSocket handshake across a %s/%s partition succeeded", mode, direction)
		}
		took := time.Since(start)
		t.Logf("handshake across the cut: %v after %s", err, took.Round(time.Millisecond))
		if (dial == "hangs") != harness.IsTimeout(err) {
			t.Fatalf("handshake across the cut: %v; want it to %s", err, dial)
		}
	}

	fromEast := east.PublishN(room, "east-during", 3)
	fromWest := west.PublishN(room, "west-during", 3)
	harness.Never(t, 1500*time.Millisecond, "a message crossed the partition", func() bool {
		return west.Has(room, fromEast[0]) || east.Has(room, fromWest[0])
	})
	if oneWay {
		harness.WaitFor(t, 10*time.Second, "far's publish reaches us-east one way", func() bool {
			return len(east.IDs(room)) == 1+3+1 // before, its own three, far's
		})
		select {
		case r := <-farAck:
			t.Fatalf("far's publish returned across a one-way partition: %+v", r)
		default:
		}
	}

	harness.Heal(t, l)
	harness.WaitFor(t, 30*time.Second, "us-east's messages reach us-west after heal", func() bool { return west.HasAll(room, fromEast) })
	harness.WaitFor(t, 30*time.Second, "us-west's messages reach us-east after heal", func() bool { return east.HasAll(room, fromWest) })
	harness.ExactlyOnceInOrder(t, west, room, append([]string{before}, fromEast...))
	harness.ExactlyOnceInOrder(t, east, room, fromWest)
	if oneWay {
		a := harness.Await(t, farAck, 30*time.Second, "far's publish after the heal")
		if !a.Duplicate {
			t.Errorf("far's ack after heal: %+v; want duplicate (the first attempt was stored during the cut)", a)
		}
		if east.Count(room, a.Event) != 1 {
			t.Errorf("far's event %s reached us-east %d times, want 1", a.Event, east.Count(room, a.Event))
		}
		harness.WaitFor(t, 30*time.Second, "far's event reaches us-west", func() bool { return west.Has(room, a.Event) })
	}
	if c, err := harness.Handshake(l, crossing, 5*time.Second); err != nil {
		t.Fatalf("handshake across the WAN after the heal: %v", err)
	} else {
		c.Close()
	}
	harness.WaitFor(t, 20*time.Second, "bridges up after heal", func() bool {
		return harness.BridgeUp(l, "us-west", "us-east") && harness.BridgeUp(l, "us-east", "us-west")
	})
}

// ---- latency and bandwidth ----------------------------------------------

// TestLatency adds 200 ms to each round trip between us-east and us-west:
// a us-east client's publish → ack through a us-west gateway grows by about
// that much while a same-region client's does not; on one named link only
// that link slows; and a fault with For heals by itself.
func TestLatency(t *testing.T) {
	harness.RunWithProvider(t, func(t *testing.T, opts lab.Options) {
		l := harness.StartLab(t, "two-region.yaml", opts)
		const room, added = "local:lat", 200 * time.Millisecond
		// Lives in us-east, talks to us-west's gw-1 across the WAN.
		far := harness.Dial(t, l, "far", []string{harness.Via(t, l, "us-east", "us-west", 1)})
		// Lives in us-west, talks to the same gateway from inside the region.
		near := harness.Dial(t, l, "near", []string{harness.Via(t, l, "us-west", "us-west", 1)})
		farBase, nearBase := far.AckRTT(room, "far-base", 5), near.AckRTT(room, "near-base", 5)
		t.Logf("base: across %s, inside %s", farBase, nearBase)

		harness.Inject(t, l, fault.Spec{Kind: "latency", Regions: []string{"us-east", "us-west"}, Latency: added})
		farLat, nearLat := far.AckRTT(room, "far-lat", 5), near.AckRTT(room, "near-lat", 5)
		t.Logf("with +%s: across %s, inside %s", added, farLat, nearLat)
		if d := farLat - farBase; d < added*8/10 || d > added+150*time.Millisecond {
			t.Errorf("across the WAN the round trip grew by %s, want about %s", d, added)
		}
		if d := nearLat - nearBase; d > 50*time.Millisecond {
			t.Errorf("inside us-west the round trip grew by %s: the fault leaked off its region pair", d)
		}
		// Every link between the pair carries it, the bridges' WAN links too.
		for _, n := range []string{"wan.us-east.us-west", "wan.us-west.us-east", "client.us-west.us-east.gw-2"} {
			ts, err := l.Net().Toxics(n)
			if err != nil {
				t.Fatal(err)
			}
			if len(ts) != 4 {
				t.Errorf("%s toxics %v: want the base two and the fault's two", n, ts)
			}
		}
		harness.Heal(t, l)
		if got := far.AckRTT(room, "far-healed", 5); got > farBase+50*time.Millisecond {
			t.Errorf("across the WAN after heal: %s, base %s", got, farBase)
		}

		// One link, healing itself after For.
		one := harness.Link(t, l, link.Client, "us-west", "us-west", "gw-1").Name
		harness.Inject(t, l, fault.Spec{Kind: "latency", Link: one, Latency: added, For: 1500 * time.Millisecond})
		if got := near.AckRTT(room, "near-link", 3); got-nearBase < added*8/10 {
			t.Errorf("on link %s the round trip is %s (base %s), want about %s more", one, got, nearBase, added)
		}
		if got := far.AckRTT(room, "far-link", 3); got > farBase+50*time.Millisecond {
			t.Errorf("a link the fault does not name slowed: %s, base %s", got, farBase)
		}
		harness.WaitFor(t, 10*time.Second, "latency with for: 1.5s heals by itself", func() bool { return len(l.Faults().List()) == 0 })
		harness.RequireHealed(t, l)
		if got := near.AckRTT(room, "near-after", 3); got > nearBase+50*time.Millisecond {
			t.Errorf("after the auto-heal: %s, base %s", got, nearBase)
		}
	})
}

// TestBandwidth caps the links between us-east and us-west at 16 KB/s: a
// 24 KB publish across them takes seconds instead of one round trip, while
// the same publish inside a region does not slow down.
func TestBandwidth(t *testing.T) {
	harness.RunWithProvider(t, func(t *testing.T, opts lab.Options) {
		l := harness.StartLab(t, "two-region.yaml", opts)
		const room = "local:bw"
		far := harness.Dial(t, l, "far", []string{harness.Via(t, l, "us-east", "us-west", 1)})
		near := harness.Dial(t, l, "near", []string{harness.Via(t, l, "us-west", "us-west", 1)})
		big := map[string]string{"pad": strings.Repeat("x", 24*1024)}
		farBase := far.TimedPublish(room, "far-base", big)
		t.Logf("24 KB across the WAN, uncapped: %s", farBase)

		harness.Inject(t, l, fault.Spec{Kind: "bandwidth", Regions: []string{"us-east", "us-west"}, RateKB: 16})
		// 24 KB at 16 KB/s: 1.5 s.
		farCapped := far.TimedPublish(room, "far-capped", big)
		nearCapped := near.TimedPublish(room, "near-capped", big)
		t.Logf("capped at 16 KB/s: across %s, inside %s", farCapped, nearCapped)
		if farCapped < time.Second || farCapped > 10*time.Second {
			t.Errorf("24 KB across a 16 KB/s cap took %s, want about 1.5s", farCapped)
		}
		if nearCapped > 500*time.Millisecond {
			t.Errorf("24 KB inside us-west took %s: the cap leaked off its region pair", nearCapped)
		}
		harness.Heal(t, l)
		if got := far.TimedPublish(room, "far-healed", big); got > farBase+500*time.Millisecond {
			t.Errorf("24 KB across the WAN after heal took %s, base %s", got, farBase)
		}
	})
}

// ---- isolate -------------------------------------------------------------

// TestIsolateBlackhole isolates us-east by blackhole (the reset mode is
// TestIsolateStopsEveryCrossRegionDelivery's): the resolver's health checks
// hang, so within the TTL and a few seconds it answers us-west for clients
// living in us-east; such a client, whose connection hangs, fails over to
// us-west; nothing crosses into or out of us-east; after the heal the
// resolver answers us-east again and what was published meanwhile arrives.
func TestIsolateBlackhole(t *testing.T) {
	harness.RunWithProvider(t, func(t *testing.T, opts lab.Options) {
		l := harness.StartLab(t, "two-region.yaml", opts)
		const room = "tenant:isobh"
		ttl := l.Topology().Resolver.TTL
		east := harness.Dial(t, l, "east", []string{harness.Direct(l, "us-east", 1)}, room)
		west := harness.Dial(t, l, "west", []string{harness.Direct(l, "us-west", 1)}, room)
		mover := harness.DialWatch(t, l, "mover", func(o *client.Options) {
			o.Resolve = l.Lookup("us-east").Resolve
			o.PingInterval = 500 * time.Millisecond // a hung connection is given up after 1.5 s
			o.DialTimeout = time.Second
		}, room)
		if a, err := l.Resolver().Resolve("us-east"); err != nil || a.Region != "us-east" || !a.Healthy {
			t.Fatalf("resolve us-east before: %+v, %v", a, err)
		}
		if !mover.ConnectedTo("us-east", "") {
			t.Fatalf("mover connected to %s before the fault, want us-east", mover.Client().Region())
		}

		harness.Inject(t, l, fault.Spec{Kind: "isolate", Regions: []string{"us-east"}, Mode: "blackhole"})
		cut := time.Now()
		harness.WaitFor(t, ttl+5*time.Second, "the resolver answers us-west for us-east's clients", func() bool {
			a, err := l.Resolver().Resolve("us-east")
			return err == nil && a.Region == "us-west" && a.Healthy
		})
		t.Logf("resolver moved after %s (ttl %s)", time.Since(cut).Round(time.Millisecond), ttl)
		harness.WaitFor(t, ttl+10*time.Second, "mover fails over to us-west", func() bool { return mover.ConnectedTo("us-west", "") })
		t.Logf("mover on %s/%s after %s", mover.Client().Region(), mover.Client().Node(), time.Since(cut).Round(time.Millisecond))
		// A blackhole accepts connections and answers nothing.
		gw := harness.Link(t, l, link.Client, "us-east", "us-east", "gw-1").Listen
		if code, err := harness.Readyz(gw, 500*time.Millisecond); !harness.IsTimeout(err) {
			t.Errorf("us-east/gw-1's /readyz through its link: %d, %v; want a timeout", code, err)
		}

		fromWest := west.Publish(room, "west-during")
		fromEast := east.Publish(room, "east-during")
		harness.WaitFor(t, 10*time.Second, "mover gets us-west's message in us-west", func() bool { return mover.Has(room, fromWest) })
		harness.Never(t, 1500*time.Millisecond, "a message crossed into or out of the isolated region", func() bool {
			return east.Has(room, fromWest) || west.Has(room, fromEast)
		})

		harness.Heal(t, l)
		harness.WaitFor(t, ttl+5*time.Second, "the resolver answers us-east again", func() bool {
			a, err := l.Resolver().Resolve("us-east")
			return err == nil && a.Region == "us-east" && a.Healthy
		})
		harness.WaitFor(t, 30*time.Second, "what was published during the isolation crosses after heal", func() bool {
			return east.Has(room, fromWest) && west.Has(room, fromEast) && mover.Has(room, fromEast)
		})
		for _, p := range []*harness.Probe{east, west, mover.Probe} {
			for _, id := range []string{fromWest, fromEast} {
				if n := p.Count(room, id); n != 1 {
					t.Errorf("%s got %s %d times", p.Name(), id, n)
				}
			}
		}
	})
}

// ---- Redis -------------------------------------------------------------

// TestRedisBlip resets every gateway→Redis connection of the region: at
// once (the gateways lose their pub/sub link, reconnect and resubscribe),
// then held for 2 s (the gateways are not ready, a publish is refused as
// unavailable and retried by the client): every message is delivered to a
// subscriber on the other node exactly once, and the held blip heals by
// itself.
func TestRedisBlip(t *testing.T) {
	harness.RunWithProvider(t, func(t *testing.T, opts lab.Options) {
		l := harness.StartLab(t, "single-region.yaml", opts)
		const room = "local:blip"
		gw1, gw2 := l.Region("us-east").Gateway(1).Listen, l.Region("us-east").Gateway(2).Listen
		pub := harness.DialWatch(t, l, "pub", harness.WithEndpoints(harness.Via(t, l, "us-east", "us-east", 1)))
		sub := harness.DialWatch(t, l, "sub", harness.WithEndpoints(harness.Via(t, l, "us-east", "us-east", 2)), room)
		before := pub.Publish(room, "before")
		harness.WaitFor(t, 10*time.Second, "before delivered", func() bool { return sub.Has(room, before) })
		drops1, drops2 := harness.Metric(gw1, "geolab_gateway_redis_disconnects_total"), harness.Metric(gw2, "geolab_gateway_redis_disconnects_total")

		// A blip: closed and reopened at once.
		harness.Inject(t, l, fault.Spec{Kind: "redis-blip", Regions: []string{"us-east"}})
		harness.WaitFor(t, 10*time.Second, "both gateways lose their Redis pub/sub link", func() bool {
			return harness.Metric(gw1, "geolab_gateway_redis_disconnects_total") > drops1 && harness.Metric(gw2, "geolab_gateway_redis_disconnects_total") > drops2
		})
		harness.WaitFor(t, 10*time.Second, "both gateways ready again", func() bool { return harness.Ready(gw1) && harness.Ready(gw2) })
		harness.Heal(t, l) // the blip's heal has nothing left to do, but the book holds it until healed
		after := pub.Publish(room, "after-blip")
		harness.WaitFor(t, 10*time.Second, "a message published after the blip is delivered", func() bool { return sub.Has(room, after) })

		// A blip held for 2 s, healing itself.
		harness.Inject(t, l, fault.Spec{Kind: "redis-blip", Regions: []string{"us-east"}, For: 2 * time.Second})
		harness.WaitFor(t, 5*time.Second, "gw-1 not ready while its Redis is unreachable", func() bool {
			code, err := harness.Readyz(gw1, time.Second)
			return err == nil && code == http.StatusServiceUnavailable
		})
		during := pub.AsyncPublish(room, "during-blip", 30*time.Second)
		harness.WaitFor(t, 5*time.Second, "the publish is refused as unavailable", func() bool { return pub.SawFrame("error", protocol.CodeUnavailable) })
		harness.WaitFor(t, 10*time.Second, "the held blip heals by itself", func() bool { return len(l.Faults().List()) == 0 })
		harness.RequireHealed(t, l)
		ack := harness.Await(t, during, 20*time.Second, "publish retried through the blip")
		harness.WaitFor(t, 10*time.Second, "both gateways ready after the held blip", func() bool { return harness.Ready(gw1) && harness.Ready(gw2) })
		harness.WaitFor(t, 10*time.Second, "the retried publish is delivered", func() bool { return sub.Has(room, ack.Event) })
		last := pub.Publish(room, "last")
		harness.WaitFor(t, 10*time.Second, "a message after the held blip is delivered", func() bool { return sub.Has(room, last) })
		harness.ExactlyOnceInOrder(t, sub.Probe, room, []string{before, after, ack.Event, last})
		if st := sub.Client().Stats(); st.Duplicates != 0 || st.Gaps != 0 {
			t.Errorf("subscriber's backstop saw %d duplicates, %d gaps", st.Duplicates, st.Gaps)
		}
	})
}

// TestRedisKill kills the region's Redis: its pid is gone, the gateways are
// not ready and refuse publishes as unavailable (the client retries); the
// heal starts a new Redis, the retried publish is acked and delivered once,
// and publishing works again.
func TestRedisKill(t *testing.T) {
	harness.RunWithProvider(t, func(t *testing.T, opts lab.Options) {
		l := harness.StartLab(t, "single-region.yaml", opts)
		const room = "local:kill"
		red := l.Region("us-east").Redis()
		gw1, gw2 := l.Region("us-east").Gateway(1).Listen, l.Region("us-east").Gateway(2).Listen
		pub := harness.DialWatch(t, l, "pub", harness.WithEndpoints(harness.Via(t, l, "us-east", "us-east", 1)))
		sub := harness.DialWatch(t, l, "sub", harness.WithEndpoints(harness.Via(t, l, "us-east", "us-east", 2)), room)
		before := pub.Publish(room, "before")
		harness.WaitFor(t, 10*time.Second, "before delivered", func() bool { return sub.Has(room, before) })
		pid := red.Pid()

		harness.Inject(t, l, fault.Spec{Kind: "redis-kill", Regions: []string{"us-east"}})
		if harness.Alive(pid) || red.Running() {
			t.Fatalf("redis pid %d still alive after redis-kill", pid)
		}
		harness.WaitFor(t, 10*time.Second, "gateways not ready without Redis", func() bool {
			c1, e1 := harness.Readyz(gw1, time.Second)
			c2, e2 := harness.Readyz(gw2, time.Second)
			return e1 == nil && e2 == nil && c1 == http.StatusServiceUnavailable && c2 == http.StatusServiceUnavailable
		})
		during := pub.AsyncPublish(room, "during-kill", 60*time.Second)
		harness.WaitFor(t, 10*time.Second, "the publish is refused as unavailable", func() bool { return pub.SawFrame("error", protocol.CodeUnavailable) })
		select {
		case r := <-during:
			t.Fatalf("a publish returned while Redis was dead: %+v", r)
		default:
		}

		harness.Heal(t, l)
		if !red.Running() || red.Pid() == pid || !harness.Alive(red.Pid()) {
			t.Fatalf("after heal: redis running %v, pid %d (was %d)", red.Running(), red.Pid(), pid)
		}
		ack := harness.Await(t, during, 30*time.Second, "publish retried through the outage")
		harness.WaitFor(t, 10*time.Second, "both gateways ready after heal", func() bool { return harness.Ready(gw1) && harness.Ready(gw2) })
		harness.WaitFor(t, 10*time.Second, "the retried publish is delivered", func() bool { return sub.Has(room, ack.Event) })
		after := pub.Publish(room, "after")
		harness.WaitFor(t, 10*time.Second, "a new publish is delivered", func() bool { return sub.Has(room, after) })
		harness.ExactlyOnceInOrder(t, sub.Probe, room, []string{before, ack.Event, after})
	})
}

// TestRedisRestart restarts a persistent region's Redis: without lose_data
// its history survives and a resume from an old position is recovered; with
// lose_data it comes back empty, the room's sequence starts under a new
// epoch, a live subscriber is told so (recovered:false, epoch_changed) and a
// resume from a position of the old epoch is answered recovered:false.
func TestRedisRestart(t *testing.T) {
	harness.RunWithProvider(t, func(t *testing.T, opts lab.Options) {
		l := harness.StartLab(t, "three-region.yaml", opts)
		const room = "local:restart"
		red := l.Region("us-east").Redis()
		gw1 := l.Region("us-east").Gateway(1).Listen
		pub := harness.DialWatch(t, l, "pub", harness.WithEndpoints(harness.Direct(l, "us-east", 2)))
		sub := harness.DialWatch(t, l, "sub", harness.WithEndpoints(harness.Direct(l, "us-east", 1)), room)
		first := pub.PublishN(room, "first", 3)
		harness.WaitFor(t, 10*time.Second, "first three delivered", func() bool { return sub.HasAll(room, first) })
		since, epochs := sub.Client().Positions(room)
		if since["us-east"] != 3 || epochs["us-east"] == "" {
			t.Fatalf("positions after three messages: %v %v", since, epochs)
		}

		pid := red.Pid()
		harness.Inject(t, l, fault.Spec{Kind: "redis-restart", Regions: []string{"us-east"}})
		if red.Pid() == pid || !red.Running() || harness.Alive(pid) {
			t.Fatalf("redis not restarted: pid %d (was %d), running %v", red.Pid(), pid, red.Running())
		}
		harness.WaitFor(t, 10*time.Second, "gw-1 ready after the restart", func() bool { return harness.Ready(gw1) })
		kept := pub.Publish(room, "kept")
		harness.WaitFor(t, 10*time.Second, "a publish after a persistent restart is delivered", func() bool { return sub.Has(room, kept) })
		if f := harness.Resume(t, l, gw1, room, since, epochs); f.Type != "subscribed" || !f.Recovered || f.Missed != 1 {
			t.Errorf("resume from oseq 3 after a persistent restart: %+v; want recovered, 1 missed", f)
		}
		if st := sub.Client().Stats(); st.EpochChanges != 0 || st.GapsAnnounced != 0 {
			t.Errorf("a persistent restart changed the epoch: %+v", st)
		}
		since, epochs = sub.Client().Positions(room)

		pid = red.Pid()
		harness.Inject(t, l, fault.Spec{Kind: "redis-restart", Regions: []string{"us-east"}, LoseData: true})
		if red.Pid() == pid || !red.Running() {
			t.Fatalf("redis not restarted: pid %d (was %d)", red.Pid(), pid)
		}
		harness.WaitFor(t, 10*time.Second, "gw-1 ready after the restart", func() bool { return harness.Ready(gw1) })
		fresh := pub.Publish(room, "fresh")
		harness.WaitFor(t, 10*time.Second, "a publish after the lost data is delivered", func() bool { return sub.Has(room, fresh) })
		harness.WaitFor(t, 5*time.Second, "the live subscriber is told its position's epoch is gone", func() bool {
			return sub.Subscribed(func(e client.SubscribedEvent) bool {
				return e.Unasked && !e.Recovered && e.Reason == protocol.ReasonEpochChanged
			})
		})
		f := harness.Resume(t, l, gw1, room, since, epochs)
		if f.Type != "subscribed" || f.Recovered || f.Reason != protocol.ReasonEpochChanged {
			t.Errorf("resume from the old epoch after lose_data: %+v; want recovered:false, epoch_changed", f)
		}
		if f.Epochs["us-east"] == epochs["us-east"] {
			t.Errorf("epoch unchanged after lose_data: %s", f.Epochs["us-east"])
		}
		harness.Heal(t, l)
	})
}

// ---- gateways -------------------------------------------------------------

// TestGatewayKill kills gw-1 with SIGKILL: its pid is gone, a client on it
// reconnects to gw-2 (its endpoint list has both) and keeps receiving,
// nothing lost or doubled; the heal starts a new process on the same
// address.
func TestGatewayKill(t *testing.T) {
	harness.RunWithProvider(t, func(t *testing.T, opts lab.Options) {
		l := harness.StartLab(t, "single-region.yaml", opts)
		const room = "local:gwkill"
		g := l.Region("us-east").Gateway(1)
		c := harness.DialWatch(t, l, "c", harness.WithEndpoints(l.Endpoints("us-east", "us-east")...), room)
		pub := harness.Dial(t, l, "pub", []string{harness.Direct(l, "us-east", 2)})
		if !c.ConnectedTo("us-east", "gw-1") {
			t.Fatalf("client on %s, want gw-1 (first endpoint)", c.Client().Node())
		}
		before := pub.Publish(room, "before")
		harness.WaitFor(t, 10*time.Second, "before delivered", func() bool { return c.Has(room, before) })
		pid := g.Pid()

		harness.Inject(t, l, fault.Spec{Kind: "gateway-kill", Regions: []string{"us-east"}, Node: "gw-1"})
		if harness.Alive(pid) || g.Running() {
			t.Fatalf("gateway pid %d still alive after gateway-kill", pid)
		}
		during := pub.Publish(room, "during")
		harness.WaitFor(t, 10*time.Second, "the client moves to gw-2", func() bool { return c.ConnectedTo("us-east", "gw-2") })
		// 1006: the connection ended with no close frame (a killed gateway
		// sends none).
		harness.WaitFor(t, 5*time.Second, "a disconnect with no close frame", func() bool {
			return c.SawState(func(e client.StateEvent) bool {
				return e.State == client.StateDisconnected && e.Code == websocket.CloseAbnormalClosure && e.WillReconnect
			})
		})
		after := pub.Publish(room, "after")
		harness.WaitFor(t, 10*time.Second, "the client receives on gw-2", func() bool { return c.Has(room, during) && c.Has(room, after) })

		harness.Heal(t, l)
		if !g.Running() || g.Pid() == pid || !harness.Alive(g.Pid()) {
			t.Fatalf("after heal: running %v, pid %d (was %d)", g.Running(), g.Pid(), pid)
		}
		if !harness.Ready(g.Listen) {
			t.Fatal("restarted gw-1 not ready")
		}
		// The new process serves clients.
		again := harness.Dial(t, l, "again", []string{l.Endpoints("us-east", "us-east")[0]}, room)
		last := pub.Publish(room, "last")
		harness.WaitFor(t, 10*time.Second, "the new gw-1 delivers", func() bool { return again.Has(room, last) && c.Has(room, last) })
		harness.ExactlyOnceInOrder(t, c.Probe, room, []string{before, during, after, last})
	})
}

// TestGatewayPause freezes gw-1 with SIGSTOP: the kernel shows it stopped,
// its /readyz does not answer, a client on it receives nothing; the heal
// continues the same process, which answers again and delivers what was
// published meanwhile, once.
func TestGatewayPause(t *testing.T) {
	harness.RunWithProvider(t, func(t *testing.T, opts lab.Options) {
		l := harness.StartLab(t, "single-region.yaml", opts)
		const room = "local:gwpause"
		g := l.Region("us-east").Gateway(1)
		c := harness.Dial(t, l, "c", []string{harness.Direct(l, "us-east", 1)}, room)
		pub := harness.Dial(t, l, "pub", []string{harness.Direct(l, "us-east", 2)})
		pid := g.Pid()

		harness.Inject(t, l, fault.Spec{Kind: "gateway-pause", Regions: []string{"us-east"}})
		if !g.Paused() || !harness.Stopped(pid) {
			t.Fatalf("gw-1 paused %v, kernel state %q, stopped %v; want stopped (T, or a frozen cgroup)", g.Paused(), harness.State(pid), harness.Stopped(pid))
		}
		if code, err := harness.Readyz(g.Listen, 500*time.Millisecond); !harness.IsTimeout(err) {
			t.Fatalf("paused gw-1's /readyz: %d, %v; want no answer", code, err)
		}
		during := pub.Publish(room, "during")
		harness.Never(t, time.Second, "a paused gateway delivered", func() bool { return c.Has(room, during) })

		harness.Heal(t, l)
		if g.Paused() || g.Pid() != pid || harness.Stopped(pid) {
			t.Fatalf("after heal: paused %v, pid %d (was %d), state %q, stopped %v", g.Paused(), g.Pid(), pid, harness.State(pid), harness.Stopped(pid))
		}
		harness.WaitFor(t, 10*time.Second, "gw-1 answers /readyz after heal", func() bool { return harness.Ready(g.Listen) })
		harness.WaitFor(t, 10*time.Second, "what was published during the pause arrives", func() bool { return c.Has(room, during) })
		after := pub.Publish(room, "after")
		harness.WaitFor(t, 10*time.Second, "live delivery goes on", func() bool { return c.Has(room, after) })
		harness.ExactlyOnceInOrder(t, c, room, []string{during, after})
	})
}

// TestGatewayDrain sends gw-1 SIGTERM: its client gets a bye frame and close
// 1001, reconnects to gw-2 and keeps receiving; the heal starts gw-1 again.
func TestGatewayDrain(t *testing.T) {
	harness.RunWithProvider(t, func(t *testing.T, opts lab.Options) {
		l := harness.StartLab(t, "single-region.yaml", opts)
		const room = "local:drain"
		g := l.Region("us-east").Gateway(1)
		c := harness.DialWatch(t, l, "c", harness.WithEndpoints(l.Endpoints("us-east", "us-east")...), room)
		pub := harness.Dial(t, l, "pub", []string{harness.Direct(l, "us-east", 2)})
		if !c.ConnectedTo("us-east", "gw-1") {
			t.Fatalf("client on %s, want gw-1", c.Client().Node())
		}
		before := pub.Publish(room, "before")
		harness.WaitFor(t, 10*time.Second, "before delivered", func() bool { return c.Has(room, before) })
		pid := g.Pid()

		harness.Inject(t, l, fault.Spec{Kind: "gateway-drain", Regions: []string{"us-east"}, Node: "gw-1"})
		if harness.Alive(pid) || g.Running() {
			t.Fatalf("drained gateway pid %d still alive", pid)
		}
		if !c.SawFrame("bye", "going_away") {
			t.Error("no bye frame before the drain's close")
		}
		harness.WaitFor(t, 5*time.Second, "the client saw close 1001", func() bool {
			return c.SawState(func(e client.StateEvent) bool {
				return e.State == client.StateDisconnected && e.Code == protocol.CloseGoingAway && e.WillReconnect
			})
		})
		harness.WaitFor(t, 10*time.Second, "the client reconnects to gw-2", func() bool { return c.ConnectedTo("us-east", "gw-2") })
		after := pub.Publish(room, "after")
		harness.WaitFor(t, 10*time.Second, "the client receives on gw-2", func() bool { return c.Has(room, after) })

		harness.Heal(t, l)
		if !g.Running() || g.Pid() == pid || !harness.Ready(g.Listen) {
			t.Fatalf("after heal: running %v, pid %d (was %d), ready %v", g.Running(), g.Pid(), pid, harness.Ready(g.Listen))
		}
		harness.ExactlyOnceInOrder(t, c.Probe, room, []string{before, after})
	})
}

// ---- bridges -------------------------------------------------------------

// TestBridgeDown kills or freezes us-west's bridge (the one that pulls
// us-east's outbox): while it is down nothing published in us-east reaches
// us-west, though us-west's messages still reach us-east through the other
// bridge; after the heal (a new process resuming from its checkpoint, or the
// same one continued) everything arrives exactly once, in order.
func TestBridgeDown(t *testing.T) {
	harness.RunWithProvider(t, func(t *testing.T, opts lab.Options) {
		for _, kind := range []string{"bridge-kill", "bridge-pause"} {
			t.Run(kind, func(t *testing.T) {
				l := harness.StartLab(t, "two-region.yaml", opts)
				const room = "tenant:bridge"
				b := l.Region("us-west").Bridge()
				east := harness.Dial(t, l, "east", []string{harness.Direct(l, "us-east", 1)}, room)
				west := harness.Dial(t, l, "west", []string{harness.Direct(l, "us-west", 1)}, room)
				before := east.Publish(room, "before")
				harness.WaitFor(t, 20*time.Second, "before crosses", func() bool { return west.Has(room, before) })
				pid := b.Pid()

				harness.Inject(t, l, fault.Spec{Kind: kind, Regions: []string{"us-west"}})
				if kind == "bridge-kill" && (harness.Alive(pid) || b.Running()) {
					t.Fatalf("bridge pid %d alive after bridge-kill", pid)
				}
				if kind == "bridge-pause" && (!b.Paused() || !harness.Stopped(pid)) {
					t.Fatalf("bridge paused %v, state %q, stopped %v; want stopped", b.Paused(), harness.State(pid), harness.Stopped(pid))
				}
				fromEast := east.PublishN(room, "east-during", 5)
				marker := west.Publish(room, "west-marker")
				harness.WaitFor(t, 20*time.Second, "us-west's marker reaches us-east", func() bool { return east.Has(room, marker) })
				harness.Never(t, time.Second, "us-east's messages crossed without us-west's bridge", func() bool {
					return west.Has(room, fromEast[0])
				})

				harness.Heal(t, l)
				if kind == "bridge-kill" && (!b.Running() || b.Pid() == pid || !harness.Alive(b.Pid())) {
					t.Fatalf("after heal: running %v, pid %d (was %d)", b.Running(), b.Pid(), pid)
				}
				if kind == "bridge-pause" && (b.Paused() || b.Pid() != pid || harness.Stopped(pid)) {
					t.Fatalf("after heal: paused %v, pid %d (was %d), state %q, stopped %v", b.Paused(), b.Pid(), pid, harness.State(pid), harness.Stopped(pid))
				}
				harness.WaitFor(t, 30*time.Second, "everything published while the bridge was down crosses", func() bool {
					return west.HasAll(room, fromEast)
				})
				after := east.Publish(room, "after")
				harness.WaitFor(t, 20*time.Second, "live federation goes on", func() bool { return west.Has(room, after) })
				harness.ExactlyOnceInOrder(t, west, room, append(append([]string{before}, fromEast...), after))
			})
		}
	})
}

// ---- region-down -----------------------------------------------------------

// TestRegionDown kills everything of us-east (three-region.yaml: persistent
// Redis) while the other regions' bridges are frozen, so that what us-east
// published last is stranded in its outbox. Every process of the region is
// gone; the resolver sends us-east's clients to eu-west (the nearest) and a
// client living there fails over and resumes the federated room; the heal
// brings every process back (new pids, ready) and the stranded messages
// reach the other regions exactly once, in order, without reaching the
// failed-over client twice.
func TestRegionDown(t *testing.T) {
	harness.RunWithProvider(t, func(t *testing.T, opts lab.Options) {
		l := harness.StartLab(t, "three-region.yaml", opts)
		const room = "tenant:rd"
		ttl := l.Topology().Resolver.TTL
		us := l.Region("us-east")
		inside := harness.Dial(t, l, "inside", []string{harness.Direct(l, "us-east", 1)}, room)
		eu := harness.Dial(t, l, "eu", []string{harness.Direct(l, "eu-west", 1)}, room)
		ap := harness.Dial(t, l, "ap", []string{harness.Direct(l, "ap-southeast", 1)}, room)
		mover := harness.DialWatch(t, l, "mover", func(o *client.Options) {
			o.Resolve = l.Lookup("us-east").Resolve
			o.PingInterval = 500 * time.Millisecond
			o.DialTimeout = time.Second
		}, room)
		before := inside.Publish(room, "before")
		harness.WaitFor(t, 20*time.Second, "before reaches every region", func() bool {
			return eu.Has(room, before) && ap.Has(room, before) && mover.Has(room, before)
		})
		harness.Inject(t, l, fault.Spec{Kind: "bridge-pause", Regions: []string{"eu-west"}})
		harness.Inject(t, l, fault.Spec{Kind: "bridge-pause", Regions: []string{"ap-southeast"}})
		stranded := inside.PublishN(room, "stranded", 3)
		harness.WaitFor(t, 10*time.Second, "mover gets the stranded messages in us-east", func() bool { return mover.HasAll(room, stranded) })

		pids := []int{us.Redis().Pid(), us.Bridge().Pid()}
		for _, g := range us.Gateways() {
			pids = append(pids, g.Pid())
		}
		harness.Inject(t, l, fault.Spec{Kind: "region-down", Regions: []string{"us-east"}})
		down := time.Now()
		for _, pid := range pids {
			if harness.Alive(pid) {
				t.Fatalf("pid %d of us-east alive after region-down", pid)
			}
		}
		harness.WaitFor(t, ttl+5*time.Second, "the resolver sends us-east's clients to eu-west", func() bool {
			a, err := l.Resolver().Resolve("us-east")
			return err == nil && a.Region == "eu-west" && a.Healthy
		})
		harness.WaitFor(t, ttl+10*time.Second, "mover fails over to eu-west", func() bool { return mover.ConnectedTo("eu-west", "") })
		t.Logf("mover on eu-west after %s (ttl %s)", time.Since(down).Round(time.Millisecond), ttl)
		harness.WaitFor(t, 5*time.Second, "mover resumes the federated room recovered", func() bool {
			return mover.Subscribed(func(e client.SubscribedEvent) bool {
				return e.Room == room && e.Resumed && e.Recovered && e.Conn > 1
			})
		})
		fromEU := eu.Publish(room, "eu-during")
		harness.WaitFor(t, 10*time.Second, "mover receives eu-west's messages there", func() bool { return mover.Has(room, fromEU) })

		harness.Heal(t, l)
		for _, n := range append([]process{us.Redis(), us.Bridge()}, gatewayProcs(us.Gateways())...) {
			if !n.Running() || slices.Contains(pids, n.Pid()) || !harness.Alive(n.Pid()) {
				t.Errorf("after heal: pid %d running %v (old pids %v)", n.Pid(), n.Running(), pids)
			}
		}
		for _, g := range us.Gateways() {
			harness.WaitFor(t, 10*time.Second, g.ID+" ready after heal", func() bool { return harness.Ready(g.Listen) })
		}
		harness.WaitFor(t, ttl+5*time.Second, "the resolver answers us-east again", func() bool {
			a, err := l.Resolver().Resolve("us-east")
			return err == nil && a.Region == "us-east" && a.Healthy
		})
		harness.WaitFor(t, 30*time.Second, "the stranded messages reach eu-west and ap-southeast", func() bool {
			return eu.HasAll(room, stranded) && ap.HasAll(room, stranded)
		})
		back := harness.Dial(t, l, "back", []string{harness.Direct(l, "us-east", 2)}, room)
		last := eu.Publish(room, "last")
		harness.WaitFor(t, 20*time.Second, "federation into the returned region works", func() bool { return back.Has(room, last) && mover.Has(room, last) })
		all := append([]string{before}, stranded...)
		harness.ExactlyOnceInOrder(t, eu, room, all)
		harness.ExactlyOnceInOrder(t, ap, room, all)
		harness.ExactlyOnceInOrder(t, mover.Probe, room, append(all, fromEU, last))
	})
}

// process is what the tests ask of a lab process.
type process interface {
	Pid() int
	Running() bool
}

func gatewayProcs(gs []*lab.Gateway) []process {
	var out []process
	for _, g := range gs {
		out = append(out, g)
	}
	return out
}

// ---- slow-client -------------------------------------------------------

// TestSlowClient (gateways with --send-queue 16) connects two clients to
// gw-1 that subscribe and stop reading, then publishes a burst of large
// messages (more than the kernel buffers): the gateway cuts both with 4001
// (its slow-consumer counter rises by two) while a normal subscriber on the
// same node receives every message. A slow client the gateway has not cut
// is closed by the heal.
func TestSlowClient(t *testing.T) {
	harness.RunWithProvider(t, func(t *testing.T, opts lab.Options) {
		opts.GatewayArgs = []string{"--send-queue", "16"}
		l := harness.StartLab(t, "single-region.yaml", opts)
		// The gateway's kernel send buffer (autotuned up to tcp_wmem's 4 MB on
		// loopback) absorbs a slow client's backlog before its send queue
		// does: the burst must pass that per client. 200 × 30 KB = 6 MB, within
		// the gateway's publish burst of 200.
		const room, burst = "local:slow", 200
		gw1 := l.Region("us-east").Gateway(1).Listen
		conns := func() float64 { return harness.Metric(gw1, "geolab_gateway_connections") }
		slowCut := func() float64 { return harness.Metric(gw1, "geolab_gateway_slow_consumer_disconnects_total") }
		fast := harness.Dial(t, l, "fast", []string{harness.Direct(l, "us-east", 1)}, room)
		pub := harness.Dial(t, l, "pub", []string{harness.Direct(l, "us-east", 2)})
		if conns() != 1 || slowCut() != 0 {
			t.Fatalf("gw-1 before: %v connections, %v slow-consumer disconnects", conns(), slowCut())
		}

		harness.Inject(t, l, fault.Spec{Kind: "slow-client", Regions: []string{"us-east"}, Node: "gw-1", Room: room, Clients: 2})
		if n := conns(); n != 3 {
			t.Fatalf("gw-1 with two slow clients: %v connections, want 3", n)
		}
		pad := strings.Repeat("x", 30*1024)
		var ids []string
		for i := range burst {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			a, err := pub.Client().Publish(ctx, room, fmt.Sprintf("big-%d", i), map[string]string{"pad": pad})
			cancel()
			if err != nil {
				t.Fatalf("publish %d: %v", i, err)
			}
			ids = append(ids, a.Event)
		}
		harness.WaitFor(t, 20*time.Second, "gw-1 cuts both slow clients", func() bool { return slowCut() == 2 })
		harness.WaitFor(t, 20*time.Second, "the normal subscriber on gw-1 receives the whole burst", func() bool { return fast.HasAll(room, ids) })
		harness.ExactlyOnceInOrder(t, fast, room, ids)
		harness.Heal(t, l)
		harness.WaitFor(t, 10*time.Second, "only the normal subscriber stays on gw-1", func() bool { return conns() == 1 })

		// A slow client with nothing to choke on stays connected until healed.
		harness.Inject(t, l, fault.Spec{Kind: "slow-client", Regions: []string{"us-east"}, Room: room})
		if n := conns(); n != 2 {
			t.Fatalf("gw-1 with one slow client: %v connections, want 2", n)
		}
		after := pub.Publish(room, "after")
		harness.WaitFor(t, 10*time.Second, "delivery goes on", func() bool { return fast.Has(room, after) })
		harness.Heal(t, l)
		harness.WaitFor(t, 5*time.Second, "the heal closes the slow client", func() bool { return conns() == 1 })
		if n := slowCut(); n != 2 {
			t.Errorf("slow-consumer disconnects %v after a quiet slow client, want still 2", n)
		}
	})
}

// ---- faults together -------------------------------------------------------

// TestOverlappingCutsHealIndependently: a partition and an isolation hold
// some links in common; healing the partition re-opens only the links the
// isolation does not also hold, and healing the isolation re-opens the rest.
func TestOverlappingCutsHealIndependently(t *testing.T) {
	harness.RunWithProvider(t, func(t *testing.T, opts lab.Options) {
		l := harness.StartLab(t, "two-region.yaml", opts)
		onlyPartition := harness.Link(t, l, link.Client, "us-east", "us-west", "gw-1") // crosses, into us-west
		both := harness.Link(t, l, link.Client, "us-west", "us-east", "gw-1")          // crosses, into us-east
		onlyIsolate := harness.Link(t, l, link.Client, "us-east", "us-east", "gw-1")   // into us-east, not crossing
		dials := func(ln link.Link) bool {
			c, err := net.DialTimeout("tcp", ln.Listen, time.Second)
			if err != nil {
				return false
			}
			c.Close()
			return true
		}
		iso := harness.Inject(t, l, fault.Spec{Kind: "isolate", Regions: []string{"us-east"}})
		part := harness.Inject(t, l, fault.Spec{Kind: "partition", Regions: []string{"us-east", "us-west"}})
		for _, ln := range []link.Link{onlyPartition, both, onlyIsolate} {
			if dials(ln) {
				t.Fatalf("%s accepts while cut", ln.Name)
			}
		}
		if err := l.Faults().Heal(context.Background(), part.ID); err != nil {
			t.Fatal(err)
		}
		if !dials(onlyPartition) {
			t.Errorf("%s still refuses after the partition healed", onlyPartition.Name)
		}
		if dials(both) || dials(onlyIsolate) {
			t.Errorf("healing the partition re-opened a link the isolation holds")
		}
		if err := l.Faults().Heal(context.Background(), iso.ID); err != nil {
			t.Fatal(err)
		}
		for _, ln := range []link.Link{onlyPartition, both, onlyIsolate} {
			if !dials(ln) {
				t.Errorf("%s refuses after both healed", ln.Name)
			}
		}
		harness.RequireHealed(t, l)
	})
}

// TestBlackholedBridgeLinkGoesDown: docs/federation.md promises that a
// blackholed WAN link is noticed by timeout (3 s read timeout plus the block
// time), the link marked down and its lag counted from the last read.
func TestBlackholedBridgeLinkGoesDown(t *testing.T) {
	harness.RunWithProvider(t, func(t *testing.T, opts lab.Options) {
		l := harness.StartLab(t, "two-region.yaml", opts)
		harness.WaitFor(t, 10*time.Second, "us-west's link to us-east up", func() bool { return harness.BridgeUp(l, "us-west", "us-east") })
		harness.Inject(t, l, fault.Spec{Kind: "partition", Regions: []string{"us-east", "us-west"}, Mode: "blackhole"})
		harness.WaitFor(t, 15*time.Second, "us-west's bridge sees its link to us-east down", func() bool { return harness.BridgeDown(l, "us-west", "us-east") })
		harness.WaitFor(t, 15*time.Second, "its lag passes the warn threshold", func() bool {
			fs, ok := harness.BridgeFeed(l, "us-west", "us-east")
			return ok && fs.State != "ok" && fs.LagSeconds >= 1
		})
		harness.Heal(t, l)
		harness.WaitFor(t, 20*time.Second, "up again after heal", func() bool { return harness.BridgeUp(l, "us-west", "us-east") })
	})
}
