package client

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/geolab/geolab/gateway/protocol"
)

// room is the client's view of one room: whether it is in the client's set,
// the positions it tracks, and the subscribe in flight.
type room struct {
	name   string
	wanted bool // in the client's set: subscribed again on every connection

	// tracked: pos and ep come from a subscribed answer; a subscribe then
	// carries them as since/epochs (an empty since included).
	tracked bool
	pos     protocol.Positions // origin → last oseq delivered
	ep      protocol.Epochs    // origin → epoch of that sequence

	// sent holds, in order, whether each subscribe sent on connection
	// awaitConn and not yet answered carried since. The gateway answers
	// them in order; waiters get the answer to the last one.
	sent      []bool
	awaitConn int64
	waiters   []*subWaiter

	retries int       // refused resubscribes in a row
	retryAt time.Time // when to resubscribe after a refusal; zero: not scheduled
}

type subWaiter struct {
	notify chan struct{}
	res    SubscribeResult
	err    error
}

// subscribeFrame is built here rather than with protocol.ClientFrame so that
// an empty since is sent as {} ("I have nothing of this room: replay it
// all"), not left out ("live only"), which would lose what was published to
// a room that was empty when the client first joined it.
type subscribeFrame struct {
	Type   string             `json:"type"`
	Room   string             `json:"room"`
	Since  protocol.Positions `json:"since,omitzero"`
	Epochs protocol.Epochs    `json:"epochs,omitzero"`
}

var errUnsubscribed = errors.New("client: unsubscribed before the gateway answered")

// Subscribe adds room to the client's set and waits for the gateway's answer
// (through reconnects, if the connection drops meanwhile). When the client
// has positions for the room (it was in it before, on this or an earlier
// connection) the subscribe carries them as since/epochs and the result says
// whether the gateway recovered what was missed; the missed messages follow
// through OnMessage. An error frame for the room is returned as a
// *ServerError and takes the room out of the set. If ctx ends first the room
// stays in the set (the subscribe may have taken effect): Unsubscribe to
// leave it.
func (c *Client) Subscribe(ctx context.Context, name string) (SubscribeResult, error) {
	return c.subscribe(ctx, name, nil)
}

// from is the position a SubscribeFrom starts at.
type from struct {
	since  protocol.Positions // nil: live only
	epochs protocol.Epochs
}

// SubscribeFrom is Subscribe from the positions given instead of the ones
// the client tracks: it replaces the room's positions and epochs with since
// and epochs, then sends the subscribe at once, even when the client is
// already in the room (the gateway takes a subscribe to a room one is in as
// a resume request from the since given: docs/protocol.md). It waits for the
// answer as Subscribe does; a reconnect before the answer resubscribes from
// the same positions.
//
// A nil since is a live-only subscribe, as a room's first Subscribe is:
// nothing is replayed, live delivery starts after the answer's position,
// which becomes the client's. A non-nil since, even an empty one, is a
// resume from there: an origin it does not name is one the client has none
// of, so since {} (protocol.Positions{}) asks for the room's whole retained
// history in the gateway's region. epochs is ignored when since is nil.
func (c *Client) SubscribeFrom(ctx context.Context, name string, since protocol.Positions, epochs protocol.Epochs) (SubscribeResult, error) {
	f := &from{}
	if since != nil {
		f.since, f.epochs = copyPositions(since), protocol.Epochs{}
		if epochs != nil {
			f.epochs = copyEpochs(epochs)
		}
	}
	return c.subscribe(ctx, name, f)
}

// subscribe is Subscribe, or SubscribeFrom when at is set.
func (c *Client) subscribe(ctx context.Context, name string, at *from) (SubscribeResult, error) {
	if err := protocol.ValidRoom(name); err != nil {
		return SubscribeResult{}, &ServerError{Code: protocol.CodeBadRoom, Ref: name, Message: err.Error(), Local: true}
	}
	w := &subWaiter{notify: make(chan struct{}, 1)}
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return SubscribeResult{}, err
	}
	r := c.roomLocked(name)
	wasWanted := r.wanted
	r.wanted = true
	r.retryAt = time.Time{}
	r.waiters = append(r.waiters, w)
	if at != nil {
		r.tracked = at.since != nil
		r.pos, r.ep = protocol.Positions{}, protocol.Epochs{}
		if r.tracked {
			r.pos, r.ep = at.since, at.epochs
		}
	}
	cn := c.cur
	var frame []byte
	// A subscribe already on its way serves this call too, unless an
	// unsubscribe went after it or the call names its own positions.
	if cn != nil && (at != nil || !(wasWanted && r.awaitingOn(cn.no))) {
		frame = c.subscribeFrameLocked(r, cn)
	}
	c.mu.Unlock()
	if frame != nil {
		c.enqueue(ctx, cn, frame) // if cn ends first, the next connection sends it
	}
	answered := false
	select {
	case <-w.notify:
		answered = true
	case <-ctx.Done():
	case <-c.done:
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-w.notify:
		answered = true
	default:
	}
	if answered {
		return w.res, w.err
	}
	for i, x := range r.waiters {
		if x == w {
			r.waiters = append(r.waiters[:i], r.waiters[i+1:]...)
			break
		}
	}
	if c.err != nil {
		return SubscribeResult{}, c.err
	}
	return SubscribeResult{}, ctx.Err()
}

