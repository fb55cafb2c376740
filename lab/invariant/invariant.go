// Package invariant looks at the lab itself after a run quiesced, for the
// breakages no client can see on the wire: an event stored twice in a
// region's history, an event echoed into an outbox that is not its
// origin's, a gateway subscribed by pattern. Each is a count, so that a run
// is judged on them the way the checker judges the history
// (docs/checker.md, "Lab counts").
//
//	run quiesced ─▶ Check(lab) ─▶ Counts ─▶ check.Result (lab counts) ─▶ Violations
package invariant

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/geolab/geolab/gateway/broker"
	"github.com/geolab/geolab/lab"
)

// Counts are what Check found, with up to a few examples each in words.
type Counts struct {
	// HistoryDuplicates: stream entries of a room's history that repeat an
	// event (origin, epoch, oseq) the history already holds: an apply or a
	// retry that was not idempotent (G3, G7).
	HistoryDuplicates int
	// OutboxEchoes: outbox entries of another origin than the outbox's
	// region: a bridge that forwarded what it applied (G7's loop
	// prevention).
	OutboxEchoes int
	// PatternSubscriptions: pattern subscriptions open on a region's Redis
	// while its gateways run in targeted mode: every node receives every
	// publish (G9).
	PatternSubscriptions int
	// OwnEvents: events the regions' histories hold of their own origin,
	// each counted once: the events the gateways created. A run compares it
	// with the publishes the clients made (G4: one event per client
	// message id, however often retried).
	OwnEvents int
	// Recreated: events a region created for a publish (same room, sender
	// and client message id) whose event its history already held, its own
	// or carried in by a bridge: the region had the idempotency record and
	// made a second event anyway (G4).
	Recreated int
	// RetriesOvertaken: second events of a publish made by a region that
	// did not yet hold the first one: the retry failed over to it before
	// the bridge carried the first attempt's event there. No region can
	// know of an event that has not reached it; this is G4's stated edge
	// (docs/guarantees.md), counted, not a violation.
	RetriesOvertaken int
	// Examples by count name (history_duplicates, outbox_echoes,
	// pattern_subscriptions, recreated, retries_overtaken).
	Examples map[string][]string

	// stored: per (region, room), the events of the history in stream
	// order, for publishes.
	stored []storedEvent
	// own: per region, the ids of the events its histories hold of its
	// own origin (HoldsOwn).
	own map[string]map[string]bool
}

// HoldsOwn reports whether region's histories hold event (its id) as an
// event of region's own origin, as Check read them.
func (c *Counts) HoldsOwn(region, event string) bool { return c.own[region][event] }

// storedEvent is one entry of a region's room history, as publishes reads it.
type storedEvent struct {
	Region   string
	Room     string // the room's name, whatever the region's key layout
	Origin   string
	Event    string // the frame's "id"
	Sender   string // the frame's "sender"
	ClientID string // the entry's c: the publisher's message id ("" unknown)
}

// maxExamples is how many examples of each count Check keeps.
const maxExamples = 5

func (c *Counts) example(name, format string, args ...any) {
	if c.Examples == nil {
		c.Examples = map[string][]string{}
	}
	if len(c.Examples[name]) < maxExamples {
		c.Examples[name] = append(c.Examples[name], fmt.Sprintf(format, args...))
	}
}

// Options tune Check.
type Options struct {
	// PatternMode is true when the gateways were started with
	// --subscribe-mode pattern on purpose: pattern subscriptions are then
	// expected and not counted.
	PatternMode bool
	// LabRooms are rooms only the lab itself publishes into (the slow
	// probe's room): their events are no client's publishes, so they are
	// left out of OwnEvents and of the matching by publish. Their
	// histories are still checked for duplicates.
	LabRooms []string
}

// Check reads every region's Redis of l: every room history stream
// (geolab:h:{ROOM}, or geolab:h:{TAG}{ROOM} on a Redis Cluster), the
// region's outbox (each of its partitions on a cluster) and its pattern
// subscriptions. An error means it could not look (a Redis that does not
// answer), never that it found something.
func Check(ctx context.Context, l *lab.Lab, opts Options) (Counts, error) {
	var c Counts
	for _, region := range l.Topology().RegionNames() {
		rdb, err := l.Region(region).RedisUniversalClient()
		if err != nil {
			return c, fmt.Errorf("invariant: redis of %s: %w", region, err)
		}
		err = c.region(ctx, rdb, region, opts)
		rdb.Close()
		if err != nil {
			return c, fmt.Errorf("invariant: %s: %w", region, err)
		}
	}
	c.publishes()
	return c, nil
}

