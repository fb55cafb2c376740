// Package topology is the lab's description of a simulated world: its regions
// (gateways, Redis, federated room patterns), the round-trip times between
// them, where clients live and how the resolver answers. A topology is read
// from YAML (docs/topology.md) by Parse or Load, which reject a bad file
// naming the field and the line, and is then only read.
package topology

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/geolab/geolab/gateway/auth"
	"github.com/geolab/geolab/gateway/protocol"
)

// Limits and defaults of a topology (docs/topology.md). A file that leaves a
// field out gets its default; a value outside its range is an error.
const (
	MaxRegions      = 8  // regions in one topology
	MaxGateways     = 16 // gateway nodes in one region
	DefaultGateways = 1  // gateway nodes of a region that does not say

	// RedisStandalone is one redis-server per region; RedisCluster is a
	// Redis Cluster of Shards primaries with Replicas replicas each (process
	// provider only).
	RedisStandalone = "standalone"
	RedisCluster    = "cluster"

	// The shards of a cluster region (redis.shards): default and range.
	// redis-cli --cluster create, which makes the cluster, wants at least 3
	// primaries.
	DefaultShards = 3
	MinShards     = 3
	MaxShards     = 8
	// The replicas of each shard (redis.replicas): default and range. With
	// 0 a killed primary's slots stay down until it is back.
	DefaultReplicas = 1
	MaxReplicas     = 2

	// DefaultIntraRegionRTT is the client → gateway round trip inside a
	// region when intra_region is left out (no jitter). The LAN default is
	// zero: gateway and Redis side by side.
	DefaultIntraRegionRTT = time.Millisecond
	// MaxLinkRTT bounds every ms value: a minute is no longer a latency.
	MaxLinkRTT = time.Minute

	// The resolver's answer TTL (resolver.ttl): its default and range.
	DefaultTTL = 2 * time.Second
	MinTTL     = 100 * time.Millisecond
	MaxTTL     = 5 * time.Minute
	// The resolver's health-check period (resolver.health_interval): its
	// default and range.
	DefaultHealthInterval = 250 * time.Millisecond
	MinHealthInterval     = 50 * time.Millisecond
	MaxHealthInterval     = 10 * time.Second

	maxNameLen = 64
)

// Topology is one parsed, validated topology file.
type Topology struct {
	// Name identifies the topology in status output and reports.
	Name string
	// Source cites where the RTT figures come from (a URL or a reference).
	Source string
	// Regions in file order.
	Regions []Region
	// RTT holds the round trip between every unordered pair of distinct
	// regions; use Link to read it.
	RTT map[Pair]Link
	// IntraRegion is the round trip from a client to a gateway of its own
	// region.
	IntraRegion Link
	// LAN is the round trip between a gateway and its region's Redis.
	LAN Link
	// Clients weighs where clients live: home region → share (> 0). Regions
	// absent here have no clients of their own.
	Clients map[string]float64
	// Resolver is how the lab's GeoDNS stand-in answers.
	Resolver Resolver
}

// Region is one simulated region.
type Region struct {
	Name     string // a-z 0-9 -, as protocol.ValidOrigin checks: it becomes the origin
	Gateways int    // gateway nodes, named gw-1 … gw-N
	Redis    Redis
	// Federate lists the room patterns (e.g. "tenant:*") this region sends
	// to and accepts from the others; every other room stays in the region.
	Federate []string
}

// Redis says how a region's Redis runs.
type Redis struct {
	Mode        string // RedisStandalone or RedisCluster
	Persistence bool   // appendonly: a restart keeps history and counters (every node of a cluster)
	// Shards is the number of primaries of a cluster (MinShards..MaxShards,
	// DefaultShards when a file leaves it out); 0 for standalone.
	Shards int
	// Replicas is the number of replicas of each shard of a cluster
	// (0..MaxReplicas, DefaultReplicas when a file leaves it out); 0 for
	// standalone.
	Replicas int
	// TLS: Redis speaks TLS only, and the region's gateways and every
	// bridge reach it with rediss:// and the lab's CA. Process provider
	// only.
	TLS bool
	// ACL: Redis knows only ACL users (the default user off); the
	// gateways and bridges log in as users of their own with generated
	// passwords, given through the environment. Process provider only.
	ACL bool
	// Durability is the region's gateways' --durability: "" (their
	// default, async), DurabilityAsync or DurabilityReplicated (a cluster
	// with replicas only).
	Durability string
}

