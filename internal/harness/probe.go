package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/geolab/geolab/gateway/client"
	"github.com/geolab/geolab/lab"
)

// DialTimeout bounds a probe's first connection and its subscriptions;
// PublishTimeout bounds Publish and TimedPublish.
const (
	DialTimeout    = 30 * time.Second
	PublishTimeout = 30 * time.Second
)

// Probe is one real client (gateway/client) of a lab that records the
// events it received (without their data), per room, in order. It is closed when the
// test that dialled it ends; Close closes it sooner.
type Probe struct {
	t    TB
	name string
	c    *client.Client

	mu  sync.Mutex
	got map[string][]client.Message // room → messages, Data dropped
}

// Dial connects a probe named name (its token's subject, allowed to read
// and publish everywhere) to endpoints, in the client's order, and
// subscribes it to rooms; it fails t if either fails.
func Dial(t TB, l *lab.Lab, name string, endpoints []string, rooms ...string) *Probe {
	t.Helper()
	p := &Probe{t: t, name: name, got: map[string][]client.Message{}}
	p.dial(t, l, client.Options{Endpoints: endpoints}, rooms)
	return p
}

// dial connects p with o, to which it adds the probe's token, its record of
// messages and, unless o has one, a 500 ms bound on reconnect backoff, and subscribes it to
// rooms. The client is closed when the test ends.
func (p *Probe) dial(t TB, l *lab.Lab, o client.Options, rooms []string) {
	t.Helper()
	tok, err := l.Token(p.name, []string{"*"}, []string{"*"}, time.Hour)
	if err != nil {
		t.Fatalf("%s: token: %v", p.name, err)
	}
	o.Token = func(context.Context) (string, error) { return tok, nil }
	if o.MaxBackoff == 0 {
		o.MaxBackoff = 500 * time.Millisecond
	}
	o.OnMessage = func(m client.Message) {
		m.Data = nil // a burst of large messages stays small
		p.mu.Lock()
		p.got[m.Room] = append(p.got[m.Room], m)
		p.mu.Unlock()
	}
	ctx, cancel := context.WithTimeout(context.Background(), DialTimeout)
	defer cancel()
	p.c, err = client.Dial(context.Background(), o)
	if err != nil {
		t.Fatalf("%s: dial: %v", p.name, err)
	}
	t.Cleanup(func() { _ = p.c.Close() })
	for _, r := range rooms {
		if _, err := p.c.Subscribe(ctx, r); err != nil {
			t.Fatalf("%s: subscribe %s: %v", p.name, r, err)
		}
	}
}

// Watch is a probe that also records its connection's life (state events),
// every subscribed event and the error and bye frames it received.
type Watch struct {
	*Probe
	wmu    sync.Mutex
	states []client.StateEvent
	subs   []client.SubscribedEvent
	frames []Frame
}

// Frame is the part of a server frame a Watch records: its type, code and
// the id it refers to.
type Frame struct{ Type, Code, Ref string }

// WithEndpoints sets a client's gateway list, for DialWatch.
func WithEndpoints(eps ...string) func(*client.Options) {
	return func(o *client.Options) { o.Endpoints = eps }
}

// DialWatch connects a watch as Dial does, with set adjusting its client
// options (endpoints or a resolver, timeouts), and subscribes it to rooms.
func DialWatch(t TB, l *lab.Lab, name string, set func(*client.Options), rooms ...string) *Watch {
	t.Helper()
	w := &Watch{Probe: &Probe{t: t, name: name, got: map[string][]client.Message{}}}
	o := client.Options{
		OnState: func(e client.StateEvent) {
			w.wmu.Lock()
			w.states = append(w.states, e)
			w.wmu.Unlock()
		},
		OnSubscribed: func(e client.SubscribedEvent) {
			w.wmu.Lock()
			w.subs = append(w.subs, e)
			w.wmu.Unlock()
		},
		OnFrame: func(f client.RawFrame) {
			if f.Dir != client.In {
				return
			}
			var wf Frame
			if json.Unmarshal(f.Data, &wf) == nil && (wf.Type == "error" || wf.Type == "bye") {
				w.wmu.Lock()
				w.frames = append(w.frames, wf)
				w.wmu.Unlock()
			}
		},
	}
	set(&o)
	w.dial(t, l, o, rooms)
	return w
}

// Name is the probe's name.
func (p *Probe) Name() string { return p.name }

// Client is the probe's client, for what the probe does not wrap
// (Positions, Stats, Region, Node).
func (p *Probe) Client() *client.Client { return p.c }

// Close closes the probe's client now rather than when the test ends.
func (p *Probe) Close() error { return p.c.Close() }

// Has reports whether the probe received event id in room.
func (p *Probe) Has(room, id string) bool { return p.Count(room, id) > 0 }

// HasAll reports whether the probe received every one of ids in room.
func (p *Probe) HasAll(room string, ids []string) bool {
	for _, id := range ids {
		if !p.Has(room, id) {
			return false
		}
	}
	return true
}

