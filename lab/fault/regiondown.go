package fault

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/geolab/geolab/lab/provider"
	"github.com/geolab/geolab/lab/topology"
)

// regionDownKind kills everything of a region with SIGKILL — its gateways,
// its bridge and its Redis, all at once — as a datacenter losing power. Heal brings the
// Redis back (empty with lose_data), then the gateways, then the bridge.
type regionDownKind struct{}

func init() { register(regionDownKind{}) }

func (regionDownKind) Name() string { return "region-down" }
func (regionDownKind) Doc() string {
	return "kill -9 a region's gateways, bridge and Redis; heal brings them back (lose_data: Redis empty)"
}

func (regionDownKind) Validate(s Spec, t *topology.Topology) error {
	if err := only(s, "regions", "lose_data"); err != nil {
		return err
	}
	return needStandalone(s, t, "region-down")
}

func (regionDownKind) Inject(_ context.Context, w World, s Spec, _ string) (Heal, error) {
	region := s.Regions[0]
	r, _ := w.Topology().Region(region)
	var gws []provider.Node
	for i := 1; i <= r.Gateways; i++ {
		n, err := w.GatewayOf(region, fmt.Sprintf("gw-%d", i))
		if err != nil {
			return nil, err
		}
		gws = append(gws, n)
	}
	bridge, _ := w.BridgeOf(region) // nil in a region that federates nothing
	red, err := w.RedisOf(region)
	if err != nil {
		return nil, err
	}
	// Every part at once: a kill through an engine takes a few hundred ms,
	// and killed one after another, the clients of the first gateway would
	// land on the next before it dies too.
	victims := append(slices.Clone(gws), red)
	if bridge != nil {
		victims = append(victims, bridge)
	}
	errs := make([]error, len(victims))
	var wg sync.WaitGroup
	for i, n := range victims {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = n.Kill() }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		if err := restartRedis(ctx, w, region, s.LoseData); err != nil {
			return err
		}
		var errs []error
		for _, n := range gws {
			errs = append(errs, restartIfDown(ctx, n))
		}
		if bridge != nil {
			errs = append(errs, restartIfDown(ctx, bridge))
		}
		return errors.Join(errs...)
	}, nil
}
