package client

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/geolab/geolab/gateway/protocol"
)

// conn is one WebSocket connection: a reader and a writer goroutine (gorilla
// allows one of each; only WriteControl — pongs, our close — runs beside
// the writer, which gorilla allows), ended once by end.
type conn struct {
	no       int64
	ws       *websocket.Conn
	endpoint string
	welcome  *protocol.ServerFrame
	opened   time.Time
	log      *slog.Logger // with conn, region, node

	out  chan []byte   // frames for the writer
	kick chan struct{} // capacity 1: a resubscribe retry was scheduled
	wg   sync.WaitGroup

	bye       atomic.Bool  // a bye frame came: the client leaves, and the gateway's close should follow promptly
	byeAt     atomic.Int64 // unix nanos of the close the client sent after the bye (leave)
	writeDead atomic.Int64 // unix nanos of a failed write: the reader stops waiting soon after

	once  sync.Once
	done  chan struct{} // closed by end
	cause connEnd       // set by end, before done closes
}

// connEnd says why a connection ended and what the client does next.
type connEnd struct {
	code      int // close code read from the gateway; 0 if none
	reason    string
	err       error
	reconnect bool
	elsewhere bool // reconnect to the next endpoint (a drain)
}

func (cn *conn) end(e connEnd) {
	cn.once.Do(func() {
		cn.cause = e
		close(cn.done)
		_ = cn.ws.Close()
	})
}

var pingFrame = []byte(`{"type":"` + protocol.TypePing + `"}`)

// closeGrace bounds the wait for the gateway's answer to our close frame.
const closeGrace = time.Second

// run is the supervisor: it connects, serves the connection until it ends,
// and reconnects while the close code allows it.
func (c *Client) run() {
	defer close(c.netDone)
	var (
		ep      endpointPicker
		attempt int // backoff attempt; reset once a connection has lasted
		first   = true
	)
	for {
		cn, err := c.connect(&ep, &attempt, first)
		if cn == nil {
			c.finish(err, 0, "")
			return
		}
		if !first {
			c.st.reconnects.Add(1)
		}
		end := c.serve(cn, first)
		first = false
		closing := c.ctx.Err() != nil
		c.emitState(StateEvent{State: StateDisconnected, Conn: cn.no, Endpoint: cn.endpoint,
			Code: end.code, Reason: end.reason, Err: end.err, WillReconnect: end.reconnect && !closing})
		switch {
		case closing:
			c.finish(c.closedErr(nil), end.code, end.reason)
			return
		case !end.reconnect:
			cn.log.Warn("connection closed with a code that forbids reconnecting", "code", end.code, "reason", end.reason)
			c.finish(&CloseError{Code: end.code, Reason: end.reason, Err: end.err}, end.code, end.reason)
			return
		}
		cn.log.Info("connection lost, reconnecting", "code", end.code, "err", end.err)
		if end.elsewhere {
			ep.next()
		}
		if time.Since(cn.opened) >= c.o.MaxBackoff {
			attempt = 0
		}
	}
}

// connect makes connection attempts, with backoff before each one but the
// very first, until one succeeds, the client ends or MaxReconnects fail.
func (c *Client) connect(ep *endpointPicker, attempt *int, first bool) (*conn, error) {
	var last error
	for failures := 0; ; failures++ {
		if !first || failures > 0 {
			if !c.sleep(c.ctx, c.backoff(*attempt)) {
				return nil, c.closedErr(last)
			}
			*attempt++
		}
		cn, err := c.attempt(ep, failures)
		if err == nil {
			return cn, nil
		}
		if c.ctx.Err() != nil {
			return nil, c.closedErr(err)
		}
		last = err
		c.st.dialFailures.Add(1)
		c.log.Warn("connection attempt failed", "attempt", failures, "err", err)
		if c.o.MaxReconnects > 0 && failures+1 >= c.o.MaxReconnects {
			return nil, &CloseError{Err: fmt.Errorf("%d connection attempts in a row failed, the last: %w", failures+1, err)}
		}
	}
}

