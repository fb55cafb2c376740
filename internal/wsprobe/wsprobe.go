// Package wsprobe is a raw protocol v1 WebSocket client for tests. It
// speaks the gateway's wire format frame by frame, with none of
// gateway/client's reconnects, resumes or retries, so that a test sees
// exactly what a gateway sent and can send what no well-behaved client
// would. The gateway's and the federation's tests both dial with it.
//
// A Conn records every frame it reads. A test takes them in order, as a
// stream (Next, Expect, Collect), or looks at every message received so far
// (Messages, Count) while waiting on a condition. Every Conn is closed when
// the test that dialed it ends; Close closes it sooner, and a test that
// opens connections in a loop closes each as it goes.
package wsprobe

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/internal/wait"
)

// Bound is how long Open, Expect, Subscribe and Publish wait for the
// gateway's answer before they fail the test.
const Bound = 10 * time.Second

// TB is what a Conn needs of a test: what a wait needs, and a cleanup.
// *testing.T, testing.TB and Ginkgo's GinkgoT() all satisfy it.
type TB interface {
	wait.TB
	Cleanup(func())
}

// Conn is one WebSocket connection to a gateway's /ws.
type Conn struct {
	t    TB
	ws   *websocket.Conn
	wmu  sync.Mutex
	done chan struct{} // closed when the read loop has ended
	once sync.Once

	mu      sync.Mutex
	frames  []*protocol.ServerFrame // every frame read, in order
	msgs    []*protocol.ServerFrame // the message frames among them
	next    int                     // the first frame Next has not passed
	more    chan struct{}           // closed (and replaced) when a frame arrives or the read ends
	ended   bool
	err     error // why the read ended
	code    int   // the close code the gateway sent, if it sent one
	welcome *protocol.ServerFrame
}

// Dial opens a connection to the gateway at addr ("host:port", optionally
// followed by a query such as "?session=s-1") with tok as its bearer token
// (no Authorization header when tok is empty). A refused handshake returns
// the gateway's HTTP response with the error; its body may be read. A
// connection that opens is closed when t ends.
func Dial(t TB, addr, tok string) (*Conn, *http.Response, error) {
	h := http.Header{}
	if tok != "" {
		h.Set("Authorization", "Bearer "+tok)
	}
	host, query, _ := strings.Cut(addr, "?")
	if query != "" {
		query = "?" + query
	}
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	ws, resp, err := d.Dial("ws://"+host+"/ws"+query, h)
	if err != nil {
		return nil, resp, err
	}
	c := &Conn{t: t, ws: ws, done: make(chan struct{}), more: make(chan struct{})}
	t.Cleanup(c.Close)
	go c.read()
	return c, resp, nil
}

// Open is Dial for a connection that must open: it fails t otherwise, and
// waits for the welcome frame (Welcome).
func Open(t TB, addr, tok string) *Conn {
	t.Helper()
	c, resp, err := Dial(t, addr, tok)
	if err != nil {
		status := "no response"
		if resp != nil {
			status = resp.Status
		}
		t.Fatalf("wsprobe: dial %s: %v (%s)", addr, err, status)
		return nil
	}
	w := c.Expect("welcome")
	c.mu.Lock()
	c.welcome = w
	c.mu.Unlock()
	return c
}

// Welcome returns the welcome frame Open read.
func (c *Conn) Welcome() *protocol.ServerFrame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.welcome
}

func (c *Conn) read() {
	defer close(c.done)
	for {
		_, b, err := c.ws.ReadMessage()
		var f *protocol.ServerFrame
		if err == nil {
			if f, err = protocol.DecodeServerFrame(b); err != nil {
				err = fmt.Errorf("the gateway sent a frame a client cannot read: %s: %w", b, err)
				_ = c.ws.Close()
			}
		}
		c.mu.Lock()
		if err != nil {
			c.ended, c.err = true, err
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				c.code = ce.Code
			}
		} else {
			c.frames = append(c.frames, f)
			if f.Type == "message" {
				c.msgs = append(c.msgs, f)
			}
		}
		close(c.more)
		c.more = make(chan struct{})
		c.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// Next returns the next frame, after those Next has already passed, of one
// of the types; frames of other types on the way are passed over (Messages
// still has the messages among them). It reports false when none came
// within bound or the connection ended first.
func (c *Conn) Next(bound time.Duration, types ...string) (*protocol.ServerFrame, bool) {
	timer := time.NewTimer(bound)
	defer timer.Stop()
	for {
		c.mu.Lock()
		for c.next < len(c.frames) {
			f := c.frames[c.next]
			c.next++
			if slices.Contains(types, f.Type) {
				c.mu.Unlock()
				return f, true
			}
		}
		more, ended := c.more, c.ended
		c.mu.Unlock()
		if ended {
			return nil, false
		}
		select {
		case <-more:
		case <-timer.C:
			return nil, false
		}
	}
}

// Expect is Next within Bound for a frame that must come: it fails the
// test otherwise.
func (c *Conn) Expect(types ...string) *protocol.ServerFrame {
	c.t.Helper()
	f, ok := c.Next(Bound, types...)
	if !ok {
		c.t.Fatalf("wsprobe: no %v frame within %s (read: %v)", types, Bound, c.ReadErr())
	}
	return f
}

// Collect takes message frames, as Next does, until n came or bound
// passed, and returns those that came.
func (c *Conn) Collect(n int, bound time.Duration) []*protocol.ServerFrame {
	var out []*protocol.ServerFrame
	end := time.Now().Add(bound)
	for len(out) < n {
		f, ok := c.Next(time.Until(end), "message")
		if !ok {
			break
		}
		out = append(out, f)
	}
	return out
}

// Messages returns every message frame received so far, in order, whatever
// Next has passed.
func (c *Conn) Messages() []*protocol.ServerFrame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.msgs)
}