// The durabilities a region's redis.durability may name: the gateway's
// --durability values (gateway/broker's DurabilityAsync and
// DurabilityReplicated).
const (
	DurabilityAsync      = "async"
	DurabilityReplicated = "replicated"
)

// Nodes is the number of redis-server processes the region runs: one
// standalone, Shards × (1 + Replicas) for a cluster.
func (r Redis) Nodes() int {
	if r.Mode == RedisCluster {
		return r.Shards * (1 + r.Replicas)
	}
	return 1
}

// Link is a round-trip time with jitter. The lab applies half of each in
// each direction.
type Link struct {
	RTT    time.Duration
	Jitter time.Duration
}

// Resolver configures the GeoDNS stand-in.
type Resolver struct {
	TTL            time.Duration // how long a client may cache an answer
	HealthInterval time.Duration // how often gateways are health-checked
}

// Pair is an unordered pair of region names, A < B.
type Pair struct{ A, B string }

// MakePair orders a and b into a Pair.
func MakePair(a, b string) Pair {
	if b < a {
		a, b = b, a
	}
	return Pair{a, b}
}

// Link is the round trip between regions a and b: IntraRegion when a == b.
func (t *Topology) Link(a, b string) Link {
	if a == b {
		return t.IntraRegion
	}
	return t.RTT[MakePair(a, b)]
}

// Gateways counts the gateway nodes of every region.
func (t *Topology) Gateways() int {
	n := 0
	for _, r := range t.Regions {
		n += r.Gateways
	}
	return n
}

// Region returns the region named name.
func (t *Topology) Region(name string) (*Region, bool) {
	for i := range t.Regions {
		if t.Regions[i].Name == name {
			return &t.Regions[i], true
		}
	}
	return nil, false
}

// RegionNames lists the regions in file order.
func (t *Topology) RegionNames() []string {
	out := make([]string, len(t.Regions))
	for i, r := range t.Regions {
		out[i] = r.Name
	}
	return out
}

// Nearest lists every region other than from, nearest first by RTT (ties by
// name): the order the resolver fails over in.
func (t *Topology) Nearest(from string) []string {
	var out []string
	for _, r := range t.Regions {
		if r.Name != from {
			out = append(out, r.Name)
		}
	}
	slices.SortFunc(out, func(a, b string) int {
		la, lb := t.Link(from, a).RTT, t.Link(from, b).RTT
		if la != lb {
			if la < lb {
				return -1
			}
			return 1
		}
		if a < b {
			return -1
		}
		return 1
	})
	return out
}

var nameRE = regexp.MustCompile(`^[a-z0-9-]+$`)

// Validate reports everything wrong with t, joined, each an *Error naming
// the field (with Line 0: a Topology built in Go has no lines). Parse and
// Load run the same checks on every file and add the lines, so a Topology
// they return always passes Validate.
func (t *Topology) Validate() error {
	var errs []error
	t.validate(func(e *Error) { errs = append(errs, e) })
	return errors.Join(errs...)
}

