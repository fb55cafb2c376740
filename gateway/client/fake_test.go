package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/internal/wait"
)

// bound is how long any wait in these tests may take before it fails.
const bound = 5 * time.Second

// fakeServer speaks protocol v1 as each test scripts it: it sends the
// welcome itself, then hands every connection to the test.
type fakeServer struct {
	t      *testing.T
	srv    *httptest.Server
	region string
	conns  chan *fakeConn
	n      atomic.Int32
	reject atomic.Int32 // refuse this many upgrades with HTTP 503
}

// fakeConn is one accepted connection, as the test sees it.
type fakeConn struct {
	t     *testing.T
	no    int
	ws    *websocket.Conn
	auth  string
	in    chan clientFrame
	done  chan struct{} // closed when the client's side is gone
	code  atomic.Int32  // close code the client sent, if any
	wmu   sync.Mutex
	close sync.Once
}

// clientFrame is a frame the client sent: raw, decoded by the gateway's own
// decoder (so the client's frames are checked against it), and its keys.
type clientFrame struct {
	raw  []byte
	f    *protocol.ClientFrame
	keys map[string]json.RawMessage
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

func newFake(t *testing.T, region string) *fakeServer {
	t.Helper()
	f := &fakeServer{t: t, region: region, conns: make(chan *fakeConn, 16)}
	f.srv = httptest.NewServer(http.HandlerFunc(f.handle))
	t.Cleanup(func() {
		for {
			select {
			case fc := <-f.conns:
				fc.hangUp()
			default:
				f.srv.Close()
				return
			}
		}
	})
	return f
}

func (f *fakeServer) URL() string { return "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/ws" }

func (f *fakeServer) handle(w http.ResponseWriter, r *http.Request) {
	if f.reject.Load() > 0 {
		f.reject.Add(-1)
		http.Error(w, "not now", http.StatusServiceUnavailable)
		return
	}
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	n := int(f.n.Add(1))
	fc := &fakeConn{t: f.t, no: n, ws: ws, auth: r.Header.Get("Authorization"),
		in: make(chan clientFrame, 1024), done: make(chan struct{})}
	fc.send(protocol.Welcome{Type: protocol.TypeWelcome, Session: fmt.Sprintf("s%d", n),
		Region: f.region, Node: fmt.Sprintf("gw-%d", n), Version: 1})
	go fc.readLoop()
	f.conns <- fc
}

// accept returns the next connection the client made.
func (f *fakeServer) accept(t *testing.T) *fakeConn {
	t.Helper()
	select {
	case fc := <-f.conns:
		t.Cleanup(fc.hangUp)
		return fc
	case <-time.After(bound):
		t.Fatalf("no connection within %v", bound)
		return nil
	}
}

func (fc *fakeConn) readLoop() {
	defer close(fc.done)
	defer fc.ws.Close()
	for {
		_, b, err := fc.ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				fc.code.Store(int32(ce.Code))
			}
			return
		}
		cf := clientFrame{raw: b}
		_ = json.Unmarshal(b, &cf.keys)
		f, err := protocol.DecodeClientFrame(b)
		if err != nil {
			fc.t.Errorf("conn %d: client sent a frame the gateway refuses: %s: %v", fc.no, b, err)
			continue
		}
		cf.f = f
		fc.in <- cf
	}
}

// expect returns the next frame of type typ, skipping pings unless typ is
// ping; any other frame fails the test.
func (fc *fakeConn) expect(t *testing.T, typ string) clientFrame {
	t.Helper()
	deadline := time.After(bound)
	for {
		select {
		case cf := <-fc.in:
			if cf.f.Type == protocol.TypePing && typ != protocol.TypePing {
				continue
			}
			if cf.f.Type != typ {
				t.Fatalf("conn %d: want a %s frame, got %s", fc.no, typ, cf.raw)
			}
			return cf
		case <-deadline:
			t.Fatalf("conn %d: no %s frame within %v", fc.no, typ, bound)
			return clientFrame{}
		}
	}
}

func (fc *fakeConn) send(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	fc.sendRaw(b)
}

func (fc *fakeConn) sendRaw(b []byte) {
	fc.wmu.Lock()
	defer fc.wmu.Unlock()
	_ = fc.ws.SetWriteDeadline(time.Now().Add(bound))
	_ = fc.ws.WriteMessage(websocket.TextMessage, b)
}

// closeWith sends a close frame with code and waits (bounded) for the
// client to go, as a gateway does.
func (fc *fakeConn) closeWith(code int, text string) {
	fc.wmu.Lock()
	_ = fc.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(bound))
	fc.wmu.Unlock()
	select {
	case <-fc.done:
	case <-time.After(bound):
	}
	fc.hangUp()
}

// drop cuts the TCP connection without a close frame (a crash, a partition
// with reset).
func (fc *fakeConn) drop() { fc.hangUp() }

func (fc *fakeConn) hangUp() {
	fc.close.Do(func() { _ = fc.ws.NetConn().Close() })
	<-fc.done
}

// frames the fake sends.

func subscribedFrame(room string, recovered bool, missed int, reason string, pos protocol.Positions, ep protocol.Epochs) protocol.Subscribed {
	return protocol.Subscribed{Type: protocol.TypeSubscribed, Room: room, Recovered: recovered, Missed: missed,
		Reason: reason, Position: pos, Epochs: ep}
}

