package explore

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/geolab/geolab/internal/fielderr"
	"github.com/geolab/geolab/lab/check"
	"github.com/geolab/geolab/lab/expect"
	"github.com/geolab/geolab/lab/fault"
	"github.com/geolab/geolab/lab/link"
	"github.com/geolab/geolab/lab/scenario"
	"github.com/geolab/geolab/lab/topology"
	"github.com/geolab/geolab/lab/workload"
)

// Bounds are what a drawn run stays within (docs/explore.md lists them with
// their defaults). The defaults keep a run short — 15–25 s of publishing,
// at most 20 s of quiesce — so that a 10-minute budget plays many runs on a
// 2-core machine.
type Bounds struct {
	// MinDuration, MaxDuration bound the workload's publishing time.
	MinDuration, MaxDuration time.Duration
	// Quiesce is the workload's bound on the wait after publishing.
	Quiesce time.Duration
	// MaxClients: each run has 2..MaxClients clients (fewer when it is
	// below 2).
	MaxClients int
	// MaxRate: each run publishes 1..MaxRate times a second.
	MaxRate float64
	// MaxFederatedRooms (at least 1 each run) and MaxLocalRooms (0..,
	// per region).
	MaxFederatedRooms, MaxLocalRooms int
	// MaxBursts per run, each of at most MaxBurstCount publishes.
	MaxBursts, MaxBurstCount int
	// MaxLeaves and MaxReconnects bound the churn per second; a run
	// churns with probability one half.
	MaxLeaves, MaxReconnects float64
	// MaxFaults per run (1..MaxFaults each run; 0: none), at most
	// MaxOverlap of them active at once.
	MaxFaults, MaxOverlap int
	// MinFaultFor, MaxFaultFor bound each fault's duration.
	MinFaultFor, MaxFaultFor time.Duration
	// Kinds limits the fault kinds drawn (nil: every kind the topology can
	// take).
	Kinds []string
}

// Fields are the bounds by name, durations as Go durations (summary.json).
func (b Bounds) Fields() map[string]any {
	return map[string]any{
		"min_duration": b.MinDuration.String(), "max_duration": b.MaxDuration.String(), "quiesce": b.Quiesce.String(),
		"max_clients": b.MaxClients, "max_rate": b.MaxRate, "max_federated_rooms": b.MaxFederatedRooms,
		"max_local_rooms": b.MaxLocalRooms, "max_bursts": b.MaxBursts, "max_burst_count": b.MaxBurstCount,
		"max_leaves_per_second": b.MaxLeaves, "max_reconnects_per_second": b.MaxReconnects,
		"max_faults": b.MaxFaults, "max_overlap": b.MaxOverlap, "min_fault_duration": b.MinFaultFor.String(),
		"max_fault_duration": b.MaxFaultFor.String(), "kinds": b.Kinds,
	}
}

// DefaultBounds are the bounds of `geolab explore` without flags.
func DefaultBounds() Bounds {
	return Bounds{
		MinDuration: 15 * time.Second, MaxDuration: 25 * time.Second, Quiesce: 20 * time.Second,
		MaxClients: 24, MaxRate: 40, MaxFederatedRooms: 6, MaxLocalRooms: 2, MaxBursts: 2, MaxBurstCount: 400,
		MaxLeaves: 1, MaxReconnects: 0.5,
		MaxFaults: 4, MaxOverlap: 2, MinFaultFor: time.Second, MaxFaultFor: 10 * time.Second,
	}
}

