// Package fault is the lab's catalogue of trouble: each kind (one file each)
// knows how to inject itself into a running lab and returns its inverse.
// Every fault is recorded in a Book, which heals it when asked, when its
// duration is up, and — for whatever is still active — when the lab closes.
//
//	Spec ─▶ Kind.Validate ─▶ Kind.Inject(World) ─▶ Heal (kept in the Book)
package fault

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/geolab/geolab/lab/link"
	"github.com/geolab/geolab/lab/provider"
	"github.com/geolab/geolab/lab/topology"
)

// Spec describes one fault. Which fields a kind reads is documented in
// docs/faults.md; the others must be empty.
type Spec struct {
	Kind string `yaml:"kind" json:"kind"`
	// Regions: one region (isolate, region-down, redis-*, shard-*,
	// gateway-*, bridge-*, slow-client) or two (latency, bandwidth,
	// partition).
	Regions []string `yaml:"regions,omitempty" json:"regions,omitempty"`
	// Node is the gateway node of gateway-* and slow-client (default gw-1).
	Node string `yaml:"node,omitempty" json:"node,omitempty"`
	// Link names a single link instead of a region pair (latency, bandwidth).
	Link string `yaml:"link,omitempty" json:"link,omitempty"`
	// Mode of a partition or isolation: reset (connections reset, new ones
	// refused) or blackhole (connections accepted, nothing passes). Default
	// reset.
	Mode string `yaml:"mode,omitempty" json:"mode,omitempty"`
	// Direction of a partition: both (default) or one (Regions[0] cannot
	// reach Regions[1]; packets the other way pass).
	Direction string `yaml:"direction,omitempty" json:"direction,omitempty"`
	// Latency and Jitter added to each round trip (latency).
	Latency time.Duration `yaml:"latency,omitempty" json:"latency,omitempty"`
	Jitter  time.Duration `yaml:"jitter,omitempty" json:"jitter,omitempty"`
	// RateKB is the bandwidth cap in KB/s per direction (bandwidth).
	RateKB int `yaml:"rate_kb,omitempty" json:"rate_kb,omitempty"`
	// LoseData restarts Redis empty, as one without persistence does
	// (redis-kill, redis-restart, region-down).
	LoseData bool `yaml:"lose_data,omitempty" json:"lose_data,omitempty"`
	// Shard of shard-kill and shard-failover: a cluster region's shard,
	// numbered from 1 by its lowest slot (default 1).
	Shard int `yaml:"shard,omitempty" json:"shard,omitempty"`
	// Room and Clients of a slow-client fault (Clients default 1).
	Room    string `yaml:"room,omitempty" json:"room,omitempty"`
	Clients int    `yaml:"clients,omitempty" json:"clients,omitempty"`
	// For heals the fault automatically after this long (0: until healed).
	For time.Duration `yaml:"for,omitempty" json:"for,omitempty"`
}

// Target is the spec's object in words, e.g. "us-east<->eu-west".
func (s Spec) Target() string {
	switch {
	case s.Link != "":
		return s.Link
	case len(s.Regions) == 2 && s.Direction == "one":
		return s.Regions[0] + "->" + s.Regions[1]
	case len(s.Regions) == 2:
		return s.Regions[0] + "<->" + s.Regions[1]
	case len(s.Regions) == 1 && s.Node != "":
		return s.Regions[0] + "/" + s.Node
	case len(s.Regions) == 1 && s.Shard != 0:
		return fmt.Sprintf("%s/shard-%d", s.Regions[0], s.Shard)
	case len(s.Regions) == 1:
		return s.Regions[0]
	}
	return ""
}

// Heal undoes an injected fault. It must be safe to call once the lab has
// already changed again (e.g. a killed process restarted by someone else).
type Heal func(ctx context.Context) error

// World is what a fault acts on: the lab, seen through its links and
// processes. *lab.Lab implements it.
type World interface {
	Topology() *topology.Topology
	Net() *link.Net
	RedisOf(region string) (provider.Redis, error)
	// ClusterOf is a region's Redis Cluster (an error for a region that
	// runs one Redis).
	ClusterOf(region string) (provider.RedisCluster, error)
	GatewayOf(region, node string) (provider.Node, error)
	BridgeOf(region string) (provider.Node, error)
	// GatewayAddr is a gateway's own (unproxied) address.
	GatewayAddr(region, node string) (string, error)
	// Token mints a client token.
	Token(sub string, read, publish []string, ttl time.Duration) (string, error)
}

// Kind is one kind of fault.
type Kind interface {
	// Name is the kind's name in specs and on the command line.
	Name() string
	// Doc is one line for `geolab fault --help`.
	Doc() string
	// Validate checks the spec against the topology, naming the field.
	Validate(s Spec, t *topology.Topology) error
	// Inject applies the fault; id names what it adds (toxics, holds).
	Inject(ctx context.Context, w World, s Spec, id string) (Heal, error)
}

var kinds = map[string]Kind{}

func register(k Kind) { kinds[k.Name()] = k }

