package broker

import (
	"hash/fnv"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// Layout names the keys and channels of one region's Redis. A region on
// one Redis keeps the Standalone layout (the names geolab always had); a
// region on a Redis Cluster needs the Clustered one, because a script may
// only touch keys of one hash slot and publish.lua writes a room's keys and
// the region's federation outbox in one atomic step.
//
// Clustered: every room (and every session) belongs to one of Partitions
// outbox partitions, chosen by a hash of its name. The partition's hash tag
// leads every key and channel of the room, so the room's keys, its sharded
// pub/sub channel and its partition of the outbox share one slot and
// publish.lua stays one script:
//
//	geolab:s:{p3-12}{tenant:42}        sequence state
//	geolab:h:{p3-12}{tenant:42}        history stream
//	geolab:idem:{p3-12}{tenant:42}:…   idempotency records
//	geolab:ch:{p3-12}{tenant:42}       sharded pub/sub channel (SPUBLISH)
//	geolab:outbox:us-east:{p3-12}      partition 3 of us-east's outbox
//	geolab:outbox:us-east:{p3-12}:n    its counter
//	geolab:session:{p9-12}{sess-1}     a session's ownership record
//
// A bridge reads an origin's Partitions outbox streams one by one, each in
// its own order from its own checkpoint: every event of one room is in one
// partition, in the order publish.lua numbered it, so per (room, origin)
// order holds (docs/federation.md). The rooms of one partition share a slot,
// so the cluster spreads Partitions slots (chosen to fall evenly across the
// slot space) and a slot that moves moves every room of its partition.
type Layout struct{ cluster bool }

// The two layouts.
var (
	Standalone = Layout{}
	Clustered  = Layout{cluster: true}
)

// LayoutOf is the layout of the region rdb reaches: Clustered for a
// *redis.ClusterClient, else Standalone.
func LayoutOf(rdb redis.UniversalClient) Layout {
	if _, ok := rdb.(*redis.ClusterClient); ok {
		return Clustered
	}
	return Standalone
}

// Cluster reports whether this is the Clustered layout.
func (l Layout) Cluster() bool { return l.cluster }

// Partitions is how many outbox partitions a clustered region has. Every
// gateway and bridge must agree on it: changing it moves rooms between
// partitions, so a region changes it only with its outboxes drained.
const Partitions = 16

// partitionTags are the hash tags of the partitions, each chosen so that
// its slot falls in the partition's sixteenth of the 16384 slots (checked
// against a real cluster by TestPartitionTagsSpreadOverTheSlots): a cluster
// made with contiguous, equal slot ranges spreads the partitions evenly
// over its primaries.
var partitionTags = [Partitions]string{"p0-0", "p1-3", "p2-11", "p3-12", "p4-45", "p5-42", "p6-61", "p7-62",
	"p8-11", "p9-12", "p10-16", "p11-11", "p12-20", "p13-23", "p14-6", "p15-1"}

// PartitionOf is the outbox partition of a room or session name: FNV-1a
// of the name, modulo Partitions.
func PartitionOf(name string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	return int(h.Sum32() % Partitions)
}

// PartitionTag is partition p's hash tag, braces included.
func PartitionTag(p int) string { return "{" + partitionTags[p] + "}" }

// tag is what follows a key's prefix for a room or session name: {name},
// or, clustered, the partition's tag and then {name}.
func (l Layout) tag(name string) string {
	if !l.cluster {
		return "{" + name + "}"
	}
	return PartitionTag(PartitionOf(name)) + "{" + name + "}"
}

// SeqKey is a room's sequence state (hash q:ORIGIN, e:ORIGIN, g:ORIGIN).
func (l Layout) SeqKey(room string) string { return "geolab:s:" + l.tag(room) }

// HistoryKey is a room's history stream.
func (l Layout) HistoryKey(room string) string { return "geolab:h:" + l.tag(room) }

// IdemPrefix starts the key of every idempotency record of a room.
func (l Layout) IdemPrefix(room string) string { return "geolab:idem:" + l.tag(room) + ":" }

// Channel is a room's pub/sub channel: PUBLISHed on one Redis, SPUBLISHed
// (sharded pub/sub) on a cluster.
func (l Layout) Channel(room string) string { return "geolab:ch:" + l.tag(room) }

// SessionKey is a session's ownership record.
func (l Layout) SessionKey(id string) string { return "geolab:session:" + l.tag(id) }

// OutboxPartition is one stream of a region's federation outbox.
type OutboxPartition struct {
	// Name tells the partition apart in a bridge's checkpoint key: "" for
	// the one outbox of a Standalone region, the partition's number
	// otherwise.
	Name    string
	Stream  string // the stream
	Counter string // its counter: the n of its newest entry
	// Life is the LifeKey of the data the stream lives in: a bridge that
	// finds its token changed knows the origin lost what the stream held
	// (federation/feed.go), shipped or not.
	Life string
}

// Outboxes are every stream of region's outbox, in partition order: one
// for Standalone (OutboxKey), Partitions for Clustered.
func (l Layout) Outboxes(region string) []OutboxPartition {
	if !l.cluster {
		return []OutboxPartition{{Stream: OutboxKey(region), Counter: OutboxCounterKey(region), Life: l.LifeKey("")}}
	}
	out := make([]OutboxPartition, Partitions)
	for p := range out {
		s := OutboxKey(region) + ":" + PartitionTag(p)
		out[p] = OutboxPartition{Name: strconv.Itoa(p), Stream: s, Counter: s + ":n", Life: partitionLifeKey(p)}
	}
	return out
}

// OutboxOf is the stream of region's outbox that carries the events of a
// room (or the records of a session) named name, and its counter.
func (l Layout) OutboxOf(region, name string) (stream, counter string) {
	if !l.cluster {
		return OutboxKey(region), OutboxCounterKey(region)
	}
	o := l.Outboxes(region)[PartitionOf(name)]
	return o.Stream, o.Counter
}

// RoomOfChannel returns the room of a channel name of either layout
// (geolab:ch:{ROOM} or geolab:ch:{TAG}{ROOM}), or "" if it is not one. A
// room name holds no brace, so the two never mix up.
func RoomOfChannel(ch string) string { return roomOfKey("geolab:ch:{", ch) }

// RoomOfHistoryKey returns the room of a history stream key of either
// layout (geolab:h:{ROOM} or geolab:h:{TAG}{ROOM}), or "" if it is not one.
func RoomOfHistoryKey(key string) string { return roomOfKey("geolab:h:{", key) }
