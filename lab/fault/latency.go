package fault

import (
	"context"
	"fmt"

	"github.com/geolab/geolab/lab/topology"
)

// latencyKind adds round-trip latency and jitter to every link between two
// regions (or to one link): half of each in each direction. Heal removes it.
type latencyKind struct{}

func init() { register(latencyKind{}) }

func (latencyKind) Name() string { return "latency" }
func (latencyKind) Doc() string {
	return "add latency (and jitter) to each round trip between two regions or on one link"
}

func (latencyKind) Validate(s Spec, t *topology.Topology) error {
	if err := only(s, "regions", "link", "latency", "jitter"); err != nil {
		return err
	}
	if s.Latency <= 0 {
		return fmt.Errorf("latency: must be positive, got %s", s.Latency)
	}
	if s.Jitter < 0 || s.Jitter > s.Latency {
		return fmt.Errorf("jitter: must be in 0..latency (%s), got %s", s.Latency, s.Jitter)
	}
	return pairOrLink(s, t)
}

func (latencyKind) Inject(_ context.Context, w World, s Spec, id string) (Heal, error) {
	links, err := selectPairOrLink(w, s)
	if err != nil {
		return nil, err
	}
	lat, jit := halves(s.Latency.Milliseconds()), halves(s.Jitter.Milliseconds())
	return addToxics(w, links, id, "latency", []string{"upstream", "downstream"}, func(st string) map[string]any {
		i := 0
		if st == "downstream" {
			i = 1
		}
		return map[string]any{"latency": lat[i], "jitter": jit[i]}
	})
}

// halves splits whole milliseconds into two parts that add up to ms.
func halves(ms int64) [2]int64 { return [2]int64{ms / 2, ms - ms/2} }
