// Package workload drives a lab with simulated users: seeded clients, each
// living in a home region, reaching gateways through the resolver and their
// client links, subscribed to federated and region-local rooms, publishing
// on a schedule drawn from one seed. Every frame they send and receive, and
// every change of their connection, goes into the run's history.
//
//	seed ─▶ Plan (clients, rooms, publish schedule) ─▶ Run: Go clients ─▶ gateways
//	                                                        └─ OnFrame/OnState ─▶ history
//
// The same seed and spec give the same plan: the same clients in the same
// regions, the same rooms, the same publishes at the same offsets, the same
// leaves, rejoins and reconnects (churn) and the same leak probes.
package workload

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/geolab/geolab/lab/topology"
)

// Spec is a workload as a scenario file gives it (docs/scenarios.md).
type Spec struct {
	// Clients in all; they are spread over home regions by the topology's
	// client weights.
	Clients int `yaml:"clients" json:"clients"`
	// FederatedRooms are rooms named FederatedPrefix1 … N (default prefix
	// "tenant:"), which must match the topology's federate patterns to
	// cross regions.
	FederatedRooms  int    `yaml:"federated_rooms" json:"federated_rooms"`
	FederatedPrefix string `yaml:"federated_prefix,omitempty" json:"federated_prefix,omitempty"`
	// LocalRooms per region, named local:REGION:1 … N; a client subscribes
	// to one of its home region's.
	LocalRooms int `yaml:"local_rooms" json:"local_rooms"`
	// RoomsPerClient is how many federated rooms each client joins
	// (default min(3, FederatedRooms)).
	RoomsPerClient int `yaml:"rooms_per_client,omitempty" json:"rooms_per_client,omitempty"`
	// PublishRate is publishes per second over the whole workload.
	PublishRate float64 `yaml:"publish_rate" json:"publish_rate"`
	// PayloadBytes is the size of each publish's data.
	PayloadBytes int `yaml:"payload_bytes" json:"payload_bytes"`
	// Duration is how long publishing lasts.
	Duration time.Duration `yaml:"duration" json:"duration"`
	// Bursts add extra publishes: Count publishes spread over Within,
	// starting At after the start.
	Bursts []Burst `yaml:"bursts,omitempty" json:"bursts,omitempty"`
	// Heartbeat is the clients' ping interval; a connection silent for 3×
	// this long is given up (default 1s, so that blackholes are noticed).
	Heartbeat time.Duration `yaml:"heartbeat,omitempty" json:"heartbeat,omitempty"`
	// Quiesce bounds the wait after publishing for every publish to be
	// answered and deliveries to settle (default 30s).
	Quiesce time.Duration `yaml:"quiesce,omitempty" json:"quiesce,omitempty"`
	// Churn is clients acting of their own accord (docs/scenarios.md).
	Churn Churn `yaml:"churn,omitempty" json:"churn,omitempty"`
	// LeakProbes adds one probe client per region, p-REGION, in every
	// local room of every other region, which at the end of the run asks
	// its region for those rooms' whole stored history: a region-local
	// event that leaked into another region is then on the wire
	// (docs/scenarios.md). nil: on when the topology has two regions or
	// more and LocalRooms > 0.
	LeakProbes *bool `yaml:"leak_probes,omitempty" json:"leak_probes,omitempty"`
	// FenceProbe holds a session in the first federating region and takes
	// it over in the second halfway through publishing: the first must
	// close the held connection with 4003 (G11, docs/scenarios.md). nil:
	// on when the topology has two federating regions.
	FenceProbe *bool `yaml:"fence_probe,omitempty" json:"fence_probe,omitempty"`
	// SlowProbe, before the timeline starts, floods a room of its own in
	// one region while a connection subscribed to it reads nothing: the
	// gateway must cut that connection with 4001 and hold nobody else up
	// (G10, docs/scenarios.md). nil: on when the topology has a region
	// that keeps the probe's room to itself (every shipped one does).
	SlowProbe *bool `yaml:"slow_probe,omitempty" json:"slow_probe,omitempty"`
}