// Validate names the first field out of bounds (as a *fielderr.Error, so
// that a command can name its flag instead).
func (b Bounds) Validate() error {
	switch {
	case b.MinDuration < 2*time.Second:
		return fielderr.New("MinDuration", b.MinDuration, "must be at least", 2*time.Second)
	case b.MaxDuration < b.MinDuration:
		return fielderr.Than("MaxDuration", b.MaxDuration, "must not be below", "MinDuration", b.MinDuration)
	case b.MaxDuration > 10*time.Minute:
		return fielderr.New("MaxDuration", b.MaxDuration, "must be at most", 10*time.Minute)
	case b.Quiesce < time.Second || b.Quiesce > 10*time.Minute:
		return fielderr.New("Quiesce", b.Quiesce, "must be in", "1s..10m")
	case b.MaxClients < 1 || b.MaxClients > workload.MaxClients:
		return fielderr.New("MaxClients", b.MaxClients, "must be in", fmt.Sprintf("1..%d", workload.MaxClients))
	case !(b.MaxRate >= 1 && b.MaxRate <= 1000):
		return fielderr.New("MaxRate", b.MaxRate, "must be in", "1..1000")
	case b.MaxFederatedRooms < 1 || b.MaxFederatedRooms > 100:
		return fielderr.New("MaxFederatedRooms", b.MaxFederatedRooms, "must be in", "1..100")
	case b.MaxLocalRooms < 0 || b.MaxLocalRooms > 100:
		return fielderr.New("MaxLocalRooms", b.MaxLocalRooms, "must be in", "0..100")
	case b.MaxBursts < 0 || b.MaxBursts > 10:
		return fielderr.New("MaxBursts", b.MaxBursts, "must be in", "0..10")
	case b.MaxBursts > 0 && (b.MaxBurstCount < 1 || b.MaxBurstCount > 10_000):
		return fielderr.New("MaxBurstCount", b.MaxBurstCount, "must be in", "1..10000")
	case !(b.MaxLeaves >= 0 && b.MaxLeaves <= workload.MaxChurnRate):
		return fielderr.New("MaxLeaves", b.MaxLeaves, "must be in", fmt.Sprintf("0..%d", workload.MaxChurnRate))
	case !(b.MaxReconnects >= 0 && b.MaxReconnects <= workload.MaxChurnRate):
		return fielderr.New("MaxReconnects", b.MaxReconnects, "must be in", fmt.Sprintf("0..%d", workload.MaxChurnRate))
	case b.MaxFaults < 0 || b.MaxFaults > 16:
		return fielderr.New("MaxFaults", b.MaxFaults, "must be in", "0..16")
	case b.MaxFaults > 0 && b.MaxOverlap < 1:
		return fielderr.New("MaxOverlap", b.MaxOverlap, "must be at least", 1)
	case b.MaxFaults > 0 && b.MaxOverlap > b.MaxFaults:
		return fielderr.Than("MaxOverlap", b.MaxOverlap, "must not be above", "MaxFaults", b.MaxFaults)
	case b.MinFaultFor < 100*time.Millisecond:
		return fielderr.New("MinFaultFor", b.MinFaultFor, "must be at least", 100*time.Millisecond)
	case b.MaxFaultFor < b.MinFaultFor:
		return fielderr.Than("MaxFaultFor", b.MaxFaultFor, "must not be below", "MinFaultFor", b.MinFaultFor)
	case b.MinFaultFor >= b.MinDuration:
		return fielderr.Than("MinFaultFor", b.MinFaultFor, "must be below", "MinDuration", b.MinDuration)
	}
	if n := b.MaxRate*b.MaxDuration.Seconds() + float64(b.MaxBursts*b.MaxBurstCount); n > workload.MaxPublishes {
		return fielderr.New("MaxRate", b.MaxRate, "makes up to", fmt.Sprintf("%.0f publishes a run with MaxDuration and the bursts, more than %d", n, workload.MaxPublishes))
	}
	for i, k := range b.Kinds {
		if _, ok := drawers[k]; !ok {
			return fielderr.Wrap("Kinds", k, fmt.Errorf("no such fault kind (kinds: %s)", strings.Join(KindNames(), ", ")))
		}
		if slices.Contains(b.Kinds[:i], k) {
			return fielderr.New("Kinds", k, "is given twice", nil)
		}
	}
	return nil
}

// Expectations are one `NAME == 0` per count that breaks a guarantee
// (check.ViolationNames): a drawn scenario, replayed with `geolab run`,
// fails exactly when its run shows a violation.
func Expectations() []expect.Expectation {
	var out []expect.Expectation
	for _, n := range check.ViolationNames() {
		e, err := expect.Parse(n + " == 0")
		if err != nil {
			panic(fmt.Sprintf("explore: %s == 0 does not parse: %v", n, err)) // a violation name is a metric name
		}
		out = append(out, e)
	}
	return out
}

// Name is the name of run i of seed: explore-SEED-RUN.
func Name(seed int64, run int) string { return fmt.Sprintf("explore-%d-%d", seed, run) }

