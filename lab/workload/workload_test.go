package workload_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/geolab/geolab/internal/harness"
	"github.com/geolab/geolab/lab/workload"
)

func spec() workload.Spec {
	s := workload.Spec{Clients: 20, FederatedRooms: 4, LocalRooms: 2, PublishRate: 10, Duration: 20 * time.Second,
		Churn: workload.Churn{Leaves: 2, Reconnects: 1.5}}
	s.Defaults()
	return s
}

// The same seed gives the same churn schedule and probes; another seed
// another schedule; turning churn on leaves clients and publishes as they
// were (churn draws from a stream of its own).
func TestPlanChurnAndProbesAreDrawnFromTheSeed(t *testing.T) {
	topo := harness.Topology(t, "three-region")
	a, b := workload.NewPlan(spec(), topo, 7), workload.NewPlan(spec(), topo, 7)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two plans of the same seed differ")
	}
	if len(a.Churn) == 0 || len(a.Probes) == 0 {
		t.Fatalf("plan has %d churn events and %d probes, want some of each", len(a.Churn), len(a.Probes))
	}
	if c := workload.NewPlan(spec(), topo, 8); reflect.DeepEqual(a.Churn, c.Churn) {
		t.Error("seeds 7 and 8 drew the same churn schedule")
	}
	quiet := spec()
	quiet.Churn = workload.Churn{}
	q := workload.NewPlan(quiet, topo, 7)
	if len(q.Churn) != 0 {
		t.Errorf("no churn asked, %d events planned", len(q.Churn))
	}
	if !reflect.DeepEqual(q.Clients, a.Clients) || !reflect.DeepEqual(q.Publishes, a.Publishes) || !reflect.DeepEqual(q.Probes, a.Probes) {
		t.Error("turning churn on changed the clients, publishes or probes")
	}
}

// Every churn event falls within the publishing duration; each leave is of
// a room the client is in, followed by its rejoin RejoinAfter later, and a
// client is never out of a room twice at once; the counts follow the rates.
func TestChurnScheduleShape(t *testing.T) {
	topo := harness.Topology(t, "three-region")
	s := spec()
	s.Churn.RejoinAfter = 1500 * time.Millisecond
	p := workload.NewPlan(s, topo, 3)
	type key struct {
		c    int
		room string
	}
	out := map[key]time.Duration{}
	var leaves, rejoins, reconnects int
	for i, e := range p.Churn {
		if e.At < 0 || e.At >= s.Duration {
			t.Fatalf("event %d %+v outside the duration %s", i, e, s.Duration)
		}
		if i > 0 && e.At < p.Churn[i-1].At {
			t.Fatalf("event %d %+v before event %d", i, e, i-1)
		}
		if e.Client < 0 || e.Client >= len(p.Clients) {
			t.Fatalf("event %d names client %d of %d", i, e.Client, len(p.Clients))
		}
		k := key{e.Client, e.Room}
		switch e.Kind {
		case workload.ChurnLeave:
			leaves++
			if !slices.Contains(p.Clients[e.Client].Rooms, e.Room) {
				t.Fatalf("event %d: %s leaves %s, not one of its rooms %v", i, p.Clients[e.Client].Name, e.Room, p.Clients[e.Client].Rooms)
			}
			if _, isOut := out[k]; isOut {
				t.Fatalf("event %d: %s leaves %s while out of it", i, p.Clients[e.Client].Name, e.Room)
			}
			out[k] = e.At
		case workload.ChurnRejoin:
			rejoins++
			at, isOut := out[k]
			if !isOut || e.At-at != s.Churn.RejoinAfter {
				t.Fatalf("event %d: rejoin %+v, want one rejoin_after %s after a leave of the same client and room", i, e, s.Churn.RejoinAfter)
			}
			delete(out, k)
		case workload.ChurnReconnect:
			reconnects++
			if e.Room != "" {
				t.Fatalf("event %d: a reconnect names room %q", i, e.Room)
			}
		default:
			t.Fatalf("event %d: kind %q", i, e.Kind)
		}
	}
	if len(out) != 0 {
		t.Fatalf("leaves without a rejoin: %v", out)
	}
	// 2/s over 20 s − 1.5 s; 1.5/s over 20 s.
	if leaves != rejoins || leaves < 35 || leaves > 37 || reconnects != 30 {
		t.Errorf("%d leaves, %d rejoins, %d reconnects; want 36±1 leaves each rejoined, 30 reconnects", leaves, rejoins, reconnects)
	}
}