// Burst is a spike of publishes.
type Burst struct {
	At     time.Duration `yaml:"at" json:"at"`
	Count  int           `yaml:"count" json:"count"`
	Within time.Duration `yaml:"within" json:"within"`
}

// Limits keep a workload within what one machine can drive. MaxClients is
// what one process drives; a plan may hold up to MaxPlanClients when its
// clients run in workload agents, at most MaxClients each (lab/run checks
// it, docs/agents.md).
const (
	MaxClients     = 2000
	MaxPlanClients = 100_000
	MaxPublishes   = 500_000
	MaxPayload     = 64 << 10
)

// Defaults fills what a spec left out.
func (s *Spec) Defaults() {
	if s.FederatedPrefix == "" {
		s.FederatedPrefix = "tenant:"
	}
	if s.RoomsPerClient == 0 {
		s.RoomsPerClient = min(3, s.FederatedRooms)
	}
	if s.Heartbeat == 0 {
		s.Heartbeat = time.Second
	}
	if s.Quiesce == 0 {
		s.Quiesce = 30 * time.Second
	}
	if s.PayloadBytes == 0 {
		s.PayloadBytes = 240
	}
	if s.Churn.Leaves > 0 && s.Churn.RejoinAfter == 0 {
		s.Churn.RejoinAfter = DefaultRejoinAfter
	}
}

// Validate names the first field that is wrong.
func (s *Spec) Validate() error {
	switch {
	case s.Clients < 1 || s.Clients > MaxPlanClients:
		return fmt.Errorf("clients: want 1..%d (more than %d need workload agents, %d each), got %d", MaxPlanClients, MaxClients, MaxClients, s.Clients)
	case s.FederatedRooms < 0 || s.LocalRooms < 0:
		return fmt.Errorf("federated_rooms and local_rooms must not be negative")
	case s.FederatedRooms+s.LocalRooms == 0:
		return fmt.Errorf("federated_rooms, local_rooms: at least one room is needed")
	case s.RoomsPerClient < 0 || s.RoomsPerClient > s.FederatedRooms:
		return fmt.Errorf("rooms_per_client: want 0..federated_rooms (%d), got %d", s.FederatedRooms, s.RoomsPerClient)
	case s.PublishRate < 0:
		return fmt.Errorf("publish_rate must not be negative, got %g", s.PublishRate)
	case s.PayloadBytes < 0 || s.PayloadBytes > MaxPayload:
		return fmt.Errorf("payload_bytes: want 0..%d, got %d", MaxPayload, s.PayloadBytes)
	case s.Duration <= 0 || s.Duration > time.Hour:
		return fmt.Errorf("duration: want more than 0 and at most 1h, got %s", s.Duration)
	case s.Heartbeat < 100*time.Millisecond:
		return fmt.Errorf("heartbeat: want at least 100ms, got %s", s.Heartbeat)
	case s.Quiesce < time.Second || s.Quiesce > 10*time.Minute:
		return fmt.Errorf("quiesce: want 1s..10m, got %s", s.Quiesce)
	}
	if err := s.validateChurn(); err != nil {
		return err
	}
	if s.LeakProbes != nil && *s.LeakProbes && s.LocalRooms == 0 {
		return fmt.Errorf("leak_probes: true needs local_rooms > 0 (probes join the other regions' local rooms)")
	}
	n := s.PublishRate * s.Duration.Seconds()
	for i, b := range s.Bursts {
		if b.At < 0 || b.At > s.Duration || b.Count < 1 || b.Within < 0 {
			return fmt.Errorf("bursts[%d]: want at in 0..duration, count ≥ 1, within ≥ 0", i)
		}
		n += float64(b.Count)
	}
	if n > MaxPublishes {
		return fmt.Errorf("publish_rate × duration + bursts = %.0f publishes, more than %d", n, MaxPublishes)
	}
	return nil
}