// Kinds lists every kind, by name.
func Kinds() []Kind {
	out := make([]Kind, 0, len(kinds))
	for _, k := range kinds {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out
}

// refused are faults the lab knows of and cannot inject faithfully, each
// with the reason, so that asking for one says why instead of "unknown"
// (docs/faults.md says more).
var refused = map[string]string{
	"shard-isolate": "the lab cannot cut one primary from its replicas and the other primaries: " +
		"each cluster node has one Toxiproxy link (lan.REGION.redis-K), shared by its clients and by its replicas " +
		"(a replica follows its primary at the address it announces), and the cluster bus runs between the nodes' " +
		"own bus ports through no proxy; cutting the primary's link would cut its clients as well and leave the bus " +
		"up, which is not an isolated primary. It needs a proxy per pair of nodes on the bus and per replica " +
		"(docs/faults.md#shard-isolate)",
}

// Validate checks s: a known kind, and what that kind needs.
func Validate(s Spec, t *topology.Topology) error {
	if why, ok := refused[s.Kind]; ok {
		return fmt.Errorf("%s: %s", s.Kind, why)
	}
	k, ok := kinds[s.Kind]
	if !ok {
		names := make([]string, 0, len(kinds))
		for _, k := range Kinds() {
			names = append(names, k.Name())
		}
		return fmt.Errorf("fault kind %q is unknown (want one of %s)", s.Kind, strings.Join(names, ", "))
	}
	if s.For < 0 {
		return fmt.Errorf("%s: for must not be negative, got %s", s.Kind, s.For)
	}
	if err := k.Validate(s, t); err != nil {
		return fmt.Errorf("%s: %w", s.Kind, err)
	}
	return nil
}

// needRegions checks that s names n known, distinct regions.
func needRegions(s Spec, t *topology.Topology, n int) error {
	if len(s.Regions) != n {
		return fmt.Errorf("regions: want %d region(s), got %d (%v)", n, len(s.Regions), s.Regions)
	}
	for i, r := range s.Regions {
		if _, ok := t.Region(r); !ok {
			return fmt.Errorf("regions[%d]: no region %q in topology %s (have %s)", i, r, t.Name, strings.Join(t.RegionNames(), ", "))
		}
	}
	if n == 2 && s.Regions[0] == s.Regions[1] {
		return fmt.Errorf("regions: %s twice: want two different regions", s.Regions[0])
	}
	return nil
}

// needNode checks s.Node (default gw-1) against the region's gateways.
func needNode(s *Spec, t *topology.Topology) error {
	if s.Node == "" {
		s.Node = "gw-1"
	}
	r, _ := t.Region(s.Regions[0])
	for i := 1; i <= r.Gateways; i++ {
		if s.Node == fmt.Sprintf("gw-%d", i) {
			return nil
		}
	}
	return fmt.Errorf("node: %s has no gateway %q (gw-1 … gw-%d)", r.Name, s.Node, r.Gateways)
}

// only rejects fields a kind does not read, so that a typo is not a no-op.
func only(s Spec, allowed ...string) error {
	set := map[string]bool{}
	for _, a := range allowed {
		set[a] = true
	}
	used := map[string]bool{
		"regions": len(s.Regions) > 0, "node": s.Node != "", "link": s.Link != "", "mode": s.Mode != "",
		"direction": s.Direction != "", "latency": s.Latency != 0, "jitter": s.Jitter != 0,
		"rate_kb": s.RateKB != 0, "lose_data": s.LoseData, "room": s.Room != "", "clients": s.Clients != 0,
		"shard": s.Shard != 0,
	}
	var bad []string
	for f, u := range used {
		if u && !set[f] {
			bad = append(bad, f)
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return fmt.Errorf("%s does not apply to this kind (it reads: %s)", strings.Join(bad, ", "), strings.Join(allowed, ", "))
	}
	return nil
}

// pairOrLink checks the "two regions or one link" form of latency and
// bandwidth.
func pairOrLink(s Spec, t *topology.Topology) error {
	if s.Link != "" {
		if len(s.Regions) > 0 {
			return fmt.Errorf("give regions or link, not both")
		}
		return nil
	}
	return needRegions(s, t, 2)
}

// selectPairOrLink returns the links a latency or bandwidth fault acts on.
func selectPairOrLink(w World, s Spec) ([]link.Link, error) {
	if s.Link != "" {
		l, ok := w.Net().Get(s.Link)
		if !ok {
			return nil, fmt.Errorf("no link %q (the links of the lab's status list them)", s.Link)
		}
		return []link.Link{l}, nil
	}
	ls := w.Net().Select(func(l link.Link) bool { return l.Crosses(s.Regions[0], s.Regions[1]) })
	if len(ls) == 0 {
		return nil, fmt.Errorf("no links between %s and %s", s.Regions[0], s.Regions[1])
	}
	return ls, nil
}

// addToxics adds one toxic per (link, stream) and returns the heal that
// removes them all.
func addToxics(w World, links []link.Link, id, typ string, streams []string, attrs func(stream string) map[string]any) (Heal, error) {
	var added [][2]string
	heal := func(context.Context) error {
		var first error
		for _, a := range added {
			if err := w.Net().RemoveToxic(a[0], a[1]); err != nil && first == nil {
				first = err
			}
		}
		return first
	}
	for _, l := range links {
		for _, st := range streams {
			name := id + "_" + st
			if err := w.Net().AddToxic(l.Name, name, typ, st, attrs(st)); err != nil {
				_ = heal(context.Background())
				return nil, err
			}
			added = append(added, [2]string{l.Name, name})
		}
	}
	return heal, nil
}

// networkKinds act on links alone, through the Toxiproxy API: they need no
// process of the lab, so they work on a stack geolab did not start.
var networkKinds = []string{"bandwidth", "isolate", "latency", "partition", "redis-blip"}

// NetworkKinds lists the kinds that act on the network alone, by name.
func NetworkKinds() []string { return slices.Clone(networkKinds) }

// OnNetworkOnly reports whether kind acts on the network alone (see
// NetworkKinds).
func OnNetworkOnly(kind string) bool { return slices.Contains(networkKinds, kind) }
