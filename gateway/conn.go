package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"github.com/geolab/geolab/gateway/auth"
	"github.com/geolab/geolab/gateway/broker"
	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/internal/faulty"
)

// conn is one client connection: a reader goroutine that handles the
// client's frames in order, and a writer goroutine that drains a bounded
// queue. Fan-out never blocks on a client: when the queue is full the client
// is cut with CloseSlowConsumer, and everyone else goes on.
type conn struct {
	srv     *Server
	ws      *websocket.Conn
	claims  *auth.Claims
	session string
	log     *slog.Logger

	out       chan []byte
	took      chan struct{} // signalled (never blocking) each time the writer takes frames from out
	wsem      chan struct{} // held by whoever writes data or the close frame (writer.go)
	w         writeBatch    // the writer goroutine's alone
	closeOnce sync.Once
	closed    chan struct{} // closed when the connection is over

	mu   sync.Mutex
	subs map[string]*subscription

	publishLimit *rate.Limiter
	frameLimit   *rate.Limiter

	pub publishPipeline // publishes read and not yet answered (publish.go)
}

func newConn(s *Server, ws *websocket.Conn, claims *auth.Claims) *conn {
	c := &conn{
		srv: s, ws: ws, claims: claims, session: uuid.NewString(),
		out:          make(chan []byte, s.cfg.SendQueue),
		took:         make(chan struct{}, 1),
		wsem:         make(chan struct{}, 1),
		closed:       make(chan struct{}),
		subs:         map[string]*subscription{},
		publishLimit: rate.NewLimiter(rate.Limit(s.cfg.PublishRate), s.cfg.PublishBurst),
		frameLimit:   rate.NewLimiter(rate.Limit(s.cfg.FrameRate), s.cfg.FrameBurst),
	}
	c.log = s.log.With("session", c.session, "sub", claims.Subject)
	return c
}

// run serves the connection until it ends, then releases its rooms.
func (c *conn) run() {
	c.srv.m.connections.Inc()
	defer c.srv.m.connections.Dec()
	go c.writeLoop()

	welcome, _ := json.Marshal(protocol.Welcome{Type: protocol.TypeWelcome, Session: c.session,
		Region: c.srv.cfg.Region, Node: c.srv.cfg.Node, Version: protocol.Version})
	c.send(welcome)

	if exp, err := c.claims.GetExpirationTime(); err == nil && exp != nil {
		// The handshake accepted the token up to exp + the leeway: so long
		// it stays valid here too.
		t := time.AfterFunc(time.Until(exp.Time.Add(c.srv.cfg.JWTLeeway)), func() {
			c.closeWith(protocol.CloseTokenExpired, "token expired")
		})
		defer t.Stop()
	}
	c.readLoop()
	c.closeWith(protocol.CloseNormal, "")
	c.mu.Lock()
	subs := c.subs
	c.subs = map[string]*subscription{}
	c.mu.Unlock()
	for _, s := range subs {
		c.leave(s)
	}
	c.stopPublishing()
}

func (c *conn) readLoop() {
	ws := c.ws
	ws.SetReadLimit(c.srv.cfg.MaxFrameBytes)
	_ = ws.SetReadDeadline(time.Now().Add(c.srv.cfg.ReadTimeout))
	// Control frames count in the frame rate like every other frame: a
	// ping (or pong) flood is cut as a frame flood is.
	ws.SetPingHandler(func(data string) error {
		if !c.frameLimit.Allow() {
			return errFlood
		}
		err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(c.srv.cfg.WriteTimeout))
		var ne net.Error
		if err == nil || errors.Is(err, websocket.ErrCloseSent) || errors.As(err, &ne) {
			return nil // as gorilla's own ping handler: the reader finds out
		}
		return err
	})
	ws.SetPongHandler(func(string) error {
		if !c.frameLimit.Allow() {
			return errFlood
		}
		return ws.SetReadDeadline(time.Now().Add(c.srv.cfg.ReadTimeout))
	})
	for {
		mt, b, err := ws.ReadMessage()
		if err != nil {
			var ne interface{ Timeout() bool }
			switch {
			case errors.Is(err, errFlood):
				c.flood()
			case errors.Is(err, websocket.ErrReadLimit):
				c.srv.m.errors.WithLabelValues(protocol.CloseReason(protocol.CloseMessageTooBig)).Inc()
				c.closeWith(protocol.CloseMessageTooBig, "frame larger than the limit")
			case errors.As(err, &ne) && ne.Timeout():
				c.closeWith(protocol.CloseHeartbeatTimeout, "nothing read within the read timeout")
			}
			return
		}
		_ = ws.SetReadDeadline(time.Now().Add(c.srv.cfg.ReadTimeout))
		if !c.frameLimit.Allow() {
			c.flood()
			return
		}
		if mt != websocket.TextMessage {
			c.publishesAnswered()
			c.sendError("", protocol.CodeBadJSON, "binary frames are not part of protocol v1: send JSON text frames")
			continue
		}
		c.handle(b)
		select {
		case <-c.closed:
			return
		default:
		}
	}
}

