package gateway

import (
	"net"
	"time"

	"github.com/gorilla/websocket"

	"github.com/geolab/geolab/gateway/protocol"
)

// The writer of a connection writes its queued frames itself, framed once
// here and not through gorilla's writer: every frame it finds queued goes
// out in one writev(2), up to maxBatchFrames frames and about
// maxBatchBytes. A frame that finds the queue empty is written at once,
// alone: batching never waits for more. Each delivery's frame is the one
// []byte the room's event was parsed into, shared by every subscriber; the
// writer adds only its 2–10 header bytes, with no copy and no allocation.
//
// Control frames (pings, pongs, the close frame) still go through gorilla's
// WriteControl. Each write is a single Write or writev on the socket, and
// the socket serialises whole writes, so frames never interleave. The close
// frame is written holding wsem, as the writer holds it for each batch, and
// the writer checks c.closed under it: no data frame follows the close frame.
const (
	maxBatchFrames = 64
	maxBatchBytes  = 256 << 10
)

// writeBatch is the writer goroutine's scratch space, reused for every batch.
type writeBatch struct {
	hdr      []byte      // the frames' headers, back to back
	iov      net.Buffers // header, payload, header, payload…
	deadline time.Time   // the socket's write deadline as last set
}

// frameHeader appends the header of a final, unmasked text frame of n
// payload bytes (RFC 6455 §5.2; a server never masks).
func frameHeader(h []byte, n int) []byte {
	switch {
	case n < 126:
		return append(h, 0x81, byte(n))
	case n <= 0xffff:
		return append(h, 0x81, 126, byte(n>>8), byte(n))
	default:
		return append(h, 0x81, 127, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32),
			byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

func (c *conn) writeLoop() {
	ping := time.NewTicker(c.srv.cfg.PingInterval)
	defer ping.Stop()
	w := &c.w
	w.hdr = make([]byte, 0, 10*maxBatchFrames)
	w.iov = make(net.Buffers, 0, 2*maxBatchFrames)
	for {
		var first []byte
		select {
		case first = <-c.out: // frames waiting: no need to park
		default:
			// Parked on two channels, not three: finish wakes a parked
			// writer with a nil frame (its queue is empty then).
			select {
			case first = <-c.out:
			case <-ping.C:
				if !c.ping() {
					return
				}
				continue
			}
		}
		if first == nil {
			return // finish's wake-up: the connection is over
		}
		if !c.writeFrames(first) {
			return
		}
		// A queue that never empties must not starve the pings: a client
		// that only reads answers nothing else, and without pongs its
		// connection would pass the read timeout (4004).
		select {
		case <-ping.C:
			if !c.ping() {
				return
			}
		default:
		}
	}
}

func (c *conn) ping() bool {
	if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.srv.cfg.WriteTimeout)); err != nil {
		c.closeWith(protocol.CloseInternalError, "ping failed")
		return false
	}
	return true
}

// writeFrames writes first and whatever else is queued now, in one write.
// It reports false when the connection is over.
func (c *conn) writeFrames(first []byte) bool {
	w := &c.w
	w.hdr, w.iov = w.hdr[:0], w.iov[:0]
	add := func(b []byte) {
		w.hdr = frameHeader(w.hdr, len(b))
		h := w.hdr[len(w.hdr)-frameHeaderLen(len(b)):]
		w.iov = append(w.iov, h, b)
	}
	add(first)
	n, size := 1, len(first)
more:
	for n < maxBatchFrames && size < maxBatchBytes {
		select {
		case b := <-c.out:
			if b == nil {
				break more // finish's wake-up: c.closed is checked below
			}
			add(b)
			n++
			size += len(b)
		default:
			break more
		}
	}
	select {
	case c.took <- struct{}{}:
	default:
	}
	// wsem is free but for the moment a close frame is written: the close
	// frame's writer takes it after marking the connection closed.
	c.wsem <- struct{}{}
	defer func() { <-c.wsem }()
	select {
	case <-c.closed: // the close frame goes next, from finish
		clear(w.iov)
		return false
	default:
	}
	nc := c.ws.NetConn()
	// The deadline is set again only when less than 9/10 of the write
	// timeout is left of it: setting it costs a timer update per write.
	now := time.Now()
	if wt := c.srv.cfg.WriteTimeout; w.deadline.Sub(now) < wt-wt/10 {
		w.deadline = now.Add(wt)
		_ = nc.SetWriteDeadline(w.deadline)
	}
	bufs := w.iov // WriteTo consumes its receiver
	_, err := bufs.WriteTo(nc)
	clear(w.iov) // hold no frame past its write
	if err != nil {
		c.closeWith(protocol.CloseInternalError, "write failed")
		return false
	}
	c.srv.m.framesOut.Add(float64(n))
	c.srv.m.writes.Inc()
	return true
}

func frameHeaderLen(n int) int {
	switch {
	case n < 126:
		return 2
	case n <= 0xffff:
		return 4
	default:
		return 10
	}
}

// writeClose writes the close frame after whatever batch is being written
// (waiting for it at most the write timeout), then closes the socket.
func (c *conn) writeClose(code int, reason string) {
	deadline := time.Now().Add(c.srv.cfg.WriteTimeout)
	t := time.NewTimer(c.srv.cfg.WriteTimeout)
	defer t.Stop()
	select {
	case c.wsem <- struct{}{}:
		msg := websocket.FormatCloseMessage(code, reason)
		_ = c.ws.WriteControl(websocket.CloseMessage, msg, deadline)
		<-c.wsem
	case <-t.C: // a write stuck on a client that reads nothing: just close
	}
	_ = c.ws.Close()
}