// attempt resolves, dials one endpoint and waits for the welcome.
func (c *Client) attempt(ep *endpointPicker, failures int) (*conn, error) {
	ctx, cancel := context.WithTimeout(c.ctx, c.o.DialTimeout)
	defer cancel()
	list := c.o.Endpoints
	if c.o.Resolve != nil {
		var err error
		if list, err = c.o.Resolve(ctx); err != nil {
			return nil, fmt.Errorf("resolve: %w", err)
		}
		if len(list) == 0 {
			return nil, errors.New("resolve: no endpoint")
		}
	}
	ep.offer(list)
	url := ep.current()
	c.emitState(StateEvent{State: StateConnecting, Endpoint: url, Attempt: failures})
	if err := validEndpoint(url); err != nil {
		ep.next()
		return nil, fmt.Errorf("resolve: %w", err)
	}
	tok, err := c.o.Token(ctx)
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	d := websocket.Dialer{HandshakeTimeout: c.o.DialTimeout}
	ws, resp, err := d.DialContext(ctx, url, http.Header{"Authorization": {"Bearer " + tok}})
	if err != nil {
		ep.next()
		if resp != nil {
			return nil, fmt.Errorf("dial %s: %w (HTTP %s)", url, err, resp.Status)
		}
		return nil, fmt.Errorf("dial %s: %w", url, err)
	}
	c.mu.Lock()
	c.connNo++
	cn := &conn{no: c.connNo, ws: ws, endpoint: url, opened: time.Now(),
		out: make(chan []byte, 64), kick: make(chan struct{}, 1), done: make(chan struct{})}
	c.mu.Unlock()
	if dl, ok := ctx.Deadline(); ok {
		_ = ws.SetReadDeadline(dl)
	}
	// Close must not wait for a welcome that does not come.
	stop := context.AfterFunc(ctx, func() { _ = ws.NetConn().Close() })
	_, b, err := ws.ReadMessage()
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		_ = ws.Close()
		ep.next()
		return nil, fmt.Errorf("read welcome from %s: %w", url, err)
	}
	c.frameIn(cn, b)
	f, err := protocol.DecodeServerFrame(b)
	if err == nil && f.Type != protocol.TypeWelcome {
		err = fmt.Errorf("first frame is %q, not welcome", f.Type)
	}
	if err != nil {
		_ = ws.Close()
		ep.next()
		return nil, fmt.Errorf("welcome from %s: %w", url, err)
	}
	cn.welcome = f
	cn.log = c.log.With("conn", cn.no, "region", f.Region, "node", f.Node)
	return cn, nil
}

// serve runs a connection until it ends: it adopts it, resubscribes every
// room with since/epochs, resends every unacked publish, retries refused
// resubscribes, and on the client's end says goodbye with 1000.
func (c *Client) serve(cn *conn, first bool) connEnd {
	subs, pubs := c.adopt(cn)
	if first {
		close(c.ready) // Dial returns with Session, Region... set
	}
	w := cn.welcome
	c.emitState(StateEvent{State: StateConnected, Conn: cn.no, Endpoint: cn.endpoint,
		Session: w.Session, Region: w.Region, Node: w.Node})
	cn.log.Info("connected", "endpoint", cn.endpoint, "session", w.Session,
		"rooms", len(subs), "publishes", len(pubs))
	cn.wg.Add(2)
	go c.readLoop(cn)
	go c.writeLoop(cn)
	for _, b := range append(subs, pubs...) {
		if !c.enqueue(c.ctx, cn, b) {
			break
		}
	}
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
loop:
	for {
		select {
		case <-cn.done:
			break loop
		case <-c.ctx.Done():
			c.sayGoodbye(cn)
			break loop
		case <-cn.kick:
		case <-retry.C:
		}
		due, next := c.dueResubscribes(cn, time.Now())
		for _, b := range due {
			c.enqueue(c.ctx, cn, b)
		}
		if !next.IsZero() {
			retry.Reset(time.Until(next))
		}
	}
	cn.wg.Wait()
	c.release(cn)
	return cn.cause
}

// Reconnect drops the current connection abruptly, as a phone switching
// networks loses it: no close frame, the socket is closed under the gateway.
// The client then does what it does for any lost connection: it reports
// StateDisconnected (Err ErrDropped, WillReconnect true), reconnects with its
// usual backoff (through Resolve when set), resumes every room of its set
// with since/epochs and resends every unacked publish. It reports whether
// there was a live connection to drop: false while the client is between
// connections, or once it has ended.
func (c *Client) Reconnect() bool {
	c.mu.Lock()
	cn := c.cur
	c.mu.Unlock()
	if cn == nil || c.ctx.Err() != nil {
		return false
	}
	select {
	case <-cn.done:
		return false // already ending: the supervisor reconnects anyway
	default:
	}
	cn.log.Info("connection dropped by Reconnect")
	cn.end(connEnd{err: ErrDropped, reconnect: true})
	return true
}

// sayGoodbye sends a normal close and waits, briefly, for the gateway's.
func (c *Client) sayGoodbye(cn *conn) {
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "client closing")
	if err := cn.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(c.o.WriteTimeout)); err == nil {
		t := time.NewTimer(min(closeGrace, c.o.WriteTimeout))
		select {
		case <-cn.done:
		case <-t.C:
		}
		t.Stop()
	}
	cn.end(connEnd{code: websocket.CloseNormalClosure, reason: "client closing", err: ErrClosed})
}

