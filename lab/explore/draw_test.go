package explore

import (
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/geolab/geolab/internal/fielderr"
	"github.com/geolab/geolab/lab/check"
	"github.com/geolab/geolab/lab/fault"
	"github.com/geolab/geolab/lab/scenario"
	"github.com/geolab/geolab/lab/topology"
)

func loadTopo(t *testing.T, name string) (*topology.Topology, string) {
	t.Helper()
	path, err := filepath.Abs("../../topologies/" + name + ".yaml")
	if err != nil {
		t.Fatal(err)
	}
	topo, err := topology.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return topo, path
}

// A new kind in the fault book must be drawn too (or the topology be
// unable to take it): explore covers the whole book.
func TestEveryFaultKindHasADrawer(t *testing.T) {
	var book []string
	for _, k := range fault.Kinds() {
		book = append(book, k.Name())
	}
	if !slices.Equal(book, KindNames()) {
		t.Fatalf("fault kinds %v, explore draws %v: give every kind a drawer", book, KindNames())
	}
}

func withoutLines(s *scenario.Scenario) *scenario.Scenario {
	c := *s
	c.Timeline = nil
	for _, st := range s.Timeline {
		st.Line = 0
		c.Timeline = append(c.Timeline, st)
	}
	return &c
}

// Every drawn run is within the bounds, the same for the same (seed, run),
// a valid scenario file (what Parse gives back is what was drawn), and
// uses only kinds its topology can take; over many runs every kind of the
// book is drawn, and churn too.
func TestDrawIsDeterministicValidAndWithinBounds(t *testing.T) {
	b := DefaultBounds()
	for _, name := range []string{"single-region", "two-region", "three-region", "three-region-cluster", "three-region-cluster-replicated"} {
		topo, path := loadTopo(t, name)
		kinds := KindsFor(topo, b)
		seen := map[string]bool{}
		churned, overlapped := 0, 0
		for seed := int64(1); seed <= 3; seed++ {
			for run := 1; run <= 60; run++ {
				sc := Draw(topo, path, seed, run, b)
				if again := Draw(topo, path, seed, run, b); !reflect.DeepEqual(sc, again) {
					t.Fatalf("%s seed %d run %d: two draws differ", name, seed, run)
				}
				data, err := scenario.Marshal(sc)
				if err != nil {
					t.Fatal(err)
				}
				back, err := scenario.Parse(data, t.TempDir())
				if err != nil {
					t.Fatalf("%s seed %d run %d: the drawn scenario does not parse: %v\n%s", name, seed, run, err, data)
				}
				if !reflect.DeepEqual(withoutLines(back), withoutLines(sc)) {
					t.Fatalf("%s seed %d run %d: Parse(Marshal(drawn)) differs\nwant %+v\ngot  %+v", name, seed, run, sc, back)
				}
				w := sc.Workload
				if w.Duration < b.MinDuration || w.Duration > b.MaxDuration || w.Quiesce != b.Quiesce ||
					w.Clients < 2 || w.Clients > b.MaxClients || w.PublishRate < 1 || w.PublishRate > b.MaxRate ||
					w.FederatedRooms < 1 || w.FederatedRooms > b.MaxFederatedRooms || w.LocalRooms > b.MaxLocalRooms ||
					len(w.Bursts) > b.MaxBursts || w.Churn.Leaves > b.MaxLeaves || w.Churn.Reconnects > b.MaxReconnects {
					t.Fatalf("%s seed %d run %d: workload out of bounds: %s", name, seed, run, WorkloadWords(w))
				}
				if w.Churn.Leaves > 0 || w.Churn.Reconnects > 0 {
					churned++
				}
				if n := len(sc.Timeline); n < 1 || n > b.MaxFaults {
					t.Fatalf("%s seed %d run %d: %d faults, want 1..%d", name, seed, run, n, b.MaxFaults)
				}
				for i, st := range sc.Timeline {
					seen[st.Fault.Kind] = true
					if !slices.Contains(kinds, st.Fault.Kind) {
						t.Fatalf("%s: drew %s, which the topology cannot take (kinds %v)", name, st.Fault.Kind, kinds)
					}
					paired := pausedDuring(sc.Timeline, st) // a shard-kill drawn with a replica-pause may last longer
					if st.At < 0 || st.Fault.For < b.MinFaultFor || st.Fault.For > b.MaxFaultFor && !paired || st.At+st.Fault.For > w.Duration {
						t.Fatalf("%s seed %d run %d: %s is not inside the workload's %s", name, seed, run, FaultWords(st), w.Duration)
					}
					if n := overlap(slices.Delete(slices.Clone(sc.Timeline), i, i+1), st.At, st.At+st.Fault.For); n+1 > b.MaxOverlap {
						t.Fatalf("%s seed %d run %d: %d faults at once with %s, want at most %d", name, seed, run, n+1, FaultWords(st), b.MaxOverlap)
					} else if n > 0 {
						overlapped++
					}
				}
				if sc.Name != Name(seed, run) || len(sc.Expect) != len(check.ViolationNames()) {
					t.Fatalf("%s: name %q, %d expectations", name, sc.Name, len(sc.Expect))
				}
			}
		}
		for _, k := range kinds {
			if !seen[k] {
				t.Errorf("%s: %s never drawn in 180 runs", name, k)
			}
		}
		if churned == 0 || overlapped == 0 {
			t.Errorf("%s: %d runs with churn, %d overlapping faults: want some of each", name, churned, overlapped)
		}
	}
}