// One probe per region, p-REGION, in every local room of every other
// region, by default whenever there are local rooms and regions to leak
// between; leak_probes: false turns them off.
func TestLeakProbes(t *testing.T) {
	three, single := harness.Topology(t, "three-region"), harness.Topology(t, "single-region")
	p := workload.NewPlan(spec(), three, 1)
	want := []workload.ClientPlan{
		{Name: "p-us-east", Home: "us-east", Rooms: []string{"local:ap-southeast:1", "local:ap-southeast:2", "local:eu-west:1", "local:eu-west:2"}},
		{Name: "p-eu-west", Home: "eu-west", Rooms: []string{"local:ap-southeast:1", "local:ap-southeast:2", "local:us-east:1", "local:us-east:2"}},
		{Name: "p-ap-southeast", Home: "ap-southeast", Rooms: []string{"local:eu-west:1", "local:eu-west:2", "local:us-east:1", "local:us-east:2"}},
	}
	if !reflect.DeepEqual(p.Probes, want) {
		t.Errorf("probes = %+v\nwant %+v", p.Probes, want)
	}
	for _, c := range p.Clients {
		if strings.HasPrefix(c.Name, "p-") {
			t.Errorf("probe %s among the publishing clients", c.Name)
		}
	}
	off := spec()
	off.LeakProbes = new(bool)
	noLocal := spec()
	noLocal.LocalRooms = 0
	for name, c := range map[string]struct {
		s    workload.Spec
		topo bool
	}{"leak_probes: false": {off, true}, "local_rooms: 0": {noLocal, true}, "one region": {spec(), false}} {
		topo := three
		if !c.topo {
			topo = single
		}
		if p := workload.NewPlan(c.s, topo, 1); len(p.Probes) != 0 {
			t.Errorf("%s: %d probes, want none", name, len(p.Probes))
		}
	}
	on := spec()
	yes := true
	on.LeakProbes = &yes
	if err := on.ValidateFor(single); err == nil || !strings.HasPrefix(err.Error(), "leak_probes:") {
		t.Errorf("leak_probes: true on one region: %v, want an error naming leak_probes", err)
	}
	if err := on.ValidateFor(three); err != nil {
		t.Errorf("leak_probes: true on three regions: %v", err)
	}
}

// Every wrong churn or leak_probes value is refused naming its field.
func TestValidateChurnNamesTheField(t *testing.T) {
	yes := true
	for _, c := range []struct {
		name  string
		set   func(*workload.Spec)
		field string
	}{
		{"negative leaves", func(s *workload.Spec) { s.Churn.Leaves = -1 }, "churn.leaves_per_second:"},
		{"too many leaves", func(s *workload.Spec) { s.Churn.Leaves = 51 }, "churn.leaves_per_second:"},
		{"negative reconnects", func(s *workload.Spec) { s.Churn.Reconnects = -0.5 }, "churn.reconnects_per_second:"},
		{"too many reconnects", func(s *workload.Spec) { s.Churn.Reconnects = 1000 }, "churn.reconnects_per_second:"},
		{"negative rejoin_after", func(s *workload.Spec) { s.Churn.RejoinAfter = -time.Second }, "churn.rejoin_after:"},
		{"rejoin_after past duration", func(s *workload.Spec) { s.Churn.RejoinAfter = time.Minute }, "churn.rejoin_after:"},
		{"rejoin_after = duration", func(s *workload.Spec) { s.Churn.RejoinAfter = s.Duration }, "churn.rejoin_after:"},
		{"leak probes without local rooms", func(s *workload.Spec) { s.LocalRooms, s.LeakProbes = 0, &yes }, "leak_probes:"},
	} {
		s := spec()
		c.set(&s)
		err := s.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), c.field) {
			t.Errorf("%s: %v, want an error starting %q", c.name, err, c.field)
		}
	}
	s := spec()
	s.Churn = workload.Churn{Leaves: 50, Reconnects: 50, RejoinAfter: s.Duration - time.Millisecond}
	if err := s.Validate(); err != nil {
		t.Errorf("churn at its bounds: %v", err)
	}
}

// rejoin_after defaults to 1s when leaves are on, and stays unset without.
func TestRejoinAfterDefault(t *testing.T) {
	s := workload.Spec{Churn: workload.Churn{Leaves: 1}}
	s.Defaults()
	if s.Churn.RejoinAfter != time.Second {
		t.Errorf("rejoin_after = %s, want 1s", s.Churn.RejoinAfter)
	}
	s = workload.Spec{Churn: workload.Churn{Reconnects: 1}}
	s.Defaults()
	if s.Churn.RejoinAfter != 0 {
		t.Errorf("rejoin_after without leaves = %s, want 0", s.Churn.RejoinAfter)
	}
}

