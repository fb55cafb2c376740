package workload

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/geolab/geolab/gateway/client"
	"github.com/geolab/geolab/gateway/protocol"
)

// Churn is clients acting of their own accord: leaving a room for a while,
// dropping their connection. The schedule is drawn from the plan's seed
// (Plan.Churn), on a random stream of its own, so that adding churn to a
// workload leaves its clients, rooms and publishes as they were.
type Churn struct {
	// Leaves per second over the workload: a random client unsubscribes from one of its rooms and subscribes to it again RejoinAfter later (a fresh live subscribe: what it missed while out is not owed).
	Leaves      float64       `yaml:"leaves_per_second,omitempty" json:"leaves_per_second,omitempty"`
	RejoinAfter time.Duration `yaml:"rejoin_after,omitempty" json:"rejoin_after,omitempty"` // default 1s
	// Reconnects per second: a random client drops its connection of its own accord (as a phone switching network does) and reconnects, resuming every room with since/epochs.
	Reconnects float64 `yaml:"reconnects_per_second,omitempty" json:"reconnects_per_second,omitempty"`
}

// MaxChurnRate bounds leaves_per_second and reconnects_per_second.
const MaxChurnRate = 50

// DefaultRejoinAfter is Churn.RejoinAfter when leaves are on and it is left
// out.
const DefaultRejoinAfter = time.Second

// ChurnKind is what a churn event does.
type ChurnKind string

const (
	// ChurnLeave: the client unsubscribes from Room.
	ChurnLeave ChurnKind = "leave"
	// ChurnRejoin: the client subscribes to Room again, live (no since):
	// the rejoin of the leave of the same client and room before it.
	ChurnRejoin ChurnKind = "rejoin"
	// ChurnReconnect: the client drops its connection abruptly and
	// reconnects, resuming every room with since/epochs.
	ChurnReconnect ChurnKind = "reconnect"
)

// ChurnEvent is one scheduled act of a client of its own accord.
type ChurnEvent struct {
	At     time.Duration
	Client int // index into Plan.Clients
	Kind   ChurnKind
	Room   string // leave, rejoin; "" for a reconnect
}

// validateChurn names the first churn field that is wrong; s has its
// defaults.
func (s *Spec) validateChurn() error {
	c := s.Churn
	for _, f := range []struct {
		name string
		v    float64
	}{{"leaves_per_second", c.Leaves}, {"reconnects_per_second", c.Reconnects}} {
		if !(f.v >= 0 && f.v <= MaxChurnRate) { // NaN too
			return fmt.Errorf("churn.%s: want 0..%d, got %g", f.name, MaxChurnRate, f.v)
		}
	}
	switch {
	case c.RejoinAfter < 0 || c.RejoinAfter > s.Duration:
		return fmt.Errorf("churn.rejoin_after: want 0..duration (%s), got %s", s.Duration, c.RejoinAfter)
	case c.Leaves > 0 && c.RejoinAfter >= s.Duration:
		return fmt.Errorf("churn.rejoin_after: %s leaves no time for a leave and its rejoin within duration %s: want less than duration", c.RejoinAfter, s.Duration)
	}
	return nil
}

// planChurn draws the churn schedule over clients: leaves evenly spaced at
// Leaves per second over [0, Duration − RejoinAfter), each by a random
// client from a random room it is in at that moment (a client is out of a
// room at most once at a time) with its rejoin RejoinAfter later;
// reconnects evenly spaced at Reconnects per second over [0, Duration), each
// by a random client. Sorted by offset (stable: a leave drawn before a
// reconnect at the same offset stays before it).
func planChurn(s Spec, clients []ClientPlan, seed int64) []ChurnEvent {
	c := s.Churn
	if (c.Leaves <= 0 && c.Reconnects <= 0) || len(clients) == 0 {
		return nil
	}
	rejoin := c.RejoinAfter
	if rejoin == 0 {
		rejoin = DefaultRejoinAfter
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0xc4a5e7d1b2f36a09))
	var out []ChurnEvent
	type key struct {
		client int
		room   string
	}
	outUntil := map[key]time.Duration{} // when the client's rejoin of the room is
	for at := range evenly(c.Leaves, s.Duration-rejoin) {
		// A few draws for a client with a room it is in; none: no leave.
		for range 8 {
			ci := rng.IntN(len(clients))
			var in []string
			for _, room := range clients[ci].Rooms {
				if until, isOut := outUntil[key{ci, room}]; !isOut || until < at {
					in = append(in, room)
				}
			}
			if len(in) == 0 {
				continue
			}
			room := in[rng.IntN(len(in))]
			outUntil[key{ci, room}] = at + rejoin
			out = append(out, ChurnEvent{At: at, Client: ci, Kind: ChurnLeave, Room: room},
				ChurnEvent{At: at + rejoin, Client: ci, Kind: ChurnRejoin, Room: room})
			break
		}
	}
	for at := range evenly(c.Reconnects, s.Duration) {
		out = append(out, ChurnEvent{At: at, Client: rng.IntN(len(clients)), Kind: ChurnReconnect})
	}
	slices.SortStableFunc(out, func(a, b ChurnEvent) int { return int(a.At - b.At) })
	return out
}

