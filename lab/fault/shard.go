package fault

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/geolab/geolab/lab/provider"
	"github.com/geolab/geolab/lab/topology"
)

// shardKillKind kills one shard's primary of a cluster region with SIGKILL;
// the cluster promotes a replica of it on its own (after the nodes'
// cluster-node-timeout). Heal starts the killed node again: it rejoins as a
// replica of whoever took over.
type shardKillKind struct{}

// shardFailoverKind hands one shard's slots from its primary to a replica of
// it with CLUSTER FAILOVER (a manual failover: the replica catches up, then
// takes over, nothing lost). Heal fails back to the former primary the same
// way, when it is still that shard's replica.
type shardFailoverKind struct{}

func init() {
	register(shardKillKind{})
	register(shardFailoverKind{})
}

// failoverBound bounds the wait for a replica to become primary (a manual
// failover takes well under a second; an automatic one, after a kill,
// cluster-node-timeout and an election).
const failoverBound = 30 * time.Second

// validateShard checks the region (a cluster, with a replica per shard when
// needReplica) and the shard (1..shards, default 1).
func validateShard(s Spec, t *topology.Topology, kind string, needReplica bool) error {
	if err := only(s, "regions", "shard"); err != nil {
		return err
	}
	if err := needRegions(s, t, 1); err != nil {
		return err
	}
	r, _ := t.Region(s.Regions[0])
	if r.Redis.Mode != topology.RedisCluster {
		return fmt.Errorf("regions[0]: %s runs one Redis (redis.mode %s): %s acts on a cluster region (redis-kill acts on this one)", r.Name, r.Redis.Mode, kind)
	}
	if s.Shard < 0 || s.Shard > r.Redis.Shards {
		return fmt.Errorf("shard: %s has shards 1..%d (numbered by their lowest slot), got %d", r.Name, r.Redis.Shards, s.Shard)
	}
	if needReplica && r.Redis.Replicas == 0 {
		return fmt.Errorf("regions[0]: %s runs its shards without replicas (redis.replicas 0): nothing to fail over to", r.Name)
	}
	return nil
}

// shardOf is the shard s names (default 1), as the cluster serves it now.
func shardOf(ctx context.Context, w World, s Spec) (provider.Shard, error) {
	c, err := w.ClusterOf(s.Regions[0])
	if err != nil {
		return provider.Shard{}, err
	}
	n := max(s.Shard, 1)
	shards, err := c.Shards(ctx)
	if err != nil {
		return provider.Shard{}, err
	}
	for _, sh := range shards {
		if sh.Index == n {
			return sh, nil
		}
	}
	return provider.Shard{}, fmt.Errorf("%s has %d shards serving slots now, no shard %d", s.Regions[0], len(shards), n)
}

func (shardKillKind) Name() string { return "shard-kill" }
func (shardKillKind) Doc() string {
	return "kill -9 one shard's primary of a cluster region (its replica takes over); heal restarts it as a replica"
}
func (shardKillKind) Validate(s Spec, t *topology.Topology) error {
	return validateShard(s, t, "shard-kill", false)
}

func (shardKillKind) Inject(ctx context.Context, w World, s Spec, _ string) (Heal, error) {
	sh, err := shardOf(ctx, w, s)
	if err != nil {
		return nil, err
	}
	if sh.Primary == nil {
		return nil, fmt.Errorf("shard %d of %s has no primary up", sh.Index, s.Regions[0])
	}
	victim := sh.Primary
	if err := victim.Kill(); err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		if err := restartIfDown(ctx, victim); err != nil {
			return fmt.Errorf("restart %s: %w", victim.Name(), err)
		}
		return nil
	}, nil
}

func (shardFailoverKind) Name() string { return "shard-failover" }
func (shardFailoverKind) Doc() string {
	return "CLUSTER FAILOVER: a replica of one shard of a cluster region takes over from its primary; heal fails back"
}
func (shardFailoverKind) Validate(s Spec, t *topology.Topology) error {
	return validateShard(s, t, "shard-failover", true)
}

func (shardFailoverKind) Inject(ctx context.Context, w World, s Spec, _ string) (Heal, error) {
	sh, err := shardOf(ctx, w, s)
	if err != nil {
		return nil, err
	}
	if sh.Primary == nil {
		return nil, fmt.Errorf("shard %d of %s has no primary up: a manual failover needs one", sh.Index, s.Regions[0])
	}
	var replica provider.ClusterNode
	for _, r := range sh.Replicas {
		if r.Running() && !r.Paused() {
			replica = r
			break
		}
	}
	if replica == nil {
		return nil, fmt.Errorf("shard %d of %s has no running replica to fail over to", sh.Index, s.Regions[0])
	}
	old := sh.Primary
	if err := failover(ctx, replica); err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		if !old.Running() || old.Paused() {
			return nil // killed or frozen since: nothing to fail back to
		}
		if role, _, err := roleOf(ctx, old); err != nil || role != "slave" {
			return nil // no longer a replica (another fault moved it): leave the layout as it is
		}
		return failover(ctx, old)
	}, nil
}

// failover makes replica its shard's primary with CLUSTER FAILOVER (sent to
// its own address: the lab's way in, which no proxy fault cuts) and waits
// until it is, at most failoverBound. A manual failover needs the replica's
// link to its primary up, and Redis gives it up after 5 s when the replica
// does not catch up (a loaded machine): so it waits for the link first, and
// asks again when a try has not taken within failoverTry.
func failover(ctx context.Context, replica provider.ClusterNode) error {
	rc := nodeClient(replica.Addr())
	defer rc.Close()
	end := time.Now().Add(failoverBound)
	var asked time.Time
	for {
		role, link, err := roleOf(ctx, replica)
		switch {
		case err == nil && role == "master":
			return nil
		case err == nil && link == "up" && time.Since(asked) > failoverTry:
			if err := rc.ClusterFailover(ctx).Err(); err != nil {
				return fmt.Errorf("CLUSTER FAILOVER on %s: %w", replica.Name(), err)
			}
			asked = time.Now()
		}
		if time.Now().After(end) {
			return fmt.Errorf("%s is still %s (link to its primary %q) %s after CLUSTER FAILOVER (err %v)", replica.Name(), role, link, failoverBound, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("CLUSTER FAILOVER on %s: %w", replica.Name(), ctx.Err())
		case <-time.After(50 * time.Millisecond): // polling the replica's role
		}
	}
}

// failoverTry is how long one CLUSTER FAILOVER is given before it is asked
// again (Redis aborts a manual failover after 5 s).
const failoverTry = 6 * time.Second

// roleOf reads a node's INFO replication: its role (master or slave) and,
// for a replica, its link to its primary.
func roleOf(ctx context.Context, n provider.ClusterNode) (role, link string, err error) {
	rc := nodeClient(n.Addr())
	defer rc.Close()
	info, err := rc.Info(ctx, "replication").Result()
	if err != nil {
		return "", "", err
	}
	for _, line := range strings.Split(info, "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		switch k {
		case "role":
			role = v
		case "master_link_status":
			link = v
		}
	}
	return role, link, nil
}

// nodeClient is a one-connection client of a node at addr that never
// retries and gives up quickly.
func nodeClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr: addr, MaxRetries: -1, DisableIdentity: true, PoolSize: 1,
		DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: time.Second,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
}