// region reads one region's Redis, one node or a cluster: the key names
// are the broker's layout for it (broker.LayoutOf), and on a cluster every
// primary is scanned, since a SCAN sees only the node it runs on.
func (c *Counts) region(ctx context.Context, rdb redis.UniversalClient, region string, opts Options) error {
	layout := broker.LayoutOf(rdb)
	keys, err := scanKeys(ctx, rdb, "geolab:h:{*}")
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := c.history(ctx, rdb, region, k, slices.Contains(opts.LabRooms, roomOfHistoryKey(k))); err != nil {
			return err
		}
	}
	for _, o := range layout.Outboxes(region) {
		if err := eachEntry(ctx, rdb, o.Stream, func(e redis.XMessage) {
			if o := fmt.Sprint(e.Values["o"]); o != region {
				c.OutboxEchoes++
				c.example("outbox_echoes", "the outbox of %s holds an event of origin %s (entry %s): a bridge forwarded what it applied", region, o, e.ID)
			}
		}); err != nil {
			return err
		}
	}
	if opts.PatternMode {
		return nil
	}
	n, err := patternSubscriptions(ctx, rdb)
	if err != nil {
		return err
	}
	if n > 0 {
		c.PatternSubscriptions += int(n)
		c.example("pattern_subscriptions", "the Redis of %s has %d pattern subscription(s) open though the gateways run in targeted mode: every node receives every publish", region, n)
	}
	return nil
}

// patternSubscriptions is PUBSUB NUMPAT of one Redis, or summed over every
// node of a cluster (a pattern subscription lives on the node it was made
// on).
func patternSubscriptions(ctx context.Context, rdb redis.UniversalClient) (int64, error) {
	cc, ok := rdb.(*redis.ClusterClient)
	if !ok {
		n, err := rdb.PubSubNumPat(ctx).Result()
		if err != nil {
			return 0, fmt.Errorf("PUBSUB NUMPAT: %w", err)
		}
		return n, nil
	}
	var mu sync.Mutex
	var total int64
	err := cc.ForEachShard(ctx, func(ctx context.Context, node *redis.Client) error {
		n, err := node.PubSubNumPat(ctx).Result()
		if err != nil {
			return fmt.Errorf("PUBSUB NUMPAT on %s: %w", node.Options().Addr, err)
		}
		mu.Lock()
		total += n
		mu.Unlock()
		return nil
	})
	return total, err
}

// history counts the entries of one room history stream that repeat an
// event it already holds; of a room the lab publishes into itself (lab),
// nothing else.
func (c *Counts) history(ctx context.Context, rdb redis.UniversalClient, region, key string, lab bool) error {
	seen := map[string]string{}
	room := roomOfHistoryKey(key)
	return eachEntry(ctx, rdb, key, func(e redis.XMessage) {
		id := fmt.Sprint(e.Values["o"], "/", e.Values["e"], "/", e.Values["q"])
		if first, dup := seen[id]; dup {
			c.HistoryDuplicates++
			c.example("history_duplicates", "%s's %s holds event %s (origin/epoch/oseq) twice: entries %s and %s", region, key, id, first, e.ID)
			return
		}
		seen[id] = e.ID
		if lab {
			return
		}
		f, _ := e.Values["f"].(string)
		var m struct{ ID, Sender string }
		_ = json.Unmarshal([]byte(f), &m) // a frame that does not parse has no publish to match
		if fmt.Sprint(e.Values["o"]) == region {
			c.OwnEvents++
			if c.own == nil {
				c.own = map[string]map[string]bool{}
			}
			if c.own[region] == nil {
				c.own[region] = map[string]bool{}
			}
			c.own[region][m.ID] = true
		}
		cid, _ := e.Values["c"].(string)
		c.stored = append(c.stored, storedEvent{Region: region, Room: room, Origin: fmt.Sprint(e.Values["o"]),
			Event: m.ID, Sender: m.Sender, ClientID: cid})
	})
}