// Plan is a workload drawn from a seed: who lives where, who is in which
// room, every publish with its offset from the start, the churn and the
// leak probes.
type Plan struct {
	Clients   []ClientPlan
	Publishes []Publish // by offset
	// Churn is every leave, rejoin and reconnect, by offset; every one of
	// them falls within the publishing duration.
	Churn []ChurnEvent
	// Probes are the leak probes, one per region in the topology's order
	// (empty when leak probes are off). They never publish and never
	// churn.
	Probes []ClientPlan
	// Fence is the fence probe's plan (nil when it is off).
	Fence *FencePlan `json:",omitempty"`
	// Slow is the slow probe's plan (nil when it is off).
	Slow *SlowPlan `json:",omitempty"`
}

// ClientPlan is one simulated user, or a leak probe.
type ClientPlan struct {
	Name  string // c-REGION-NNN; p-REGION for a probe
	Home  string
	Rooms []string
}

// Publish is one scheduled publish.
type Publish struct {
	At     time.Duration
	Client int    // index into Plan.Clients
	Room   string // one of the client's rooms
	ID     string // the client message id
}

// NewPlan draws the plan of s over topo from seed.
func NewPlan(s Spec, topo *topology.Topology, seed int64) *Plan {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
	p := &Plan{}
	homes := spread(s.Clients, topo)
	perHome := map[string]int{}
	for _, home := range homes {
		perHome[home]++
		c := ClientPlan{Name: fmt.Sprintf("c-%s-%03d", home, perHome[home]), Home: home}
		for _, i := range rng.Perm(s.FederatedRooms)[:s.RoomsPerClient] {
			c.Rooms = append(c.Rooms, fmt.Sprintf("%s%d", s.FederatedPrefix, i+1))
		}
		if s.LocalRooms > 0 {
			c.Rooms = append(c.Rooms, localRoom(home, rng.IntN(s.LocalRooms)+1))
		}
		slices.Sort(c.Rooms)
		p.Clients = append(p.Clients, c)
	}
	count := make([]int, len(p.Clients))
	add := func(at time.Duration) {
		ci := rng.IntN(len(p.Clients))
		c := p.Clients[ci]
		if len(c.Rooms) == 0 {
			return
		}
		count[ci]++
		p.Publishes = append(p.Publishes, Publish{At: at, Client: ci, Room: c.Rooms[rng.IntN(len(c.Rooms))],
			ID: fmt.Sprintf("%s-m%d", c.Name, count[ci])})
	}
	if s.PublishRate > 0 {
		step := time.Duration(float64(time.Second) / s.PublishRate)
		for at := step / 2; at < s.Duration; at += step {
			add(at)
		}
	}
	for _, b := range s.Bursts {
		for i := range b.Count {
			add(b.At + time.Duration(int64(b.Within)*int64(i)/int64(b.Count)))
		}
	}
	slices.SortStableFunc(p.Publishes, func(a, b Publish) int { return int(a.At - b.At) })
	p.Churn = planChurn(s, p.Clients, seed)
	if s.LeakProbesOn(topo) {
		p.Probes = planProbes(s, topo)
	}
	if s.FenceProbeOn(topo) {
		p.Fence = planFence(s, topo)
	}
	if s.SlowProbeOn(topo) {
		p.Slow = planSlow(topo)
	}
	return p
}

// spread assigns n clients to home regions in proportion to the topology's
// client weights (largest remainder), interleaved so that any prefix of the
// list is spread too.
func spread(n int, topo *topology.Topology) []string {
	total := 0.0
	names := topo.RegionNames()
	for _, r := range names {
		total += topo.Clients[r]
	}
	quota := map[string]int{}
	given := 0
	type rem struct {
		r string
		f float64
	}
	var rems []rem
	for _, r := range names {
		exact := float64(n) * topo.Clients[r] / total
		quota[r] = int(exact)
		given += quota[r]
		rems = append(rems, rem{r, exact - float64(quota[r])})
	}
	slices.SortStableFunc(rems, func(a, b rem) int {
		switch {
		case a.f > b.f:
			return -1
		case a.f < b.f:
			return 1
		}
		return 0
	})
	for i := 0; given < n; i++ {
		quota[rems[i%len(rems)].r]++
		given++
	}
	var out []string
	for len(out) < n {
		for _, r := range names {
			if quota[r] > 0 {
				out = append(out, r)
				quota[r]--
			}
		}
	}
	return out
}
