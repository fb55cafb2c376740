package fault

import (
	"context"
	"fmt"

	"github.com/geolab/geolab/lab/link"
	"github.com/geolab/geolab/lab/topology"
)

// redisBlipKind cuts every gateway→Redis connection of a region: its LAN
// links are closed (new connections refused) until healed, or — with no
// duration — re-opened at once, so that gateways see a blip and reconnect.
// With mode blackhole the links hang instead (nothing passes, nothing
// answers) until healed: only the gateways' own timeouts notice.
type redisBlipKind struct{}

// redisKillKind kills a region's Redis with SIGKILL; heal restarts it (empty
// with lose_data, else with whatever its persistence kept).
type redisKillKind struct{}

// redisRestartKind kills and restarts a region's Redis at once (empty with
// lose_data); its heal has nothing left to do.
type redisRestartKind struct{}

func init() {
	register(redisBlipKind{})
	register(redisKillKind{})
	register(redisRestartKind{})
}

func (redisBlipKind) Name() string { return "redis-blip" }
func (redisBlipKind) Doc() string {
	return "reset every gateway→Redis connection of a region (held closed for the fault's duration)"
}
func (redisBlipKind) Validate(s Spec, t *topology.Topology) error {
	if err := only(s, "regions", "mode"); err != nil {
		return err
	}
	if err := checkMode(s.Mode); err != nil {
		return err
	}
	return needRegions(s, t, 1)
}

func (redisBlipKind) Inject(ctx context.Context, w World, s Spec, id string) (Heal, error) {
	r := s.Regions[0]
	lans := w.Net().Select(func(l link.Link) bool { return l.Kind == link.LAN && l.From == r })
	heal, err := cut(w, lans, id, s.Mode)
	if err != nil || s.For > 0 || s.Mode == "blackhole" {
		return heal, err
	}
	if err := heal(ctx); err != nil {
		return nil, err
	}
	return func(context.Context) error { return nil }, nil
}

func (redisKillKind) Name() string { return "redis-kill" }
func (redisKillKind) Doc() string {
	return "kill -9 a region's Redis; heal restarts it (lose_data: empty)"
}
func (redisKillKind) Validate(s Spec, t *topology.Topology) error {
	if err := only(s, "regions", "lose_data"); err != nil {
		return err
	}
	return needStandalone(s, t, "redis-kill")
}

func (redisKillKind) Inject(_ context.Context, w World, s Spec, _ string) (Heal, error) {
	red, err := w.RedisOf(s.Regions[0])
	if err != nil {
		return nil, err
	}
	if err := red.Kill(); err != nil {
		return nil, err
	}
	return func(ctx context.Context) error { return restartRedis(ctx, w, s.Regions[0], s.LoseData) }, nil
}

func (redisRestartKind) Name() string { return "redis-restart" }
func (redisRestartKind) Doc() string {
	return "kill -9 and restart a region's Redis at once (lose_data: it comes back empty)"
}
func (redisRestartKind) Validate(s Spec, t *topology.Topology) error {
	if err := only(s, "regions", "lose_data"); err != nil {
		return err
	}
	return needStandalone(s, t, "redis-restart")
}

// needStandalone checks that s names one region and that it runs one Redis:
// the kinds that kill "the region's Redis" have none to kill in a cluster
// region (refused before anything is killed).
func needStandalone(s Spec, t *topology.Topology, kind string) error {
	if err := needRegions(s, t, 1); err != nil {
		return err
	}
	if r, _ := t.Region(s.Regions[0]); r.Redis.Mode == topology.RedisCluster {
		return fmt.Errorf("regions[0]: %s runs a Redis Cluster, not one Redis: %s needs one (shard-kill and shard-failover act on a cluster's shards)", r.Name, kind)
	}
	return nil
}

func (redisRestartKind) Inject(ctx context.Context, w World, s Spec, _ string) (Heal, error) {
	red, err := w.RedisOf(s.Regions[0])
	if err != nil {
		return nil, err
	}
	if err := red.Kill(); err != nil {
		return nil, err
	}
	if err := restartRedis(ctx, w, s.Regions[0], s.LoseData); err != nil {
		return nil, err
	}
	return func(context.Context) error { return nil }, nil
}

// restartRedis starts a region's Redis again unless it runs, wiping its data
// first when loseData.
func restartRedis(ctx context.Context, w World, region string, loseData bool) error {
	red, err := w.RedisOf(region)
	if err != nil {
		return err
	}
	if red.Running() {
		if !red.Paused() {
			return nil
		}
		return red.Resume()
	}
	if loseData {
		if err := red.Wipe(); err != nil {
			return err
		}
	}
	if err := red.Restart(ctx); err != nil {
		return fmt.Errorf("restart redis of %s: %w", region, err)
	}
	return nil
}
