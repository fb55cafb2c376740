package fault

import (
	"context"
	"time"

	"github.com/geolab/geolab/lab/provider"
	"github.com/geolab/geolab/lab/topology"
)

// gatewayKillKind kills one gateway node with SIGKILL: its clients' sockets
// die without a close frame. Heal restarts it on the same address.
type gatewayKillKind struct{}

// gatewayPauseKind freezes one gateway with SIGSTOP: sockets stay open,
// nothing answers. Heal sends SIGCONT.
type gatewayPauseKind struct{}

// gatewayDrainKind sends SIGTERM: the gateway says bye (reconnect: true)
// behind a port that answers 503 draining; its clients close with 1001 and
// reconnect elsewhere (or are closed with 1001 at its drain timeout), and it
// exits. Heal starts it again.
type gatewayDrainKind struct{}

func init() {
	register(gatewayKillKind{})
	register(gatewayPauseKind{})
	register(gatewayDrainKind{})
}

func validateGateway(s Spec, t *topology.Topology) error {
	if err := only(s, "regions", "node"); err != nil {
		return err
	}
	if err := needRegions(s, t, 1); err != nil {
		return err
	}
	return needNode(&s, t)
}

func gatewayOf(w World, s Spec) (provider.Node, error) {
	if s.Node == "" {
		s.Node = "gw-1"
	}
	return w.GatewayOf(s.Regions[0], s.Node)
}

// restartIfDown starts n again unless it is running (resuming it if paused).
func restartIfDown(ctx context.Context, n provider.Node) error {
	if n.Running() {
		if n.Paused() {
			return n.Resume()
		}
		return nil
	}
	return n.Restart(ctx)
}

func (gatewayKillKind) Name() string { return "gateway-kill" }
func (gatewayKillKind) Doc() string  { return "kill -9 one gateway node; heal restarts it" }
func (gatewayKillKind) Validate(s Spec, t *topology.Topology) error {
	return validateGateway(s, t)
}
func (gatewayKillKind) Inject(_ context.Context, w World, s Spec, _ string) (Heal, error) {
	n, err := gatewayOf(w, s)
	if err != nil {
		return nil, err
	}
	if err := n.Kill(); err != nil {
		return nil, err
	}
	return func(ctx context.Context) error { return restartIfDown(ctx, n) }, nil
}

func (gatewayPauseKind) Name() string { return "gateway-pause" }
func (gatewayPauseKind) Doc() string  { return "freeze one gateway node (SIGSTOP); heal continues it" }
func (gatewayPauseKind) Validate(s Spec, t *topology.Topology) error {
	return validateGateway(s, t)
}
func (gatewayPauseKind) Inject(_ context.Context, w World, s Spec, _ string) (Heal, error) {
	n, err := gatewayOf(w, s)
	if err != nil {
		return nil, err
	}
	if err := n.Pause(); err != nil {
		return nil, err
	}
	return func(ctx context.Context) error { return restartIfDown(ctx, n) }, nil
}

func (gatewayDrainKind) Name() string { return "gateway-drain" }
func (gatewayDrainKind) Doc() string {
	return "drain one gateway node (SIGTERM: bye, close 1001, exit); heal starts it again"
}
func (gatewayDrainKind) Validate(s Spec, t *topology.Topology) error {
	return validateGateway(s, t)
}
func (gatewayDrainKind) Inject(_ context.Context, w World, s Spec, _ string) (Heal, error) {
	n, err := gatewayOf(w, s)
	if err != nil {
		return nil, err
	}
	if err := n.Terminate(15 * time.Second); err != nil {
		return nil, err
	}
	return func(ctx context.Context) error { return restartIfDown(ctx, n) }, nil
}