// publishes matches the events of every history by publish (room, sender,
// client message id) and counts, for each publish that became more than one
// event, each extra one as Recreated (its region's history held an event of
// that publish before it) or RetriesOvertaken (it did not).
func (c *Counts) publishes() {
	type publish struct{ room, sender, cid string }
	type regionPublish struct {
		region string
		publish
	}
	events := map[publish]map[string]bool{} // publish → its distinct event ids
	held := map[regionPublish]string{}      // the first event of a publish each region's history holds
	judged := map[string]bool{}             // event ids judged once (a region's own entry)
	recreated := map[publish]int{}          // per publish, its Recreated events
	for _, e := range c.stored {
		if e.ClientID == "" || e.Event == "" {
			continue
		}
		k := publish{e.Room, e.Sender, e.ClientID}
		if events[k] == nil {
			events[k] = map[string]bool{}
		}
		events[k][e.Event] = true
		rk := regionPublish{e.Region, k}
		first, had := held[rk]
		if !had {
			held[rk] = e.Event
		}
		if e.Origin != e.Region || judged[e.Event] {
			continue
		}
		judged[e.Event] = true
		if had && first != e.Event {
			c.Recreated++
			recreated[k]++
			c.example("recreated", "%s made event %s for %s's message %s in %s although its history already held event %s of that publish",
				e.Region, e.Event, e.Sender, e.ClientID, e.Room, first)
		}
	}
	keys := slices.SortedFunc(maps.Keys(events), func(a, b publish) int {
		return strings.Compare(a.room+"\x00"+a.sender+"\x00"+a.cid, b.room+"\x00"+b.sender+"\x00"+b.cid)
	})
	for _, k := range keys {
		ids := events[k]
		if n := len(ids) - 1 - recreated[k]; n > 0 {
			c.RetriesOvertaken += n
			c.example("retries_overtaken", "%s's message %s in %s became %d events (%s): a retry reached a region before its first attempt's event did",
				k.sender, k.cid, k.room, len(ids), strings.Join(slices.Sorted(maps.Keys(ids)), ", "))
		}
	}
}

// page is how many stream entries one XRANGE reads.
const page = 1000

// eachEntry calls f on every entry of stream key, page by page.
func eachEntry(ctx context.Context, rdb redis.UniversalClient, key string, f func(redis.XMessage)) error {
	start := "-"
	for {
		entries, err := rdb.XRangeN(ctx, key, start, "+", page).Result()
		if err != nil {
			return fmt.Errorf("XRANGE %s: %w", key, err)
		}
		for _, e := range entries {
			f(e)
		}
		if len(entries) < page {
			return nil
		}
		start = "(" + entries[len(entries)-1].ID
	}
}

// scanKeys lists the keys matching pattern with SCAN (never KEYS: a
// region's Redis may be large), sorted and each once. On a Redis Cluster it
// scans every primary (a SCAN sees only the keys of the node it runs on):
// the lab's client of a cluster region dials each node directly, so it
// reads them even while a fault holds a node's proxy closed.
func scanKeys(ctx context.Context, rdb redis.UniversalClient, pattern string) ([]string, error) {
	var keys []string
	scan := func(ctx context.Context, node redis.UniversalClient) ([]string, error) {
		var out []string
		iter := node.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			out = append(out, iter.Val())
		}
		if err := iter.Err(); err != nil {
			return nil, fmt.Errorf("SCAN %s: %w", pattern, err)
		}
		return out, nil
	}
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		var mu sync.Mutex
		err := cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			found, err := scan(ctx, node)
			if err != nil {
				return fmt.Errorf("%s: %w", node.Options().Addr, err)
			}
			mu.Lock()
			keys = append(keys, found...)
			mu.Unlock()
			return nil
		})
		if err != nil {
			return nil, err
		}
	} else {
		found, err := scan(ctx, rdb)
		if err != nil {
			return nil, err
		}
		keys = found
	}
	slices.Sort(keys)
	return slices.Compact(keys), nil
}

// roomOfHistoryKey is the room a history stream key holds, in either
// layout: geolab:h:{ROOM} on one Redis, geolab:h:{TAG}{ROOM} on a cluster
// (broker.Layout), so that one room's histories in regions of either kind
// are matched as one room. A key of neither form is returned as it is.
func roomOfHistoryKey(key string) string {
	if room := broker.RoomOfHistoryKey(key); room != "" {
		return room
	}
	return key
}
