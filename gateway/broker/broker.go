// Package broker is how messages move through one region's Redis: the atomic
// publish and apply path (publish.lua), a room's history stream and sequence
// state, and the pub/sub subscriber that survives Redis reconnects. It knows
// nothing of WebSockets or clients; the gateway's hub decides who sees what.
//
//	publish ─► publish.lua ─┬─► geolab:h:{room}  (history stream: resume, gap fill)
//	                        ├─► geolab:s:{room}  (per-origin oseq and epoch)
//	                        ├─► geolab:outbox:R  (federated rooms only)
//	                        └─► PUBLISH geolab:ch:{room} ─► Subscriber ─► hub
//
// Those are the names on one Redis (Standalone). On a Redis Cluster
// (Clustered, layout.go) every key of a room leads with its outbox
// partition's hash tag, so that all of them share one slot; the channel is
// SPUBLISHed, and ShardedSubscriber follows each room to the shard that owns
// its slot.
//
// Contract: Publish is atomic and idempotent per (room, sender, client id)
// within the dedup window; every event gets exactly one oseq of its
// (room, origin) sequence, and the order of events in a room's stream is the
// order every subscriber of that room in the region sees (G1).
package broker

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/internal/faulty"
)

//go:embed publish.lua
var publishLua string

//go:embed snapshot.lua
var snapshotLua string

var (
	publishScript  = redis.NewScript(publishLua)
	snapshotScript = redis.NewScript(snapshotLua)
)

func init() {
	if faulty.On("noapplydedup") {
		// MUTANT noapplydedup breaks G3/G7 (with the bridge's lagging
		// checkpoint, federation/feed.go): apply no longer answers dup for
		// an oseq this region has, so a replayed event is stored and
		// published again, under a new stream id.
		const check = "if oseq <= cur then"
		if strings.Count(publishLua, check) != 1 {
			panic("faulty: noapplydedup: publish.lua no longer has " + check)
		}
		publishScript = redis.NewScript(strings.Replace(publishLua, check, "if false then", 1))
	}
}

// idemKey is the idempotency key of a publish: geolab:idem:{ROOM}:LEN:SENDER:ID,
// LEN the byte length of SENDER in decimal. The length prefix makes the key
// injective: a sub may hold ':' and the client id is the rest of the key, so
// without it sender "a:b" with id "c" and sender "a" with id "b:c" shared a
// key. (The prefix is not the old format's geolab:i:, so no key of the old,
// ambiguous format can be read as one of this format.)
func (l Layout) idemKey(room, sender, id string) string {
	return l.IdemPrefix(room) + strconv.Itoa(len(sender)) + ":" + sender + ":" + id
}

// Channel is the pub/sub channel of a room on one Redis (the Standalone
// layout); Broker.Channel is the channel in the broker's layout.
func Channel(room string) string { return Standalone.Channel(room) }

// ACLRules are the Redis ACL rules a user needs to run a gateway or a
// bridge: every key and channel under geolab: (and the pattern
// subscription ChannelPattern, which an ACL matches literally); the key
// named "" ("~" is the empty pattern: the scripts take "" for the outbox
// keys of a room that is not federated, and Redis checks every key given
// to a script); every command but the @dangerous ones (FLUSHALL, CONFIG,
// KEYS, DEBUG, …); and INFO, which the OOM watch reads. As a user:
// ACL SETUSER NAME on >PASSWORD followed by ACLRules.
const ACLRules = "~geolab:* ~ &geolab:* &" + ChannelPattern + " +@all -@dangerous +info"

// ChannelPattern matches every room channel; only the pattern subscription
// mode uses it (to demonstrate the amplification targeted subscription avoids).
const ChannelPattern = "geolab:ch:*"