// TestFenceProbePlan: on a topology with two federating regions the fence
// probe holds its session in the first and takes it over in the second
// halfway through publishing; fence_probe: false, or one region, has none;
// fence_probe: true where nothing federates is refused naming the field.
func TestFenceProbePlan(t *testing.T) {
	three, single := harness.Topology(t, "three-region"), harness.Topology(t, "single-region")
	p := workload.NewPlan(spec(), three, 1)
	want := &workload.FencePlan{Holder: "us-east", Taker: "eu-west", At: 10 * time.Second}
	if !reflect.DeepEqual(p.Fence, want) {
		t.Errorf("fence = %+v, want %+v", p.Fence, want)
	}
	off := spec()
	off.FenceProbe = new(bool)
	if p := workload.NewPlan(off, three, 1); p.Fence != nil {
		t.Errorf("fence_probe: false: fence %+v, want none", p.Fence)
	}
	if p := workload.NewPlan(spec(), single, 1); p.Fence != nil {
		t.Errorf("one region: fence %+v, want none", p.Fence)
	}
	on := spec()
	yes := true
	on.FenceProbe = &yes
	if err := on.ValidateFor(single); err == nil || !strings.HasPrefix(err.Error(), "fence_probe:") {
		t.Errorf("fence_probe: true on one region: %v, want an error naming fence_probe", err)
	}
	if err := on.ValidateFor(three); err != nil {
		t.Errorf("fence_probe: true on three regions: %v", err)
	}
}

// TestSlowProbePlan: the slow probe runs in the first region that keeps
// its room to itself, on gw-1, flooded through gw-2 when the region has
// two gateways; slow_probe: false has none; a region that federates
// local:* is passed over, and slow_probe: true where every region does is
// refused naming the field.
func TestSlowProbePlan(t *testing.T) {
	three, single := harness.Topology(t, "three-region"), harness.Topology(t, "single-region")
	want := &workload.SlowPlan{Region: "us-east", Node: "gw-1", Publisher: "gw-2", Room: "local:us-east:slow-probe"}
	if p := workload.NewPlan(spec(), three, 1); !reflect.DeepEqual(p.Slow, want) {
		t.Errorf("three regions: slow = %+v, want %+v", p.Slow, want)
	}
	if p := workload.NewPlan(spec(), single, 1); !reflect.DeepEqual(p.Slow, want) {
		t.Errorf("one region: slow = %+v, want %+v", p.Slow, want)
	}
	off := spec()
	off.SlowProbe = new(bool)
	if p := workload.NewPlan(off, three, 1); p.Slow != nil {
		t.Errorf("slow_probe: false: slow %+v, want none", p.Slow)
	}
	leaky := *three
	leaky.Regions = slices.Clone(three.Regions)
	leaky.Regions[0].Federate = []string{"local:*"}
	leaky.Regions[1].Gateways = 1
	want = &workload.SlowPlan{Region: leaky.Regions[1].Name, Node: "gw-1", Publisher: "gw-1", Room: "local:" + leaky.Regions[1].Name + ":slow-probe"}
	if p := workload.NewPlan(spec(), &leaky, 1); !reflect.DeepEqual(p.Slow, want) {
		t.Errorf("first region federates local:*: slow = %+v, want %+v", p.Slow, want)
	}
	for i := range leaky.Regions {
		leaky.Regions[i].Federate = []string{"*"}
	}
	if p := workload.NewPlan(spec(), &leaky, 1); p.Slow != nil {
		t.Errorf("every region federates *: slow %+v, want none", p.Slow)
	}
	on := spec()
	yes := true
	on.SlowProbe = &yes
	if err := on.ValidateFor(&leaky); err == nil || !strings.HasPrefix(err.Error(), "slow_probe:") {
		t.Errorf("slow_probe: true where every region federates *: %v, want an error naming slow_probe", err)
	}
	if err := on.ValidateFor(single); err != nil {
		t.Errorf("slow_probe: true on one region: %v", err)
	}
}

// TestSlowFloodOverflowsWhatTheGatewayMayHold: the flood is the send queue,
// a write batch and both socket buffers' worth of 4 KB messages (doubled,
// as Linux doubles them), plus a tenth; exact for the gateway's defaults.
func TestSlowFloodOverflowsWhatTheGatewayMayHold(t *testing.T) {
	// 1024 + 64 + ceil((2×256 KiB + 2×4 KiB + 1 KiB) / 4 KiB) = 1088 + 131 = 1219; + 121.
	if got := workload.SlowFlood(workload.GatewayLimits{SendQueue: 1024, SendBuffer: 256 << 10}); got != 1340 {
		t.Errorf("default gateway: flood %d, want 1340", got)
	}
	// 64 + 64 + ceil((2×16 KiB + 9 KiB) / 4 KiB) = 128 + 11 = 139; + 32 (at least).
	if got := workload.SlowFlood(workload.GatewayLimits{SendQueue: 64, SendBuffer: 16 << 10}); got != 171 {
		t.Errorf("--send-queue 64 --send-buffer 16384: flood %d, want 171", got)
	}
	if auto, set := workload.SlowFlood(workload.GatewayLimits{SendQueue: 1024}), workload.SlowFlood(workload.GatewayLimits{SendQueue: 1024, SendBuffer: 256 << 10}); auto <= set {
		t.Errorf("autotuned send buffer: flood %d, want more than with 256 KiB (%d)", auto, set)
	}
}
