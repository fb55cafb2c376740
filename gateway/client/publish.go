package client

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/geolab/geolab/gateway/protocol"
)

// Ack confirms a publish: the gateway stored the event.
type Ack struct {
	ID    string // the client message id
	Room  string
	Event string // the event id the gateway assigned
	Oseq  uint64
	// Origin is the region that assigned Oseq: the region of the connection
	// unless a retry was answered with an event its first attempt made in
	// another region ("" from a gateway that predates the field).
	Origin string
	// Epoch is the epoch of Origin's sequence Oseq belongs to ("" from a
	// gateway that predates the field).
	Epoch string
	// Duplicate is true when the gateway answered from its dedup record: an
	// earlier attempt had been published already.
	Duplicate bool
	Conn      int64 // the connection the ack came on
	Attempts  int   // how many times the frame was sent
}

type pubState int

const (
	pubWaiting pubState = iota // sent, or to be sent on the next connection
	pubRetry                   // refused with a retryable code: Publish resends after backoff
	pubDone                    // ack or err set
)

// pendingPublish is one publish waiting for its ack; guarded by Client.mu.
type pendingPublish struct {
	id, room string
	frame    []byte // marshalled once: every attempt sends these bytes
	seq      uint64 // order of Publish calls, for resends
	sentOn   int64  // the connection it was last handed to
	attempts int
	retries  int // error frames with a retryable code, in a row
	state    pubState
	ack      Ack
	err      error
	notify   chan struct{}
}

type publishFrame struct {
	Type string          `json:"type"`
	Room string          `json:"room"`
	ID   string          `json:"id"`
	Data json.RawMessage `json:"data"`
}

// Publish publishes data (marshalled once; a json.RawMessage is sent as is)
// to room under the client message id and waits for its ack. It is
// at-least-once with idempotent retries: after a lost connection, and after
// an error frame with code unavailable, rate_limited or internal, the same
// bytes, with the same id, are sent again (after reconnecting, or after a
// backoff) until the ack comes or ctx ends; the gateway's dedup (G4) turns
// the retries into one event and gives back the first attempt's ack. Other
// error frames (forbidden, bad_room, bad_id, data_too_large, bad_frame) are
// returned at once as a *ServerError; a room or id the gateway would refuse
// is refused before sending (Local). If ctx ends first the event may have
// been published: retry with the same id. The gateway remembers ids for its
// dedup window only: a ctx longer than that window may, after a long
// outage, turn a retry into a second event. Publishes may run concurrently,
// each with its own id; an id already in flight is refused.
func (c *Client) Publish(ctx context.Context, room, id string, data any) (Ack, error) {
	if err := protocol.ValidRoom(room); err != nil {
		return Ack{}, &ServerError{Code: protocol.CodeBadRoom, Ref: room, Message: err.Error(), Local: true}
	}
	if err := protocol.ValidID(id); err != nil {
		return Ack{}, &ServerError{Code: protocol.CodeBadID, Ref: id, Message: err.Error(), Local: true}
	}
	raw, err := marshalData(data)
	if err != nil {
		return Ack{}, &ServerError{Code: protocol.CodeBadFrame, Ref: id, Message: err.Error(), Local: true}
	}
	frame, err := json.Marshal(publishFrame{Type: protocol.TypePublish, Room: room, ID: id, Data: raw})
	if err != nil {
		return Ack{}, fmt.Errorf("client: publish %s: %w", id, err)
	}
	p := &pendingPublish{id: id, room: room, frame: frame, notify: make(chan struct{}, 1)}
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return Ack{}, err
	}
	if _, busy := c.pending[id]; busy {
		c.mu.Unlock()
		return Ack{}, fmt.Errorf("client: publish %s: a publish with this id is already in flight", id)
	}
	c.pubSeq++
	p.seq = c.pubSeq
	c.pending[id] = p
	cn := c.sendOnLocked(p)
	c.mu.Unlock()
	defer c.forget(p)
	if cn != nil {
		c.enqueue(ctx, cn, frame) // if cn ends first, the next connection resends it
	}
	for {
		select {
		case <-p.notify:
		case <-ctx.Done():
			return Ack{}, ctx.Err()
		case <-c.done:
			return Ack{}, c.endErr()
		}
		c.mu.Lock()
		state, ack, err, retries := p.state, p.ack, p.err, p.retries
		c.mu.Unlock()
		switch state {
		case pubDone:
			return ack, err
		case pubRetry:
			c.log.Debug("publish refused, retrying", "id", id, "err", err)
			if !c.sleep(ctx, c.backoff(retries-1)) {
				if ctx.Err() != nil {
					return Ack{}, ctx.Err()
				}
				<-c.done
				return Ack{}, c.endErr()
			}
			c.mu.Lock()
			cn = nil
			if p.state == pubRetry {
				p.state = pubWaiting
				if cn = c.sendOnLocked(p); cn != nil {
					c.st.publishRetries.Add(1)
				}
			}
			c.mu.Unlock()
			if cn != nil {
				c.enqueue(ctx, cn, frame)
			}
		}
	}
}

