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
	sub    roomFeed
	log    *slog.Logger
	m      *metrics

	mu    sync.RWMutex
	rooms map[string]*room

	// own is what this node knows was handed out of this region's own
	// sequences, room by room (publish.lua's check of a sequence that
	// went back).
	own *ownSeqs

	// onSessionTaken is called when another region took a session over.
	onSessionTaken func(session, region string)
	// onResubscribed is called (in its own goroutine) when the pub/sub
	// connection is back after a loss: what was published on it meanwhile,
	// session notices too, never arrived.
	onResubscribed func()
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
	// fillGen changes on every loss and every return of the room's
	// subscription (the pub/sub link, or on a cluster its shard). A gap
	// fill belongs to the value it started with and finishes only if it is
	// still current: a fill overtaken by a newer loss must not let the room
	// go live, or what was published since that loss would be skipped.
	fillGen atomic.Uint64
}

const maxBacklog = 100000

func newHub(cfg *Config, b *broker.Broker, sub roomFeed, log *slog.Logger, m *metrics) *hub {
	h := &hub{cfg: cfg, broker: b, sub: sub, log: log, m: m, rooms: map[string]*room{}, own: newOwnSeqs()}
	sub.bind(h)
	return h
}

// acquire returns the hosted room, subscribing to it in Redis first if this
// node did not host it yet, and the data life of the Redis that holds it
// (broker.DataLife), read after the subscription and so before the
// caller's snapshot: what the caller reads of the room belongs to that life
// or a later one. The life is "" when it could not be read (a Redis out of
// memory refuses to set a missing one): the subscription's next link return
// then records it without judging it. Every acquire is paired with a release.
func (h *hub) acquire(ctx context.Context, name string) (*room, string, error) {
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
		err = h.sub.Subscribe(ctx, h.broker.Channel(name))
	}
	if err != nil {
		h.release(r)
		return nil, "", err
	}
	h.m.redisSubscriptions.Set(float64(h.sub.Channels()))
	life, err := h.broker.DataLife(ctx, name)
	if err != nil {
		h.log.Warn("could not read the data life of redis; a loss of its data before the link next returns goes unnoticed for this subscription", "room", name, "err", err)
	}
	return r, life, nil
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
		h.sub.Unsubscribe(ctx, h.broker.Channel(r.name))
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
	if d.Ended {
		// A notice has no stream id: every subscription judges it by what
		// it had of the origin (admit).
		h.log.Warn("an origin's sequence ended in this room: its unshipped events are lost", "room", r.name, "origin", d.Origin)
		for s := range r.subs {
			s.offer(d)
		}
		return
	}
	if !r.lastID.Less(d.ID) {
		h.m.duplicatesDropped.Inc()
		return
	}
	r.lastID = d.ID
	if d.Origin == h.cfg.Region {
		h.own.saw(r.name, d.Epoch, d.Oseq)
	}
	for s := range r.subs {
		s.offer(d)
	}
}

// down marks every room as needing a gap fill: from now on deliveries wait.
func (h *hub) down(err error) {
	h.m.redisUp.Set(0)
	h.m.redisReconnects.Inc()
	h.log.Warn("redis pub/sub connection lost; rooms will be refilled from history", "err", err)
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, r := range h.rooms {
		r.mu.Lock()
		r.fillGen.Add(1)
		r.filling = true
		r.mu.Unlock()
	}
}

// up starts the gap fill of every room after a (re)connection.
func (h *hub) up(gen uint64) {
	h.m.redisUp.Set(1)
	h.mu.RLock()
	rooms := make([]*room, 0, len(h.rooms))
	for _, r := range h.rooms {
		rooms = append(rooms, r)
	}
	h.mu.RUnlock()
	if gen > 1 {
		h.log.Info("redis pub/sub connection back; filling gaps", "rooms", len(rooms))
		if h.onResubscribed != nil {
			go h.onResubscribed()
		}
	}
	h.refill(rooms)
}

// refill starts a new fill generation of each of rooms and fills them one
// after the other in the background, each from its history after the last
// event dispatched.
func (h *hub) refill(rooms []*room) {
	fgs := make([]uint64, len(rooms))
	for i, r := range rooms {
		fgs[i] = r.fillGen.Add(1)
	}
	go func() {
		h.checkLives(rooms, fgs)
		for i, r := range rooms {
			h.fill(fgs[i], r)
		}
	}()
}

