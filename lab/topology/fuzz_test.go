package topology

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: Parse never panics; it either refuses a file with *Error values
// that say what is wrong, or returns a Topology that holds every invariant
// the rest of the lab relies on.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "topologies", "*.yaml"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"", "~", "- a", "name: [", two, three,
		two + "  b:\n    a: {ms: 3}\n",
		two + "clients: {a: 0, mars: 1}\nresolver: {ttl: 1h, health_interval: x}\n",
		three + "rtt:\n  a: {b: {ms: 5, jitter_ms: 9}}\n",
		"name: t\nsource: s\nregions: &r\n  - name: a\nrtt: *r\nclients: *r\n",
		"name: t\nsource: s\nregions:\n  - {name: a, gateways: 99999999999999999999, redis: {mode: cluster}, federate: [\"*\", \"\"]}\n",
		"name: t\nsource: s\nregions:\n  - name: a\n  - name: a\nrtt: {a: {a: {ms: 1e300}}}\n",
		"name: t\nsource: s\nregions:\n  - {name: a, redis: {mode: cluster, shards: 3, replicas: 1, persistence: true, durability: replicated}}\n",
		"name: t\nsource: s\nregions:\n  - {name: a, redis: {mode: cluster, shards: 99999999999999999999, replicas: -1, tls: true, acl: true}}\n",
		"name: t\nsource: s\nregions:\n  - {name: a, redis: {replicas: 1, shards: 4}}\n  - {name: b, redis: {mode: cluster, shards: x}}\nrtt: {a: {b: {ms: 1}}}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		top, err := Parse(data)
		if err != nil {
			if top != nil {
				t.Fatal("Parse returned a Topology and an error")
			}
			checkErrors(t, err)
			return
		}
		checkInvariants(t, top)
	})
}

// checkErrors: every error Parse returns is an *Error with a message.
func checkErrors(t *testing.T, err error) {
	t.Helper()
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("error %T is not joined: %v", err, err)
	}
	for _, e := range joined.Unwrap() {
		var te *Error
		if !errors.As(e, &te) || te.Msg == "" || te.Line < 0 {
			t.Fatalf("error %T %q is not a complete *Error", e, e)
		}
	}
}

// checkInvariants: what a parsed Topology promises.
func checkInvariants(t *testing.T, top *Topology) {
	t.Helper()
	if err := top.Validate(); err != nil {
		t.Fatalf("a parsed topology fails Validate: %v", err)
	}
	names := top.RegionNames()
	if len(names) < 1 || len(names) > MaxRegions {
		t.Fatalf("%d regions", len(names))
	}
	if g := top.Gateways(); g < len(names) || g > len(names)*MaxGateways {
		t.Fatalf("%d gateways in %d regions", g, len(names))
	}
	if want := len(names) * (len(names) - 1) / 2; len(top.RTT) != want {
		t.Fatalf("%d rtt pairs, want %d", len(top.RTT), want)
	}
	for i, a := range names {
		for _, b := range names[i+1:] {
			if _, ok := top.RTT[MakePair(a, b)]; !ok {
				t.Fatalf("pair %s–%s missing", a, b)
			}
			if l := top.Link(a, b); l != top.Link(b, a) || l.RTT < 0 || l.Jitter > l.RTT {
				t.Fatalf("Link(%s, %s) = %+v", a, b, l)
			}
		}
		if n := top.Nearest(a); len(n) != len(names)-1 {
			t.Fatalf("Nearest(%s) = %v", a, n)
		}
	}
	if len(top.Clients) == 0 {
		t.Fatal("no clients")
	}
	for r, w := range top.Clients {
		if _, ok := top.Region(r); !ok || !(w > 0) {
			t.Fatalf("clients %s: %v", r, w)
		}
	}
	for _, r := range top.Regions {
		switch red := r.Redis; red.Mode {
		case RedisStandalone:
			if red.Shards != 0 || red.Replicas != 0 || red.Nodes() != 1 {
				t.Fatalf("region %s: standalone %+v", r.Name, red)
			}
		case RedisCluster:
			if red.Shards < MinShards || red.Shards > MaxShards || red.Replicas < 0 || red.Replicas > MaxReplicas || red.TLS || red.ACL {
				t.Fatalf("region %s: cluster %+v", r.Name, red)
			}
		default:
			t.Fatalf("region %s: redis mode %q", r.Name, red.Mode)
		}
	}
	if top.Resolver.TTL < MinTTL || top.Resolver.HealthInterval < MinHealthInterval {
		t.Fatalf("resolver %+v", top.Resolver)
	}
}
