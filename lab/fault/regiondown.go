package fault

import (
	"context"
	"errors"
	"fmt"

	"github.com/geolab/geolab/lab/provider"
	"github.com/geolab/geolab/lab/topology"
)

// regionDownKind kills everything of a region with SIGKILL — its gateways,
// its bridge and its Redis — as a datacenter losing power. Heal brings the
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
	for _, n := range gws {
		if err := n.Kill(); err != nil {
			return nil, err
		}
	}
	if bridge != nil {
		if err := bridge.Kill(); err != nil {
			return nil, err
		}
	}
	red, err := w.RedisOf(region)
	if err != nil {
		return nil, err
	}
	if err := red.Kill(); err != nil {
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
