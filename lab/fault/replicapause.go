package fault

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/geolab/geolab/lab/provider"
	"github.com/geolab/geolab/lab/topology"
)

// replicaPauseKind holds one shard's replicas of a cluster region behind
// their primary: it freezes each (SIGSTOP) and then closes the primary's
// replication connections to them (CLIENT KILL TYPE replica), so that what
// the primary writes from then on reaches no replica — not even the
// kernel's buffer of a frozen one — until the fault heals. The primary goes
// on alone: this is replication lag, as wide as the fault is long. A
// shard-kill of the same shard meanwhile promotes, once the replica runs
// again, a replica that misses every write since (docs/faults.md). Heal
// continues the frozen replicas; they reconnect and catch up.
type replicaPauseKind struct{}

func init() { register(replicaPauseKind{}) }

// replicaCutBound bounds the wait until the primary counts no replica
// connected after CLIENT KILL.
const replicaCutBound = 10 * time.Second

func (replicaPauseKind) Name() string { return "replica-pause" }
func (replicaPauseKind) Doc() string {
	return "freeze one shard's replicas of a cluster region and cut their replication link (the primary goes on alone); heal continues them"
}
func (replicaPauseKind) Validate(s Spec, t *topology.Topology) error {
	return validateShard(s, t, "replica-pause", true)
}

func (replicaPauseKind) Inject(ctx context.Context, w World, s Spec, _ string) (Heal, error) {
	sh, err := shardOf(ctx, w, s)
	if err != nil {
		return nil, err
	}
	if sh.Primary == nil {
		return nil, fmt.Errorf("shard %d of %s has no primary up: no replica to hold behind it", sh.Index, s.Regions[0])
	}
	var frozen []provider.ClusterNode
	heal := func(context.Context) error {
		var errs []error
		for _, r := range frozen {
			if r.Running() && r.Paused() {
				if err := r.Resume(); err != nil {
					errs = append(errs, fmt.Errorf("continue %s: %w", r.ID(), err))
				}
			}
		}
		return errors.Join(errs...)
	}
	for _, r := range sh.Replicas {
		if !r.Running() || r.Paused() {
			continue
		}
		if err := r.Pause(); err != nil {
			return nil, errors.Join(fmt.Errorf("freeze %s: %w", r.ID(), err), heal(ctx))
		}
		frozen = append(frozen, r)
	}
	if len(frozen) == 0 {
		return nil, fmt.Errorf("shard %d of %s has no running replica to hold behind", sh.Index, s.Regions[0])
	}
	if err := cutReplicas(ctx, sh.Primary); err != nil {
		return nil, errors.Join(err, heal(ctx))
	}
	return heal, nil
}

// cutReplicas closes primary's replication connections and waits, at most
// replicaCutBound, until it counts none (a frozen replica does not dial
// again; one that runs may, and the wait goes on until it is frozen or the
// bound ends).
func cutReplicas(ctx context.Context, primary provider.ClusterNode) error {
	pc := nodeClient(primary.Addr())
	defer pc.Close()
	if err := pc.Do(ctx, "CLIENT", "KILL", "TYPE", "replica").Err(); err != nil {
		return fmt.Errorf("CLIENT KILL TYPE replica on %s: %w", primary.ID(), err)
	}
	end := time.Now().Add(replicaCutBound)
	for {
		info, err := pc.Info(ctx, "replication").Result()
		if err == nil && strings.Contains(info, "connected_slaves:0\r\n") {
			return nil
		}
		if time.Now().After(end) {
			return fmt.Errorf("%s still counts a replica connected %s after CLIENT KILL TYPE replica (err %v)", primary.ID(), replicaCutBound, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cut the replicas of %s: %w", primary.ID(), ctx.Err())
		case <-time.After(50 * time.Millisecond): // polling the primary's replica count
		}
	}
}
