// Package historytest builds histories for tests: by hand, record by record,
// with Builder (to give the checker known losses, duplicates, reorders…),
// or generated at any size with Generate (a realistic run, for benchmarks
// and for checking that a clean run is judged clean). Both go through
// history.Writer and history.Read, so what tests see is what a run's file
// would give.
package historytest

import (
	"bytes"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/geolab/geolab/federation"
	"github.com/geolab/geolab/gateway/client"
	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/lab/history"
)

// Start is the run start every builder uses: times given to the builder are
// offsets from it.
var Start = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// Builder writes a history record by record. Times are offsets from the
// run's start; records may be added in any order (Read sorts them).
type Builder struct {
	buf bytes.Buffer
	w   *history.Writer
	f   []byte
}

// New starts a history with meta.
func New(meta history.Meta) *Builder {
	b := &Builder{}
	w, err := history.NewWriter(&b.buf, Start, meta)
	if err != nil {
		panic(err)
	}
	b.w = w
	return b
}

// ThreeRegions is a meta for tests: us-east, eu-west and ap-southeast,
// each federating "tenant:*".
func ThreeRegions(run string) history.Meta {
	return history.Meta{
		Run: run, Seed: 1, Topology: "three-region", Start: Start,
		Regions: []string{"us-east", "eu-west", "ap-southeast"},
		Federate: map[string][]string{
			"us-east": {"tenant:*"}, "eu-west": {"tenant:*"}, "ap-southeast": {"tenant:*"},
		},
		LagWarn: history.Duration(federation.DefaultLagWarn), LagAlert: history.Duration(federation.DefaultLagAlert),
	}
}

// Client is one lab client of a Builder. Its connection number grows by
// one at each Connect.
type Client struct {
	b          *Builder
	name, home string
	conn       int64
}

// Client adds a client named name living in home.
func (b *Builder) Client(name, home string) *Client { return &Client{b: b, name: name, home: home} }

// Conn returns the client's current connection number.
func (c *Client) Conn() int64 { return c.conn }

// Frame records a raw frame on the current connection.
func (c *Client) Frame(at time.Duration, dir client.Direction, raw []byte) {
	c.b.w.Frame(c.name, c.home, client.RawFrame{Conn: c.conn, Dir: dir, Time: Start.Add(at), Data: raw})
}

func (c *Client) frame(at time.Duration, dir client.Direction, kv ...string) {
	f := append(c.b.f[:0], '{')
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			f = append(f, ',')
		}
		f = strconv.AppendQuote(f, kv[i])
		f = append(f, ':')
		if v := kv[i+1]; len(v) > 0 && v[0] == '=' { // a raw JSON value
			f = append(f, v[1:]...)
		} else {
			f = strconv.AppendQuote(f, v)
		}
	}
	f = append(f, '}')
	c.b.f = f
	c.Frame(at, dir, f)
}

// Connect opens the client's next connection: connecting, then connected
// and a welcome frame from region's node, all at at.
func (c *Client) Connect(at time.Duration, region, node string) {
	c.conn++
	c.b.w.State(c.name, 0, history.StateConnecting, "ws://"+region+"/ws", nil, Start.Add(at))
	c.frame(at, client.In, "type", protocol.TypeWelcome, "session", "s-"+c.name, "region", region, "node", node, "version", "=1")
	c.b.w.State(c.name, c.conn, history.StateConnected, "ws://"+region+"/ws", nil, Start.Add(at))
}

// Disconnect ends the current connection.
func (c *Client) Disconnect(at time.Duration) {
	c.b.w.State(c.name, c.conn, history.StateDisconnected, "", errors.New("connection reset"), Start.Add(at))
}

// Closed ends the client (err "" for a client its owner closed).
func (c *Client) Closed(at time.Duration, err string) {
	var e error
	if err != "" {
		e = errors.New(err)
	}
	c.b.w.State(c.name, 0, history.StateClosed, "", e, Start.Add(at))
}

// Subscribe sends a live-only subscribe.
func (c *Client) Subscribe(at time.Duration, room string) {
	c.frame(at, client.Out, "type", protocol.TypeSubscribe, "room", room)
}

