package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/geolab/geolab/internal/faulty"
)

// Durability modes: when a publish is acknowledged.
const (
	// DurabilityAsync acks a publish once its primary ran publish.lua:
	// Redis replicates asynchronously, so a primary that dies before its
	// replica received the write takes the acked publish with it.
	DurabilityAsync = "async"
	// DurabilityReplicated acks a publish only once at least one replica
	// of its primary has it (WAIT 1 on the connection that ran the script).
	DurabilityReplicated = "replicated"
)

// DefaultDurabilityTimeout is how long a replicated publish waits for a
// replica's acknowledgement before it is refused (ErrNotReplicated).
const DefaultDurabilityTimeout = time.Second

// MaxDurabilityTimeout bounds the durability timeout: a publish waits this
// long at most for a replica.
const MaxDurabilityTimeout = time.Minute

// ErrNotReplicated is the error of a replicated publish that no replica
// confirmed within the durability timeout. The script ran: the event may be
// stored on the primary and was delivered live to its subscribers, but it
// is not acknowledged; a retry with the same client id is answered from
// the idempotency record once a replica has it (or stores it anew if a
// failover lost it). It wraps ErrUnavailable.
var ErrNotReplicated = fmt.Errorf("%w: no replica confirmed the write", ErrUnavailable)

// durableAttempts bounds how many times one replicated publish looks up
// its slot's primary again after a MOVED, ASK, TRYAGAIN, CLUSTERDOWN,
// READONLY or lost connection (a slot moving or a primary failing over).
const durableAttempts = 6

// RequireReplica makes every later Publish wait, after the script, until
// at least one replica of the primary that ran it has the write (WAIT 1
// timeout on that same connection); a publish that no replica confirmed
// within timeout returns ErrNotReplicated. A timeout of 0 turns it off
// (DurabilityAsync). Call it before the broker is used.
func (b *Broker) RequireReplica(timeout time.Duration) { b.replicaTimeout = timeout }

// ReplicaTimeout is the durability timeout set by RequireReplica; 0 when
// publishes are acked asynchronously.
func (b *Broker) ReplicaTimeout() time.Duration { return b.replicaTimeout }

// runReplicated runs publish.lua on a connection of its own to the primary
// of the keys' slot, then WAIT 1 on that same connection: WAIT counts the
// replication offset of its own connection's writes. (A dup answer writes
// too, when asked to by ARGV[19]: a touch of its record, so that the WAIT
// covers the first attempt's write, which may not have reached a replica
// yet.) A cluster's slot that moved or whose primary failed over is looked
// up again, a few times within ctx.
func (b *Broker) runReplicated(ctx context.Context, keys []string, args []any) (Result, error) {
	var last error
	delay := 20 * time.Millisecond
	for attempt := range durableAttempts {
		if attempt > 0 {
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return Result{}, fmt.Errorf("broker: publish.lua: %w: %w", ErrUnavailable, last)
			case <-t.C:
			}
			delay *= 2
		}
		node, err := b.primaryFor(ctx, keys[0])
		if err != nil {
			last = err
			continue
		}
		r, err := b.runAndWait(ctx, node, keys, args)
		if err == nil || errors.Is(err, ErrNotReplicated) || !retryOnAnotherNode(err) {
			return r, err
		}
		last = err
		if c, ok := b.rdb.(*redis.ClusterClient); ok {
			c.ReloadState(ctx)
		}
	}
	return Result{}, fmt.Errorf("broker: publish.lua: %w: %w", ErrUnavailable, last)
}

// primaryFor is the client of the node that owns key: the cluster's
// primary of its slot, or the one Redis.
func (b *Broker) primaryFor(ctx context.Context, key string) (*redis.Client, error) {
	switch c := b.rdb.(type) {
	case *redis.ClusterClient:
		return c.MasterForKey(ctx, key)
	case *redis.Client:
		return c, nil
	}
	return nil, fmt.Errorf("replicated durability needs a *redis.Client or a *redis.ClusterClient, not %T", b.rdb)
}