// Draw draws run i of seed over topo: a workload within b and a timeline of
// faults from the fault book, from a PCG seeded with (seed, run) alone. The
// same arguments give the same scenario. topoPath is written into the
// scenario as its topology (make it absolute, so that a file written from
// the scenario finds it from anywhere).
func Draw(topo *topology.Topology, topoPath string, seed int64, run int, b Bounds) *scenario.Scenario {
	rng := rand.New(rand.NewPCG(uint64(seed), uint64(run)))
	sc := &scenario.Scenario{Name: Name(seed, run), TopologyPath: topoPath, Topology: topo,
		Seed: 1 + rng.Int64N(1<<31-1), Expect: Expectations()}
	sc.Workload = drawWorkload(rng, b)
	sc.Timeline = drawTimeline(rng, topo, sc.Workload, b)
	// Churn has a stream of its own, so that the rest of a run does not
	// change with how churn is drawn.
	drawChurn(rand.New(rand.NewPCG(uint64(seed), uint64(run)^churnStream)), b, &sc.Workload)
	sc.Workload.Defaults()
	sc.Description = fmt.Sprintf("Drawn by geolab explore: seed %d, run %d, on %s.", seed, run, topo.Name)
	return sc
}

const churnStream = 0x6368_7572_6e00_0000 // "churn"

// between draws a whole multiple of step in [lo, hi].
func between(rng *rand.Rand, lo, hi, step time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(rng.Int64N(int64((hi-lo)/step)+1))*step
}

func drawWorkload(rng *rand.Rand, b Bounds) workload.Spec {
	w := workload.Spec{Quiesce: b.Quiesce, Heartbeat: time.Second}
	w.Duration = between(rng, b.MinDuration, b.MaxDuration, time.Second)
	lo := min(2, b.MaxClients)
	w.Clients = lo + rng.IntN(b.MaxClients-lo+1)
	w.FederatedRooms = 1 + rng.IntN(b.MaxFederatedRooms)
	w.LocalRooms = rng.IntN(b.MaxLocalRooms + 1)
	w.RoomsPerClient = 1 + rng.IntN(min(3, w.FederatedRooms))
	w.PublishRate = float64(1 + rng.IntN(int(b.MaxRate)))
	w.PayloadBytes = []int{64, 240, 1024}[rng.IntN(3)]
	for range rng.IntN(b.MaxBursts + 1) {
		w.Bursts = append(w.Bursts, workload.Burst{
			At:     between(rng, 0, w.Duration-time.Second, 500*time.Millisecond),
			Count:  1 + rng.IntN(b.MaxBurstCount),
			Within: between(rng, 0, 3*time.Second, 500*time.Millisecond)})
	}
	slices.SortStableFunc(w.Bursts, func(x, y workload.Burst) int { return int(x.At - y.At) })
	w.Defaults()
	return w
}

// world is what the drawers pick from.
type world struct {
	topo    *topology.Topology
	regions []string
	bridged []string // regions with a bridge (a federate pattern)
	single  []string // regions that run one Redis
	cluster []string // regions that run a Redis Cluster
	replica []string // cluster regions whose shards have replicas
	// replicated are the cluster regions with replicas whose gateways ack
	// a publish only once a replica has it (redis.durability: replicated).
	replicated []string
	links      []string // every link the lab makes, by name
	w          workload.Spec
}

func newWorld(topo *topology.Topology, w workload.Spec) world {
	x := world{topo: topo, regions: topo.RegionNames(), w: w}
	for _, r := range topo.Regions {
		if len(r.Federate) > 0 {
			x.bridged = append(x.bridged, r.Name)
		}
		if r.Redis.Mode == topology.RedisCluster {
			x.cluster = append(x.cluster, r.Name)
			if r.Redis.Replicas > 0 {
				x.replica = append(x.replica, r.Name)
				if r.Redis.Durability == topology.DurabilityReplicated {
					x.replicated = append(x.replicated, r.Name)
				}
			}
			for k := 1; k <= r.Redis.Nodes(); k++ { // a cluster's nodes have the LAN links
				x.links = append(x.links, link.Name(link.LAN, r.Name, r.Name, fmt.Sprintf("redis-%d", k)))
			}
		} else {
			x.single = append(x.single, r.Name)
		}
		for g := 1; g <= r.Gateways; g++ {
			node := fmt.Sprintf("gw-%d", g)
			if r.Redis.Mode != topology.RedisCluster {
				x.links = append(x.links, link.Name(link.LAN, r.Name, r.Name, node))
			}
			for _, home := range x.regions {
				x.links = append(x.links, link.Name(link.Client, home, r.Name, node))
			}
		}
	}
	for _, from := range x.bridged {
		for _, to := range x.regions {
			if to != from {
				x.links = append(x.links, link.Name(link.WAN, from, to, ""))
			}
		}
	}
	slices.Sort(x.links)
	return x
}