// sendOnLocked marks p as sent on the live connection and returns it; nil
// when there is none (the next connection will send p).
func (c *Client) sendOnLocked(p *pendingPublish) *conn {
	cn := c.cur
	if cn != nil {
		p.sentOn = cn.no
		p.attempts++
	}
	return cn
}

// forget drops p from the pending set when its Publish returns.
func (c *Client) forget(p *pendingPublish) {
	c.mu.Lock()
	if c.pending[p.id] == p {
		delete(c.pending, p.id)
	}
	c.mu.Unlock()
}

func marshalData(data any) (json.RawMessage, error) {
	if raw, ok := data.(json.RawMessage); ok {
		if !json.Valid(raw) {
			return nil, fmt.Errorf("data is not valid JSON")
		}
		return raw, nil
	}
	b, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("data cannot be marshalled: %v", err)
	}
	return b, nil
}

// handleAck completes the publish the ack names.
func (c *Client) handleAck(cn *conn, f *protocol.ServerFrame) {
	c.mu.Lock()
	p := c.pending[f.ID]
	if p != nil {
		room := f.Room
		if room == "" {
			room = p.room
		}
		p.state, p.err = pubDone, nil
		p.ack = Ack{ID: f.ID, Room: room, Event: f.Event, Oseq: f.Oseq, Origin: f.Origin, Epoch: f.Epoch,
			Duplicate: f.Duplicate, Conn: cn.no, Attempts: p.attempts}
		delete(c.pending, f.ID)
		notify(p.notify)
	}
	c.mu.Unlock()
	if p == nil {
		cn.log.Debug("ack for no pending publish (answered already, or abandoned)", "id", f.ID)
	}
}

// handleError routes an error frame to the publish or the room its ref
// names. Refs are ambiguous when a publish id equals a room name: codes only
// a subscribe gets go to the room, codes only a publish gets to the publish,
// the rest to a subscribe waiting on this connection first.
func (c *Client) handleError(cn *conn, f *protocol.ServerFrame) {
	c.st.serverErrors.Add(1)
	serr := &ServerError{Code: f.Code, Ref: f.Ref, Message: f.Message}
	var ev *SubscribedEvent
	c.mu.Lock()
	p, r := c.pending[f.Ref], c.rooms[f.Ref]
	if p != nil && p.state == pubDone {
		p = nil
	}
	toRoom := false
	switch f.Code {
	case protocol.CodeNotSubscribed, protocol.CodeTooManyRooms, protocol.CodeBadSince:
		toRoom = r != nil
	case protocol.CodeDataTooLarge, protocol.CodeRateLimited, protocol.CodeBadID:
		toRoom = p == nil && r != nil
	default:
		toRoom = r != nil && (p == nil || r.awaitingOn(cn.no))
	}
	switch {
	case toRoom:
		ev = c.roomErrorLocked(cn, r, serr)
	case p != nil:
		if retryable(f.Code) {
			if p.state == pubWaiting {
				p.state, p.err = pubRetry, serr
				p.retries++
			}
		} else {
			p.state, p.err = pubDone, serr
			delete(c.pending, p.id)
		}
		notify(p.notify)
	}
	c.mu.Unlock()
	if !toRoom && p == nil {
		cn.log.Warn("error frame from the gateway", "ref", f.Ref, "code", f.Code, "message", f.Message)
	}
	if ev != nil {
		c.emitSubscribed(*ev)
	}
}
