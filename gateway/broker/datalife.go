package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// LifeKey is the key that names the data life of the Redis holding room:
// geolab:life on one Redis; on a cluster one per outbox partition,
// geolab:life:{TAG}, in the slot of the partition's rooms, so that it lives
// and dies with their data on whichever primary serves them.
func (l Layout) LifeKey(room string) string {
	if !l.cluster {
		return "geolab:life"
	}
	return partitionLifeKey(PartitionOf(room))
}

// partitionLifeKey is the LifeKey of the rooms of outbox partition p of a
// cluster.
func partitionLifeKey(p int) string { return "geolab:life:" + PartitionTag(p) }

// DataLife returns the token of the data life of the Redis that holds
// room: the value of its LifeKey, which the first reader of a Redis's data
// (after it started empty, or lost its data) sets to a new random token
// (SET NX GET, Redis 7). A Redis that keeps its data keeps its token
// (through a restart with persistence, or a failover to a replica); a
// Redis that loses its data loses it, and its next reader sets another. A
// gateway compares the token a subscription joined in with the one it
// reads when its pub/sub link is back: a different one means the Redis lost
// what it held meanwhile, events the gateway never dispatched among them
// (docs/design.md). The token is read first and set only when missing, so
// that a Redis over its memory limit, which refuses SET, still answers while
// it keeps its data.
func (b *Broker) DataLife(ctx context.Context, room string) (string, error) {
	return LifeOf(ctx, b.rdb, b.layout.LifeKey(room))
}

// RegionLife is the data life of this region's whole Redis: its one
// LifeKey's token, or on a cluster every partition's, joined by commas. It
// changes when any of them does, that is when any part of the Redis lost
// its data. A bridge watches it: what it had applied into a Redis that lost
// its data is gone with it, and it applies the origins' outboxes again from
// their start (federation/feed.go).
func (b *Broker) RegionLife(ctx context.Context) (string, error) {
	if !b.layout.cluster {
		return LifeOf(ctx, b.rdb, b.layout.LifeKey(""))
	}
	cmds := make([]*redis.StringCmd, Partitions)
	pipe := b.rdb.Pipeline()
	for p := range cmds {
		cmds[p] = pipe.Get(ctx, partitionLifeKey(p))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("broker: data lives of the partitions: %w", err)
	}
	lives := make([]string, Partitions)
	for p, cmd := range cmds {
		life, err := cmd.Result()
		if errors.Is(err, redis.Nil) {
			life, err = LifeOf(ctx, b.rdb, partitionLifeKey(p))
		}
		if err != nil {
			return "", err
		}
		lives[p] = life
	}
	return strings.Join(lives, ","), nil
}

// LifeOf reads the data life token at key (a LifeKey, or an
// OutboxPartition's Life) of the Redis rdb, setting a new one when it is
// missing: the first reader of a Redis's data names its life, whoever it
// is (a gateway of the region, or a bridge reading it as an origin).
func LifeOf(ctx context.Context, rdb redis.UniversalClient, key string) (string, error) {
	life, err := rdb.Get(ctx, key).Result()
	if err == nil {
		return life, nil
	}
	if !errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("broker: data life of %s: %w", key, err)
	}
	var raw [12]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("broker: data life token: %w", err)
	}
	token := hex.EncodeToString(raw[:])
	old, err := rdb.Do(ctx, "SET", key, token, "NX", "GET").Text()
	switch {
	case errors.Is(err, redis.Nil):
		return token, nil
	case err != nil:
		return "", fmt.Errorf("broker: data life of %s: %w", key, err)
	}
	return old, nil
}
