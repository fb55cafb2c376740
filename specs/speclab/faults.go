package speclab

import (
	"time"

	"github.com/geolab/geolab/lab/fault"
	"github.com/geolab/geolab/lab/scenario"
)

// Step is one entry of a spec's timeline: a fault injected at an offset
// from the workload's start (At builds one).
type Step = scenario.Step

// At is a timeline step: f injected at offset at.
//
//	speclab.At(4*time.Second, speclab.RedisBlip("us-east").For(2*time.Second))
func At(at time.Duration, f Fault) Step { return Step{At: at, Fault: f.spec} }

// Fault is a fault of docs/faults.md as a spec writes it: a constructor
// names the kind and what it acts on (Partition, RedisBlip, …), methods
// add what else the kind reads (For, Mode, …), At puts it on the
// timeline. Every fault is validated against the topology before the lab
// starts, so a field the kind does not read fails the spec at once.
type Fault struct{ spec fault.Spec }

// FromSpec is any fault.Spec, for the kinds and fields the constructors do
// not cover (bandwidth, gateway-pause, a single link, …).
func FromSpec(s fault.Spec) Fault { return Fault{s} }

// Spec is the fault.Spec f stands for.
func (f Fault) Spec() fault.Spec { return f.spec }

// Latency adds latency ± jitter to each round trip between regions a and b.
func Latency(a, b string, latency, jitter time.Duration) Fault {
	return Fault{fault.Spec{Kind: "latency", Regions: []string{a, b}, Latency: latency, Jitter: jitter}}
}

// Partition cuts regions a and b apart (reset, both ways, unless Mode or
// Direction say otherwise).
func Partition(a, b string) Fault {
	return Fault{fault.Spec{Kind: "partition", Regions: []string{a, b}}}
}

// Isolate cuts region off from everyone: clients, the other regions.
func Isolate(region string) Fault {
	return Fault{fault.Spec{Kind: "isolate", Regions: []string{region}}}
}

// RegionDown kills every process of region with -9 (Redis, gateways,
// bridge), as a power loss does; they are started again when healed.
func RegionDown(region string) Fault {
	return Fault{fault.Spec{Kind: "region-down", Regions: []string{region}}}
}

// RedisBlip cuts every connection of region's gateways to its Redis (reset
// unless Mode says otherwise).
func RedisBlip(region string) Fault {
	return Fault{fault.Spec{Kind: "redis-blip", Regions: []string{region}}}
}

// RedisKill kills region's Redis with -9; it is restarted when healed.
func RedisKill(region string) Fault {
	return Fault{fault.Spec{Kind: "redis-kill", Regions: []string{region}}}
}

// RedisRestart kills region's Redis with -9 and starts it again at once.
func RedisRestart(region string) Fault {
	return Fault{fault.Spec{Kind: "redis-restart", Regions: []string{region}}}
}

// GatewayKill kills gateway node (gw-N) of region with -9; it is restarted
// when healed.
func GatewayKill(region, node string) Fault {
	return Fault{fault.Spec{Kind: "gateway-kill", Regions: []string{region}, Node: node}}
}

// BridgeKill kills region's federation bridge with -9; it is restarted when
// healed.
func BridgeKill(region string) Fault {
	return Fault{fault.Spec{Kind: "bridge-kill", Regions: []string{region}}}
}

// SlowClients makes n clients of room on gateway node of region stop
// reading.
func SlowClients(region, node, room string, n int) Fault {
	return Fault{fault.Spec{Kind: "slow-client", Regions: []string{region}, Node: node, Room: room, Clients: n}}
}

// For heals the fault by itself after d (without it, the fault stays until
// publishing ends).
func (f Fault) For(d time.Duration) Fault { f.spec.For = d; return f }

// Mode is how a cut behaves: "reset" (the default) or "blackhole".
func (f Fault) Mode(mode string) Fault { f.spec.Mode = mode; return f }

// Blackhole is Mode("blackhole"): connections accepted, nothing passes.
func (f Fault) Blackhole() Fault { return f.Mode("blackhole") }

// Direction of a partition: "both" (the default) or "one" (the first
// region cannot reach the second).
func (f Fault) Direction(dir string) Fault { f.spec.Direction = dir; return f }

// LoseData makes Redis come back empty (redis-kill, redis-restart,
// region-down).
func (f Fault) LoseData() Fault { f.spec.LoseData = true; return f }

// ShardKill kills -9 the primary of shard (1..shards, by lowest slot) of a
// cluster region; its replica takes over, and the killed node is started
// again, as a replica, when healed.
func ShardKill(region string, shard int) Fault {
	return Fault{fault.Spec{Kind: "shard-kill", Regions: []string{region}, Shard: shard}}
}

// ShardFailover hands shard's slots (1..shards) of a cluster region to a
// replica with CLUSTER FAILOVER; heal fails back.
func ShardFailover(region string, shard int) Fault {
	return Fault{fault.Spec{Kind: "shard-failover", Regions: []string{region}, Shard: shard}}
}

// SlotMigrate moves the hash slot of the room with the longest history of
// a cluster region to the next shard while traffic flows (Room and
// ToShard name them instead); heal moves it back.
func SlotMigrate(region string) Fault {
	return Fault{fault.Spec{Kind: "slot-migrate", Regions: []string{region}}}
}

// Room names the room of a slot-migrate (or slow-client).
func (f Fault) Room(room string) Fault { f.spec.Room = room; return f }

// ToShard names the shard a slot-migrate moves the slot to (1..shards).
func (f Fault) ToShard(n int) Fault { f.spec.Shard = n; return f }