// adopt makes cn the live connection and returns, in order, the subscribe
// frames of every room in the client's set and the publish frames still
// waiting for their ack.
func (c *Client) adopt(cn *conn) (subs, pubs [][]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cur = cn
	c.session, c.region, c.node, c.endpoint = cn.welcome.Session, cn.welcome.Region, cn.welcome.Node, cn.endpoint
	names := make([]string, 0, len(c.rooms))
	for name, r := range c.rooms {
		if r.wanted {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		subs = append(subs, c.subscribeFrameLocked(c.rooms[name], cn))
	}
	ps := make([]*pendingPublish, 0, len(c.pending))
	for _, p := range c.pending {
		if p.state == pubWaiting && p.sentOn != cn.no {
			ps = append(ps, p)
		}
	}
	slices.SortFunc(ps, func(a, b *pendingPublish) int { return cmp.Compare(a.seq, b.seq) })
	for _, p := range ps {
		if p.attempts > 0 {
			c.st.publishRetries.Add(1)
		}
		p.sentOn = cn.no
		p.attempts++
		pubs = append(pubs, p.frame)
	}
	return subs, pubs
}

// release forgets cn once its goroutines have ended: subscribes it carried
// are unanswered and will be sent again on the next connection.
func (c *Client) release(cn *conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == cn {
		c.cur = nil
	}
	for _, r := range c.rooms {
		if r.awaitConn == cn.no {
			r.sent = nil
		}
		r.retryAt = time.Time{}
	}
}

// finish ends the client: every pending call fails with err.
func (c *Client) finish(err error, code int, reason string) {
	c.mu.Lock()
	c.err = err
	c.cur = nil
	for id, p := range c.pending {
		p.state, p.err = pubDone, err
		notify(p.notify)
		delete(c.pending, id)
	}
	for _, r := range c.rooms {
		for _, w := range r.waiters {
			w.err = err
			notify(w.notify)
		}
		r.waiters = nil
	}
	c.mu.Unlock()
	c.emitState(StateEvent{State: StateClosed, Code: code, Reason: reason, Err: err})
	close(c.done)
	c.events.close()
	c.cancel()
}

// closedErr is the error of a client stopped by Close or its context.
func (c *Client) closedErr(last error) error {
	var err error = ErrClosed
	if cerr := c.ctx.Err(); cerr != nil && !c.userClosed.Load() {
		err = fmt.Errorf("%w: %w", ErrClosed, cerr)
	}
	if last != nil {
		err = fmt.Errorf("%w (last attempt: %v)", err, last)
	}
	return err
}

// enqueue hands b to cn's writer; false if cn ended, the client is ending
// or ctx (may be nil) ended first.
func (c *Client) enqueue(ctx context.Context, cn *conn, b []byte) bool {
	var cancelled <-chan struct{}
	if ctx != nil {
		cancelled = ctx.Done()
	}
	select {
	case cn.out <- b:
		return true
	case <-cn.done:
	case <-c.ctx.Done():
	case <-cancelled:
	}
	return false
}

func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// writeLoop owns the connection's writes; it pings when idle.
func (c *Client) writeLoop(cn *conn) {
	defer cn.wg.Done()
	idle := time.NewTimer(c.o.PingInterval)
	defer idle.Stop()
	for {
		var b []byte
		select {
		case b = <-cn.out:
		case <-idle.C:
			b = pingFrame
		case <-cn.done:
			return
		}
		_ = cn.ws.SetWriteDeadline(time.Now().Add(c.o.WriteTimeout))
		if err := cn.ws.WriteMessage(websocket.TextMessage, b); err != nil {
			// Let the reader find the gateway's close frame, if one came,
			// before the connection is given up.
			cn.writeDead.Store(time.Now().UnixNano())
			_ = cn.ws.SetReadDeadline(time.Now().Add(min(closeGrace, c.o.WriteTimeout)))
			cn.log.Debug("write failed", "err", err)
			return
		}
		c.st.framesOut.Add(1)
		if c.o.OnFrame != nil {
			c.o.OnFrame(RawFrame{Conn: cn.no, Dir: Out, Time: time.Now(), Data: b})
		}
		idle.Reset(c.o.PingInterval)
	}
}

// readLoop reads frames until the connection ends and hands them on.
func (c *Client) readLoop(cn *conn) {
	defer cn.wg.Done()
	ws := cn.ws
	readTimeout := 3 * c.o.PingInterval
	ws.SetPingHandler(func(data string) error {
		_ = ws.SetReadDeadline(c.readDeadline(cn, readTimeout))
		err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(c.o.WriteTimeout))
		var ne net.Error
		if err == nil || errors.Is(err, websocket.ErrCloseSent) || (errors.As(err, &ne) && ne.Timeout()) {
			return nil
		}
		return err
	})
	for {
		_ = ws.SetReadDeadline(c.readDeadline(cn, readTimeout))
		mt, b, err := ws.ReadMessage()
		if err != nil {
			cn.end(c.classify(cn, err, readTimeout))
			return
		}
		if mt != websocket.TextMessage {
			cn.log.Warn("binary frame from the gateway ignored: not part of protocol v1")
			continue
		}
		c.frameIn(cn, b)
		f, err := protocol.DecodeServerFrame(b)
		if err != nil {
			cn.log.Warn("undecodable frame from the gateway", "err", err)
			continue
		}
		c.handle(cn, f)
		if f.Type == protocol.TypeBye {
			c.leave(cn)
		}
	}
}

