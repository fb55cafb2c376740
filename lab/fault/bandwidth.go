package fault

import (
	"context"
	"fmt"

	"github.com/geolab/geolab/lab/topology"
)

// bandwidthKind caps the throughput of every link between two regions (or
// of one link) at RateKB KB/s in each direction. Heal removes the cap.
type bandwidthKind struct{}

func init() { register(bandwidthKind{}) }

func (bandwidthKind) Name() string { return "bandwidth" }
func (bandwidthKind) Doc() string {
	return "cap throughput (KB/s each way) between two regions or on one link"
}

func (bandwidthKind) Validate(s Spec, t *topology.Topology) error {
	if err := only(s, "regions", "link", "rate_kb"); err != nil {
		return err
	}
	if s.RateKB <= 0 {
		return fmt.Errorf("rate_kb: must be positive, got %d", s.RateKB)
	}
	return pairOrLink(s, t)
}

func (bandwidthKind) Inject(_ context.Context, w World, s Spec, id string) (Heal, error) {
	links, err := selectPairOrLink(w, s)
	if err != nil {
		return nil, err
	}
	return addToxics(w, links, id, "bandwidth", []string{"upstream", "downstream"}, func(string) map[string]any {
		return map[string]any{"rate": s.RateKB}
	})
}