// Unsubscribe takes room out of the client's set and tells the gateway. The
// positions are kept: subscribing again resumes from them. It returns a
// *ServerError (not_subscribed, Local) if the room is not in the set.
func (c *Client) Unsubscribe(ctx context.Context, name string) error {
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return err
	}
	r := c.rooms[name]
	if r == nil || !r.wanted {
		c.mu.Unlock()
		return &ServerError{Code: protocol.CodeNotSubscribed, Ref: name, Message: "not subscribed to room " + name, Local: true}
	}
	r.wanted, r.retryAt, r.retries = false, time.Time{}, 0
	for _, w := range r.waiters {
		w.err = errUnsubscribed
		notify(w.notify)
	}
	r.waiters = nil
	cn := c.cur
	c.mu.Unlock()
	if cn == nil {
		return nil // the next connection will not subscribe it
	}
	b, _ := json.Marshal(protocol.ClientFrame{Type: protocol.TypeUnsubscribe, Room: name})
	if !c.enqueue(ctx, cn, b) && ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}

func (c *Client) roomLocked(name string) *room {
	r := c.rooms[name]
	if r == nil {
		r = &room{name: name, pos: protocol.Positions{}, ep: protocol.Epochs{}}
		c.rooms[name] = r
	}
	return r
}

// awaitingOn reports whether a subscribe sent on connection no awaits its
// answer.
func (r *room) awaitingOn(no int64) bool { return r.awaitConn == no && len(r.sent) > 0 }

// subscribeFrameLocked builds the subscribe of r for cn and records it as
// awaiting its answer.
func (c *Client) subscribeFrameLocked(r *room, cn *conn) []byte {
	f := subscribeFrame{Type: protocol.TypeSubscribe, Room: r.name}
	if r.tracked {
		f.Since = copyPositions(r.pos)
		if len(r.ep) > 0 {
			f.Epochs = copyEpochs(r.ep)
		}
	}
	if r.awaitConn != cn.no {
		r.awaitConn, r.sent = cn.no, nil
	}
	r.sent = append(r.sent, r.tracked)
	b, _ := json.Marshal(f)
	return b
}

// handleSubscribed applies a subscribed frame to the room's positions. An
// answer to a subscribe without since, or one with recovered false, replaces
// them (recovered false: the old ones are meaningless now); a recovered
// answer keeps them, since the replay that follows advances them. An unasked
// frame (recovered false: a gap the gateway announces) replaces the
// positions of the origins it names.
func (c *Client) handleSubscribed(cn *conn, f *protocol.ServerFrame) {
	res := SubscribeResult{Room: f.Room, Recovered: f.Recovered, Missed: f.Missed, Reason: f.Reason,
		Position: copyPositions(f.Position), Epochs: copyEpochs(f.Epochs)}
	ev := SubscribedEvent{SubscribeResult: res, Conn: cn.no}
	c.mu.Lock()
	r := c.roomLocked(f.Room)
	if r.awaitingOn(cn.no) {
		since := r.sent[0]
		r.sent, r.retries = r.sent[1:], 0
		ev.Resumed = since
		if !since || !f.Recovered {
			r.pos, r.ep = copyPositions(f.Position), copyEpochs(f.Epochs)
		}
		r.tracked = true
		if since {
			if f.Recovered {
				c.st.resumesRecovered.Add(1)
			} else {
				c.st.resumesNotRecovered.Add(1)
			}
		}
		if len(r.sent) == 0 {
			for _, w := range r.waiters {
				w.res = res
				w.res.Resumed = since
				w.res.Position, w.res.Epochs = copyPositions(f.Position), copyEpochs(f.Epochs)
				notify(w.notify)
			}
			r.waiters = nil
		}
	} else {
		ev.Unasked = true
		if !f.Recovered {
			for o, q := range f.Position {
				r.pos[o] = q
			}
			for o, e := range f.Epochs {
				r.ep[o] = e
			}
			c.st.gapsAnnounced.Add(1)
		}
	}
	c.mu.Unlock()
	if !f.Recovered && (ev.Resumed || ev.Unasked) {
		cn.log.Warn("gap the gateway could not fill: the caller must repair its state", "room", f.Room, "reason", f.Reason, "unasked", ev.Unasked)
	}
	c.emitSubscribed(ev)
}

