package gateway

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/geolab/geolab/gateway/broker"
	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/internal/faulty"
)

// hub is a node's registry of hosted rooms. It holds one Redis subscription
// per room with at least one local subscriber (targeted mode), dispatches each
// delivery to the room's local subscriptions in stream order, and after a
// Redis reconnect fills every room's gap from history before going live again.
type hub struct {
	cfg    *Config
	broker *broker.Broker
	sub    *broker.Subscriber
	log    *slog.Logger
	m      *metrics

	mu    sync.RWMutex
	rooms map[string]*room
	// fillGen changes on every loss and every return of the pub/sub link. A
	// gap fill belongs to the value it started with and finishes only if it
	// is still current: a fill overtaken by a newer loss must not let the
	// room go live, or what was published since that loss would be skipped.
	fillGen atomic.Uint64

	// onSessionTaken is called when another region took a session over.
	onSessionTaken func(session, region string)
}

// room is one hosted room. lastID is the stream id of the last event
// dispatched to its subscriptions; ids only grow, so a delivery at or before
// lastID was dispatched already (it came both from gap fill and live).
type room struct {
	name string
	refs int // guarded by hub.mu

	mu       sync.Mutex
	subs     map[*subscription]struct{}
	lastID   broker.StreamID
	inited   bool // lastID covers the room's history as of a snapshot
	filling  bool // a gap fill is running: live deliveries wait in backlog
	backlog  []broker.Delivery
	overflow bool // backlog overflowed: the fill must read again from lastID
}

const maxBacklog = 100000

func newHub(cfg *Config, b *broker.Broker, sub *broker.Subscriber, log *slog.Logger, m *metrics) *hub {
	h := &hub{cfg: cfg, broker: b, sub: sub, log: log, m: m, rooms: map[string]*room{}}
	sub.OnMessage = h.deliver
	sub.OnUp = h.up
	sub.OnDown = h.down
	return h
}

// acquire returns the hosted room, subscribing to it in Redis first if this
// node did not host it yet. Every acquire is paired with a release.
func (h *hub) acquire(ctx context.Context, name string) (*room, error) {
	h.mu.Lock()
	r := h.rooms[name]
	if r == nil {
		r = &room{name: name, subs: map[*subscription]struct{}{}}
		h.rooms[name] = r
		h.m.rooms.Inc()
	}
	r.refs++
	h.mu.Unlock()
	var err error
	if h.cfg.SubscribeMode == SubscribePattern {
		err = h.sub.WaitUp(ctx)
	} else {
		err = h.sub.Subscribe(ctx, broker.Channel(name))
	}
	if err != nil {
		h.release(r)
		return nil, err
	}
	h.m.redisSubscriptions.Set(float64(h.sub.Channels()))
	return r, nil
}

// release drops one reference; the last one unsubscribes the room in Redis.
func (h *hub) release(r *room) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r.refs--
	if r.refs > 0 {
		return
	}
	delete(h.rooms, r.name)
	h.m.rooms.Dec()
	if h.cfg.SubscribeMode != SubscribePattern {
		ctx, cancel := context.WithTimeout(context.Background(), h.cfg.RedisLink.WriteTimeout)
		h.sub.Unsubscribe(ctx, broker.Channel(r.name))
		cancel()
		h.m.redisSubscriptions.Set(float64(h.sub.Channels()))
	}
}

