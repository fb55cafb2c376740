package client

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/internal/wait"
)

const testRoom = "tenant:42"

func TestWelcomeSubscribePublishAck(t *testing.T) {
	f := newFake(t, "us-east")
	c, fc, rec := dial(t, f, nil)

	if fc.auth != "Bearer tok" {
		t.Errorf("Authorization = %q, want %q", fc.auth, "Bearer tok")
	}
	if c.Session() != "s1" || c.Region() != "us-east" || c.Node() != "gw-1" || c.Endpoint() != f.URL() {
		t.Errorf("welcome: session %q region %q node %q endpoint %q", c.Session(), c.Region(), c.Node(), c.Endpoint())
	}

	cf, res := subscribe(t, c, fc, testRoom, subscribedFrame(testRoom, true, 0, "",
		protocol.Positions{"us-east": 3}, protocol.Epochs{"us-east": "e1"}))
	if _, ok := cf.keys["since"]; ok {
		t.Errorf("first subscribe carries since: %s", cf.raw)
	}
	if cf.f.Room != testRoom {
		t.Errorf("subscribe room = %q", cf.f.Room)
	}
	if !res.Recovered || res.Resumed || res.Position["us-east"] != 3 {
		t.Errorf("subscribe result = %+v", res)
	}
	pos, ep := c.Positions(testRoom)
	if !maps.Equal(pos, protocol.Positions{"us-east": 3}) || !maps.Equal(ep, protocol.Epochs{"us-east": "e1"}) {
		t.Errorf("positions after subscribe = %v %v", pos, ep)
	}

	fc.send(messageFrame(testRoom, "us-east", "e1", 4))
	wait.For(t, bound, "message delivered", func() bool { return len(rec.messages()) == 1 })
	m := rec.messages()[0]
	wantTS := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	if m.Room != testRoom || m.Origin != "us-east" || m.Oseq != 4 || m.Epoch != "e1" || m.Sender != "alice" ||
		!m.TS.Equal(wantTS) || string(m.Data) != `{"n":1}` || m.Conn != 1 || m.Gap {
		t.Errorf("message = %+v", m)
	}

	call := async(t, func() (Ack, error) {
		return c.Publish(context.Background(), testRoom, "m-1", map[string]string{"text": "hi"})
	})
	pf := fc.expect(t, protocol.TypePublish)
	if pf.f.ID != "m-1" || pf.f.Room != testRoom || string(pf.f.Data) != `{"text":"hi"}` {
		t.Errorf("publish frame = %s", pf.raw)
	}
	fc.send(protocol.Ack{Type: protocol.TypeAck, ID: "m-1", Event: "ev-1", Oseq: 5, Room: testRoom, Origin: "us-east", Epoch: "e1"})
	ack, err := call()
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if ack != (Ack{ID: "m-1", Room: testRoom, Event: "ev-1", Oseq: 5, Origin: "us-east", Epoch: "e1", Conn: 1, Attempts: 1}) {
		t.Errorf("ack = %+v", ack)
	}

	// The writer counts a frame once its write returned: the ack may come first.
	wait.For(t, bound, "2 frames out", func() bool { return c.Stats().FramesOut == 2 })
	st := c.Stats()
	if st.FramesIn != 4 || st.FramesOut != 2 || st.Messages != 1 || st.Reconnects != 0 {
		t.Errorf("stats = %+v", st)
	}
	var in, out int
	for _, fr := range rec.rawFrames() {
		if fr.Dir == In {
			in++
		} else {
			out++
		}
		if fr.Conn != 1 || fr.Time.IsZero() || len(fr.Data) == 0 {
			t.Errorf("raw frame = %+v", fr)
		}
	}
	if in != 4 || out != 2 {
		t.Errorf("OnFrame saw %d in, %d out; want 4, 2", in, out)
	}
	wait.For(t, bound, "connecting, connected", func() bool { return len(rec.stateEvents()) >= 2 })
	states := rec.stateEvents()
	if len(states) < 2 || states[0].State != StateConnecting || states[1].State != StateConnected ||
		states[1].Session != "s1" || states[1].Region != "us-east" || states[1].Node != "gw-1" {
		t.Errorf("states = %+v", states)
	}
}