// errFlood is what the control frame handlers return to the reader when a
// ping or pong passes the frame rate.
var errFlood = errors.New("frames far over the rate limit")

// flood closes a client that sent frames far over its frame rate (4500).
func (c *conn) flood() {
	c.srv.m.errors.WithLabelValues(protocol.CloseReason(protocol.CloseFlood)).Inc()
	c.closeWith(protocol.CloseFlood, "frames far over the rate limit")
}

// pongFrame answers every ping; the writer only reads it, so one copy
// serves every connection.
var pongFrame, _ = json.Marshal(protocol.Pong{Type: protocol.TypePong})

func (c *conn) handle(b []byte) {
	f, err := protocol.DecodeClientFrame(b)
	if err != nil || f.Type != protocol.TypePublish {
		// Publishes may be in flight (publish.go): every other frame is
		// handled once they are answered, so that its answer, and what it
		// does, follow theirs as they did when each publish was answered
		// before the next frame was read.
		c.publishesAnswered()
	}
	if err != nil {
		var pe *protocol.Error
		if errors.As(err, &pe) {
			c.sendError(pe.Ref, pe.Code, pe.Message)
		} else {
			c.sendError("", protocol.CodeBadFrame, err.Error())
		}
		return
	}
	c.srv.m.framesIn.WithLabelValues(f.Type).Inc()
	switch f.Type {
	case protocol.TypePing:
		c.send(pongFrame)
	case protocol.TypeSubscribe:
		c.subscribe(f)
	case protocol.TypeUnsubscribe:
		c.unsubscribe(f.Room)
	case protocol.TypePublish:
		c.publish(f)
	}
}