// deliver handles one message from Redis (the subscriber's goroutine).
func (h *hub) deliver(channel, payload string) {
	if channel == broker.SessionsChannel {
		if h.onSessionTaken != nil {
			if session, region, ok := broker.ParseTaken(payload); ok {
				h.onSessionTaken(session, region)
			}
		}
		return
	}
	roomName := broker.RoomOfChannel(channel)
	h.m.redisDeliveries.Inc()
	h.mu.RLock()
	r := h.rooms[roomName]
	h.mu.RUnlock()
	if r == nil {
		h.m.deliveriesDiscarded.Inc()
		return
	}
	d, err := broker.ParseDelivery(roomName, payload)
	if err != nil {
		h.log.Error("bad delivery from redis", "room", roomName, "err", err)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.filling {
		if len(r.backlog) >= maxBacklog {
			r.overflow = true
			return
		}
		r.backlog = append(r.backlog, d)
		return
	}
	h.dispatchLocked(r, d)
}

// dispatchLocked hands one event to every subscription of r, once.
func (h *hub) dispatchLocked(r *room, d broker.Delivery) {
	if !r.lastID.Less(d.ID) {
		h.m.duplicatesDropped.Inc()
		return
	}
	r.lastID = d.ID
	for s := range r.subs {
		s.offer(d)
	}
}

// down marks every room as needing a gap fill: from now on deliveries wait.
func (h *hub) down(err error) {
	h.m.redisUp.Set(0)
	h.m.redisReconnects.Inc()
	h.log.Warn("redis pub/sub connection lost; rooms will be refilled from history", "err", err)
	h.fillGen.Add(1)
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, r := range h.rooms {
		r.mu.Lock()
		r.filling = true
		r.mu.Unlock()
	}
}

// up starts the gap fill of every room after a (re)connection.
func (h *hub) up(gen uint64) {
	h.m.redisUp.Set(1)
	fg := h.fillGen.Add(1)
	h.mu.RLock()
	rooms := make([]*room, 0, len(h.rooms))
	for _, r := range h.rooms {
		rooms = append(rooms, r)
	}
	h.mu.RUnlock()
	if gen > 1 {
		h.log.Info("redis pub/sub connection back; filling gaps", "rooms", len(rooms))
	}
	go func() {
		for _, r := range rooms {
			h.fill(fg, r)
		}
	}()
}

// fill reads r's history after lastID and dispatches it, then the live
// deliveries that waited, then lets live deliveries through again. It gives
// up as soon as fillGen moves on (the link was lost again; the next up fills).
func (h *hub) fill(fg uint64, r *room) {
	const page = 512
	attempt := 0
	for h.fillGen.Load() == fg {
		r.mu.Lock()
		if h.fillGen.Load() != fg {
			r.mu.Unlock()
			return
		}
		if !r.filling {
			r.mu.Unlock()
			return
		}
		if !r.inited {
			// Nobody is live in the room yet: the subscriptions being set up
			// read their own snapshot. Release what waited and go live.
			h.drainBacklogLocked(r)
			r.mu.Unlock()
			return
		}
		if faulty.On("nogapfill") {
			// MUTANT nogapfill breaks G5: the room goes live again without
			// reading its history after lastID, so what was published while
			// the pub/sub link was down never reaches this node's clients.
			h.drainBacklogLocked(r)
			r.mu.Unlock()
			return
		}
		from := r.lastID
		r.mu.Unlock()

		ctx, cancel := context.WithTimeout(context.Background(), 2*h.cfg.RedisLink.ReadTimeout)
		entries, err := h.broker.After(ctx, r.name, from, page)
		cancel()
		if err != nil {
			attempt++
			h.log.Warn("gap fill failed; retrying", "room", r.name, "err", err)
			time.Sleep(min(time.Duration(attempt)*100*time.Millisecond, 2*time.Second))
			continue
		}
		r.mu.Lock()
		if h.fillGen.Load() != fg {
			r.mu.Unlock()
			return
		}
		for _, e := range entries {
			h.m.gapFilled.Inc()
			h.dispatchLocked(r, broker.Delivery{Room: r.name, Entry: e})
		}
		if len(entries) < page && !r.overflow {
			h.drainBacklogLocked(r)
			r.mu.Unlock()
			return
		}
		r.overflow = false
		r.mu.Unlock()
	}
}

func (h *hub) drainBacklogLocked(r *room) {
	for _, d := range r.backlog {
		h.dispatchLocked(r, d)
	}
	r.backlog = nil
	r.filling = false
}

// initRoom marks the room live and, when the subscription that took snap
// is the room's only one, lets lastID cover the history up to the snapshot
// tip. With other subscriptions present it must not: one of them may still
// be pending on an older snapshot and need, live, an event this snapshot
// already holds (each subscription filters what its own snapshot covered).
func (h *hub) initRoom(r *room, snap broker.Snapshot) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.subs) == 1 && r.lastID.Less(snap.Tip) {
		r.lastID = snap.Tip
	}
	r.inited = true
}

