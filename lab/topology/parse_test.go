package topology

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// two is a valid two-region file; rows below append to it or edit it. Its
// lines: 1 name, 2 source, 3 regions, 4 a, 5 b, 6 rtt, 7 a:, 8 b.
const two = `name: t
source: test
regions:
  - name: a
  - name: b
rtt:
  a:
    b: {ms: 10, jitter_ms: 1}
`

// three is two with a third region c (line 6) and no rtt.
const three = `name: t
source: test
regions:
  - name: a
  - name: b
  - name: c
`

// TestParseRejects: every kind of bad file is refused with the field path
// and the line of what is wrong.
func TestParseRejects(t *testing.T) {
	cases := []struct {
		name  string
		yaml  string
		line  int    // 0: the error names no line
		field string // "" : the error names no field
		want  string // part of the message
	}{
		// The file as a whole.
		{"empty file", "", 0, "", "the file is empty"},
		{"only comments", "# nothing here\n", 0, "", "the file is empty"},
		{"null document", "~\n", 0, "", "the file is empty"},
		{"not a mapping: list", "- name: a\n", 1, "", "the file is a list: want a mapping"},
		{"not a mapping: scalar", "three-region\n", 1, "", `the file is the string "three-region"`},
		{"invalid YAML", "name: t\nregions: [\n", 2, "", "invalid YAML: did not find expected node content"},
		{"two documents", two + "---\nname: u\n", 9, "", "a second YAML document: one topology per file"},

		// Keys.
		{"unknown top-level key", two + "regoins: []\n", 9, "regoins", `unknown key "regoins" (allowed: name, source, regions, rtt, intra_region, lan, clients, resolver)`},
		{"unknown region key", strings.Replace(two, "  - name: b\n", "  - name: b\n    gatways: 2\n", 1), 6, "regions[1].gatways", `unknown key "gatways" (allowed: name, gateways, redis, federate)`},
		{"unknown redis key", strings.Replace(two, "  - name: b\n", "  - name: b\n    redis: {mode: standalone, aof: true}\n", 1), 6, "regions[1].redis.aof", `unknown key "aof" (allowed: mode, shards, replicas, persistence, tls, acl, durability)`},
		{"unknown link key", strings.Replace(two, "jitter_ms: 1", "jiter_ms: 1", 1), 8, "rtt.a.b.jiter_ms", `unknown key "jiter_ms" (allowed: ms, jitter_ms)`},
		{"unknown resolver key", two + "resolver: {ttl: 2s, interval: 1s}\n", 9, "resolver.interval", `unknown key "interval" (allowed: ttl, health_interval)`},
		{"key given twice", two + "name: u\n", 9, "name", `key "name" given twice (first at line 1, name)`},

		// Kinds.
		{"gateways a string", strings.Replace(two, "  - name: b\n", "  - name: b\n    gateways: two\n", 1), 6, "regions[1].gateways", `want a whole number, got the string "two"`},
		{"gateways a fraction", strings.Replace(two, "  - name: b\n", "  - name: b\n    gateways: 1.5\n", 1), 6, "regions[1].gateways", "want a whole number, got the number 1.5"},
		{"ms a string", strings.Replace(two, "ms: 10,", "ms: 10ms,", 1), 8, "rtt.a.b.ms", `want a number, got the string "10ms"`},
		{"ms not finite", strings.Replace(two, "ms: 10,", "ms: .inf,", 1), 8, "rtt.a.b.ms", "want a finite number"},
		{"regions a mapping", "name: t\nsource: s\nregions: {a: 1}\n", 3, "regions", "want a list of regions, got a mapping"},
		{"region a string", "name: t\nsource: s\nregions:\n  - us-east\n", 4, "regions[0]", `want a mapping, got the string "us-east"`},
		{"rtt entry a number", strings.Replace(two, "b: {ms: 10, jitter_ms: 1}", "b: 10", 1), 8, "rtt.a.b", "want a mapping, got the number 10"},
		{"rtt a list", strings.Replace(two, "rtt:\n  a:\n    b: {ms: 10, jitter_ms: 1}\n", "rtt: [a, b]\n", 1), 6, "rtt", "want a mapping, got a list"},
		{"persistence not a boolean", strings.Replace(two, "  - name: b\n", "  - name: b\n    redis: {persistence: yes}\n", 1), 6, "regions[1].redis.persistence", `want true or false, got the string "yes"`},
		{"tls not a boolean", strings.Replace(two, "  - name: b\n", "  - name: b\n    redis: {tls: on}\n", 1), 6, "regions[1].redis.tls", `want true or false, got the string "on"`},
		{"acl not a boolean", strings.Replace(two, "  - name: b\n", "  - name: b\n    redis: {acl: 1}\n", 1), 6, "regions[1].redis.acl", "want true or false, got the number 1"},
		{"tls a mapping", strings.Replace(two, "  - name: b\n", "  - name: b\n    redis:\n      tls: {ca: x}\n", 1), 7, "regions[1].redis.tls", "want true or false, got a mapping"},
		{"federate a string", strings.Replace(two, "  - name: b\n", "  - name: b\n    federate: tenant:*\n", 1), 6, "regions[1].federate", "want a list of room patterns"},
		{"name a number", strings.Replace(two, "name: t\n", "name: 42\n", 1), 1, "name", "want a string, got the number 42"},

		// Required fields.
		{"name missing", strings.Replace(two, "name: t\n", "", 1), 1, "name", "required, but missing"},
		{"name empty", strings.Replace(two, "name: t\n", "name:\n", 1), 1, "name", "required, but empty"},
		{"source missing", strings.Replace(two, "source: test\n", "", 1), 1, "source", "required, but missing"},
		{"source blank", strings.Replace(two, "source: test\n", "source: \"  \"\n", 1), 2, "source", "required: cite where the RTT figures come from"},
		{"regions missing", "name: t\nsource: s\n", 1, "regions", "required, but missing"},
		{"region name missing", strings.Replace(two, "  - name: b\n", "  - gateways: 2\n", 1), 5, "regions[1].name", "required, but missing"},
		{"ms missing", strings.Replace(two, "{ms: 10, jitter_ms: 1}", "{jitter_ms: 1}", 1), 8, "rtt.a.b.ms", "required, but missing"},
		{"rtt missing with two regions", strings.Replace(two, "rtt:\n  a:\n    b: {ms: 10, jitter_ms: 1}\n", "", 1), 1, "rtt", "required with 2 or more regions"},

		// Values.
		{"bad topology name", strings.Replace(two, "name: t\n", "name: Three_Region\n", 1), 1, "name", `"Three_Region" has a character outside a-z 0-9 -`},
		{"bad region name", strings.Replace(two, "- name: b", "- name: US-East", 1), 5, "regions[1].name", `region "US-East" has a character outside a-z 0-9 -`},
		{"no regions", "name: t\nsource: s\nregions: []\n", 3, "regions", "must list 1..8 regions, got 0"},
		{"nine regions", "name: t\nsource: s\nregions:\n" + strings.Repeat("  - name: r\n", 9), 3, "regions", "must list 1..8 regions, got 9"},
		{"duplicate region", strings.Replace(two, "- name: b", "- name: a", 1), 5, "regions[1].name", `duplicate region "a" (first at line 4, regions[0].name)`},
		{"gateways 0", strings.Replace(two, "  - name: b\n", "  - name: b\n    gateways: 0\n", 1), 6, "regions[1].gateways", "must be 1..16, got 0"},
		{"gateways 17", strings.Replace(two, "  - name: a\n", "  - name: a\n    gateways: 17\n", 1), 5, "regions[0].gateways", "must be 1..16, got 17"},
		{"redis unknown mode", strings.Replace(two, "  - name: b\n", "  - name: b\n    redis:\n      mode: sentinel\n", 1), 7, "regions[1].redis.mode", `unknown mode "sentinel" (want standalone or cluster)`},
		{"cluster of 2 shards", strings.Replace(two, "  - name: b\n", "  - name: b\n    redis:\n      mode: cluster\n      shards: 2\n", 1), 8, "regions[1].redis.shards", "must be 3..8, got 2 (redis-cli --cluster create needs at least 3 primaries)"},
		{"cluster of 9 shards", strings.Replace(two, "  - name: b\n", "  - name: b\n    redis: {mode: cluster, shards: 9}\n", 1), 6, "regions[1].redis.shards", "must be 3..8, got 9"},
		{"cluster with 3 replicas", strings.Replace(two, "  - name: b\n", "  - name: b\n    redis:\n      mode: cluster\n      replicas: 3\n", 1), 8, "regions[1].redis.replicas", "must be 0..2, got 3"},
		{"cluster with negative replicas", strings.Replace(two, "  - name: b\n", "  - name: b\n    redis: {mode: cluster, replicas: -1}\n", 1), 6, "regions[1].redis.replicas", "must be 0..2, got -1"},
		{"shards a string", strings.Replace(two, "  - name: b\n", "  - name: b\n    redis: {mode: cluster, shards: three}\n", 1), 6, "regions[1].redis.shards", `want a whole number, got the string "three"`},
		{"shards with standalone", strings.Replace(two, "  - name: b\n", "  - name: b\n    redis:\n      mode: standalone\n      shards: 3\n", 1), 8, "regions[1].redis.shards", "applies to mode cluster only (this region's mode is standalone; give mode: cluster)"},
		{"replicas with the default mode", strings.Replace(two, "  - name: b\n", "  - name: b\n    redis:\n      replicas: 0\n", 1), 7, "regions[1].redis.replicas", "applies to mode cluster only"},
		{"cluster with tls", strings.Replace(two, "  - name: b\n", "  - name: b\n    redis:\n      mode: cluster\n      tls: true\n", 1), 8, "regions[1].redis.tls", "not supported with mode cluster yet: a TLS region runs standalone"},
		{"cluster with acl", strings.Replace(two, "  - name: b\n", "  - name: b\n    redis:\n      acl: true\n      mode: cluster\n", 1), 7, "regions[1].redis.acl", "not supported with mode cluster yet: an ACL region runs standalone"},
		{"unknown durability", strings.Replace(two, "  - name: b\n", "  - name: b\n    redis: {mode: cluster, durability: sync}\n", 1), 6, "regions[1].redis.durability", `unknown durability "sync" (want async or replicated)`},
		{"replicated standalone", strings.Replace(two, "  - name: b\n", "  - name: b\n    redis:\n      durability: replicated\n", 1), 7, "regions[1].redis.durability", "replicated needs a replica of every primary: mode cluster with replicas of at least 1 (this region: mode standalone, replicas 0)"},
		{"replicated cluster without replicas", strings.Replace(two, "  - name: b\n", "  - name: b\n    redis: {mode: cluster, replicas: 0, durability: replicated}\n", 1), 6, "regions[1].redis.durability", "replicated needs a replica of every primary: mode cluster with replicas of at least 1 (this region: mode cluster, replicas 0)"},
		{"bad federate pattern", strings.Replace(two, "  - name: b\n", "  - name: b\n    federate: [\"tenant:*\", \"bad room\"]\n", 1), 6, "regions[1].federate[1]", `room pattern "bad room"`},
		{"federate pattern twice", strings.Replace(two, "  - name: b\n", "  - name: b\n    federate:\n      - tenant:*\n      - tenant:*\n", 1), 8, "regions[1].federate[1]", `pattern "tenant:*" given twice (first at line 7, regions[1].federate[0])`},

		// The rtt matrix.
		{"region missing from rtt", three + "rtt:\n  a: {b: {ms: 5}}\n", 7, "rtt", `region "c" is missing: no pair mentions it`},
		{"missing pair", three + "rtt:\n  a: {b: {ms: 5}, c: {ms: 6}}\n  c: {}\n", 7, "rtt", "missing the pair b–c"},
		{"pair naming an unknown region", two + "    mars: {ms: 5}\n", 9, "rtt.a.mars", `unknown region "mars" (regions: a, b)`},
		{"unknown region as the first key", two + "  mars:\n    a: {ms: 5}\n", 10, "rtt.mars.a", `unknown region "mars"`},
		{"region paired with itself", two + "    a: {ms: 5}\n", 9, "rtt.a.a", `region "a" paired with itself`},
		{"pair given twice", two + "  b:\n    a: {ms: 10}\n", 10, "rtt.b.a", "the pair b–a is given twice: give each pair once, in either order (first at line 8, rtt.a.b)"},
		{"negative ms", strings.Replace(two, "ms: 10,", "ms: -10,", 1), 8, "rtt.a.b.ms", "must not be negative, got -10"},
		{"negative jitter", strings.Replace(two, "jitter_ms: 1", "jitter_ms: -1", 1), 8, "rtt.a.b.jitter_ms", "must not be negative, got -1"},
		{"jitter above ms", strings.Replace(two, "{ms: 10, jitter_ms: 1}", "{ms: 50, jitter_ms: 80}", 1), 8, "rtt.a.b.jitter_ms", "jitter_ms 80 exceeds ms 50: latency would go negative"},
		{"jitter above ms, pair written b→a", strings.Replace(two, "  a:\n    b: {ms: 10, jitter_ms: 1}", "  b:\n    a:\n      ms: 50\n      jitter_ms: 80", 1), 10, "rtt.b.a.jitter_ms", "jitter_ms 80 exceeds ms 50"},
		{"ms above a minute", strings.Replace(two, "ms: 10,", "ms: 60001,", 1), 8, "rtt.a.b.ms", "must be at most 60000, got 60001"},
		{"single region, rtt names another", "name: t\nsource: s\nregions:\n  - name: a\nrtt:\n  a:\n    b: {ms: 5}\n", 7, "rtt.a.b", `unknown region "b" (regions: a)`},
		{"intra_region jitter above ms", two + "intra_region: {ms: 1, jitter_ms: 2}\n", 9, "intra_region.jitter_ms", "jitter_ms 2 exceeds ms 1"},
		{"lan negative", two + "lan:\n  ms: -0.5\n", 10, "lan.ms", "must not be negative, got -0.5"},

		// Clients.
		{"clients naming an unknown region", two + "clients:\n  a: 1\n  mars: 2\n", 11, "clients.mars", `unknown region "mars" (regions: a, b)`},
		{"clients weight zero", two + "clients:\n  a: 1\n  b: 0\n", 11, "clients.b", "weight must be a number > 0, got 0"},
		{"clients weight negative", two + "clients: {a: -1}\n", 9, "clients.a", "weight must be a number > 0, got -1"},
		{"clients weight a string", two + "clients: {a: many}\n", 9, "clients.a", `want a number, got the string "many"`},
		{"clients empty", two + "clients: {}\n", 9, "clients", "no region has clients"},

		// The resolver.
		{"ttl not a duration", two + "resolver:\n  ttl: 2 seconds\n", 10, "resolver.ttl", `"2 seconds" is not a duration`},
		{"ttl a bare number", two + "resolver:\n  ttl: 2\n", 10, "resolver.ttl", "want a duration such as 2s or 250ms, got the number 2"},
		{"ttl too short", two + "resolver: {ttl: 10ms}\n", 9, "resolver.ttl", "must be 100ms..5m, got 10ms"},
		{"ttl too long", two + "resolver: {ttl: 1h}\n", 9, "resolver.ttl", "must be 100ms..5m, got 1h"},
		{"health_interval too short", two + "resolver:\n  ttl: 2s\n  health_interval: 10ms\n", 11, "resolver.health_interval", "must be 50ms..10s, got 10ms"},
		{"health_interval too long", two + "resolver: {health_interval: 1m}\n", 9, "resolver.health_interval", "must be 50ms..10s, got 1m"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			top, err := Parse([]byte(tc.yaml))
			if err == nil {
				t.Fatalf("parsed (%+v), want an error\n%s", top, tc.yaml)
			}
			want := tc.want
			if tc.field != "" {
				want = tc.field + ": " + want
			}
			if tc.line > 0 {
				want = fmt.Sprintf("line %d: %s", tc.line, want)
			}
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s\nfile:\n%s", err, want, tc.yaml)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not an *Error", err)
			}
		})
	}
}