func pick[T any](rng *rand.Rand, xs []T) T { return xs[rng.IntN(len(xs))] }

func (x world) region(rng *rand.Rand) string { return pick(rng, x.regions) }

func (x world) pair(rng *rand.Rand) []string {
	p := rng.Perm(len(x.regions))
	return []string{x.regions[p[0]], x.regions[p[1]]}
}

func (x world) node(rng *rand.Rand, region string) string {
	r, _ := x.topo.Region(region)
	return fmt.Sprintf("gw-%d", 1+rng.IntN(max(r.Gateways, 1)))
}

func mode(rng *rand.Rand) string { return pick(rng, []string{"reset", "blackhole"}) }

func loseData(rng *rand.Rand) bool { return rng.IntN(4) == 0 }

// drawer fills the fields of one kind of fault; can says whether the
// topology can take the kind at all.
type drawer struct {
	can  func(x world) bool
	draw func(rng *rand.Rand, x world) fault.Spec
}

func always(world) bool       { return true }
func hasSingle(x world) bool  { return len(x.single) > 0 }
func hasCluster(x world) bool { return len(x.cluster) > 0 }
func hasReplica(x world) bool { return len(x.replica) > 0 }

// hasReplicated: a cluster region whose durability is replicated, the only
// kind of region where a replica held behind is a promise to test (on
// async, a primary killed meanwhile loses acked publishes by design).
func hasReplicated(x world) bool { return len(x.replicated) > 0 }
func twoRegions(x world) bool    { return len(x.regions) >= 2 }
func hasBridge(x world) bool     { return len(x.bridged) > 0 }

// regionWithMode is a fault on one region, by reset or blackhole.
func regionWithMode(rng *rand.Rand, x world) fault.Spec {
	s := oneRegion(rng, x)
	s.Mode = mode(rng)
	return s
}

// regionMaybeLosingData is a fault on one region that may lose its Redis's
// data.
func regionMaybeLosingData(rng *rand.Rand, x world) fault.Spec {
	s := fault.Spec{Regions: []string{pick(rng, x.single)}} // one Redis to kill
	s.LoseData = loseData(rng)
	return s
}

// shardOf draws a shard of one of regions.
func shardOf(regions func(world) []string) func(rng *rand.Rand, x world) fault.Spec {
	return func(rng *rand.Rand, x world) fault.Spec {
		s := fault.Spec{Regions: []string{pick(rng, regions(x))}}
		r, _ := x.topo.Region(s.Regions[0])
		s.Shard = 1 + rng.IntN(max(r.Redis.Shards, 1))
		return s
	}
}

func oneRegion(rng *rand.Rand, x world) fault.Spec {
	return fault.Spec{Regions: []string{x.region(rng)}}
}

// pairOrLink is a latency or bandwidth target: two regions (when there are)
// two times in three, else one link.
func pairOrLink(rng *rand.Rand, x world) fault.Spec {
	if twoRegions(x) && rng.IntN(3) > 0 {
		return fault.Spec{Regions: x.pair(rng)}
	}
	return fault.Spec{Link: pick(rng, x.links)}
}