func (c *conn) subscribe(f *protocol.ClientFrame) {
	if !c.claims.CanRead(f.Room) {
		c.sendError(f.Room, protocol.CodeForbidden, "token does not allow reading room "+f.Room)
		return
	}
	c.mu.Lock()
	_, already := c.subs[f.Room]
	n := len(c.subs)
	c.mu.Unlock()
	if already {
		// A second subscribe is a resume request on the same connection:
		// leave and join again so that since/epochs are honoured.
		c.unsubscribe(f.Room)
	} else if n >= c.srv.cfg.MaxRooms {
		c.sendError(f.Room, protocol.CodeTooManyRooms, "connection is in the most rooms allowed")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.srv.cfg.SubscribeTimeout)
	defer cancel()
	r, life, err := c.srv.hub.acquire(ctx, f.Room)
	if err != nil {
		c.sendError(f.Room, protocol.CodeUnavailable, "redis unavailable: subscribe again later")
		return
	}
	s := &subscription{conn: c, room: r, pending: true, floors: map[string]floor{}, life: life}
	r.mu.Lock()
	r.subs[s] = struct{}{}
	r.mu.Unlock()
	c.mu.Lock()
	c.subs[f.Room] = s
	c.mu.Unlock()

	fail := func() {
		c.mu.Lock()
		delete(c.subs, f.Room)
		c.mu.Unlock()
		c.leave(s)
		c.sendError(f.Room, protocol.CodeUnavailable, "redis unavailable: subscribe again later")
	}
	snap, err := c.srv.broker.Snapshot(ctx, f.Room)
	if err != nil {
		fail()
		return
	}
	c.srv.hub.initRoom(r, snap)
	ack := protocol.Subscribed{Type: protocol.TypeSubscribed, Room: f.Room, Recovered: true,
		Position: protocol.Positions(snap.Seq), Epochs: protocol.Epochs(snap.Epochs)}
	var plan replayPlan
	floors, ahead := map[string]floor{}, map[string]floor{}
	if f.Since != nil {
		var reason string
		plan, reason, floors, err = c.srv.hub.resume(ctx, f.Room, snap, f.Since, f.Epochs)
		if err != nil {
			fail()
			return
		}
		if reason != "" {
			ack.Recovered, ack.Reason = false, reason
			c.srv.m.resumes.WithLabelValues("false").Inc()
		} else {
			c.srv.m.resumes.WithLabelValues("true").Inc()
		}
		ack.Missed = plan.missed
	}
	if f.Since == nil || !ack.Recovered {
		plan = replayPlan{tip: snap.Tip}
		floors = map[string]floor{}
		for o, q := range snap.Seq {
			floors[o] = floor{epoch: snap.Epochs[o], oseq: q}
		}
		// An origin of another region that the client names, with its
		// epoch, and the region holds nothing of now (it lost its data),
		// or holds less of in that same epoch (its bridge, its checkpoint
		// lost too, is applying the origin's outbox again from the start):
		// what the client has of it stays its floor. The bridge's
		// re-applied events up to it are dropped by admit, what follows is
		// sent, and another epoch is announced. An origin the region
		// holds, at the client's position in the answer: live delivery
		// starts after it. Other origins start from the snapshot's
		// positions, and the region's own origin is never kept: its lost
		// life is over.
		for o, q := range f.Since {
			cur, have := snap.Seq[o]
			ep := f.Epochs[o]
			if ep == "" || o == c.srv.cfg.Region || q == 0 {
				continue
			}
			switch {
			case !have:
				floors[o] = floor{epoch: ep, oseq: q}
			case snap.Epochs[o] == ep && q > cur:
				floors[o] = floor{epoch: ep, oseq: q}
				ack.Position[o] = q
			case snap.Epochs[o] != ep:
				// Another life of o than the region holds: one this
				// region's bridge has not reached yet (o lost its data
				// and the client had its next life from another region),
				// or an older one. The answer names the region's, as
				// for any epoch change; what the client has of its own
				// life is kept apart, and if that life reaches the
				// region, its events up to it are not sent again.
				ahead[o] = floor{epoch: ep, oseq: q}
			}
		}
	}
	s.ahead = ahead // pending: nothing else touches it yet
	b, _ := json.Marshal(ack)
	if !c.sendWait(b) {
		return
	}
	// The replay, then what was delivered meanwhile, streamed under the
	// client's send queue; then live.
	c.srv.hub.stream(s, plan, floors)
}

func (c *conn) unsubscribe(room string) {
	c.mu.Lock()
	s := c.subs[room]
	delete(c.subs, room)
	c.mu.Unlock()
	if s == nil {
		c.sendError(room, protocol.CodeNotSubscribed, "not subscribed to room "+room)
		return
	}
	c.leave(s)
}

func (c *conn) leave(s *subscription) {
	s.room.mu.Lock()
	delete(s.room.subs, s)
	s.room.mu.Unlock()
	c.srv.hub.release(s.room)
}

// publish handles a publish frame: answered before the next frame is read
// with a window of 1, else handed to the connection's publish pipeline.
func (c *conn) publish(f *protocol.ClientFrame) {
	start := time.Now()
	req, refusal := c.checkPublish(f)
	if c.srv.cfg.PublishWindow > 1 {
		c.enqueuePublish(&publishJob{frame: f, req: req, refusal: refusal, read: start})
		return
	}
	if refusal != nil {
		c.send(refusal)
		return
	}
	c.srv.m.publishBatches.Inc()
	ctx, cancel := context.WithTimeout(context.Background(), 3*c.srv.cfg.RedisLink.ReadTimeout+c.srv.broker.ReplicaTimeout())
	defer cancel()
	res, err := c.srv.broker.Publish(ctx, req)
	c.send(c.publishAnswer(f, start, req.Seen, res, err))
}