// Resume sends a subscribe with since (the positions are not looked at).
func (c *Client) Resume(at time.Duration, room string) {
	c.frame(at, client.Out, "type", protocol.TypeSubscribe, "room", room, "since", `={"us-east":1}`)
}

// ResumeFrom sends a subscribe with since and epochs given as JSON
// objects, e.g. `{"us-east":3}` and `{"us-east":"e1"}` (epochs "" leaves
// the field out).
func (c *Client) ResumeFrom(at time.Duration, room, since, epochs string) {
	if epochs == "" {
		c.frame(at, client.Out, "type", protocol.TypeSubscribe, "room", room, "since", "="+since)
		return
	}
	c.frame(at, client.Out, "type", protocol.TypeSubscribe, "room", room, "since", "="+since, "epochs", "="+epochs)
}

// SubscribedAt receives a subscribed frame with its position and epochs
// given as JSON objects, e.g. `{"us-east":20}` and `{"us-east":"e1"}`.
func (c *Client) SubscribedAt(at time.Duration, room string, recovered bool, reason, position, epochs string) {
	kv := []string{"type", protocol.TypeSubscribed, "room", room, "recovered", "=" + strconv.FormatBool(recovered), "missed", "=0"}
	if reason != "" {
		kv = append(kv, "reason", reason)
	}
	c.frame(at, client.In, append(kv, "position", "="+position, "epochs", "="+epochs)...)
}

// Subscribed receives a subscribed frame.
func (c *Client) Subscribed(at time.Duration, room string, recovered bool, reason string) {
	rec := "=false"
	if recovered {
		rec = "=true"
	}
	if reason != "" {
		c.frame(at, client.In, "type", protocol.TypeSubscribed, "room", room, "recovered", rec, "missed", "=0", "reason", reason)
		return
	}
	c.frame(at, client.In, "type", protocol.TypeSubscribed, "room", room, "recovered", rec, "missed", "=0")
}

// Unsubscribe sends an unsubscribe.
func (c *Client) Unsubscribe(at time.Duration, room string) {
	c.frame(at, client.Out, "type", protocol.TypeUnsubscribe, "room", room)
}

// Publish sends a publish with client message id id.
func (c *Client) Publish(at time.Duration, room, id string) {
	c.frame(at, client.Out, "type", protocol.TypePublish, "room", room, "id", id, "data", `={"n":1}`)
}

// Ack receives the ack of client message id id: event id event, oseq.
func (c *Client) Ack(at time.Duration, id, event string, oseq uint64) {
	c.frame(at, client.In, "type", protocol.TypeAck, "id", id, "event", event, "oseq", "="+strconv.FormatUint(oseq, 10))
}

// Error receives an error frame.
func (c *Client) Error(at time.Duration, ref, code string) {
	c.frame(at, client.In, "type", protocol.TypeError, "ref", ref, "code", code, "message", code)
}

// Message receives one event.
func (c *Client) Message(at time.Duration, room, event, origin string, oseq uint64, epoch string) {
	c.frame(at, client.In, "type", protocol.TypeMessage, "room", room, "id", event, "origin", origin,
		"oseq", "="+strconv.FormatUint(oseq, 10), "epoch", epoch, "sender", "u", "ts", "2026-11-23T10:00:00Z",
		"data", `={"n":1}`)
}

// Fault records a fault action.
func (b *Builder) Fault(at time.Duration, id, action, kind, target string, args map[string]string) {
	b.w.Fault(id, action, kind, target, args, Start.Add(at))
}

// Lag records a lag sample.
func (b *Builder) Lag(at time.Duration, region, from string, seconds float64, events int64, state string) {
	b.w.Lag(region, from, seconds, events, state, Start.Add(at))
}

// End records the end of the run.
func (b *Builder) End(at time.Duration) { b.w.End(Start.Add(at)) }

// Bytes returns the history file written so far.
func (b *Builder) Bytes() []byte {
	if err := b.w.Flush(); err != nil {
		panic(err)
	}
	return b.buf.Bytes()
}

// History reads back what was written; a read error fails t.
func (b *Builder) History(t testing.TB) *history.History {
	t.Helper()
	h, err := history.Read(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatalf("historytest: reading the built history: %v", err)
	}
	return h
}