// pausedDuring reports whether st is a shard-kill that starts during a
// replica-pause of its shard in tl.
func pausedDuring(tl []scenario.Step, st scenario.Step) bool {
	if st.Fault.Kind != "shard-kill" {
		return false
	}
	for _, p := range tl {
		if p.Fault.Kind == "replica-pause" && p.Fault.Regions[0] == st.Fault.Regions[0] && max(p.Fault.Shard, 1) == max(st.Fault.Shard, 1) &&
			p.At < st.At && st.At < p.At+p.Fault.For {
			return true
		}
	}
	return false
}

// On a region with replicated durability a replica-pause comes, often, with
// a shard-kill of its shard that starts inside it and outlasts it by
// killAfterPause or more (the acked-but-lost edge, on purpose, in us-east:
// the region whose durability is replicated); a shard-kill or
// shard-failover is otherwise never drawn over a replica-pause of its shard,
// nor two shard-kills of one us-east shard at once.
func TestReplicaPauseIsDrawnWithAKillOfItsShard(t *testing.T) {
	topo, path := loadTopo(t, "three-region-cluster-replicated")
	b := DefaultBounds()
	pairs := 0
	for run := 1; run <= 400; run++ {
		tl := Draw(topo, path, 1, run, b).Timeline
		for si, st := range tl {
			if st.Fault.Kind == "replica-pause" && st.Fault.Regions[0] != "us-east" {
				t.Fatalf("run %d: replica-pause of %s, whose durability is async", run, st.Fault.Regions[0])
			}
			if st.Fault.Kind != "shard-kill" && st.Fault.Kind != "shard-failover" {
				continue
			}
			for oi, o := range tl {
				if oi != si && o.Fault.Kind == "shard-kill" && st.Fault.Kind == "shard-kill" && o.Fault.Regions[0] == "us-east" && st.Fault.Regions[0] == "us-east" &&
					max(o.Fault.Shard, 1) == max(st.Fault.Shard, 1) && o.At < st.At+st.Fault.For && st.At < o.At+o.Fault.For {
					t.Fatalf("run %d: %s and %s kill both nodes of one shard of us-east (replicated) at once", run, FaultWords(st), FaultWords(o))
				}
			}
			for _, p := range tl {
				if p.Fault.Kind != "replica-pause" || p.Fault.Regions[0] != st.Fault.Regions[0] || max(p.Fault.Shard, 1) != max(st.Fault.Shard, 1) ||
					p.At >= st.At+st.Fault.For || st.At >= p.At+p.Fault.For {
					continue
				}
				if !pausedDuring(tl, st) || st.At+st.Fault.For < p.At+p.Fault.For+killAfterPause {
					t.Fatalf("run %d: %s meets %s by chance, not as its drawn kill", run, FaultWords(st), FaultWords(p))
				}
				pairs++
			}
		}
	}
	if pairs < 10 {
		t.Fatalf("%d replica-pause + shard-kill pairs in 400 runs, want some", pairs)
	}
	t.Logf("%d pairs in 400 runs", pairs)
}

// Turning one kind of churn off leaves the rest of every run as it was.
func TestChurnBoundsChangeOnlyTheirChurn(t *testing.T) {
	topo, path := loadTopo(t, "two-region")
	noLeaves := DefaultBounds()
	noLeaves.MaxLeaves = 0
	for run := 1; run <= 40; run++ {
		a, b := Draw(topo, path, 9, run, DefaultBounds()), Draw(topo, path, 9, run, noLeaves)
		if b.Workload.Churn.Leaves != 0 || b.Workload.Churn.Reconnects != a.Workload.Churn.Reconnects {
			t.Fatalf("run %d: churn %+v with MaxLeaves 0, %+v without", run, b.Workload.Churn, a.Workload.Churn)
		}
		b.Workload.Churn = a.Workload.Churn
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("run %d: MaxLeaves changed more than the churn", run)
		}
	}
}