func TestNonReconnectableCloseEndsClient(t *testing.T) {
	for _, code := range []int{protocol.CloseFlood, 4999, protocol.CloseNormal, protocol.CloseMessageTooBig} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			f := newFake(t, "us-east")
			c, fc, rec := dial(t, f, nil)
			call := async(t, func() (Ack, error) { return c.Publish(context.Background(), testRoom, "m-1", 1) })
			fc.expect(t, protocol.TypePublish)
			fc.closeWith(code, "go away")

			_, err := call()
			var ce *CloseError
			if !errors.As(err, &ce) || ce.Code != code || !strings.Contains(err.Error(), strconv.Itoa(code)) {
				t.Fatalf("pending Publish error = %v, want a *CloseError naming %d", err, code)
			}
			select {
			case <-c.Done():
			case <-time.After(bound):
				t.Fatal("client did not end")
			}
			if !errors.As(c.Err(), &ce) || ce.Code != code {
				t.Errorf("Err() = %v", c.Err())
			}
			wait.For(t, bound, "closed state", func() bool { return lastState(rec).State == StateClosed })
			if s := lastState(rec); s.Code != code {
				t.Errorf("closed state = %+v", s)
			}
			if _, err := c.Publish(context.Background(), testRoom, "m-2", 2); !errors.As(err, &ce) {
				t.Errorf("Publish after the end = %v", err)
			}
			if c.Stats().Reconnects != 0 || len(f.conns) != 0 {
				t.Errorf("client reconnected after close code %d", code)
			}
		})
	}
}

func TestReconnectableCloseReconnects(t *testing.T) {
	for _, code := range []int{protocol.CloseGoingAway, protocol.CloseInternalError, protocol.CloseSlowConsumer,
		protocol.CloseTokenExpired, protocol.CloseSessionTakenOver, protocol.CloseHeartbeatTimeout, 1011, 4499} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			f := newFake(t, "us-east")
			var tokens atomic.Int32
			c, fc1, rec := dial(t, f, func(o *Options) {
				o.Token = func(context.Context) (string, error) { return fmt.Sprintf("tok-%d", tokens.Add(1)), nil }
			})
			subscribe(t, c, fc1, testRoom, subscribedFrame(testRoom, true, 0, "", protocol.Positions{"us-east": 1}, nil))
			fc1.closeWith(code, "reconnect")
			fc2 := f.accept(t)
			fc2.expect(t, protocol.TypeSubscribe)
			if fc2.auth != "Bearer tok-2" {
				t.Errorf("reconnect sent %q: the token is asked for again on every attempt", fc2.auth)
			}
			wait.For(t, bound, "connected again", func() bool { return c.Session() == "s2" })
			waitState(t, rec, "disconnected with the code, will reconnect", func(s StateEvent) bool {
				return s.State == StateDisconnected && s.Code == code && s.WillReconnect
			})
			if c.Err() != nil {
				t.Errorf("client ended: %v", c.Err())
			}
		})
	}
}

// A drain says bye, then closes with 1001: the client goes elsewhere.
func TestByeThenGoingAwayReconnectsElsewhere(t *testing.T) {
	a, b := newFake(t, "us-east"), newFake(t, "us-west")
	c, fa, _ := dial(t, a, func(o *Options) { o.Endpoints = []string{a.URL(), b.URL()} })
	fa.send(protocol.Bye{Type: protocol.TypeBye, Code: "going_away", Reconnect: true})
	fa.closeWith(protocol.CloseGoingAway, "draining")
	b.accept(t)
	wait.For(t, bound, "on the other endpoint", func() bool { return c.Endpoint() == b.URL() && c.Region() == "us-west" })
}