// handleMessage runs the dedup backstop and delivers.
func (c *Client) handleMessage(cn *conn, f *protocol.ServerFrame) {
	c.mu.Lock()
	deliver, gap := c.roomLocked(f.Room).track(f.Origin, f.Epoch, f.Oseq, &c.st)
	c.mu.Unlock()
	if !deliver {
		cn.log.Debug("duplicate dropped by the backstop", "room", f.Room,
			"origin", f.Origin, "oseq", f.Oseq, "id", f.ID)
		return
	}
	if gap {
		cn.log.Warn("gap: oseq skipped within an epoch", "room", f.Room,
			"origin", f.Origin, "oseq", f.Oseq)
	}
	c.st.messages.Add(1)
	ts, _ := time.Parse(time.RFC3339Nano, f.TS)
	c.emitMessage(Message{Room: f.Room, ID: f.ID, Origin: f.Origin, Oseq: f.Oseq, Epoch: f.Epoch,
		Sender: f.Sender, TS: ts, Data: f.Data, Conn: cn.no, Gap: gap})
}

// track is the dedup backstop for one (room, origin): it reports whether
// the message is delivered and whether it jumped past the tracked oseq. An
// empty epoch on either side matches any epoch.
func (r *room) track(origin, epoch string, oseq uint64, st *counters) (deliver, gap bool) {
	pos, has := r.pos[origin]
	known := r.ep[origin]
	sameEpoch := known == "" || epoch == "" || known == epoch
	switch {
	case has && sameEpoch && oseq <= pos:
		st.duplicates.Add(1)
		return false, false
	case has && sameEpoch && oseq > pos+1:
		st.gaps.Add(1)
		gap = true
	case has && !sameEpoch:
		st.epochChanges.Add(1)
	}
	r.pos[origin] = oseq
	if epoch != "" {
		r.ep[origin] = epoch
	}
	return true, gap
}

// roomErrorLocked handles an error frame about room r. A waiting Subscribe
// gets it and the room leaves the set; a refused resubscribe (after a
// reconnect) is retried with backoff when the code allows it, else the room
// leaves the set; either is reported through OnSubscribed.
func (c *Client) roomErrorLocked(cn *conn, r *room, serr *ServerError) *SubscribedEvent {
	if serr.Code == protocol.CodeNotSubscribed {
		cn.log.Debug("gateway: not subscribed", "room", r.name)
		return nil
	}
	var resumed bool
	if r.awaitingOn(cn.no) {
		resumed = r.sent[0]
		r.sent = r.sent[1:]
		if len(r.sent) > 0 {
			return nil // a later subscribe may yet succeed: its answer decides
		}
	}
	if len(r.waiters) > 0 {
		for _, w := range r.waiters {
			w.err = serr
			notify(w.notify)
		}
		r.waiters, r.wanted = nil, false
		return nil
	}
	if !r.wanted {
		return nil
	}
	ev := &SubscribedEvent{SubscribeResult: SubscribeResult{Room: r.name, Resumed: resumed}, Conn: cn.no, Err: serr}
	if retryable(serr.Code) {
		ev.WillRetry = true
		r.retryAt = time.Now().Add(backoffDraw(r.retries, c.o.MinBackoff, c.o.MaxBackoff, c.rnd))
		r.retries++
		notify(cn.kick)
		cn.log.Warn("resubscribe refused, retrying", "room", r.name, "code", serr.Code)
	} else {
		r.wanted = false
		cn.log.Warn("resubscribe refused: room left", "room", r.name, "code", serr.Code)
	}
	return ev
}

// dueResubscribes returns the subscribe frames of refused resubscribes whose
// retry time has come, and when the next one is due (zero: none).
func (c *Client) dueResubscribes(cn *conn, now time.Time) (due [][]byte, next time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur != cn {
		return nil, time.Time{}
	}
	for _, r := range c.rooms {
		switch {
		case r.retryAt.IsZero():
		case !r.wanted || r.awaitingOn(cn.no):
			r.retryAt = time.Time{}
		case !r.retryAt.After(now):
			r.retryAt = time.Time{}
			due = append(due, c.subscribeFrameLocked(r, cn))
		case next.IsZero() || r.retryAt.Before(next):
			next = r.retryAt
		}
	}
	return due, next
}