// OutboxKey is the federation outbox stream of a region on one Redis: every
// federated event published there, in publish order, with fields r room, n
// outbox number, o origin, q oseq, e epoch, f frame, c the publisher's
// message id. A clustered region's outbox is Partitions streams
// (Layout.Outboxes).
func OutboxKey(region string) string { return "geolab:outbox:" + region }

// OutboxCounterKey counts the events ever appended to a region's outbox (the
// n of its newest entry): how far behind a reader is, in events.
func OutboxCounterKey(region string) string { return "geolab:outbox:" + region + ":n" }

// ErrUnavailable wraps every failure to reach Redis.
var ErrUnavailable = errors.New("redis unavailable")

// Broker runs the atomic scripts and history reads of one region's Redis.
type Broker struct {
	rdb    redis.UniversalClient
	region string
	cfg    HistoryConfig
	layout Layout
	// replicaTimeout > 0: a publish is acked only once a replica has it
	// (RequireReplica, durability.go).
	replicaTimeout time.Duration
	// batch is PublishBatch's own client on one Redis, made at the first
	// batch (pipeline.go says why); nil until then, and on a cluster.
	batch     *redis.Client
	batchOnce sync.Once
}

// HistoryConfig bounds what a region keeps.
type HistoryConfig struct {
	MaxLen       int64         // history stream length per room (approximate)
	MaxAge       time.Duration // history age per room (0 = no age bound)
	DedupWindow  time.Duration // how long a publish's idempotency key lives
	OutboxMaxLen int64         // federation outbox length (approximate)
	// SessionTTL is how long a session's ownership record lives in this
	// region after it was last claimed or applied here (session.lua).
	SessionTTL time.Duration
}

// DefaultHistory is the history a gateway keeps unless told otherwise.
func DefaultHistory() HistoryConfig {
	return HistoryConfig{MaxLen: 10000, MaxAge: time.Hour, DedupWindow: 5 * time.Minute, OutboxMaxLen: 1000000,
		SessionTTL: 24 * time.Hour}
}

// Validate checks the bounds.
func (c HistoryConfig) Validate() error {
	switch {
	case c.MaxLen < 1:
		return fmt.Errorf("history max length must be at least 1, got %d", c.MaxLen)
	case c.MaxAge < 0:
		return fmt.Errorf("history max age must not be negative, got %s", c.MaxAge)
	case c.DedupWindow < time.Second:
		return fmt.Errorf("dedup window must be at least 1s, got %s", c.DedupWindow)
	case c.OutboxMaxLen < 1:
		return fmt.Errorf("outbox max length must be at least 1, got %d", c.OutboxMaxLen)
	case c.SessionTTL < time.Second:
		return fmt.Errorf("session ttl must be at least 1s, got %s", c.SessionTTL)
	}
	return nil
}

// New returns a broker for region on rdb: on a *redis.ClusterClient it
// uses the Clustered layout, on anything else the Standalone one.
func New(rdb redis.UniversalClient, region string, cfg HistoryConfig) *Broker {
	return &Broker{rdb: rdb, region: region, cfg: cfg, layout: LayoutOf(rdb)}
}

// Layout is the key layout the broker uses.
func (b *Broker) Layout() Layout { return b.layout }

// Channel is a room's pub/sub channel in the broker's layout.
func (b *Broker) Channel(room string) string { return b.layout.Channel(room) }

// outbox names the outbox keys a script of name (a room or a session) is
// given, and whether it appends to them ("1" or "0", publish.lua's and
// session.lua's outbox argument). On one Redis a name that does not
// federate gets "" (today's form); on a cluster it gets its partition's
// keys all the same, with "0": a key "" would hash to slot 0, not the
// room's, and the script would be refused (CROSSSLOT).
func (b *Broker) outbox(name string, federated bool) (stream, counter, appendOutbox string) {
	if !federated && !b.layout.cluster {
		return "", "", "0"
	}
	stream, counter = b.layout.OutboxOf(b.region, name)
	if !federated {
		return stream, counter, "0"
	}
	return stream, counter, "1"
}