// validate calls report once per thing wrong, in field order.
func (t *Topology) validate(report func(*Error)) {
	bad := func(field, format string, args ...any) {
		report(&Error{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	switch {
	case t.Name == "":
		bad("name", "required")
	case len(t.Name) > maxNameLen:
		bad("name", "%q is longer than %d characters", t.Name, maxNameLen)
	case !nameRE.MatchString(t.Name):
		bad("name", "%q has a character outside a-z 0-9 -", t.Name)
	}
	if strings.TrimSpace(t.Source) == "" {
		bad("source", "required: cite where the RTT figures come from (a URL or a reference)")
	}
	if n := len(t.Regions); n < 1 || n > MaxRegions {
		bad("regions", "must list 1..%d regions, got %d", MaxRegions, n)
	}
	known := map[string]bool{}
	for i := range t.Regions {
		t.validateRegion(i, known, report)
	}
	t.validateRTT(known, report)
	validateLink("intra_region", t.IntraRegion, report)
	validateLink("lan", t.LAN, report)
	t.validateClients(known, report)
	if d := t.Resolver.TTL; d < MinTTL || d > MaxTTL {
		bad("resolver.ttl", "must be %s..%s, got %s", fmtDuration(MinTTL), fmtDuration(MaxTTL), fmtDuration(d))
	}
	if d := t.Resolver.HealthInterval; d < MinHealthInterval || d > MaxHealthInterval {
		bad("resolver.health_interval", "must be %s..%s, got %s", fmtDuration(MinHealthInterval), fmtDuration(MaxHealthInterval), fmtDuration(d))
	}
}

// validateRegion checks regions[i] and adds its name to known.
func (t *Topology) validateRegion(i int, known map[string]bool, report func(*Error)) {
	r := t.Regions[i]
	path := fmt.Sprintf("regions[%d]", i)
	bad := func(field, format string, args ...any) {
		report(&Error{Field: path + "." + field, Msg: fmt.Sprintf(format, args...)})
	}
	if err := protocol.ValidOrigin(r.Name); err != nil {
		bad("name", "%v", err)
	} else if known[r.Name] {
		j := slices.IndexFunc(t.Regions, func(o Region) bool { return o.Name == r.Name })
		report(&Error{Field: path + ".name", Msg: fmt.Sprintf("duplicate region %q", r.Name), FirstField: fmt.Sprintf("regions[%d].name", j)})
	}
	if r.Name != "" {
		known[r.Name] = true
	}
	if r.Gateways < 1 || r.Gateways > MaxGateways {
		bad("gateways", "must be 1..%d, got %d", MaxGateways, r.Gateways)
	}
	validateRedis(r.Redis, bad)
	seen := map[string]int{}
	for j, p := range r.Federate {
		field := fmt.Sprintf("%s.federate[%d]", path, j)
		if err := auth.ValidPattern(p); err != nil {
			report(&Error{Field: field, Msg: err.Error()})
		} else if k, dup := seen[p]; dup {
			report(&Error{Field: field, Msg: fmt.Sprintf("pattern %q given twice", p), FirstField: fmt.Sprintf("%s.federate[%d]", path, k)})
		} else {
			seen[p] = j
		}
	}
}

// validateRedis checks a region's redis: a known mode, a cluster's shards
// and replicas in range, shards and replicas with a cluster only, and no
// tls or acl on a cluster (not built yet).
func validateRedis(r Redis, bad func(field, format string, args ...any)) {
	switch r.Durability {
	case "", DurabilityAsync:
	case DurabilityReplicated:
		if r.Mode != RedisCluster || r.Replicas < 1 {
			bad("redis.durability", "replicated needs a replica of every primary: mode cluster with replicas of at least 1 (this region: mode %s, replicas %d); a gateway with --durability replicated refuses a Redis without one", orStandalone(r.Mode), r.Replicas)
		}
	default:
		bad("redis.durability", "unknown durability %q (want %s or %s)", r.Durability, DurabilityAsync, DurabilityReplicated)
	}
	switch r.Mode {
	case RedisStandalone:
		for _, f := range []struct {
			key string
			n   int
		}{{"shards", r.Shards}, {"replicas", r.Replicas}} {
			if f.n != 0 {
				bad("redis."+f.key, "applies to mode cluster only (this region's mode is standalone)")
			}
		}
		return
	case RedisCluster:
	case "":
		bad("redis.mode", "required (standalone or cluster)")
		return
	default:
		bad("redis.mode", "unknown mode %q (want standalone or cluster)", r.Mode)
		return
	}
	if r.Shards < MinShards || r.Shards > MaxShards {
		bad("redis.shards", "must be %d..%d, got %d (redis-cli --cluster create needs at least %d primaries)", MinShards, MaxShards, r.Shards, MinShards)
	}
	if r.Replicas < 0 || r.Replicas > MaxReplicas {
		bad("redis.replicas", "must be 0..%d, got %d", MaxReplicas, r.Replicas)
	}
	if r.TLS {
		bad("redis.tls", "not supported with mode cluster yet: a TLS region runs standalone")
	}
	if r.ACL {
		bad("redis.acl", "not supported with mode cluster yet: an ACL region runs standalone")
	}
}

// orStandalone is mode, or standalone when it is "".
func orStandalone(mode string) string {
	if mode == "" {
		return RedisStandalone
	}
	return mode
}

// distinctNames lists the regions' names once each, in file order, without
// the empty ones: the regions an rtt pair or a client home may name.
func (t *Topology) distinctNames() []string {
	var names []string
	for _, r := range t.Regions {
		if r.Name != "" && !slices.Contains(names, r.Name) {
			names = append(names, r.Name)
		}
	}
	return names
}

// pairField is the field path of a pair's entry in the rtt matrix.
func pairField(p Pair) string { return "rtt." + p.A + "." + p.B }

// validateRTT checks every entry of the matrix and that every pair of
// distinct regions has one.
func (t *Topology) validateRTT(known map[string]bool, report func(*Error)) {
	pairs := make([]Pair, 0, len(t.RTT))
	for p := range t.RTT {
		pairs = append(pairs, p)
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].A != pairs[j].A {
			return pairs[i].A < pairs[j].A
		}
		return pairs[i].B < pairs[j].B
	})
	mentioned := map[string]bool{}
	for _, p := range pairs {
		field := pairField(p)
		switch {
		case p != MakePair(p.A, p.B):
			report(&Error{Field: "rtt", Msg: fmt.Sprintf("pair {%s %s} is not ordered: build it with MakePair", p.A, p.B)})
			continue
		case p.A == p.B:
			report(&Error{Field: field, Msg: fmt.Sprintf("region %q paired with itself: the round trip inside a region is intra_region", p.A)})
			continue
		}
		for _, r := range []string{p.A, p.B} {
			if !known[r] {
				report(&Error{Field: field, Msg: fmt.Sprintf("unknown region %q (regions: %s)", r, strings.Join(t.distinctNames(), ", "))})
			}
			mentioned[r] = true
		}
		validateLink(field, t.RTT[p], report)
	}
	names := t.distinctNames()
	if len(names) < 2 {
		return
	}
	if len(t.RTT) == 0 {
		report(&Error{Field: "rtt", Msg: fmt.Sprintf("required with 2 or more regions: give the round trip between each two of %s", strings.Join(names, ", "))})
		return
	}
	for _, r := range names {
		if !mentioned[r] {
			report(&Error{Field: "rtt", Msg: fmt.Sprintf("region %q is missing: no pair mentions it", r)})
		}
	}
	for i, a := range names {
		for _, b := range names[i+1:] {
			if !mentioned[a] || !mentioned[b] {
				continue
			}
			if _, ok := t.RTT[MakePair(a, b)]; !ok {
				report(&Error{Field: "rtt", Msg: fmt.Sprintf("missing the pair %s–%s", a, b)})
			}
		}
	}
}

// validateLink checks a round trip and its jitter at field.
func validateLink(field string, l Link, report func(*Error)) {
	bad := func(sub, format string, args ...any) {
		report(&Error{Field: field + "." + sub, Msg: fmt.Sprintf(format, args...)})
	}
	switch {
	case l.RTT < 0:
		bad("ms", "must not be negative, got %s", fmtMillis(l.RTT))
	case l.RTT > MaxLinkRTT:
		bad("ms", "must be at most %s, got %s", fmtMillis(MaxLinkRTT), fmtMillis(l.RTT))
	}
	switch {
	case l.Jitter < 0:
		bad("jitter_ms", "must not be negative, got %s", fmtMillis(l.Jitter))
	case l.RTT >= 0 && l.Jitter > l.RTT:
		bad("jitter_ms", "jitter_ms %s exceeds ms %s: latency would go negative", fmtMillis(l.Jitter), fmtMillis(l.RTT))
	}
}

// validateClients checks that clients live somewhere, in known regions.
func (t *Topology) validateClients(known map[string]bool, report func(*Error)) {
	if len(t.Clients) == 0 {
		if len(known) == 0 {
			return // no regions: reported as such
		}
		report(&Error{Field: "clients", Msg: "no region has clients: give at least one region a weight > 0"})
		return
	}
	homes := make([]string, 0, len(t.Clients))
	for r := range t.Clients {
		homes = append(homes, r)
	}
	sort.Strings(homes)
	for _, r := range homes {
		field := "clients." + r
		if !known[r] {
			report(&Error{Field: field, Msg: fmt.Sprintf("unknown region %q (regions: %s)", r, strings.Join(t.distinctNames(), ", "))})
		}
		if w := t.Clients[r]; !(w > 0) || math.IsInf(w, 1) {
			report(&Error{Field: field, Msg: fmt.Sprintf("weight must be a number > 0, got %v", w)})
		}
	}
}

// fmtMillis writes d in milliseconds, as a file gives it: 76, 0.5.
func fmtMillis(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', -1, 64)
}

// fmtDuration writes d as a file would: 5m rather than 5m0s.
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