// checkPublish checks a publish frame and returns what to ask the broker,
// or the error frame that refuses it.
func (c *conn) checkPublish(f *protocol.ClientFrame) (broker.PublishRequest, []byte) {
	if !c.claims.CanPublish(f.Room) {
		return broker.PublishRequest{}, c.errorFrame(f.ID, protocol.CodeForbidden, "token does not allow publishing to room "+f.Room)
	}
	var data bytes.Buffer
	if err := json.Compact(&data, f.Data); err != nil {
		return broker.PublishRequest{}, c.errorFrame(f.ID, protocol.CodeBadJSON, "data is not valid JSON")
	}
	if data.Len() > c.srv.cfg.MaxDataBytes {
		return broker.PublishRequest{}, c.errorFrame(f.ID, protocol.CodeDataTooLarge, "data is larger than the payload limit")
	}
	if !c.publishLimit.Allow() {
		return broker.PublishRequest{}, c.errorFrame(f.ID, protocol.CodeRateLimited, "publish rate limit reached: not published, retry later")
	}
	epoch := newEpoch()
	if faulty.On("noepoch") {
		// MUTANT noepoch breaks G6's epochs: every life of a (room, origin)
		// sequence gets the same epoch, so when Redis lost its data oseq
		// restarts at 1 under the epoch clients already hold: a silent
		// renumbering instead of recovered:false epoch_changed.
		epoch = "00000000"
	}
	return broker.PublishRequest{
		Room: f.Room, Sender: c.claims.Subject, ClientID: f.ID,
		EventID: newEventID(), Epoch: epoch, TS: time.Now(), Data: data.Bytes(),
		Federated: c.srv.cfg.federated(f.Room), Seen: c.srv.hub.own.seen(f.Room),
	}, nil
}

// publishAnswer is the frame that answers publish f, read at start and
// sent with seen (its PublishRequest.Seen), given what the broker did with
// it: its ack, or the error frame.
func (c *conn) publishAnswer(f *protocol.ClientFrame, start time.Time, seen broker.SeqSeen, res broker.Result, err error) []byte {
	if (err == nil || errors.Is(err, broker.ErrNotReplicated)) && (res.Origin == "" || res.Origin == c.srv.cfg.Region) {
		// Stored and delivered (a refused publish too): its oseq was
		// handed out, whatever becomes of the ack.
		c.srv.hub.own.saw(f.Room, res.Epoch, res.Oseq)
		if res.Status == "ok" && seen.Epoch != "" && res.Epoch != seen.Epoch && res.Oseq == 1 {
			c.srv.m.sequenceRestarts.Inc()
			c.log.Warn("the room's sequence was behind what this node knew was handed out, or gone: events that were seen are lost; it starts again under a new epoch, and subscribers are told",
				"room", f.Room, "seen_epoch", seen.Epoch, "seen_oseq", seen.Oseq, "epoch", res.Epoch)
		}
	}
	if err != nil {
		if broker.IsOOM(err) {
			c.srv.redisOOM()
			c.log.Warn("publish refused: redis is out of memory", "room", f.Room, "err", err)
			return c.errorFrame(f.ID, protocol.CodeRedisOOM, "redis is at its maxmemory: not published, retry later with the same id")
		}
		if errors.Is(err, broker.ErrNotReplicated) {
			c.srv.m.notReplicated.Inc()
			c.log.Warn("publish not acked: no replica confirmed it", "room", f.Room, "err", err)
			return c.errorFrame(f.ID, protocol.CodeUnavailable, "no replica confirmed the publish within --durability-timeout: not acknowledged (subscribers may have seen it), retry with the same id")
		}
		c.log.Warn("publish failed", "room", f.Room, "err", err)
		return c.errorFrame(f.ID, protocol.CodeUnavailable, "redis unavailable: not published, retry with the same id")
	}
	if res.Status == "ok" { // a dup wrote nothing: it says nothing of Redis's memory
		c.srv.redisWrote()
	}
	c.srv.m.publishSeconds.Observe(time.Since(start).Seconds())
	b, _ := json.Marshal(protocol.Ack{Type: protocol.TypeAck, ID: f.ID, Event: res.EventID, Oseq: res.Oseq,
		Room: f.Room, Duplicate: res.Status == "dup", Origin: res.Origin, Epoch: res.Epoch})
	return b
}

func (c *conn) sendError(ref, code, msg string) {
	c.send(c.errorFrame(ref, code, msg))
}