// publishCommand is how publish.lua publishes a room's deliveries:
// PUBLISH on one Redis, SPUBLISH (sharded pub/sub: only the shard of the
// room's slot carries it) on a cluster.
func (b *Broker) publishCommand() string {
	if b.layout.cluster {
		return "SPUBLISH"
	}
	return "PUBLISH"
}

// Client returns the Redis client the broker runs on.
func (b *Broker) Client() redis.UniversalClient { return b.rdb }

// PublishRequest is one client publish.
type PublishRequest struct {
	Room      string
	Sender    string
	ClientID  string // the client's message id: the idempotency key with Sender
	EventID   string // a fresh globally unique id; kept only if this is not a retry
	Epoch     string // a fresh epoch, used only if the (room, origin) sequence is new
	TS        time.Time
	Data      []byte // compact JSON
	Federated bool   // also append to this region's outbox
	// Seen is the highest (epoch, oseq) of the room's sequence of this
	// region that the caller knows was handed out (zero: none). When the
	// room's sequence is below it under that epoch, Redis lost events that
	// were seen (a replica promoted before it had them), and the script
	// starts a new epoch at oseq 1 instead of giving new events the lost
	// ones' numbers (docs/guarantees.md, G12's edge).
	Seen SeqSeen
}

// SeqSeen is a position of a (room, origin) sequence: an epoch and an oseq
// in it.
type SeqSeen struct {
	Epoch string
	Oseq  uint64
}

// Result is what the script did.
type Result struct {
	Status   string // "ok", "dup" or (apply) "gap"
	EventID  string
	Oseq     uint64
	Epoch    string
	StreamID string
	// Origin is the region that assigned Oseq: this one, except for a
	// publish retried here after its first attempt was stored in another
	// region and carried here by the bridge ("dup").
	Origin string
}

// Publish stores and publishes one event atomically. A retry of the same
// (room, sender, client id) within the dedup window returns the original
// result with Status "dup" and stores nothing.
func (b *Broker) Publish(ctx context.Context, p PublishRequest) (Result, error) {
	keys, args := b.publishCall(p)
	if b.replicaTimeout > 0 {
		return b.runReplicated(ctx, keys, args)
	}
	return b.run(ctx, keys, args)
}

// publishCall is publish.lua's keys and arguments for p: the one place a
// publish's call is built, for Publish and PublishBatch alike.
func (b *Broker) publishCall(p PublishRequest) (keys []string, args []any) {
	head, tail := frameParts(p.Room, p.EventID, b.region, p.Sender, p.TS, p.Data)
	l := b.layout
	outbox, counter, appendOutbox := b.outbox(p.Room, p.Federated)
	keys = []string{l.SeqKey(p.Room), l.HistoryKey(p.Room), l.idemKey(p.Room, p.Sender, p.ClientID), outbox, counter}
	if faulty.On("nopubdedup") {
		// MUTANT nopubdedup breaks G4: the idempotency key is the fresh
		// event id, never the client's, so a retry finds no record and
		// becomes a second event.
		keys[2] = l.idemKey(p.Room, p.Sender, p.EventID)
	}
	args = []any{"publish", l.Channel(p.Room), b.region, p.Epoch, 0, head, tail, p.EventID,
		b.cfg.MaxLen, b.minID(), b.cfg.DedupWindow.Milliseconds(), b.cfg.OutboxMaxLen, "", p.Room, "", p.ClientID,
		b.publishCommand(), appendOutbox, b.touchDup(), p.Seen.Epoch, p.Seen.Oseq}
	return keys, args
}

// touchDup is publish.lua's ARGV[19]: "1" when a "dup" answer must write
// again what it found (a publish's idempotency record, same value and TTL;
// an apply's sequence number, same value), so that the WAIT after it covers
// the first attempt's write.
func (b *Broker) touchDup() string {
	if b.replicaTimeout > 0 {
		return "1"
	}
	return "0"
}