// drawers covers the whole fault book (docs/faults.md); a test fails when a
// kind has none.
var drawers = map[string]drawer{
	"latency": {always, func(rng *rand.Rand, x world) fault.Spec {
		s := pairOrLink(rng, x)
		s.Latency = time.Duration(2+rng.IntN(40)) * 10 * time.Millisecond
		s.Jitter = between(rng, 0, s.Latency/4, time.Millisecond)
		return s
	}},
	"bandwidth": {always, func(rng *rand.Rand, x world) fault.Spec {
		s := pairOrLink(rng, x)
		s.RateKB = pick(rng, []int{4, 16, 64, 256})
		return s
	}},
	"partition": {twoRegions, func(rng *rand.Rand, x world) fault.Spec {
		s := fault.Spec{Regions: x.pair(rng), Mode: mode(rng)}
		if rng.IntN(3) == 0 {
			s.Direction = "one"
		}
		return s
	}},
	"isolate":        {always, regionWithMode},
	"redis-blip":     {always, regionWithMode},
	"redis-kill":     {hasSingle, regionMaybeLosingData},
	"redis-restart":  {hasSingle, regionMaybeLosingData},
	"region-down":    {hasSingle, regionMaybeLosingData},
	"shard-kill":     {hasCluster, shardOf(func(x world) []string { return x.cluster })},
	"shard-failover": {hasReplica, shardOf(func(x world) []string { return x.replica })},
	"replica-pause":  {hasReplicated, shardOf(func(x world) []string { return x.replicated })},
	// Federated room 1, to the next shard: a room of the workload however
	// far the shrinker cuts the rooms, and never the shard it is on.
	"slot-migrate": {hasCluster, func(rng *rand.Rand, x world) fault.Spec {
		return fault.Spec{Regions: []string{pick(rng, x.cluster)}, Room: x.w.FederatedPrefix + "1"}
	}},
	"gateway-kill":  {always, gatewayFault},
	"gateway-pause": {always, gatewayFault},
	"gateway-drain": {always, gatewayFault},
	"bridge-kill":   {hasBridge, bridgeFault},
	"bridge-pause":  {hasBridge, bridgeFault},
	"slow-client": {always, func(rng *rand.Rand, x world) fault.Spec {
		s := oneRegion(rng, x)
		s.Node = x.node(rng, s.Regions[0])
		// Room 1 of a kind: it stays a room of the workload however far
		// the shrinker cuts the rooms.
		s.Room = x.w.FederatedPrefix + "1"
		if x.w.LocalRooms > 0 && rng.IntN(2) == 0 {
			s.Room = fmt.Sprintf("local:%s:1", s.Regions[0])
		}
		s.Clients = 1 + rng.IntN(5)
		return s
	}},
}

func gatewayFault(rng *rand.Rand, x world) fault.Spec {
	s := oneRegion(rng, x)
	s.Node = x.node(rng, s.Regions[0])
	return s
}

func bridgeFault(rng *rand.Rand, x world) fault.Spec {
	return fault.Spec{Regions: []string{pick(rng, x.bridged)}}
}