// TestParseReportsEveryError: one bad file yields all its errors, in line
// order, and the fields decode already refused are not reported again.
func TestParseReportsEveryError(t *testing.T) {
	bad := `name: t
source: test
regions:
  - name: a
    gateways: zero
  - name: b
    redis: {mode: cluster, shards: 1}
rtt:
  a:
    b: {ms: 5, jitter_ms: 6}
resolver: {ttl: 1h}
`
	_, err := Parse([]byte(bad))
	if err == nil {
		t.Fatal("parsed")
	}
	got := strings.Split(err.Error(), "\n")
	want := []string{
		`line 5: regions[0].gateways: want a whole number, got the string "zero"`,
		`line 7: regions[1].redis.shards: must be 3..8, got 1 (redis-cli --cluster create needs at least 3 primaries)`,
		`line 10: rtt.a.b.jitter_ms: jitter_ms 6 exceeds ms 5: latency would go negative`,
		`line 11: resolver.ttl: must be 100ms..5m, got 1h`,
	}
	if !slices.Equal(got, want) {
		t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.yaml")
	if err := os.WriteFile(path, []byte(strings.Replace(two, "  - name: b\n", "  - name: b\n    gateways: 0\n", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if want := path + ":6: regions[1].gateways: must be 1..16, got 0"; err == nil || err.Error() != want {
		t.Fatalf("error %v, want %s", err, want)
	}
	var e *Error
	if !errors.As(err, &e) || e.File != path || e.Line != 6 || e.Field != "regions[1].gateways" {
		t.Fatalf("as *Error: %+v", e)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestDefaults(t *testing.T) {
	top, err := Parse([]byte("name: one\nsource: test\nregions:\n  - name: a\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := Region{Name: "a", Gateways: DefaultGateways, Redis: Redis{Mode: RedisStandalone}}
	if r := top.Regions[0]; r.Name != want.Name || r.Gateways != want.Gateways || r.Redis != want.Redis || r.Federate != nil {
		t.Errorf("region %+v, want %+v", r, want)
	}
	if top.IntraRegion != (Link{RTT: time.Millisecond}) || top.LAN != (Link{}) {
		t.Errorf("intra_region %+v, lan %+v", top.IntraRegion, top.LAN)
	}
	if top.Resolver != (Resolver{TTL: 2 * time.Second, HealthInterval: 250 * time.Millisecond}) {
		t.Errorf("resolver %+v", top.Resolver)
	}
	if len(top.Clients) != 1 || top.Clients["a"] != 1 {
		t.Errorf("clients %v, want every region weight 1", top.Clients)
	}
	if len(top.RTT) != 0 || top.Link("a", "a") != top.IntraRegion {
		t.Errorf("rtt %v", top.RTT)
	}
	// "key:" with nothing is the same as no key.
	top2, err := Parse([]byte("name: one\nsource: test\nregions:\n  - name: a\n    gateways:\n    redis:\nclients:\nresolver:\n"))
	if err != nil {
		t.Fatal(err)
	}
	if top2.Regions[0].Gateways != 1 || top2.Regions[0].Redis.Mode != RedisStandalone || top2.Clients["a"] != 1 || top2.Resolver.TTL != DefaultTTL {
		t.Errorf("empty values did not take the defaults: %+v", top2)
	}
}

// TestClusterDefaults: a cluster region that leaves shards or replicas out
// gets DefaultShards and DefaultReplicas, whichever order the keys come in;
// replicas: 0 is kept.
func TestClusterDefaults(t *testing.T) {
	top, err := Parse([]byte("name: one\nsource: test\nregions:\n  - name: a\n    redis: {mode: cluster}\n" +
		"  - name: b\n    redis: {replicas: 0, shards: 5, mode: cluster, persistence: true}\n" +
		"rtt: {a: {b: {ms: 1}}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := top.Regions[0].Redis, (Redis{Mode: RedisCluster, Shards: DefaultShards, Replicas: DefaultReplicas}); got != want {
		t.Errorf("region a: redis %+v, want %+v", got, want)
	}
	if got, want := top.Regions[1].Redis, (Redis{Mode: RedisCluster, Shards: 5, Persistence: true}); got != want {
		t.Errorf("region b: redis %+v, want %+v", got, want)
	}
	if n := top.Regions[0].Redis.Nodes(); n != 6 {
		t.Errorf("3 shards of 1 primary + 1 replica: Nodes() = %d, want 6", n)
	}
	if n := top.Regions[1].Redis.Nodes(); n != 5 {
		t.Errorf("5 shards without replicas: Nodes() = %d, want 5", n)
	}
	if n := (Redis{Mode: RedisStandalone}).Nodes(); n != 1 {
		t.Errorf("standalone: Nodes() = %d, want 1", n)
	}
}

func TestFractionsOfAMillisecond(t *testing.T) {
	top, err := Parse([]byte(two + "intra_region: {ms: 2, jitter_ms: 0.5}\nlan: {ms: 0.2}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if top.IntraRegion != (Link{RTT: 2 * time.Millisecond, Jitter: 500 * time.Microsecond}) || top.LAN != (Link{RTT: 200 * time.Microsecond}) {
		t.Fatalf("intra_region %+v, lan %+v", top.IntraRegion, top.LAN)
	}
}

// shipped loads one of the topologies in topologies/.
func shipped(t *testing.T, name string) *Topology {
	t.Helper()
	top, err := Load(filepath.Join("..", "..", "topologies", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if top.Name != name {
		t.Fatalf("%s.yaml names itself %q", name, top.Name)
	}
	if !strings.Contains(top.Source, "https://") {
		t.Errorf("%s.yaml: source %q cites no URL", name, top.Source)
	}
	if err := top.Validate(); err != nil {
		t.Fatalf("a parsed topology fails Validate: %v", err)
	}
	return top
}

func TestShippedTopologies(t *testing.T) {
	one := shipped(t, "single-region")
	if got := one.RegionNames(); !slices.Equal(got, []string{"us-east"}) || one.Gateways() != 2 {
		t.Errorf("single-region: %v, %d gateways", got, one.Gateways())
	}

	two := shipped(t, "two-region")
	if got := two.RegionNames(); !slices.Equal(got, []string{"us-east", "us-west"}) || two.Gateways() != 4 {
		t.Errorf("two-region: %v, %d gateways", got, two.Gateways())
	}
	if l := two.Link("us-west", "us-east"); l.RTT < 55*time.Millisecond || l.RTT > 75*time.Millisecond {
		t.Errorf("two-region: us-east↔us-west %v", l)
	}

	tls := shipped(t, "two-region-tls")
	if got := tls.RegionNames(); !slices.Equal(got, []string{"us-east", "us-west"}) || tls.Gateways() != 4 {
		t.Errorf("two-region-tls: %v, %d gateways", got, tls.Gateways())
	}
	for _, r := range tls.Regions {
		if r.Redis != (Redis{Mode: RedisStandalone, Persistence: true, TLS: true, ACL: true}) || len(r.Federate) == 0 {
			t.Errorf("two-region-tls: %s: %+v", r.Name, r)
		}
	}
	if tls.Link("us-east", "us-west") != two.Link("us-east", "us-west") {
		t.Errorf("two-region-tls: RTT %v, not two-region's %v", tls.Link("us-east", "us-west"), two.Link("us-east", "us-west"))
	}

	three := shipped(t, "three-region")
	if got := three.RegionNames(); !slices.Equal(got, []string{"us-east", "eu-west", "ap-southeast"}) || three.Gateways() != 6 {
		t.Errorf("three-region: %v, %d gateways", got, three.Gateways())
	}
	for _, r := range three.Regions {
		if !r.Redis.Persistence || !slices.Equal(r.Federate, []string{"tenant:*", "presence:*", "announce:*"}) {
			t.Errorf("three-region: %s: %+v", r.Name, r)
		}
	}
	if three.Resolver.TTL != 2*time.Second {
		t.Errorf("three-region: resolver %+v", three.Resolver)
	}
}

func TestLinkAndNearest(t *testing.T) {
	top := shipped(t, "three-region")
	for _, a := range top.RegionNames() {
		for _, b := range top.RegionNames() {
			if top.Link(a, b) != top.Link(b, a) {
				t.Errorf("Link(%s, %s) != Link(%s, %s)", a, b, b, a)
			}
		}
		if top.Link(a, a) != top.IntraRegion {
			t.Errorf("Link(%s, %s) = %v, want intra_region", a, a, top.Link(a, a))
		}
	}
	if l := top.Link("us-east", "eu-west"); l != (Link{RTT: 80500 * time.Microsecond, Jitter: 2 * time.Millisecond}) {
		t.Errorf("us-east↔eu-west %+v", l)
	}
	for from, want := range map[string][]string{
		"us-east":      {"eu-west", "ap-southeast"},
		"eu-west":      {"us-east", "ap-southeast"},
		"ap-southeast": {"us-east", "eu-west"},
	} {
		if got := top.Nearest(from); !slices.Equal(got, want) {
			t.Errorf("Nearest(%s) = %v, want %v", from, got, want)
		}
	}
	// Ties go by name.
	tie, err := Parse([]byte(three + "rtt:\n  a: {c: {ms: 5}, b: {ms: 5}}\n  b: {c: {ms: 1}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := tie.Nearest("a"); !slices.Equal(got, []string{"b", "c"}) {
		t.Errorf("Nearest with a tie = %v, want [b c]", got)
	}
}

// TestValidateBuiltInGo: a Topology built in Go gets the same checks, by
// field, without lines.
func TestValidateBuiltInGo(t *testing.T) {
	top := &Topology{
		Name:     "go",
		Source:   "test",
		Regions:  []Region{{Name: "a", Gateways: 1, Redis: Redis{Mode: RedisStandalone}}, {Name: "b", Gateways: 1, Redis: Redis{Mode: RedisStandalone}}},
		RTT:      map[Pair]Link{MakePair("b", "a"): {RTT: 10 * time.Millisecond}},
		Clients:  map[string]float64{"a": 1},
		Resolver: Resolver{TTL: DefaultTTL, HealthInterval: DefaultHealthInterval},
	}
	if err := top.Validate(); err != nil {
		t.Fatal(err)
	}
	top.RTT[Pair{"b", "a"}] = Link{} // not built with MakePair
	top.Regions[1].Gateways = 0
	top.Regions[0].Redis.Replicas = 1                           // standalone with replicas
	top.Regions[1].Redis = Redis{Mode: RedisCluster, Shards: 0} // a cluster built in Go gets no defaults
	err := top.Validate()
	for _, want := range []string{"regions[1].gateways: must be 1..16, got 0", "rtt: pair {b a} is not ordered",
		"regions[0].redis.replicas: applies to mode cluster only (this region's mode is standalone)",
		"regions[1].redis.shards: must be 3..8, got 0"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "line ") {
		t.Errorf("a Topology built in Go has no lines: %v", err)
	}
}