func TestEndpointRotationOnDialFailure(t *testing.T) {
	good := newFake(t, "us-east")
	dead := newFake(t, "us-west")
	dead.reject.Store(1 << 20)
	rec := &recorder{}
	c, err := Dial(context.Background(), testOptions(rec, dead.URL(), good.URL()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	good.accept(t)
	if c.Endpoint() != good.URL() || c.Stats().DialFailures != 1 {
		t.Errorf("endpoint %s, stats %+v", c.Endpoint(), c.Stats())
	}
	waitState(t, rec, "first attempt on the dead endpoint", func(s StateEvent) bool {
		return s.State == StateConnecting && s.Endpoint == dead.URL() && s.Attempt == 0
	})
}

func TestResolverConsultedOnEachReconnect(t *testing.T) {
	a, b := newFake(t, "us-east"), newFake(t, "eu-west")
	var calls atomic.Int32
	resolve := func(context.Context) ([]string, error) {
		if calls.Add(1) == 1 {
			return []string{a.URL()}, nil
		}
		return []string{b.URL()}, nil
	}
	c, fa, _ := dial(t, a, func(o *Options) { o.Endpoints, o.Resolve = nil, resolve })
	if calls.Load() != 1 || c.Endpoint() != a.URL() {
		t.Fatalf("after Dial: %d resolves, endpoint %s", calls.Load(), c.Endpoint())
	}
	fa.drop()
	fb := b.accept(t)
	wait.For(t, bound, "moved to the resolved endpoint", func() bool { return c.Endpoint() == b.URL() })
	if calls.Load() != 2 {
		t.Errorf("%d resolves after one reconnect, want 2", calls.Load())
	}
	fb.closeWith(protocol.CloseSessionTakenOver, "another region owns the session")
	b.accept(t)
	wait.For(t, bound, "third connection", func() bool { return c.Session() == "s2" && calls.Load() == 3 })
}

func TestBackoffGrowsAndIsBounded(t *testing.T) {
	minD, maxD := 100*time.Millisecond, 5*time.Second
	want := []time.Duration{100, 200, 400, 800, 1600, 3200, 5000, 5000}
	for n, w := range want {
		if got := backoffCeiling(n, minD, maxD); got != w*time.Millisecond {
			t.Errorf("ceiling(%d) = %v, want %v", n, got, w*time.Millisecond)
		}
	}
	for _, n := range []int{62, 63, 64, 1000, 1 << 30} {
		if got := backoffCeiling(n, minD, maxD); got != maxD {
			t.Errorf("ceiling(%d) = %v, want the max %v", n, got, maxD)
		}
	}
	if got := backoffCeiling(5, time.Second, time.Second); got != time.Second {
		t.Errorf("ceiling with min = max: %v", got)
	}

	rnd := testOptions(&recorder{}).Rand
	for n := 0; n < 10; n++ {
		ceil := backoffCeiling(n, minD, maxD)
		seen := map[time.Duration]bool{}
		var sum time.Duration
		for range 1000 {
			d := backoffDraw(n, minD, maxD, rnd)
			if d < 0 || d > ceil {
				t.Fatalf("backoff(%d) = %v, outside [0, %v]", n, d, ceil)
			}
			seen[d] = true
			sum += d
		}
		if mean := sum / 1000; len(seen) < 900 || mean < ceil/3 || mean > 2*ceil/3 {
			t.Errorf("backoff(%d): %d distinct values, mean %v: not uniform in [0, %v]", n, len(seen), mean, ceil)
		}
	}
	r1, r2 := testOptions(&recorder{}).Rand, testOptions(&recorder{}).Rand
	for n := range 20 {
		if a, b := backoffDraw(n, minD, maxD, r1), backoffDraw(n, minD, maxD, r2); a != b {
			t.Fatalf("same seed, attempt %d: %v != %v", n, a, b)
		}
	}
}

func TestOptionsValidation(t *testing.T) {
	tok := func(context.Context) (string, error) { return "t", nil }
	res := func(context.Context) ([]string, error) { return nil, nil }
	ok := Options{Endpoints: []string{"ws://127.0.0.1:1/ws"}, Token: tok}
	cases := []struct {
		name string
		mod  func(*Options)
		want []string // each must appear in the error; none: valid
	}{
		{"valid", func(*Options) {}, nil},
		{"resolver instead of endpoints", func(o *Options) { o.Endpoints, o.Resolve = nil, res }, nil},
		{"no token", func(o *Options) { o.Token = nil }, []string{"Token"}},
		{"no endpoint", func(o *Options) { o.Endpoints = nil }, []string{"Endpoints", "Resolve"}},
		{"http scheme", func(o *Options) { o.Endpoints = []string{"http://h/ws"} }, []string{"Endpoints[0]", "ws or wss"}},
		{"no host", func(o *Options) { o.Endpoints = []string{"ws://h/ws", "ws:///ws"} }, []string{"Endpoints[1]", "no host"}},
		{"not a URL", func(o *Options) { o.Endpoints = []string{"ws://h:port/ws"} }, []string{"Endpoints[0]", "not a URL"}},
		{"negative backoff", func(o *Options) { o.MinBackoff = -1 }, []string{"MinBackoff is negative"}},
		{"min above max", func(o *Options) { o.MinBackoff, o.MaxBackoff = time.Second, time.Millisecond }, []string{"MinBackoff (1s) is greater than MaxBackoff (1ms)"}},
		{"negative timeouts", func(o *Options) { o.DialTimeout, o.WriteTimeout, o.PingInterval = -1, -1, -1 },
			[]string{"DialTimeout", "WriteTimeout", "PingInterval"}},
		{"negative reconnects", func(o *Options) { o.MaxReconnects = -1 }, []string{"MaxReconnects"}},
		{"several at once", func(o *Options) { o.Token, o.Endpoints = nil, nil }, []string{"Token", "Endpoints"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := ok
			tc.mod(&o)
			err := o.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error naming %v", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, does not name %q", err, w)
				}
			}
			if c, derr := Dial(context.Background(), o); derr == nil || derr.Error() != err.Error() {
				if c != nil {
					c.Close()
				}
				t.Errorf("Dial() = %v, want the validation error", derr)
			}
		})
	}
}

