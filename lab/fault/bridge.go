package fault

import (
	"context"

	"github.com/geolab/geolab/lab/topology"
)

// bridgeKillKind kills a region's federation bridge with SIGKILL; heal
// restarts it, and it resumes from its checkpoint.
type bridgeKillKind struct{}

// bridgePauseKind freezes a region's bridge with SIGSTOP; heal continues it.
type bridgePauseKind struct{}

func init() {
	register(bridgeKillKind{})
	register(bridgePauseKind{})
}

func validateBridge(s Spec, t *topology.Topology) error {
	if err := only(s, "regions"); err != nil {
		return err
	}
	return needRegions(s, t, 1)
}

func (bridgeKillKind) Name() string { return "bridge-kill" }
func (bridgeKillKind) Doc() string  { return "kill -9 a region's federation bridge; heal restarts it" }
func (bridgeKillKind) Validate(s Spec, t *topology.Topology) error {
	return validateBridge(s, t)
}
func (bridgeKillKind) Inject(_ context.Context, w World, s Spec, _ string) (Heal, error) {
	n, err := w.BridgeOf(s.Regions[0])
	if err != nil {
		return nil, err
	}
	if err := n.Kill(); err != nil {
		return nil, err
	}
	return func(ctx context.Context) error { return restartIfDown(ctx, n) }, nil
}

func (bridgePauseKind) Name() string { return "bridge-pause" }
func (bridgePauseKind) Doc() string  { return "freeze a region's bridge (SIGSTOP); heal continues it" }
func (bridgePauseKind) Validate(s Spec, t *topology.Topology) error {
	return validateBridge(s, t)
}
func (bridgePauseKind) Inject(_ context.Context, w World, s Spec, _ string) (Heal, error) {
	n, err := w.BridgeOf(s.Regions[0])
	if err != nil {
		return nil, err
	}
	if err := n.Pause(); err != nil {
		return nil, err
	}
	return func(ctx context.Context) error { return restartIfDown(ctx, n) }, nil
}