// readDeadline: 3× the ping interval, shortened after a bye or a failed
// write, when the close should come at once.
func (c *Client) readDeadline(cn *conn, readTimeout time.Duration) time.Time {
	if t := cn.writeDead.Load(); t != 0 {
		return time.Unix(0, t).Add(min(closeGrace, c.o.WriteTimeout))
	}
	if t := cn.byeAt.Load(); t != 0 {
		return time.Unix(0, t).Add(min(closeGrace, c.o.WriteTimeout))
	}
	return time.Now().Add(readTimeout)
}

// classify turns a read error into what the client does next.
func (c *Client) classify(cn *conn, err error, readTimeout time.Duration) connEnd {
	var ce *websocket.CloseError
	if errors.As(err, &ce) && cn.bye.Load() && (ce.Code == protocol.CloseGoingAway || ce.Code == protocol.CloseNormal) {
		// The gateway's answer to the close we sent after its bye.
		return connEnd{code: ce.Code, reason: ce.Text, err: err, reconnect: true, elsewhere: true}
	}
	if errors.As(err, &ce) {
		return connEnd{code: ce.Code, reason: ce.Text, err: err,
			reconnect: protocol.Reconnectable(ce.Code), elsewhere: ce.Code == protocol.CloseGoingAway}
	}
	if cn.writeDead.Load() != 0 {
		return connEnd{err: fmt.Errorf("write failed, no close frame followed: %w", err), reconnect: true}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		if cn.bye.Load() {
			return connEnd{err: errors.New("the gateway said bye but did not close"), reconnect: true, elsewhere: true}
		}
		return connEnd{err: fmt.Errorf("heartbeat timeout: nothing read for %v", readTimeout), reconnect: true}
	}
	return connEnd{err: err, reconnect: true}
}

func (c *Client) frameIn(cn *conn, b []byte) {
	c.st.framesIn.Add(1)
	if c.o.OnFrame != nil {
		c.o.OnFrame(RawFrame{Conn: cn.no, Dir: In, Time: time.Now(), Data: b})
	}
}

// handle acts on one decoded frame, on the reader goroutine.
func (c *Client) handle(cn *conn, f *protocol.ServerFrame) {
	switch f.Type {
	case protocol.TypeMessage:
		c.handleMessage(cn, f)
	case protocol.TypeSubscribed:
		c.handleSubscribed(cn, f)
	case protocol.TypeAck:
		c.handleAck(cn, f)
	case protocol.TypeError:
		c.handleError(cn, f)
	case protocol.TypeBye:
		cn.bye.Store(true) // the reader leaves (leave) once this frame is handled
		cn.log.Info("gateway said bye: leaving for another node", "code", f.Code, "reconnect", f.Reconnect)
	case protocol.TypePong, protocol.TypeWelcome:
	default:
		cn.log.Debug("unknown frame type ignored", "type", f.Type)
	}
}

// leave answers a bye: the node is draining and serves this connection
// only until its drain timeout. The client closes its end at once with
// going_away (it is off to another node) and gives the gateway closeGrace
// to answer (the reader's next deadline); the connection then ends, and the
// client reconnects to its next endpoint and resumes, instead of waiting out
// the drain.
func (c *Client) leave(cn *conn) {
	if !cn.byeAt.CompareAndSwap(0, time.Now().UnixNano()) {
		return
	}
	msg := websocket.FormatCloseMessage(websocket.CloseGoingAway, "bye: reconnecting elsewhere")
	if err := cn.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(c.o.WriteTimeout)); err != nil {
		cn.log.Debug("close after bye failed", "err", err)
	}
}

// endpointPicker walks the endpoint list: a failure moves to the next one, a
// new list (from the resolver) starts again from its first.
type endpointPicker struct {
	list []string
	i    int
}

func (p *endpointPicker) offer(list []string) {
	if !slices.Equal(list, p.list) {
		p.list, p.i = slices.Clone(list), 0
	}
}

func (p *endpointPicker) current() string { return p.list[p.i%len(p.list)] }

func (p *endpointPicker) next() {
	if len(p.list) > 0 {
		p.i = (p.i + 1) % len(p.list)
	}
}
