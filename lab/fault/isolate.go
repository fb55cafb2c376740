package fault

import (
	"context"

	"github.com/geolab/geolab/lab/link"
	"github.com/geolab/geolab/lab/topology"
)

// isolateKind cuts a region's datacenter off the network: nothing reaches
// its gateways (not even its own region's clients, who live outside it, nor
// the resolver's health checks) or its Redis from other regions, and its
// bridge reaches no other region. Inside it, gateways still reach Redis;
// its clients can still reach other regions. Mode as for partition.
type isolateKind struct{}

func init() { register(isolateKind{}) }

func (isolateKind) Name() string { return "isolate" }
func (isolateKind) Doc() string {
	return "cut one region's datacenter off: no client, bridge or health check gets in or out (mode reset|blackhole)"
}

func (isolateKind) Validate(s Spec, t *topology.Topology) error {
	if err := only(s, "regions", "mode"); err != nil {
		return err
	}
	if err := checkMode(s.Mode); err != nil {
		return err
	}
	return needRegions(s, t, 1)
}

func (isolateKind) Inject(_ context.Context, w World, s Spec, id string) (Heal, error) {
	r := s.Regions[0]
	links := w.Net().Select(func(l link.Link) bool {
		return (l.Kind != link.LAN && l.To == r) || (l.Kind == link.WAN && l.From == r)
	})
	return cut(w, links, id, s.Mode)
}