// resume works out what a client resuming at since (and epochs) missed in
// the room at snapshot snap: the entries to replay in stream order, or
// recovered false with a reason. It also returns the per-origin floors the
// subscription starts from (what the client has, by its own word).
func (h *hub) resume(ctx context.Context, name string, snap broker.Snapshot, since protocol.Positions, epochs protocol.Epochs) (replay []broker.Entry, reason string, floors map[string]floor, err error) {
	floors = map[string]floor{}
	if faulty.On("noresume") {
		// MUTANT noresume breaks G6: every resume is "recovered" with nothing
		// replayed, and the floors say the client has everything up to the
		// snapshot, so not even the jump is announced: a silent gap.
		for o, q := range snap.Seq {
			floors[o] = floor{epoch: snap.Epochs[o], oseq: q}
		}
		return nil, "", floors, nil
	}
	need := map[string]uint64{} // origin → oseq the client has; entries after it are missed
	for o, pos := range since {
		cur, have := snap.Seq[o]
		ep := snap.Epochs[o]
		given := epochs[o]
		switch {
		case given != "" && ep != "" && given != ep:
			return nil, protocol.ReasonEpochChanged, nil, nil
		case pos > cur && o != h.cfg.Region && !h.cfg.federated(name):
			// A local room's events of another region never come here: a
			// client that failed over from o cannot get o's sequence in
			// this region (G8: recovered false for region-local rooms).
			return nil, protocol.ReasonAheadOfHistory, nil, nil
		case pos > cur:
			// The client saw more of o than this region has: either this
			// region is behind (federation lag after a failover) or o's
			// sequence restarted. Only the epoch tells which.
			if given == "" && have {
				return nil, protocol.ReasonAheadOfHistory, nil, nil
			}
			fe := given
			if fe == "" {
				fe = ep
			}
			floors[o] = floor{epoch: fe, oseq: pos}
		default:
			floors[o] = floor{epoch: ep, oseq: pos}
			if pos < cur {
				need[o] = pos
			}
		}
		if g, ok := snap.Gaps[o]; ok && pos < g {
			return nil, protocol.ReasonGapMarked, nil, nil
		}
	}
	// Origins the client did not name: it has none of their events.
	for o, cur := range snap.Seq {
		if _, named := since[o]; !named && cur > 0 {
			need[o] = 0
			floors[o] = floor{epoch: snap.Epochs[o]}
		}
	}
	if len(need) == 0 {
		return nil, "", floors, nil
	}
	// Walk back from the tip until every origin reaches the client's position.
	remaining := len(need)
	satisfied := map[string]bool{}
	cursor, inclusive := snap.Tip, true
	const page = 512
	for remaining > 0 && !snap.Tip.IsZero() {
		entries, err := h.broker.Before(ctx, name, cursor, inclusive, page)
		if err != nil {
			return nil, "", nil, err
		}
		for _, e := range entries {
			pos, ok := need[e.Origin]
			if !ok || satisfied[e.Origin] || e.Epoch != snap.Epochs[e.Origin] {
				continue
			}
			if e.Oseq > pos {
				replay = append(replay, e)
				if len(replay) > h.cfg.ReplayLimit {
					return nil, protocol.ReasonHistoryTrimmed, nil, nil
				}
			}
			if e.Oseq <= pos+1 {
				satisfied[e.Origin] = true
				remaining--
			}
		}
		if len(entries) < page {
			break
		}
		cursor, inclusive = entries[len(entries)-1].ID, false
	}
	if remaining > 0 {
		return nil, protocol.ReasonHistoryTrimmed, nil, nil
	}
	for i, j := 0, len(replay)-1; i < j; i, j = i+1, j-1 {
		replay[i], replay[j] = replay[j], replay[i]
	}
	return replay, "", floors, nil
}

// floor is what a subscription's client has of one origin: deliveries at or
// below oseq in the same epoch are not sent again.
type floor struct {
	epoch string
	oseq  uint64
}

// subscription is one connection's membership of one room.
type subscription struct {
	conn    *conn
	room    *room
	pending bool              // being set up: deliveries wait in backlog
	backlog []broker.Delivery // guarded by room.mu
	lastID  broker.StreamID   // the last stream id sent to this client
	floors  map[string]floor  // per origin: the last (epoch, oseq) the client has
}

// offer sends d to the client unless it has it already; called under room.mu.
// A jump in oseq or a new epoch is announced with an unasked subscribed
// frame (recovered:false) before the event: never a silent gap.
func (s *subscription) offer(d broker.Delivery) {
	if s.pending {
		if len(s.backlog) >= maxBacklog {
			s.conn.closeSlow()
			return
		}
		s.backlog = append(s.backlog, d)
		return
	}
	if !s.lastID.Less(d.ID) {
		return
	}
	s.lastID = d.ID
	if f, ok := s.floors[d.Origin]; ok {
		sameEpoch := f.epoch == "" || f.epoch == d.Epoch
		switch {
		case sameEpoch && d.Oseq <= f.oseq:
			s.conn.srv.m.duplicatesDropped.Inc()
			return
		case sameEpoch && d.Oseq > f.oseq+1:
			s.conn.send(gapFrame(d, protocol.ReasonHistoryTrimmed))
		case !sameEpoch:
			s.conn.send(gapFrame(d, protocol.ReasonEpochChanged))
		}
	}
	s.floors[d.Origin] = floor{epoch: d.Epoch, oseq: d.Oseq}
	if faulty.On("goroutinepermsg") {
		// MUTANT goroutinepermsg breaks G1/G2: each message is handed to
		// the client's queue by a goroutine of its own, so frames overtake
		// each other in the scheduler and clients see them reordered.
		go s.conn.send(d.Frame)
		return
	}
	s.conn.send(d.Frame)
	if faulty.On("dupwire") {
		// MUTANT dupwire breaks G3: every live message is written twice.
		s.conn.send(d.Frame)
	}
}

func gapFrame(d broker.Delivery, reason string) []byte {
	b, _ := json.Marshal(protocol.Subscribed{
		Type: protocol.TypeSubscribed, Room: d.Room, Recovered: false, Reason: reason,
		Position: protocol.Positions{d.Origin: d.Oseq - 1}, Epochs: protocol.Epochs{d.Origin: d.Epoch},
	})
	return b
}