// errorFrame is an error frame, counted in the errors metric.
func (c *conn) errorFrame(ref, code, msg string) []byte {
	c.srv.m.errors.WithLabelValues(code).Inc()
	b, _ := json.Marshal(protocol.ErrorFrame{Type: protocol.TypeError, Ref: ref, Code: code, Message: msg})
	return b
}

// send queues a frame without blocking; a full queue cuts the client.
func (c *conn) send(b []byte) {
	if faulty.On("noslowcut") {
		// MUTANT noslowcut breaks G10: a full queue is waited on instead of
		// cutting the client, under the room's lock and on the subscriber's
		// goroutine: one slow client stalls the fan-out for everyone.
		select {
		case c.out <- b:
		case <-c.closed:
		}
		return
	}
	select {
	case c.out <- b: // the common case, without the cost of a three-way select
		return
	default:
	}
	select {
	case c.out <- b:
	case <-c.closed:
	default:
		c.closeSlow()
	}
}

// sendWait queues a frame, waiting up to the write timeout: for the frames a
// client's own request produces (a resume's replay), never for fan-out.
func (c *conn) sendWait(b []byte) bool {
	t := time.NewTimer(c.srv.cfg.WriteTimeout)
	defer t.Stop()
	select {
	case c.out <- b:
		return true
	case <-c.closed:
		return false
	case <-t.C:
		c.closeSlow()
		return false
	}
}

// replayProgress is called by the subscribe that streams a replay, on the
// reader's goroutine, each time another page of it went into the queue
// (which only empties as fast as the client reads): a client reading a long
// replay is alive, and must not find its read deadline passed (close 4004)
// when the reader reads again.
func (c *conn) replayProgress() {
	_ = c.ws.SetReadDeadline(time.Now().Add(c.srv.cfg.ReadTimeout))
}

// queueBelow waits until the queue holds at most n frames. A replay waits
// so for headroom: to go live with the queue at most half full (else the
// first live frames after a replay that kept the queue full would find it
// full and cut a client that reads), and to keep at most replayQueueBytes of
// its frames queued (hub.go). A client that takes nothing from its queue for
// the write timeout is cut, as sendWait cuts it. It reports false when the
// connection ended.
func (c *conn) queueBelow(n int) bool {
	last, progress := len(c.out), time.Now()
	for {
		l := len(c.out)
		switch {
		case l <= n:
			return true
		case l < last:
			last, progress = l, time.Now()
		case time.Since(progress) > c.srv.cfg.WriteTimeout:
			c.closeSlow()
			return false
		}
		t := time.NewTimer(c.srv.cfg.WriteTimeout - time.Since(progress) + time.Millisecond)
		select {
		case <-c.closed:
			t.Stop()
			return false
		case <-c.took: // the writer took a frame: look at the length again
		case <-t.C:
		}
		t.Stop()
	}
}

func (c *conn) closeSlow() {
	c.closeOnce.Do(func() {
		c.srv.m.slowConsumers.Inc()
		c.log.Warn("slow consumer: send queue full, closing", "queue", c.srv.cfg.SendQueue)
		c.finish(protocol.CloseSlowConsumer, "send queue full: read faster, then reconnect and resume")
	})
}

// closeWith ends the connection with a close code (once).
func (c *conn) closeWith(code int, reason string) {
	c.closeOnce.Do(func() { c.finish(code, reason) })
}

// finish marks the connection over at once and writes the close frame in the
// background: it may be called under a room's lock, and a slow socket must
// not hold fan-out up. The writer stops before its next frame, so the close
// frame follows whatever frame was on the wire: a slow client that reads on
// finds the close code after the frames it already had.
func (c *conn) finish(code int, reason string) {
	close(c.closed)
	select {
	case c.out <- nil: // wakes a parked writer (writer.go); a full queue has none
	default:
	}
	go c.writeClose(code, reason)
}

// drain says bye: the client is to reconnect elsewhere and resume, and is
// served until it goes; Server.Drain closes it with going_away if it has
// not gone by the drain timeout.
func (c *conn) drain() {
	b, _ := json.Marshal(protocol.Bye{Type: protocol.TypeBye, Code: protocol.CodeGoingAway, Reconnect: true})
	c.sendWait(b)
}

func newEventID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

// newEpoch names a new life of a (room, origin) sequence: short and random.
func newEpoch() string {
	return uuid.NewString()[:8]
}