// KindNames lists the fault kinds explore can draw, by name.
func KindNames() []string {
	var out []string
	for k := range drawers {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// kinds lists the kinds of b the world can take, by name: two-region kinds
// need two regions, bridge kinds a region with a bridge.
func (b Bounds) kinds(x world) []string {
	var out []string
	for _, k := range KindNames() {
		if (len(b.Kinds) == 0 || slices.Contains(b.Kinds, k)) && drawers[k].can(x) {
			out = append(out, k)
		}
	}
	return out
}

// KindsFor lists the kinds a run over topo draws from with b.
func KindsFor(topo *topology.Topology, b Bounds) []string {
	return b.kinds(newWorld(topo, workload.Spec{}))
}

// drawTimeline draws 1..MaxFaults faults, each at a random offset for a
// random duration inside the workload's duration, with at most MaxOverlap
// active at once (a fault that would break the bound is drawn again, a few
// times, then left out): quiet gaps are what no fault happens to cover. A
// replica-pause is followed, when the count allows, by a shard-kill of its
// shard during it (killDuringPause), which may outlast MaxFaultFor and is
// drawn even when Kinds does not name shard-kill.
func drawTimeline(rng *rand.Rand, topo *topology.Topology, w workload.Spec, b Bounds) []scenario.Step {
	x := newWorld(topo, w)
	kinds := b.kinds(x)
	if b.MaxFaults == 0 || len(kinds) == 0 {
		return nil
	}
	n := 1 + rng.IntN(b.MaxFaults)
	var steps []scenario.Step
	for drawn := 0; drawn < n; drawn++ {
		kind := pick(rng, kinds)
		spec := drawers[kind].draw(rng, x)
		spec.Kind = kind
		for range 20 {
			forDur := between(rng, b.MinFaultFor, min(b.MaxFaultFor, w.Duration-500*time.Millisecond), 500*time.Millisecond)
			at := between(rng, 0, w.Duration-forDur, 500*time.Millisecond)
			st := scenario.Step{At: at, Fault: spec}
			st.Fault.For = forDur
			if at+forDur > w.Duration || overlap(steps, at, at+forDur) >= b.MaxOverlap || holdsAReplica(x, steps, st) {
				continue
			}
			steps = append(steps, st)
			if kind == "replica-pause" && drawn+1 < n {
				if kill, ok := killDuringPause(rng, st, w.Duration); ok && overlap(steps, kill.At, kill.At+kill.Fault.For) < b.MaxOverlap {
					steps = append(steps, kill)
					drawn++ // the kill is one of the n faults
				}
			}
			break
		}
	}
	slices.SortStableFunc(steps, func(a, b scenario.Step) int { return int(a.At - b.At) })
	return steps
}

// killAfterPause is how much longer than a replica-pause the shard-kill
// drawn with it lasts at least: the replica, running again, must see its
// primary failed and win the election (cluster-node-timeout, 3 s, and an
// election) before the killed node comes back.
const killAfterPause = 5 * time.Second

// killDuringPause draws, for a replica-pause step, a shard-kill of the same
// shard that starts inside the pause and outlasts it by killAfterPause to
// twice that: the cluster then promotes a replica that missed every write
// of the pause (docs/faults.md#replica-pause). ok is false when the
// workload ends too soon for it.
func killDuringPause(rng *rand.Rand, pause scenario.Step, end time.Duration) (scenario.Step, bool) {
	at := pause.At + between(rng, 500*time.Millisecond, max(pause.Fault.For-500*time.Millisecond, 500*time.Millisecond), 500*time.Millisecond)
	until := pause.At + pause.Fault.For + between(rng, killAfterPause, 2*killAfterPause, 500*time.Millisecond)
	if at >= pause.At+pause.Fault.For || until > end {
		return scenario.Step{}, false
	}
	kill := scenario.Step{At: at, Fault: fault.Spec{Kind: "shard-kill", Regions: pause.Fault.Regions, Shard: pause.Fault.Shard, For: until - at}}
	return kill, true
}

// holdsAReplica reports whether st and a step of steps would act on one
// shard at once in a way the draw keeps apart: a shard-kill or
// shard-failover drawn on its own must not meet a replica-pause (a manual
// failover needs the replica's link; a kill is drawn with the pause on
// purpose, killDuringPause, not by chance), nor a pause a shard whose
// primary is already down; and on a region whose durability is replicated,
// two shard-kills of one shard must not overlap (both nodes of a
// one-replica shard down is two failures, more than a replica covers).
func holdsAReplica(x world, steps []scenario.Step, st scenario.Step) bool {
	shardKind := func(k string) bool { return k == "replica-pause" || k == "shard-kill" || k == "shard-failover" }
	if !shardKind(st.Fault.Kind) {
		return false
	}
	for _, o := range steps {
		if !shardKind(o.Fault.Kind) || o.Fault.Regions[0] != st.Fault.Regions[0] || max(o.Fault.Shard, 1) != max(st.Fault.Shard, 1) {
			continue
		}
		if o.At >= st.At+st.Fault.For || st.At >= o.At+o.Fault.For {
			continue
		}
		pauses := (o.Fault.Kind == "replica-pause") != (st.Fault.Kind == "replica-pause")
		kills := o.Fault.Kind == "shard-kill" && st.Fault.Kind == "shard-kill" && slices.Contains(x.replicated, st.Fault.Regions[0])
		if pauses || kills {
			return true
		}
	}
	return false
}

// overlap is the most steps active at once within [from, to): a step is
// active over [At, At+For).
func overlap(steps []scenario.Step, from, to time.Duration) int {
	points := []time.Duration{from}
	for _, s := range steps {
		if s.At > from && s.At < to {
			points = append(points, s.At)
		}
	}
	most := 0
	for _, p := range points {
		n := 0
		for _, s := range steps {
			if s.At <= p && p < s.At+s.Fault.For {
				n++
			}
		}
		most = max(most, n)
	}
	return most
}
