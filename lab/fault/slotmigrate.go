package fault

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/geolab/geolab/gateway/broker"
	"github.com/geolab/geolab/internal/clusterslot"
	"github.com/geolab/geolab/lab/provider"
	"github.com/geolab/geolab/lab/topology"
)

// slotMigrateKind moves the hash slot of one room of a cluster region (a
// named room, or the room with the longest history) to another shard while
// traffic flows, the way redis-cli --cluster reshard does it
// (clusterslot.Migrate: CLUSTER SETSLOT IMPORTING on the new owner,
// MIGRATING on the old one, MIGRATE … KEYS of the slot's keys in batches
// until none is left, then SETSLOT NODE on the new owner, the old one and
// every other primary). Heal moves the slot back the same way.
//
// On the broker's Clustered layout a room's slot is its outbox partition's
// (broker.Layout): every room of that partition moves with it.
type slotMigrateKind struct{}

func init() { register(slotMigrateKind{}) }

// migrateBound bounds the wait until every running node sees the slot on
// its new owner.
const migrateBound = 30 * time.Second

func (slotMigrateKind) Name() string { return "slot-migrate" }
func (slotMigrateKind) Doc() string {
	return "move the hash slot of a room (--room, default the busiest one a gateway subscribes) of a cluster region to another shard (--shard, default the next) while traffic flows; heal moves it back"
}

func (slotMigrateKind) Validate(s Spec, t *topology.Topology) error {
	if err := only(s, "regions", "room", "shard"); err != nil {
		return err
	}
	if err := needRegions(s, t, 1); err != nil {
		return err
	}
	r, _ := t.Region(s.Regions[0])
	if r.Redis.Mode != topology.RedisCluster {
		return fmt.Errorf("regions[0]: %s runs one Redis (redis.mode %s): slot-migrate moves a slot between the shards of a cluster region", r.Name, r.Redis.Mode)
	}
	if s.Shard < 0 || s.Shard > r.Redis.Shards {
		return fmt.Errorf("shard: %s has shards 1..%d (numbered by their lowest slot), got %d", r.Name, r.Redis.Shards, s.Shard)
	}
	if strings.ContainsAny(s.Room, "{}") || strings.TrimSpace(s.Room) != s.Room {
		return fmt.Errorf("room: %q is no room name (no braces, no surrounding spaces)", s.Room)
	}
	return nil
}

func (slotMigrateKind) Inject(ctx context.Context, w World, s Spec, _ string) (Heal, error) {
	c, err := w.ClusterOf(s.Regions[0])
	if err != nil {
		return nil, err
	}
	shards, err := c.Shards(ctx)
	if err != nil {
		return nil, err
	}
	room := s.Room
	if room == "" {
		if room, err = busiestRoom(ctx, shards); err != nil {
			return nil, err
		}
	}
	key := broker.Clustered.HistoryKey(room)
	slot, from, err := ownerOf(ctx, shards, key)
	if err != nil {
		return nil, err
	}
	to, err := destination(shards, from, s.Shard)
	if err != nil {
		return nil, err
	}
	if err := migrateSlot(ctx, c, slot, from.Primary, to.Primary); err != nil {
		return nil, fmt.Errorf("room %s (slot %d): %w", room, slot, err)
	}
	home := from.Primary
	return func(ctx context.Context) error {
		shards, err := c.Shards(ctx)
		if err != nil {
			return err
		}
		// Back to the shard it came from: its old primary, or whoever
		// took over from it (a shard-kill or shard-failover since).
		back := shardHolding(shards, home)
		_, now, err := ownerOf(ctx, shards, key)
		if err != nil {
			return err
		}
		if back == nil || back.Primary == nil || now.Primary == nil || now.Primary.ID() == back.Primary.ID() {
			return nil // the home shard is gone, or the slot is home already
		}
		return migrateSlot(ctx, c, slot, now.Primary, back.Primary)
	}, nil
}

// busiestRoom is the room with the longest history stream of the cluster
// among those some gateway subscribes (SHARDNUMSUB of its channel on its
// owner above 0), or of all rooms when none is (ties: the first name),
// read on every primary (a SCAN sees only its own node's keys). A room
// nobody subscribes now (the lab's slow probe floods one and leaves it)
// would move without testing a gateway's resubscribe.
func busiestRoom(ctx context.Context, shards []provider.Shard) (string, error) {
	type candidate struct {
		room       string
		length     int64
		subscribed bool
	}
	better := func(a, b candidate) bool {
		if a.subscribed != b.subscribed {
			return a.subscribed
		}
		return a.length > b.length || (a.length == b.length && a.room < b.room)
	}
	best := candidate{length: -1}
	for _, sh := range shards {
		if sh.Primary == nil {
			continue
		}
		rc := nodeClient(sh.Primary.Addr())
		iter := rc.Scan(ctx, 0, "geolab:h:{*", 1000).Iterator()
		for iter.Next(ctx) {
			k := iter.Val()
			ch := "geolab:ch:" + strings.TrimPrefix(k, "geolab:h:")
			room := broker.RoomOfHistoryKey(k)
			if room == "" {
				continue
			}
			n, err := rc.XLen(ctx, k).Result()
			if err != nil {
				continue // moved or gone since the SCAN
			}
			subs, err := rc.PubSubShardNumSub(ctx, ch).Result()
			c := candidate{room: room, length: n, subscribed: err == nil && subs[ch] > 0}
			if best.room == "" || better(c, best) {
				best = c
			}
		}
		err := iter.Err()
		rc.Close()
		if err != nil {
			return "", fmt.Errorf("SCAN %s: %w", sh.Primary.Name(), err)
		}
	}
	if best.room == "" {
		return "", errors.New("no room has a history yet: name one (room)")
	}
	return best.room, nil
}