// checkLives runs when the pub/sub link (or a shard of it) is back, before
// the rooms are filled: for the LifeKey of each room it reads the Redis's
// data life, and tells every subscription that joined in another life that
// the Redis lost its data since, perhaps more than once (dataLost). What it
// held then and this node had not dispatched is gone, and the history the
// fills read no longer reaches back to it: events of the region's own
// origin (other origins' come back, applied again by the bridges from their
// outboxes). A subscription told so, or whose life was unknown, belongs to
// the current life from then on. A read that fails is tried again until it
// answers or the rooms' link is lost again (their next return checks).
func (h *hub) checkLives(rooms []*room, fgs []uint64) {
	byKey := map[string][]int{}
	for i, r := range rooms {
		key := h.broker.Layout().LifeKey(r.name)
		byKey[key] = append(byKey[key], i)
	}
	for key, idx := range byKey {
		current := func() bool {
			for _, i := range idx {
				if rooms[i].fillGen.Load() == fgs[i] {
					return true
				}
			}
			return false
		}
		for attempt := 1; current(); attempt++ {
			ctx, cancel := context.WithTimeout(context.Background(), 2*h.cfg.RedisLink.ReadTimeout)
			life, err := h.broker.DataLife(ctx, rooms[idx[0]].name)
			cancel()
			if err != nil {
				h.log.Warn("reading the data life of redis failed; retrying", "key", key, "err", err)
				time.Sleep(min(time.Duration(attempt)*100*time.Millisecond, 2*time.Second))
				continue
			}
			told := 0
			for _, i := range idx {
				told += h.dataLost(rooms[i], life)
			}
			if told > 0 {
				h.m.redisDataLost.Inc()
				h.log.Warn("redis lost its data while the pub/sub link was down: events of this region published meanwhile and not dispatched are gone; subscribers told",
					"key", key, "subscriptions", told, "origin", h.cfg.Region)
			}
			break
		}
	}
}

// dataLost tells each subscription of r that joined in a data life other
// than life, with an unasked recovered:false epoch_changed naming the
// region's own origin at 0 with an empty epoch (endFrame), that the life of
// that origin's sequence it knew ended; it returns how many it told.
func (h *hub) dataLost(r *room, life string) int {
	d := broker.Delivery{Room: r.name, Entry: broker.Entry{Origin: h.cfg.Region}, Ended: true, EndedForAll: true}
	told := 0
	r.mu.Lock()
	defer r.mu.Unlock()
	for s := range r.subs {
		if s.life != "" && s.life != life {
			s.offer(d)
			told++
		}
		s.life = life
	}
	return told
}