// ApplyRequest is one event carried in from its origin region.
type ApplyRequest struct {
	Room   string
	Origin string
	Oseq   uint64
	Epoch  string
	Frame  []byte // the original message frame, byte for byte
	// Force applies past a gap the caller recorded with MarkGap.
	Force bool
	// EventID and Sender are the frame's "id" and "sender", and ClientID the
	// publisher's message id the outbox carried ("" from an older gateway):
	// with them the apply also writes the publish's idempotency record in
	// this region, so that a retry of it that fails over here is answered
	// with this event instead of becoming a second one (G4).
	EventID  string
	Sender   string
	ClientID string
}

// Apply stores and publishes a remote event if it is the next of its
// (room, origin) sequence: "ok"; "dup" if it was applied already (so applying
// twice is harmless); "gap" if events before it are missing here. Under
// RequireReplica it returns only once a replica has the apply, as Publish.
func (b *Broker) Apply(ctx context.Context, a ApplyRequest) (Result, error) {
	force := ""
	if a.Force {
		force = "1"
	}
	l := b.layout
	idem, cid := l.IdemPrefix(a.Room)+"-", ""
	if a.ClientID != "" && a.EventID != "" {
		idem, cid = l.idemKey(a.Room, a.Sender, a.ClientID), a.ClientID
	}
	outbox, counter, appendOutbox := b.outbox(a.Room, false)
	keys := []string{l.SeqKey(a.Room), l.HistoryKey(a.Room), idem, outbox, counter}
	args := []any{"apply", l.Channel(a.Room), a.Origin, a.Epoch, a.Oseq, "", "", a.EventID,
		b.cfg.MaxLen, b.minID(), b.cfg.DedupWindow.Milliseconds(), b.cfg.OutboxMaxLen, string(a.Frame), a.Room, force, cid,
		b.publishCommand(), appendOutbox, b.touchDup()}
	if b.replicaTimeout > 0 {
		return b.runReplicated(ctx, keys, args)
	}
	return b.run(ctx, keys, args)
}

func (b *Broker) minID() string {
	if b.cfg.MaxAge <= 0 {
		return ""
	}
	return strconv.FormatInt(time.Now().Add(-b.cfg.MaxAge).UnixMilli(), 10)
}

func (b *Broker) run(ctx context.Context, keys []string, args []any) (Result, error) {
	return b.runOn(ctx, b.rdb, keys, args)
}

// runOn runs publish.lua on c: the broker's client, or one connection of
// it (runReplicated).
func (b *Broker) runOn(ctx context.Context, c redis.Scripter, keys []string, args []any) (Result, error) {
	return scriptResult(publishScript.Run(ctx, c, keys, args...))
}