// evenly yields offsets rate per second apart, the first half a step in,
// below end (as the publish schedule is spaced).
func evenly(rate float64, end time.Duration) func(yield func(time.Duration) bool) {
	return func(yield func(time.Duration) bool) {
		if !(rate > 0) || math.IsInf(rate, 0) {
			return
		}
		step := time.Duration(float64(time.Second) / rate)
		for at := step / 2; at < end; at += step {
			if !yield(at) {
				return
			}
		}
	}
}

// StartChurn plays the plan's churn schedule from start, in the background,
// until its last event is done or ctx ends (at the latest Duration +
// Quiesce after start). Each client's events are played in order by a
// goroutine of its own, so that one client's acts never overlap:
//
//   - a leave waits for the client to be connected (at most until its
//     rejoin is due: else the leave and its rejoin are skipped, and noted),
//     unsubscribes, and waits until the unsubscribe frame is written, so
//     that it is on the wire and in the history before the client's next
//     act;
//   - a rejoin subscribes again live: SubscribeFrom with no since, which
//     waits for the gateway's answer;
//   - a reconnect waits for the client to be connected on a connection it
//     did not drop already (at most until its next event is due: else it is
//     skipped, and noted), then drops it (client.Reconnect).
//
// ChurnNotes lists what was skipped or failed. Quiesce waits for the
// schedule; Close stops it.
func (r *Runner) StartChurn(ctx context.Context, start time.Time) {
	if len(r.plan.Churn) == 0 {
		return
	}
	cctx, cancel := context.WithDeadline(ctx, start.Add(r.spec.Duration+r.spec.Quiesce))
	r.mu.Lock()
	r.stopChurn = cancel
	r.mu.Unlock()
	per := map[int][]ChurnEvent{}
	for _, e := range r.plan.Churn {
		if r.owned[e.Client] {
			per[e.Client] = append(per[e.Client], e)
		}
	}
	var workers sync.WaitGroup
	for i, events := range per {
		r.churning.Add(1)
		workers.Add(1)
		go func() {
			defer r.churning.Done()
			defer workers.Done()
			r.churnClient(cctx, start, i, events)
		}()
	}
	r.churning.Add(1)
	go func() {
		defer r.churning.Done()
		workers.Wait()
		cancel()
	}()
}