// fill reads r's history after lastID and dispatches it, then the live
// deliveries that waited, then lets live deliveries through again. It gives
// up as soon as r.fillGen moves on (the link was lost again; the next up fills).
func (h *hub) fill(fg uint64, r *room) {
	const page = 512
	attempt := 0
	for r.fillGen.Load() == fg {
		r.mu.Lock()
		if r.fillGen.Load() != fg {
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
		if r.fillGen.Load() != fg {
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

// replayPlan is what a resume answered recovered:true replays: the entries
// of the room's history from from to tip, of the origins in need, in the
// snapshot's epochs, after the oseq need names. Nothing of it is read yet:
// resume counted the entries and summed their bytes, keeping none, and
// hub.stream reads and sends them page by page.
type replayPlan struct {
	from   broker.StreamID   // the oldest entry to replay
	tip    broker.StreamID   // the snapshot's tip: the newest
	need   map[string]uint64 // origin → the oseq the client has
	epochs map[string]string // origin → the snapshot's epoch
	missed int               // entries to replay
	bytes  int64             // their frames' bytes
}

// replayPage is how many history entries a resume reads at a time, to
// decide and to send: at most replayPage frames of --max-data-bytes and
// their envelope (about 3 MB at the defaults) per resuming client.
const replayPage = 100

// replayQueueBytes is about the most a replay keeps queued for its client:
// it waits for room in the send queue, and for large frames also until the
// queue holds less than this many bytes of frames of their size (1024 frames
// of 30 KB would be 30 MB per resuming client). The writer has a few
// milliseconds' worth of frames to write at any time either way.
const replayQueueBytes = 4 << 20

// resume works out what a client resuming at since (and epochs) missed in
// the room at snapshot snap: a plan of the entries to replay, or recovered
// false with a reason. It also returns the per-origin floors the
// subscription starts from (what the client has, by its own word). The
// replay's count and bytes are decided here, before anything is sent, so a
// client never gets part of a replay and then recovered:false; the walk
// holds one page of history at a time and keeps none of it.
func (h *hub) resume(ctx context.Context, name string, snap broker.Snapshot, since protocol.Positions, epochs protocol.Epochs) (plan replayPlan, reason string, floors map[string]floor, err error) {
	floors = map[string]floor{}
	if faulty.On("noresume") {
		// MUTANT noresume breaks G6: every resume is "recovered" with nothing
		// replayed, and the floors say the client has everything up to the
		// snapshot, so not even the jump is announced: a silent gap.
		for o, q := range snap.Seq {
			floors[o] = floor{epoch: snap.Epochs[o], oseq: q}
		}
		return replayPlan{tip: snap.Tip}, "", floors, nil
	}
	need := map[string]uint64{} // origin → oseq the client has; entries after it are missed
	for o, pos := range since {
		cur, have := snap.Seq[o]
		ep := snap.Epochs[o]
		given := epochs[o]
		own := o == h.cfg.Region
		switch {
		case given != "" && have && given != ep:
			// Another life of o's sequence than the client's; or, ep
			// empty, the client's life ended here (broker.EndOrigin).
			return replayPlan{}, protocol.ReasonEpochChanged, nil, nil
		case own && given != "" && ep == "" && pos > 0:
			// This region is the authority on its own origin's sequences.
			// An epoch of its own that it does not hold is a life its Redis
			// lost (restarted without persistence, nothing published since).
			return replayPlan{}, protocol.ReasonEpochChanged, nil, nil
		case own && pos > cur:
			// Nothing of this region's own origin can be on its way here:
			// a position it never reached (or no longer has) is history it
			// lost, never lag. A floor at pos would drop, unannounced, the
			// events it numbers next.
			return replayPlan{}, protocol.ReasonAheadOfHistory, nil, nil
		case pos > cur && !h.cfg.federated(name):
			// A local room's events of another region never come here: a
			// client that failed over from o cannot get o's sequence in
			// this region (G8: recovered false for region-local rooms).
			return replayPlan{}, protocol.ReasonAheadOfHistory, nil, nil
		case pos > cur:
			// The client saw more of another region's origin o than this
			// region has: either this region is behind (federation lag
			// after a failover) or o's sequence restarted. Only the epoch
			// tells which.
			if given == "" && have {
				return replayPlan{}, protocol.ReasonAheadOfHistory, nil, nil
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
			return replayPlan{}, protocol.ReasonGapMarked, nil, nil
		}
	}
	// Origins the client did not name: it has none of their events.
	for o, cur := range snap.Seq {
		if _, named := since[o]; !named && cur > 0 {
			need[o] = 0
			floors[o] = floor{epoch: snap.Epochs[o]}
		}
	}
	plan = replayPlan{tip: snap.Tip, need: need, epochs: snap.Epochs}
	if len(need) == 0 {
		return plan, "", floors, nil
	}
	// Walk back from the tip until every origin reaches the client's
	// position, counting what is missed and its bytes.
	remaining := len(need)
	satisfied := map[string]bool{}
	cursor, inclusive := snap.Tip, true
	for remaining > 0 && !snap.Tip.IsZero() {
		entries, err := h.broker.Before(ctx, name, cursor, inclusive, replayPage)
		if err != nil {
			return replayPlan{}, "", nil, err
		}
		for _, e := range entries {
			pos, ok := need[e.Origin]
			if !ok || satisfied[e.Origin] || e.Epoch != snap.Epochs[e.Origin] {
				continue
			}
			if e.Oseq > pos {
				plan.missed++
				plan.bytes += int64(len(e.Frame))
				plan.from = e.ID
				if plan.missed > h.cfg.ReplayLimit || plan.bytes > h.cfg.ReplayMaxBytes {
					return replayPlan{}, protocol.ReasonHistoryTrimmed, nil, nil
				}
			}
			if e.Oseq <= pos+1 {
				satisfied[e.Origin] = true
				remaining--
			}
		}
		if len(entries) < replayPage {
			break
		}
		cursor, inclusive = entries[len(entries)-1].ID, false
	}
	if remaining > 0 {
		return replayPlan{}, protocol.ReasonHistoryTrimmed, nil, nil
	}
	return plan, "", floors, nil
}

// stream sends a new subscription's client, after its subscribed frame,
// what plan says it missed and then the deliveries that waited while it was
// pending, and lets it go live. Every frame waits for room in the client's
// bounded queue (conn.sendWait: a client that does not read is cut with
// 4001 after the write timeout), and nothing is held in memory beyond a page
// of history and a queue's worth of waiting deliveries: the replay is read
// page by page, and a backlog that outgrows the queue is dropped and read
// again from the history. Order and exactly-once rest on stream ids and the
// floors (admit). It reports false when the connection ended first.
func (h *hub) stream(s *subscription, plan replayPlan, floors map[string]floor) bool {
	s.floors = floors // pending: nothing else touches the floors yet
	if plan.missed > 0 {
		from, inclusive := plan.from, true
		for {
			entries, ok := h.readHistory(s.conn, func(ctx context.Context) ([]broker.Entry, error) {
				return h.broker.Range(ctx, s.room.name, from, inclusive, plan.tip, replayPage)
			})
			if !ok {
				return false
			}
			for _, e := range entries {
				from, inclusive = e.ID, false
				if _, named := plan.need[e.Origin]; !named || e.Epoch != plan.epochs[e.Origin] {
					continue // another origin, or another life of it: not missed
				}
				if !s.sendWait(broker.Delivery{Room: s.room.name, Entry: e}) {
					return false
				}
			}
			s.conn.replayProgress()
			if len(entries) < replayPage {
				break
			}
		}
	}
	if s.lastID.Less(plan.tip) {
		s.lastID = plan.tip
	}
	return h.goLive(s)
}

// goLive sends what waited in s's backlog and turns s live. The backlog is
// sent outside the room's lock, waiting for room in the queue, until what is
// left fits the queue at once with the queue at most half full; then, under
// the lock (so that no delivery overtakes it), the rest goes and s is live.
// A backlog that overflowed was dropped: what it held is read again from the
// history.
func (h *hub) goLive(s *subscription) bool {
	r, c := s.room, s.conn
	for {
		if !c.queueBelow(cap(c.out) / 2) {
			return false
		}
		r.mu.Lock()
		if s.overflow {
			s.overflow, s.backlog = false, nil
			r.mu.Unlock()
			if !h.catchUp(s) {
				return false
			}
			continue
		}
		backlog := s.backlog
		s.backlog = nil
		// Room for each delivery and a gap announcement before it.
		if 2*len(backlog) <= cap(c.out)-len(c.out) {
			s.pending = false
			for _, d := range backlog {
				s.offer(d)
			}
			r.mu.Unlock()
			return true
		}
		r.mu.Unlock()
		for _, d := range backlog {
			if !s.sendWait(d) {
				return false
			}
		}
		c.replayProgress()
	}
}

// catchUp sends s's client the room's history after the last id it was
// sent, to the history's end: what a dropped backlog held, and what was
// published since. Deliveries of it that come later are dropped by id.
func (h *hub) catchUp(s *subscription) bool {
	for {
		entries, ok := h.readHistory(s.conn, func(ctx context.Context) ([]broker.Entry, error) {
			return h.broker.After(ctx, s.room.name, s.lastID, replayPage)
		})
		if !ok {
			return false
		}
		for _, e := range entries {
			if !s.sendWait(broker.Delivery{Room: s.room.name, Entry: e}) {
				return false
			}
		}
		s.conn.replayProgress()
		if len(entries) < replayPage {
			return true
		}
	}
}

// readHistory runs one history read of a replay, again with backoff while
// it fails, for up to the subscribe timeout. The subscribed frame is out by
// then: past the timeout the client is closed with 4000, to reconnect and
// resume from what it was sent. It reports false when the connection ended.
func (h *hub) readHistory(c *conn, read func(context.Context) ([]broker.Entry, error)) ([]broker.Entry, bool) {
	giveUp := time.Now().Add(h.cfg.SubscribeTimeout)
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*h.cfg.RedisLink.ReadTimeout)
		entries, err := read(ctx)
		cancel()
		if err == nil {
			return entries, true
		}
		if time.Now().After(giveUp) {
			c.log.Warn("replay: history unreadable; closing the client so that it resumes later", "err", err)
			c.closeWith(protocol.CloseInternalError, "history unavailable during the replay: reconnect and resume")
			return nil, false
		}
		t := time.NewTimer(min(time.Duration(attempt)*100*time.Millisecond, time.Second))
		select {
		case <-c.closed:
			t.Stop()
			return nil, false
		case <-t.C:
		}
	}
}

// floor is what a subscription's client has of one origin: deliveries at or
// below oseq in the same epoch are not sent again.
type floor struct {
	epoch string
	oseq  uint64
}

// subscription is one connection's membership of one room. While pending,
// the goroutine setting it up (conn.subscribe, hub.stream) owns lastID and
// floors; once live, room.mu guards them.
type subscription struct {
	conn     *conn
	room     *room
	pending  bool              // being set up: deliveries wait in backlog
	backlog  []broker.Delivery // guarded by room.mu
	overflow bool              // guarded by room.mu: the backlog outgrew the send queue and was dropped
	lastID   broker.StreamID   // the last stream id sent to this client
	floors   map[string]floor  // per origin: the last (epoch, oseq) the client has
	// ahead: per origin, what the client said it has of a life of it the
	// region did not hold when it resumed (conn.subscribe); those events
	// are not sent again if that life reaches the region.
	ahead map[string]floor
	life  string // guarded by room.mu: the Redis's data life it belongs to ("": not known)
}

// offer sends d to the client unless it has it already; called under room.mu.
// A jump in oseq or a new epoch is announced with an unasked subscribed
// frame (recovered:false) before the event: never a silent gap. While the
// subscription is pending, d waits in its backlog; a backlog as long as the
// send queue is dropped instead of growing (the history has what it held:
// hub.goLive reads it again).
func (s *subscription) offer(d broker.Delivery) {
	if s.pending {
		switch {
		case s.overflow:
		case len(s.backlog) >= s.conn.srv.cfg.SendQueue:
			s.backlog, s.overflow = nil, true
		default:
			s.backlog = append(s.backlog, d)
		}
		return
	}
	gap, ok := s.admit(d)
	if gap != nil {
		s.conn.send(gap)
	}
	if !ok {
		return
	}
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

// sendWait is offer for the goroutine that sets a subscription up: the
// frames wait for room in the client's queue (conn.sendWait), and large
// ones until the queue holds under replayQueueBytes of them.
func (s *subscription) sendWait(d broker.Delivery) bool {
	gap, ok := s.admit(d)
	if !ok {
		return gap == nil || s.conn.sendWait(gap)
	}
	if n := replayQueueBytes / max(len(d.Frame), 1); n < cap(s.conn.out) && !s.conn.queueBelow(n-1) {
		return false
	}
	if gap != nil && !s.conn.sendWait(gap) {
		return false
	}
	return s.conn.sendWait(d.Frame)
}

// admit decides whether the client is sent d: not when it was sent d's
// stream id or had d's oseq already; with the frame announcing a gap first
// (gap not nil) when d does not follow what it had of d's origin. It
// advances lastID and the floors. An Ended notice is never sent itself:
// a client that had events of its origin (every client, for EndedForAll)
// is told their life ended (gap, with ok false), and its floor for the
// origin starts again from nothing,
// so that the origin's next epoch follows without a second announcement.
func (s *subscription) admit(d broker.Delivery) (gap []byte, ok bool) {
	if d.Ended {
		if f, had := s.floors[d.Origin]; d.EndedForAll || had && (f.epoch != "" || f.oseq > 0) {
			s.floors[d.Origin] = floor{}
			return endFrame(d), false
		}
		return nil, false
	}
	if !s.lastID.Less(d.ID) {
		return nil, false
	}
	s.lastID = d.ID
	if a, ok := s.ahead[d.Origin]; ok && d.Epoch == a.epoch {
		if d.Oseq <= a.oseq {
			s.floors[d.Origin] = floor{epoch: d.Epoch, oseq: d.Oseq}
			s.conn.srv.m.duplicatesDropped.Inc()
			return nil, false
		}
		delete(s.ahead, d.Origin)
	}
	if f, ok := s.floors[d.Origin]; ok {
		sameEpoch := f.epoch == "" || f.epoch == d.Epoch
		switch {
		case sameEpoch && d.Oseq <= f.oseq:
			s.conn.srv.m.duplicatesDropped.Inc()
			return nil, false
		case sameEpoch && d.Oseq > f.oseq+1:
			gap = gapFrame(d, protocol.ReasonHistoryTrimmed)
		case !sameEpoch:
			gap = gapFrame(d, protocol.ReasonEpochChanged)
		}
	}
	s.floors[d.Origin] = floor{epoch: d.Epoch, oseq: d.Oseq}
	return gap, true
}

// endFrame tells a client that the life of d.Origin's sequence it had
// events of ended here, the rest of it lost (broker.EndOrigin): epoch_changed,
// naming the origin at position 0 with an empty epoch, since the new epoch is
// not known until the origin's next event (docs/protocol.md).
func endFrame(d broker.Delivery) []byte {
	b, _ := json.Marshal(protocol.Subscribed{
		Type: protocol.TypeSubscribed, Room: d.Room, Recovered: false, Reason: protocol.ReasonEpochChanged,
		Position: protocol.Positions{d.Origin: 0}, Epochs: protocol.Epochs{d.Origin: ""},
	})
	return b
}

func gapFrame(d broker.Delivery, reason string) []byte {
	b, _ := json.Marshal(protocol.Subscribed{
		Type: protocol.TypeSubscribed, Room: d.Room, Recovered: false, Reason: reason,
		Position: protocol.Positions{d.Origin: d.Oseq - 1}, Epochs: protocol.Epochs{d.Origin: d.Epoch},
	})
	return b
}