func messageFrame(room, origin, epoch string, oseq uint64) protocol.Message {
	return protocol.Message{Type: protocol.TypeMessage, Room: room, ID: fmt.Sprintf("%s-%s-%d", origin, epoch, oseq),
		Origin: origin, Oseq: oseq, Epoch: epoch, Sender: "alice", TS: "2026-01-02T03:04:05.000006Z",
		Data: json.RawMessage(`{"n":1}`)}
}

func ackFrame(id, event string, oseq uint64) protocol.Ack {
	return protocol.Ack{Type: protocol.TypeAck, ID: id, Event: event, Oseq: oseq}
}

// recorder keeps what the callbacks saw.
type recorder struct {
	mu     sync.Mutex
	msgs   []Message
	subs   []SubscribedEvent
	states []StateEvent
	frames []RawFrame
}

func (r *recorder) messages() []Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Message(nil), r.msgs...)
}

func (r *recorder) subscribed() []SubscribedEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]SubscribedEvent(nil), r.subs...)
}

func (r *recorder) stateEvents() []StateEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]StateEvent(nil), r.states...)
}

func (r *recorder) rawFrames() []RawFrame {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]RawFrame(nil), r.frames...)
}

// testOptions are quick to reconnect and record everything in rec.
func testOptions(rec *recorder, endpoints ...string) Options {
	return Options{
		Endpoints:    endpoints,
		Token:        func(context.Context) (string, error) { return "tok", nil },
		MinBackoff:   time.Millisecond,
		MaxBackoff:   20 * time.Millisecond,
		Rand:         rand.New(rand.NewPCG(1, 2)),
		DialTimeout:  2 * time.Second,
		WriteTimeout: 2 * time.Second,
		OnFrame: func(f RawFrame) {
			rec.mu.Lock()
			rec.frames = append(rec.frames, f)
			rec.mu.Unlock()
		},
		OnMessage: func(m Message) {
			rec.mu.Lock()
			rec.msgs = append(rec.msgs, m)
			rec.mu.Unlock()
		},
		OnSubscribed: func(e SubscribedEvent) {
			rec.mu.Lock()
			rec.subs = append(rec.subs, e)
			rec.mu.Unlock()
		},
		OnState: func(e StateEvent) {
			rec.mu.Lock()
			rec.states = append(rec.states, e)
			rec.mu.Unlock()
		},
	}
}

// dial connects a client to f with testOptions changed by mod, and returns
// it with the server side of its first connection.
func dial(t *testing.T, f *fakeServer, mod func(*Options)) (*Client, *fakeConn, *recorder) {
	t.Helper()
	rec := &recorder{}
	o := testOptions(rec, f.URL())
	if mod != nil {
		mod(&o)
	}
	c, err := Dial(context.Background(), o)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	fc := f.accept(t)
	t.Cleanup(func() { _ = c.Close() }) // runs before fc's hang-up: a clean close
	return c, fc, rec
}

// subscribe runs Subscribe while fc answers with ans, and returns the
// subscribe frame the client sent and the result.
func subscribe(t *testing.T, c *Client, fc *fakeConn, room string, ans protocol.Subscribed) (clientFrame, SubscribeResult) {
	t.Helper()
	type result struct {
		res SubscribeResult
		err error
	}
	ch := make(chan result, 1)
	go func() {
		res, err := c.Subscribe(context.Background(), room)
		ch <- result{res, err}
	}()
	cf := fc.expect(t, protocol.TypeSubscribe)
	fc.send(ans)
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("Subscribe(%s): %v", room, r.err)
		}
		return cf, r.res
	case <-time.After(bound):
		t.Fatalf("Subscribe(%s) did not return within %v", room, bound)
		return cf, SubscribeResult{}
	}
}

// async runs fn in a goroutine; the returned func waits for its result.
func async[T any](t *testing.T, fn func() (T, error)) func() (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := fn()
		ch <- result{v, err}
	}()
	return func() (T, error) {
		t.Helper()
		select {
		case r := <-ch:
			return r.v, r.err
		case <-time.After(bound):
			t.Fatalf("call did not return within %v", bound)
			var zero T
			return zero, nil
		}
	}
}

// noLeaks checks that the goroutine count returns to base and that no
// goroutine of this package's Client remains.
func noLeaks(t *testing.T, base int) {
	t.Helper()
	var stacks string
	cond := func() bool {
		buf := make([]byte, 1<<20)
		stacks = string(buf[:runtime.Stack(buf, true)])
		return runtime.NumGoroutine() <= base && !strings.Contains(stacks, "gateway/client.(*Client).")
	}
	if !wait.Until(bound, cond) {
		t.Fatalf("goroutines did not return to %d within %v (now %d):\n%s", base, bound, runtime.NumGoroutine(), stacks)
	}
}

func lastState(rec *recorder) StateEvent {
	s := rec.stateEvents()
	if len(s) == 0 {
		return StateEvent{State: -1}
	}
	return s[len(s)-1]
}

// waitState waits until OnState has seen an event matching pred.
func waitState(t *testing.T, rec *recorder, what string, pred func(StateEvent) bool) {
	t.Helper()
	wait.For(t, bound, what, func() bool {
		for _, s := range rec.stateEvents() {
			if pred(s) {
				return true
			}
		}
		return false
	})
}