// runAndWait is one attempt of runReplicated on node.
func (b *Broker) runAndWait(ctx context.Context, node *redis.Client, keys []string, args []any) (Result, error) {
	conn := node.Conn()
	defer conn.Close()
	r, err := b.runOn(ctx, conn, keys, args)
	if err != nil {
		return r, err
	}
	if faulty.On("nowait") {
		// MUTANT nowait breaks G6 (G12's acked-but-lost edge) under
		// --durability replicated: the ack goes out without a WAIT, as
		// under async, so a primary killed before its replica got the
		// write takes acked publishes with it.
		return r, nil
	}
	n, err := conn.Wait(ctx, 1, b.replicaTimeout).Result()
	if err != nil {
		return Result{}, fmt.Errorf("broker: WAIT after publish.lua: %w: %w", ErrUnavailable, err)
	}
	if n < 1 {
		// r goes with the error: the event was stored and delivered live,
		// and the caller records its oseq as seen (PublishRequest.Seen).
		return r, fmt.Errorf("broker: publish of %s on %s: %w within %s", r.EventID, node.Options().Addr, ErrNotReplicated, b.replicaTimeout)
	}
	return r, nil
}

// retryOnAnotherNode reports whether err says the slot is served elsewhere
// now, or soon (MOVED, ASK, TRYAGAIN, CLUSTERDOWN, READONLY, MASTERDOWN),
// or that the node could not be reached: worth a new look-up of the slot's
// primary.
func retryOnAnotherNode(err error) bool {
	if _, ok := redis.IsMovedError(err); ok {
		return true
	}
	if _, ok := redis.IsAskError(err); ok {
		return true
	}
	if redis.IsTryAgainError(err) || redis.IsClusterDownError(err) || redis.IsReadOnlyError(err) || redis.IsMasterDownError(err) {
		return true
	}
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ne) || errors.As(err, &oe) || errors.Is(err, redis.ErrClosed)
}

// CheckReplicas says whether every primary a publish can land on has at
// least one replica: on one Redis, INFO replication must show it a master
// with connected_slaves ≥ 1; on a cluster, CLUSTER NODES must show every
// primary that serves slots with a replica not marked failed. A Redis that
// does not answer is an error wrapping ErrUnavailable; one without a
// replica an error naming it.
func (b *Broker) CheckReplicas(ctx context.Context) error {
	if c, ok := b.rdb.(*redis.ClusterClient); ok {
		s, err := c.ClusterNodes(ctx).Result()
		if err != nil {
			return fmt.Errorf("CLUSTER NODES: %w: %w", ErrUnavailable, err)
		}
		if bare := PrimariesWithoutReplica(s); len(bare) > 0 {
			return fmt.Errorf("the cluster's primaries %s have no replica (CLUSTER NODES)", strings.Join(bare, ", "))
		}
		return nil
	}
	info, err := b.rdb.Info(ctx, "replication").Result()
	if err != nil {
		return fmt.Errorf("INFO replication: %w: %w", ErrUnavailable, err)
	}
	role, replicas := infoField(info, "role"), infoField(info, "connected_slaves")
	if n, _ := strconv.Atoi(replicas); role != "master" || n < 1 {
		return fmt.Errorf("the Redis has no replica (INFO replication: role:%s, connected_slaves:%s)", role, replicas)
	}
	return nil
}

// infoField is the value of field in an INFO answer, or "".
func infoField(info, field string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}

// PrimariesWithoutReplica reads a CLUSTER NODES answer and returns the
// address of every primary that serves slots, is not marked failed, and
// has no replica that is not marked failed.
func PrimariesWithoutReplica(clusterNodes string) []string {
	type node struct {
		addr    string
		serving bool
	}
	primaries := map[string]node{} // id → primary
	var order []string
	replicas := map[string]int{} // primary id → replicas not failed
	for _, line := range strings.Split(strings.TrimSpace(clusterNodes), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		flags := "," + f[2] + ","
		if strings.Contains(flags, ",fail,") || strings.Contains(flags, ",noaddr,") {
			continue
		}
		addr := strings.SplitN(strings.SplitN(f[1], "@", 2)[0], ",", 2)[0]
		switch {
		case strings.Contains(flags, ",master,"):
			primaries[f[0]] = node{addr: addr, serving: len(f) > 8}
			order = append(order, f[0])
		case strings.Contains(flags, ",slave,"):
			replicas[f[3]]++
		}
	}
	var out []string
	for _, id := range order {
		if p := primaries[id]; p.serving && replicas[id] == 0 {
			out = append(out, p.addr)
		}
	}
	return out
}