func TestKindsTheTopologyCanTake(t *testing.T) {
	one, _ := loadTopo(t, "single-region")
	three, _ := loadTopo(t, "three-region")
	k1, k3 := KindsFor(one, DefaultBounds()), KindsFor(three, DefaultBounds())
	for _, k := range []string{"partition", "bridge-kill", "bridge-pause"} {
		if slices.Contains(k1, k) {
			t.Errorf("single-region (one region, no bridge) takes %s", k)
		}
	}
	shardKinds := []string{"replica-pause", "shard-failover", "shard-kill", "slot-migrate"}
	var standalone []string // every kind but a cluster's
	for _, k := range KindNames() {
		if !slices.Contains(shardKinds, k) {
			standalone = append(standalone, k)
		}
	}
	if !slices.Equal(k3, standalone) {
		t.Errorf("three-region takes %v, want every kind but a cluster's %v", k3, standalone)
	}
	// On clusters: the shard kinds and slot-migrate, and not the kinds that
	// kill one Redis; replica-pause only where a region's durability is
	// replicated.
	clusters, _ := loadTopo(t, "three-region-cluster")
	kc := KindsFor(clusters, DefaultBounds())
	if slices.Contains(kc, "replica-pause") {
		t.Errorf("three-region-cluster (every region async) takes replica-pause: %v", kc)
	}
	replicated, _ := loadTopo(t, "three-region-cluster-replicated")
	if kr := KindsFor(replicated, DefaultBounds()); !slices.Contains(kr, "replica-pause") {
		t.Errorf("three-region-cluster-replicated does not take replica-pause: %v", kr)
	}
	for _, k := range shardKinds[1:] {
		if !slices.Contains(kc, k) {
			t.Errorf("three-region-cluster does not take %s: %v", k, kc)
		}
	}
	for _, k := range []string{"redis-kill", "redis-restart", "region-down"} {
		if slices.Contains(kc, k) {
			t.Errorf("three-region-cluster (no standalone Redis) takes %s", k)
		}
	}
	b := DefaultBounds()
	b.Kinds = []string{"redis-blip", "partition"}
	if got := KindsFor(one, b); !slices.Equal(got, []string{"redis-blip"}) {
		t.Errorf("--kinds redis-blip,partition on one region: %v", got)
	}
	topo, path := loadTopo(t, "two-region")
	for run := 1; run <= 20; run++ {
		for _, st := range Draw(topo, path, 5, run, b).Timeline {
			if !slices.Contains(b.Kinds, st.Fault.Kind) {
				t.Fatalf("drew %s outside Kinds %v", st.Fault.Kind, b.Kinds)
			}
		}
	}
}

func TestBoundsValidateNamesTheField(t *testing.T) {
	cases := []struct {
		change func(*Bounds)
		field  string
		want   string
	}{
		{func(b *Bounds) { b.MinDuration = time.Second }, "MinDuration", "MinDuration 1s must be at least 2s"},
		{func(b *Bounds) { b.MaxDuration = 10 * time.Second }, "MaxDuration", "MaxDuration 10s must not be below MinDuration 15s"},
		{func(b *Bounds) { b.Quiesce = 0 }, "Quiesce", "Quiesce 0s must be in 1s..10m"},
		{func(b *Bounds) { b.MaxClients = 0 }, "MaxClients", "MaxClients 0 must be in 1..2000"},
		{func(b *Bounds) { b.MaxRate = 0.5 }, "MaxRate", "MaxRate 0.5 must be in 1..1000"},
		{func(b *Bounds) { b.MaxFaults = 17 }, "MaxFaults", "MaxFaults 17 must be in 0..16"},
		{func(b *Bounds) { b.MaxOverlap = 5 }, "MaxOverlap", "MaxOverlap 5 must not be above MaxFaults 4"},
		{func(b *Bounds) { b.MaxOverlap = 0 }, "MaxOverlap", "MaxOverlap 0 must be at least 1"},
		{func(b *Bounds) { b.MaxFaultFor = 500 * time.Millisecond }, "MaxFaultFor", "MaxFaultFor 500ms must not be below MinFaultFor 1s"},
		{func(b *Bounds) { b.Kinds = []string{"partitoin"} }, "Kinds", `Kinds "partitoin": no such fault kind`},
		{func(b *Bounds) { b.Kinds = []string{"latency", "latency"} }, "Kinds", `Kinds "latency" is given twice`},
	}
	if err := DefaultBounds().Validate(); err != nil {
		t.Fatalf("the defaults: %v", err)
	}
	for _, c := range cases {
		b := DefaultBounds()
		c.change(&b)
		err := b.Validate()
		var fe *fielderr.Error
		if !errors.As(err, &fe) || fe.Field != c.field || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want %s: %q, got %v", c.field, c.want, err)
		}
	}
}