// churnClient plays the churn events of client i, in order.
func (r *Runner) churnClient(ctx context.Context, start time.Time, i int, events []ChurnEvent) {
	c, lv, name := r.clients[i], r.live[i], r.plan.Clients[i].Name
	var dropped int64            // the last connection this client dropped
	skipped := map[string]bool{} // rooms whose leave was skipped: so is their rejoin
	for k, e := range events {
		if d := time.Until(start.Add(e.At)); d > 0 {
			select {
			case <-time.After(d): // the schedule's clock, not a synchronisation
			case <-ctx.Done():
				return
			}
		}
		switch e.Kind {
		case ChurnReconnect:
			until := start.Add(r.spec.Duration)
			if k+1 < len(events) {
				until = start.Add(events[k+1].At)
			}
			conn := lv.await(ctx, dropped, until)
			if conn == 0 || !c.Reconnect() {
				r.noteChurn(fmt.Sprintf("%s reconnect at %s skipped: no live connection to drop", name, e.At))
				continue
			}
			dropped = conn
			r.dropped.Add(1)
		case ChurnLeave:
			until := start.Add(r.spec.Duration)
			for _, x := range events[k+1:] {
				if x.Kind == ChurnRejoin && x.Room == e.Room {
					until = start.Add(x.At)
					break
				}
			}
			conn := lv.await(ctx, dropped, until)
			if conn == 0 {
				skipped[e.Room] = true
				r.noteChurn(fmt.Sprintf("%s leave of %s at %s skipped, and its rejoin: not connected", name, e.Room, e.At))
				continue
			}
			sent := lv.unsubscribes()
			if err := c.Unsubscribe(ctx, e.Room); err != nil {
				skipped[e.Room] = true
				r.noteChurn(fmt.Sprintf("%s leave %s at %s failed, its rejoin skipped: %v", name, e.Room, e.At, err))
				continue
			}
			r.left.Add(1)
			// Unsubscribe returns once the frame is queued: wait until it
			// is written (or its connection is gone), so that no act of
			// this client overtakes it and the history shows the leave.
			if !lv.awaitUnsubscribe(ctx, sent, conn, until) {
				r.noteChurn(fmt.Sprintf("%s leave %s at %s: unsubscribe not written before its connection ended", name, e.Room, e.At))
			}
		case ChurnRejoin:
			if skipped[e.Room] {
				delete(skipped, e.Room)
				continue
			}
			if _, err := c.SubscribeFrom(ctx, e.Room, nil, nil); err != nil {
				r.noteChurn(fmt.Sprintf("%s rejoin %s: %v", name, e.Room, err))
				continue
			}
			r.rejoined.Add(1)
		}
	}
}

// live follows one client's connection through its OnState events, and
// the unsubscribe frames it wrote through OnFrame.
type live struct {
	mu      sync.Mutex
	conn    int64         // the connection up now; 0 while none
	unsubs  int64         // unsubscribe frames written
	changed chan struct{} // closed and replaced at every change
}

// unsubscribePrefix starts every unsubscribe frame the Go client writes
// (protocol.ClientFrame marshalled: type first).
var unsubscribePrefix = []byte(`{"type":"` + protocol.TypeUnsubscribe + `"`)

// frame counts f when it is an unsubscribe the client wrote; cheap, for
// it runs on every frame's path.
func (l *live) frame(f client.RawFrame) {
	if f.Dir != client.Out || !bytes.HasPrefix(f.Data, unsubscribePrefix) {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.unsubs++
	l.wake()
}

func (l *live) unsubscribes() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.unsubs
}

// wake tells the waiters that something changed; l.mu is held.
func (l *live) wake() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// awaitUnsubscribe waits until more than sent unsubscribes were written,
// or connection conn is no longer the one up, at most until deadline or
// the end of ctx; it reports whether the unsubscribe was written.
func (l *live) awaitUnsubscribe(ctx context.Context, sent, conn int64, deadline time.Time) bool {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	for {
		l.mu.Lock()
		n, up, changed := l.unsubs, l.conn, l.changed
		l.mu.Unlock()
		if n > sent {
			return true
		}
		if up != conn {
			return false
		}
		select {
		case <-changed:
		case <-t.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

func newLive() *live { return &live{changed: make(chan struct{})} }

func (l *live) set(e client.StateEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch e.State {
	case client.StateConnected:
		l.conn = e.Conn
	case client.StateDisconnected:
		if l.conn == e.Conn {
			l.conn = 0
		}
	case client.StateClosed:
		l.conn = 0
	default:
		return
	}
	l.wake()
}

// await waits until a connection numbered above after is up, at most until
// deadline or the end of ctx; it returns that connection's number, or 0.
func (l *live) await(ctx context.Context, after int64, deadline time.Time) int64 {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	for {
		l.mu.Lock()
		conn, changed := l.conn, l.changed
		l.mu.Unlock()
		if conn > after {
			return conn
		}
		select {
		case <-changed:
		case <-t.C:
			return 0
		case <-ctx.Done():
			return 0
		}
	}
}