// ownerOf is key's slot and the shard serving it.
func ownerOf(ctx context.Context, shards []provider.Shard, key string) (int, provider.Shard, error) {
	slot := -1
	for _, sh := range shards {
		if sh.Primary == nil {
			continue
		}
		rc := nodeClient(sh.Primary.Addr())
		n, err := rc.ClusterKeySlot(ctx, key).Result()
		rc.Close()
		if err == nil {
			slot = int(n)
			break
		}
	}
	if slot < 0 {
		return 0, provider.Shard{}, errors.New("no primary answers CLUSTER KEYSLOT")
	}
	for _, sh := range shards {
		for _, r := range sh.Slots {
			if slot >= r[0] && slot <= r[1] {
				if sh.Primary == nil {
					return slot, sh, fmt.Errorf("slot %d's shard %d has no primary up", slot, sh.Index)
				}
				return slot, sh, nil
			}
		}
	}
	return slot, provider.Shard{}, fmt.Errorf("no shard serves slot %d now", slot)
}

// destination is shard n (1..), or with n 0 the shard after from (the
// first after the last); never from itself.
func destination(shards []provider.Shard, from provider.Shard, n int) (provider.Shard, error) {
	if n == 0 {
		n = from.Index%len(shards) + 1
	}
	for _, sh := range shards {
		if sh.Index != n {
			continue
		}
		switch {
		case sh.Index == from.Index:
			return sh, fmt.Errorf("shard: the slot is on shard %d already", n)
		case sh.Primary == nil:
			return sh, fmt.Errorf("shard %d has no primary up", n)
		}
		return sh, nil
	}
	return provider.Shard{}, fmt.Errorf("shard: %d shards serve slots now, no shard %d", len(shards), n)
}

// shardHolding is the shard n is a node of now (primary, replica or
// failed), or nil.
func shardHolding(shards []provider.Shard, n provider.ClusterNode) *provider.Shard {
	for i, sh := range shards {
		all := append(append([]provider.ClusterNode{sh.Primary}, sh.Replicas...), sh.Failed...)
		if slices.ContainsFunc(all, func(m provider.ClusterNode) bool { return m != nil && m.ID() == n.ID() }) {
			return &shards[i]
		}
	}
	return nil
}

// migrateSlot moves slot from primary from to primary to (each reached at
// its own address) with clusterslot.Migrate and waits, at most
// migrateBound, until every running node sees it on to.
func migrateSlot(ctx context.Context, c provider.RedisCluster, slot int, from, to provider.ClusterNode) error {
	node := func(n provider.ClusterNode) clusterslot.Node {
		return clusterslot.Node{Name: n.Name(), Client: nodeClient(n.Addr()), Addr: n.Addr()}
	}
	src, dst := node(from), node(to)
	defer src.Client.Close()
	defer dst.Client.Close()
	shards, err := c.Shards(ctx)
	if err != nil {
		return err
	}
	var others []clusterslot.Node
	for _, sh := range shards {
		if p := sh.Primary; p != nil && p.ID() != from.ID() && p.ID() != to.ID() {
			o := node(p)
			defer o.Client.Close()
			others = append(others, o)
		}
	}
	if err := clusterslot.Migrate(ctx, slot, src, dst, others); err != nil {
		return err
	}
	return waitSlotOn(ctx, c, slot, to)
}

// waitSlotOn waits, at most migrateBound, until every running node's
// CLUSTER SLOTS names to (its announced address) as slot's primary.
func waitSlotOn(ctx context.Context, c provider.RedisCluster, slot int, to provider.ClusterNode) error {
	end := time.Now().Add(migrateBound)
	for {
		var disagree []string
		for _, n := range c.Nodes() {
			if !n.Running() || n.Paused() {
				continue
			}
			if got := slotPrimaryAsSeenBy(ctx, n, slot); got != to.Announced() {
				disagree = append(disagree, n.Name()+" sees "+got)
			}
		}
		if len(disagree) == 0 {
			return nil
		}
		if time.Now().After(end) {
			return fmt.Errorf("slot %d not seen on %s (%s) by every node within %s: %s", slot, to.Name(), to.Announced(), migrateBound, strings.Join(disagree, "; "))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond): // polling the nodes' views
		}
	}
}

// slotPrimaryAsSeenBy is the address CLUSTER SLOTS on n gives for slot's
// primary, or what went wrong in words.
func slotPrimaryAsSeenBy(ctx context.Context, n provider.ClusterNode, slot int) string {
	rc := nodeClient(n.Addr())
	defer rc.Close()
	//lint:ignore SA1019 CLUSTER SLOTS, deprecated in Redis 7 but served by it, gives the slot ranges in the shape read here
	ranges, err := rc.ClusterSlots(ctx).Result()
	if err != nil {
		return "error " + err.Error()
	}
	for _, r := range ranges {
		if slot >= int(r.Start) && slot <= int(r.End) && len(r.Nodes) > 0 {
			return r.Nodes[0].Addr
		}
	}
	return "no owner of slot " + strconv.Itoa(slot)
}