func TestCloseStopsGoroutines(t *testing.T) {
	f := newFake(t, "us-east")
	base := runtime.NumGoroutine()
	c, fc, rec := dial(t, f, nil)
	subscribe(t, c, fc, testRoom, subscribedFrame(testRoom, true, 0, "", nil, nil))
	call := async(t, func() (Ack, error) { return c.Publish(context.Background(), testRoom, "m-1", 1) })
	fc.expect(t, protocol.TypePublish)

	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := call(); !errors.Is(err, ErrClosed) {
		t.Errorf("pending Publish after Close = %v, want ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	select {
	case <-fc.done:
	case <-time.After(bound):
		t.Fatal("connection still open after Close")
	}
	if code := fc.code.Load(); code != protocol.CloseNormal {
		t.Errorf("gateway saw close code %d, want 1000", code)
	}
	if s := lastState(rec); s.State != StateClosed || !errors.Is(s.Err, ErrClosed) {
		t.Errorf("last state = %+v (Close returned: no callback may follow)", s)
	}
	if _, err := c.Subscribe(context.Background(), "other"); !errors.Is(err, ErrClosed) {
		t.Errorf("Subscribe after Close = %v", err)
	}
	noLeaks(t, base)
}

func TestContextEndStopsClient(t *testing.T) {
	f := newFake(t, "us-east")
	base := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	c, err := Dial(ctx, testOptions(&recorder{}, f.URL()))
	if err != nil {
		t.Fatal(err)
	}
	fc := f.accept(t)
	cancel()
	select {
	case <-c.Done():
	case <-time.After(bound):
		t.Fatal("client did not end with its context")
	}
	if err := c.Err(); !errors.Is(err, ErrClosed) || !errors.Is(err, context.Canceled) {
		t.Errorf("Err() = %v", err)
	}
	<-fc.done
	noLeaks(t, base)
}

func TestCloseWhileReconnecting(t *testing.T) {
	f := newFake(t, "us-east")
	base := runtime.NumGoroutine()
	c, fc, _ := dial(t, f, func(o *Options) { o.MinBackoff, o.MaxBackoff = 50*time.Millisecond, time.Second })
	f.reject.Store(1 << 20)
	fc.drop()
	wait.For(t, bound, "failing to reconnect", func() bool { return c.Stats().DialFailures >= 2 })
	done := async(t, func() (struct{}, error) { return struct{}{}, c.Close() })
	if _, err := done(); err != nil {
		t.Fatal(err)
	}
	noLeaks(t, base)
}

func TestDialGivesUpAfterMaxReconnects(t *testing.T) {
	f := newFake(t, "us-east")
	f.reject.Store(1 << 20)
	base := runtime.NumGoroutine()
	o := testOptions(&recorder{}, f.URL())
	o.MaxReconnects = 3
	c, err := Dial(context.Background(), o)
	var ce *CloseError
	if c != nil || !errors.As(err, &ce) || ce.Code != 0 || !strings.Contains(err.Error(), "3 connection attempts") ||
		!strings.Contains(err.Error(), "503") {
		t.Fatalf("Dial = %v, %v; want a *CloseError after 3 attempts naming the HTTP status", c, err)
	}
	noLeaks(t, base)
}

func TestDialBoundedByContext(t *testing.T) {
	f := newFake(t, "us-east")
	f.reject.Store(1 << 20)
	base := runtime.NumGoroutine()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := Dial(ctx, testOptions(&recorder{}, f.URL()))
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrClosed) {
		t.Fatalf("Dial = %v, want ErrClosed wrapping the deadline", err)
	}
	noLeaks(t, base)
}

func TestHeartbeat(t *testing.T) {
	f := newFake(t, "us-east")
	c, fc, rec := dial(t, f, func(o *Options) { o.PingInterval = 30 * time.Millisecond })
	fc.expect(t, protocol.TypePing) // idle: the client pings
	// The fake answers nothing: after 3× the interval the client gives up.
	f.accept(t)
	waitState(t, rec, "heartbeat-timeout disconnect", func(s StateEvent) bool {
		return s.State == StateDisconnected && s.Err != nil && strings.Contains(s.Err.Error(), "heartbeat timeout") && s.WillReconnect
	})
	if c.Err() != nil {
		t.Errorf("client ended: %v", c.Err())
	}
}