// Count is len(Messages()).
func (c *Conn) Count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.msgs)
}

// Send writes v as one JSON text frame. A failed write is not reported:
// the read side tells what happened to the connection.
func (c *Conn) Send(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatalf("wsprobe: %v", err)
		return
	}
	c.SendRaw(b)
}

// SendRaw writes b as one text frame, whatever it holds.
func (c *Conn) SendRaw(b []byte) { c.write(websocket.TextMessage, b) }

// SendBinary writes b as one binary frame, which protocol v1 does not use.
func (c *Conn) SendBinary(b []byte) { c.write(websocket.BinaryMessage, b) }

// SendPing writes one WebSocket ping control frame carrying data.
func (c *Conn) SendPing(data []byte) { c.control(websocket.PingMessage, data) }

// SendPong writes one unasked WebSocket pong control frame carrying data.
func (c *Conn) SendPong(data []byte) { c.control(websocket.PongMessage, data) }

func (c *Conn) control(kind int, data []byte) {
	_ = c.ws.WriteControl(kind, data, time.Now().Add(5*time.Second))
}

func (c *Conn) write(kind int, b []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.WriteMessage(kind, b)
}

// Subscribe subscribes to room, resuming from since and epochs when they
// are not nil, and returns the subscribed frame; an error frame fails the
// test.
func (c *Conn) Subscribe(room string, since protocol.Positions, epochs protocol.Epochs) *protocol.ServerFrame {
	c.t.Helper()
	f := map[string]any{"type": "subscribe", "room": room}
	if since != nil {
		f["since"] = since
	}
	if epochs != nil {
		f["epochs"] = epochs
	}
	c.Send(f)
	s := c.Expect("subscribed", "error")
	if s.Type != "subscribed" {
		c.t.Fatalf("wsprobe: subscribe %s: %+v", room, s)
	}
	return s
}

// Publish publishes data into room under the client id and returns the
// gateway's answer: its ack or its error frame.
func (c *Conn) Publish(room, id string, data any) *protocol.ServerFrame {
	c.t.Helper()
	c.Send(map[string]any{"type": "publish", "room": room, "id": id, "data": data})
	return c.Expect("ack", "error")
}

// PublishAcked publishes until the gateway acks, repeating the same id
// (so that a retry is never a second event) while it answers unavailable,
// for at most bound: for a test during which Redis or a region may be
// gone for a while. Any other error fails the test.
func (c *Conn) PublishAcked(room, id string, data any, bound time.Duration) *protocol.ServerFrame {
	c.t.Helper()
	var ack *protocol.ServerFrame
	wait.For(c.t, bound, "publish "+id+" acked", func() bool {
		f := c.Publish(room, id, data)
		switch {
		case f.Type == "ack":
			ack = f
			return true
		case f.Code != protocol.CodeUnavailable:
			c.t.Fatalf("wsprobe: publish %s: %+v", id, f)
			return true // for a TB whose Fatalf returns
		}
		return false
	})
	return ack
}

// Done is closed once the connection has ended, by either side.
func (c *Conn) Done() <-chan struct{} { return c.done }

// AwaitClose waits, for at most bound, until the connection ends, and
// returns the close code the gateway sent (0 when it sent none); it fails
// the test when the connection is still open at the bound.
func (c *Conn) AwaitClose(bound time.Duration) int {
	c.t.Helper()
	timer := time.NewTimer(bound)
	defer timer.Stop()
	select {
	case <-c.done:
	case <-timer.C:
		c.t.Fatalf("wsprobe: connection still open after %s", bound)
	}
	return c.CloseCode()
}

// CloseCode is the close code the gateway sent, 0 while the connection is
// open or when it ended without one.
func (c *Conn) CloseCode() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.code
}

// ReadErr is why the read side ended, nil while it has not.
func (c *Conn) ReadErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close closes the connection without a close frame (as a client that
// vanishes does) and waits until its read loop has ended. It may be called
// more than once; the test's cleanup calls it too.
func (c *Conn) Close() {
	c.once.Do(func() { _ = c.ws.Close() })
	<-c.done
}

// CheckStream fails t unless msgs, what one subscriber received, hold G2
// and G3: per origin, oseq rises by exactly one from the first message, and
// no event id comes twice.
func CheckStream(t TB, who string, msgs []*protocol.ServerFrame) {
	t.Helper()
	seen := map[string]bool{}
	last := map[string]uint64{}
	for i, m := range msgs {
		if seen[m.ID] {
			t.Fatalf("%s: G3: event %s (%s/%d) delivered twice (message %d)", who, m.ID, m.Origin, m.Oseq, i)
		}
		seen[m.ID] = true
		if prev, ok := last[m.Origin]; ok && m.Oseq != prev+1 {
			t.Fatalf("%s: G2: origin %s oseq %d follows %d (message %d)", who, m.Origin, m.Oseq, prev, i)
		}
		last[m.Origin] = m.Oseq
	}
}