// Count says how many times the probe received event id in room.
func (p *Probe) Count(room, id string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, m := range p.got[room] {
		if m.ID == id {
			n++
		}
	}
	return n
}

// IDs is the event ids of what the probe received in room, in order.
func (p *Probe) IDs(room string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	ids := make([]string, len(p.got[room]))
	for i, m := range p.got[room] {
		ids[i] = m.ID
	}
	return ids
}

// Messages is what the probe received in room, in order, each without its
// Data.
func (p *Probe) Messages(room string) []client.Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.got[room])
}

// Publish publishes to room with idempotency id id, within PublishTimeout,
// and returns the event id of the ack; it fails the probe's test otherwise.
func (p *Probe) Publish(room, id string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), PublishTimeout)
	defer cancel()
	ack, err := p.c.Publish(ctx, room, id, map[string]string{"from": p.name})
	if err != nil {
		p.t.Fatalf("%s: publish %s: %v", p.name, id, err)
	}
	return ack.Event
}

// PublishN publishes n messages to room with ids prefix-1 … prefix-n and
// returns their event ids in order.
func (p *Probe) PublishN(room, prefix string, n int) []string {
	p.t.Helper()
	var ids []string
	for i := 1; i <= n; i++ {
		ids = append(ids, p.Publish(room, fmt.Sprintf("%s-%d", prefix, i)))
	}
	return ids
}

// TimedPublish publishes data to room and returns how long the ack took.
func (p *Probe) TimedPublish(room, id string, data any) time.Duration {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), PublishTimeout)
	defer cancel()
	start := time.Now()
	if _, err := p.c.Publish(ctx, room, id, data); err != nil {
		p.t.Fatalf("%s: publish %s: %v", p.name, id, err)
	}
	return time.Since(start)
}

// AckRTT is the median publish → ack time of n publishes to room: one
// round trip through the client's link plus the gateway's work.
func (p *Probe) AckRTT(room, prefix string, n int) time.Duration {
	p.t.Helper()
	var ds []time.Duration
	for i := range n {
		ds = append(ds, p.TimedPublish(room, fmt.Sprintf("%s-%d", prefix, i), map[string]int{"i": i}))
	}
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// PubResult is the outcome of an AsyncPublish: the ack, or the error.
type PubResult struct {
	Ack client.Ack
	Err error
}

// AsyncPublish publishes to room in the background, within bound, and
// hands back the outcome when it comes (the client retries meanwhile).
func (p *Probe) AsyncPublish(room, id string, bound time.Duration) <-chan PubResult {
	ch := make(chan PubResult, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		a, err := p.c.Publish(ctx, room, id, map[string]string{"from": p.name})
		ch <- PubResult{a, err}
	}()
	return ch
}

// Await waits up to bound for an AsyncPublish's outcome and returns its
// ack; it fails t, naming what, on an error or when bound passes first.
func Await(t TB, ch <-chan PubResult, bound time.Duration, what string) client.Ack {
	t.Helper()
	select {
	case r := <-ch:
		if r.Err != nil {
			t.Fatalf("%s: %v", what, r.Err)
		}
		return r.Ack
	case <-time.After(bound):
		t.Fatalf("%s: no ack within %s", what, bound)
	}
	return client.Ack{}
}

// ExactlyOnceInOrder fails t (without stopping it) unless every one of ids
// arrived at p exactly once in room, in the order given (G2, G3).
func ExactlyOnceInOrder(t TB, p *Probe, room string, ids []string) {
	t.Helper()
	pos := map[string]int{}
	for i, id := range p.IDs(room) {
		if _, dup := pos[id]; dup {
			t.Errorf("%s: %s received twice in %s", p.name, id, room)
		}
		pos[id] = i
	}
	for i, id := range ids {
		at, ok := pos[id]
		if !ok {
			t.Errorf("%s: %s never received in %s", p.name, id, room)
			continue
		}
		if i > 0 {
			if prev, ok := pos[ids[i-1]]; ok && prev > at {
				t.Errorf("%s: %s received before %s, published after it", p.name, ids[i-1], id)
			}
		}
	}
}

// SawState reports whether the watch's connection went through a state
// event that match accepts.
func (w *Watch) SawState(match func(client.StateEvent) bool) bool {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	return slices.ContainsFunc(w.states, match)
}

// SawFrame reports whether the watch received an error or bye frame of
// type typ with code code.
func (w *Watch) SawFrame(typ, code string) bool {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	return slices.ContainsFunc(w.frames, func(f Frame) bool { return f.Type == typ && f.Code == code })
}

// Subscribed reports whether the watch received a subscribed event that
// match accepts.
func (w *Watch) Subscribed(match func(client.SubscribedEvent) bool) bool {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	return slices.ContainsFunc(w.subs, match)
}

// ConnectedTo reports whether the watch's live connection is to
// region/node (node "": any node of region).
func (w *Watch) ConnectedTo(region, node string) bool {
	return w.c.Region() == region && (node == "" || w.c.Node() == node)
}