// scriptResult reads publish.lua's answer.
func scriptResult(cmd *redis.Cmd) (Result, error) {
	v, err := cmd.Slice()
	if err != nil {
		return Result{}, fmt.Errorf("broker: publish.lua: %w: %w", ErrUnavailable, err)
	}
	if len(v) != 6 {
		return Result{}, fmt.Errorf("broker: publish.lua returned %d values, want 6", len(v))
	}
	r := Result{Status: str(v[0]), EventID: str(v[1]), Epoch: str(v[3]), StreamID: str(v[4]), Origin: str(v[5])}
	if n, ok := v[2].(int64); ok && n >= 0 {
		r.Oseq = uint64(n)
	}
	return r, nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// frameParts builds the message frame around the oseq and epoch the script
// splices in: head ends with "oseq": and tail starts with ,"sender":.
func frameParts(room, eventID, origin, sender string, ts time.Time, data []byte) (string, string) {
	var h strings.Builder
	h.WriteString(`{"type":"` + protocol.TypeMessage + `","room":`)
	h.WriteString(jsonString(room))
	h.WriteString(`,"id":`)
	h.WriteString(jsonString(eventID))
	h.WriteString(`,"origin":`)
	h.WriteString(jsonString(origin))
	h.WriteString(`,"oseq":`)
	var t strings.Builder
	t.WriteString(`,"sender":`)
	t.WriteString(jsonString(sender))
	t.WriteString(`,"ts":"`)
	t.WriteString(ts.UTC().Format(time.RFC3339Nano))
	t.WriteString(`","data":`)
	t.Write(data)
	t.WriteString(`}`)
	return h.String(), t.String()
}

// Snapshot is a room's sequence state and history tip at one instant.
type Snapshot struct {
	Tip    StreamID
	Seq    map[string]uint64 // origin → last oseq stored in this region
	Epochs map[string]string // origin → epoch
	Gaps   map[string]uint64 // origin → highest oseq known missing in this region
}

// Snapshot reads a room's state atomically.
func (b *Broker) Snapshot(ctx context.Context, room string) (Snapshot, error) {
	v, err := snapshotScript.Run(ctx, b.rdb, []string{b.layout.SeqKey(room), b.layout.HistoryKey(room)}).Slice()
	if err != nil {
		return Snapshot{}, fmt.Errorf("broker: snapshot of %s: %w: %w", room, ErrUnavailable, err)
	}
	s := Snapshot{Seq: map[string]uint64{}, Epochs: map[string]string{}, Gaps: map[string]uint64{}}
	if len(v) != 2 {
		return s, fmt.Errorf("broker: snapshot.lua returned %d values, want 2", len(v))
	}
	if s.Tip, err = ParseStreamID(str(v[0])); err != nil {
		return s, fmt.Errorf("broker: snapshot of %s: %w", room, err)
	}
	fields, _ := v[1].([]any)
	for i := 0; i+1 < len(fields); i += 2 {
		k, val := str(fields[i]), str(fields[i+1])
		if len(k) < 3 || k[1] != ':' {
			continue
		}
		origin := k[2:]
		switch k[0] {
		case 'q':
			n, _ := strconv.ParseUint(val, 10, 64)
			s.Seq[origin] = n
		case 'e':
			s.Epochs[origin] = val
		case 'g':
			n, _ := strconv.ParseUint(val, 10, 64)
			s.Gaps[origin] = n
		}
	}
	return s, nil
}

// MarkGap records that events of (room, origin) up to oseq are missing in
// this region and can never be replayed here (federation found its source
// trimmed). Gateways answer recovered:false to resumes that need them.
func (b *Broker) MarkGap(ctx context.Context, room, origin string, oseq uint64) error {
	err := b.rdb.HSet(ctx, b.layout.SeqKey(room), "g:"+origin, oseq).Err()
	if err != nil {
		return fmt.Errorf("broker: mark gap of %s/%s: %w: %w", room, origin, ErrUnavailable, err)
	}
	return nil
}

// Entry is one event of a room's history.
type Entry struct {
	ID     StreamID
	Origin string
	Oseq   uint64
	Epoch  string
	Frame  []byte
}

func parseEntry(m redis.XMessage) (Entry, error) {
	id, err := ParseStreamID(m.ID)
	if err != nil {
		return Entry{}, err
	}
	e := Entry{ID: id}
	e.Origin, _ = m.Values["o"].(string)
	e.Epoch, _ = m.Values["e"].(string)
	q, _ := m.Values["q"].(string)
	e.Oseq, _ = strconv.ParseUint(q, 10, 64)
	f, _ := m.Values["f"].(string)
	e.Frame = []byte(f)
	if e.Origin == "" || e.Oseq == 0 || len(e.Frame) == 0 {
		return e, fmt.Errorf("history entry %s is missing a field", m.ID)
	}
	return e, nil
}

// After returns up to count history entries of room with ids after from, in
// stream order.
func (b *Broker) After(ctx context.Context, room string, from StreamID, count int64) ([]Entry, error) {
	msgs, err := b.rdb.XRangeN(ctx, b.layout.HistoryKey(room), "("+from.String(), "+", count).Result()
	if err != nil {
		return nil, fmt.Errorf("broker: history of %s after %s: %w: %w", room, from, ErrUnavailable, err)
	}
	return parseEntries(msgs)
}

// Before returns up to count history entries of room with ids at or before
// to (inclusive when inclusive is set), newest first.
func (b *Broker) Before(ctx context.Context, room string, to StreamID, inclusive bool, count int64) ([]Entry, error) {
	end := to.String()
	if !inclusive {
		end = "(" + end
	}
	msgs, err := b.rdb.XRevRangeN(ctx, b.layout.HistoryKey(room), end, "-", count).Result()
	if err != nil {
		return nil, fmt.Errorf("broker: history of %s before %s: %w: %w", room, to, ErrUnavailable, err)
	}
	return parseEntries(msgs)
}

func parseEntries(msgs []redis.XMessage) ([]Entry, error) {
	out := make([]Entry, 0, len(msgs))
	for _, m := range msgs {
		e, err := parseEntry(m)
		if err != nil {
			return out, fmt.Errorf("broker: %w", err)
		}
		out = append(out, e)
	}
	return out, nil
}

// Delivery is one event as it arrives on a room channel.
type Delivery struct {
	Room string
	Entry
	// Ended marks a notice, not an event: the life of Origin's sequence in
	// this room ended, its unshipped events lost (EndOrigin). Only Room and
	// Origin are set.
	Ended bool
	// EndedForAll, with Ended, is told to every subscriber of the room, not
	// only to those that had events of Origin: the gateway's own notice
	// that the region's Redis lost its data while the gateway's pub/sub
	// link was down, so that events of the region's own origin published
	// meanwhile may be gone without any subscriber of the gateway having
	// had one of them; or "end <origin> all" (EndOrigin with unheld), for a
	// room that held no life of a remote origin that lost its data.
	EndedForAll bool
}

// ParseDelivery splits a channel payload ("<stream id> <origin> <oseq>
// <epoch>\n<frame>") into its header and the frame the gateway forwards as
// is; or reads the notice "end <origin>\n" or "end <origin> all\n"
// (EndOrigin) as an Ended delivery.
func ParseDelivery(room, payload string) (Delivery, error) {
	nl := strings.IndexByte(payload, '\n')
	if nl < 0 {
		return Delivery{}, fmt.Errorf("broker: delivery on %s has no header line", room)
	}
	parts := strings.Split(payload[:nl], " ")
	if (len(parts) == 2 || len(parts) == 3) && parts[0] == "end" {
		if parts[1] == "" || nl != len(payload)-1 {
			return Delivery{}, fmt.Errorf("broker: end notice on %s names no origin or carries a frame", room)
		}
		if len(parts) == 3 && parts[2] != "all" {
			return Delivery{}, fmt.Errorf("broker: end notice on %s: third field %q, want all", room, parts[2])
		}
		return Delivery{Room: room, Entry: Entry{Origin: parts[1]}, Ended: true, EndedForAll: len(parts) == 3}, nil
	}
	if len(parts) != 4 {
		return Delivery{}, fmt.Errorf("broker: delivery on %s has a header of %d fields, want 4", room, len(parts))
	}
	id, err := ParseStreamID(parts[0])
	if err != nil {
		return Delivery{}, fmt.Errorf("broker: delivery on %s: %w", room, err)
	}
	oseq, err := strconv.ParseUint(parts[2], 10, 64)
	if err != nil {
		return Delivery{}, fmt.Errorf("broker: delivery on %s: bad oseq %q", room, parts[2])
	}
	return Delivery{Room: room, Entry: Entry{ID: id, Origin: parts[1], Oseq: oseq, Epoch: parts[3], Frame: []byte(payload[nl+1:])}}, nil
}
