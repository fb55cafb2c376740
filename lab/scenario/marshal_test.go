package scenario

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// full uses every key of a scenario file and every field a fault reads.
const full = `name: everything
description: |
  Two lines
  of description.
topology: %TOPO%
seed: 42
gateway_args: ["--send-queue", "64"]
workload:
  clients: 12
  federated_rooms: 4
  federated_prefix: "team:"
  local_rooms: 2
  rooms_per_client: 2
  publish_rate: 12.5
  payload_bytes: 512
  duration: 40s
  bursts:
    - {at: 6s, count: 200, within: 1500ms}
    - {at: 20s, count: 3, within: 0s}
  heartbeat: 750ms
  quiesce: 12s
timeline:
  - {at: 1s, fault: partition, regions: [us-east, eu-west], mode: blackhole, direction: one, for: 5s}
  - {at: 2s, fault: latency, regions: [us-east, ap-southeast], latency: 150ms, jitter: 20ms, for: 1m30s}
  - {at: 3s, fault: latency, link: lan.us-east.gw-1, latency: 40ms}
  - {at: 4s, fault: bandwidth, link: wan.eu-west.us-east, rate_kb: 16, for: 2s}
  - {at: 5s, fault: isolate, regions: [ap-southeast], mode: reset, for: 3s}
  - {at: 6s, fault: redis-restart, regions: [eu-west], lose_data: true}
  - {at: 7s, fault: gateway-kill, regions: [us-east], node: gw-2, for: 4s}
  - {at: 8s, fault: slow-client, regions: [eu-west], node: gw-1, room: "team:1", clients: 3, for: 10s}
  - {at: 9s, fault: bridge-pause, regions: [us-east], for: 2500ms}
  - {at: 10s, fault: region-down, regions: [eu-west], lose_data: true, for: 6s}
expect:
  - lost == 0
  - cross_region_p99{us-east,eu-west} <= 400ms
  - failover_p99 < 4s
`

func parseFull(t *testing.T, topo string) *Scenario {
	t.Helper()
	s, err := Parse([]byte(strings.ReplaceAll(full, "%TOPO%", topo)), ".")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// withoutLines is s with every step's Line cleared: the one thing a
// written file does not keep.
func withoutLines(s *Scenario) *Scenario {
	c := *s
	c.Timeline = nil
	for _, st := range s.Timeline {
		st.Line = 0
		c.Timeline = append(c.Timeline, st)
	}
	return &c
}

func TestMarshalParseGivesTheSameScenario(t *testing.T) {
	topo, err := filepath.Abs("../../topologies/three-region.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := parseFull(t, topo)
	b, err := Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(b, t.TempDir()) // an absolute topology path needs no directory
	if err != nil {
		t.Fatalf("Parse(Marshal(s)): %v\n%s", err, b)
	}
	if !reflect.DeepEqual(withoutLines(got), withoutLines(want)) {
		t.Fatalf("round trip changed the scenario\nwant %+v\ngot  %+v\nfile:\n%s", withoutLines(want), withoutLines(got), b)
	}
	for _, s := range []string{"at: 2s", "for: 1m30s", "within: 1.5s", "fault: redis-restart", "regions: [us-east, eu-west]", "description: |"} {
		if !strings.Contains(string(b), s) {
			t.Errorf("the file does not read %q as a person would write it:\n%s", s, b)
		}
	}
	if strings.Contains(string(b), "kind:") {
		t.Errorf("a step's kind is written fault: KIND, never kind:\n%s", b)
	}
}

// A relative topology path is written as it is and resolved by Parse from
// the directory of the file, as for a file a person wrote.
func TestMarshalKeepsARelativeTopologyPathForItsDirectory(t *testing.T) {
	abs, err := filepath.Abs("../../topologies/three-region.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := parseFull(t, abs)
	dir := t.TempDir()
	rel, err := filepath.Rel(dir, abs)
	if err != nil {
		t.Fatal(err)
	}
	want.TopologyPath = rel
	b, err := Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "minimal.yaml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.TopologyPath != filepath.Join(dir, rel) || got.Topology.Name != "three-region" {
		t.Fatalf("topology %q (%s), want %q", got.TopologyPath, got.Topology.Name, filepath.Join(dir, rel))
	}
}

// A scenario with neither timeline nor description nor gateway flags
// writes none of those keys and still parses.
func TestMarshalLeavesOutWhatIsNotSet(t *testing.T) {
	topo, _ := filepath.Abs("../../topologies/single-region.yaml")
	src := "name: small\ntopology: " + topo + "\nworkload: {clients: 1, federated_rooms: 1, local_rooms: 0, publish_rate: 1, duration: 2s}\nexpect: [lost == 0]\n"
	want, err := Parse([]byte(src), ".")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"timeline:", "description:", "gateway_args:", "bursts:"} {
		if strings.Contains(string(b), k) {
			t.Errorf("wrote %s for a scenario without it:\n%s", k, b)
		}
	}
	got, err := Parse(b, ".")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip changed the scenario\nwant %+v\ngot  %+v", want, got)
	}
	if _, err := Marshal(nil); err == nil {
		t.Fatal("Marshal(nil) gave no error")
	}
}
