package workload

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"github.com/geolab/geolab/gateway/auth"
	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/lab/topology"
)

// The slow probe judges G10, a client that cannot keep up is cut with 4001
// and the others are not held up, in every run. No workload client is ever
// slow, and the slow-client fault is drawn in few runs, so without it a
// gateway that never cuts anyone goes unseen. Before the timeline starts
// (no fault can touch it), the probe opens, straight to one gateway (not
// through its client link, whose proxy would buffer megabytes):
//
//   - a slow connection that subscribes to a room of its own and then
//     reads nothing, with a 4 KB socket receive buffer (SO_RCVBUF, set
//     before connecting) so that the kernel does not absorb the flood;
//   - a witness on the same gateway and room, reading everything;
//   - publishers, on another gateway of the region when it has one, that
//     flood the room with more messages than the gateway can hold for the
//     slow connection (its send queue, its write batch, both socket
//     buffers).
//
// Once every publish is acked and the witness has had them all (or has
// had nothing new for SlowStall), the slow connection reads again: a
// correct gateway has cut it and it finds the close 4001 after what was
// already on its way; a gateway that never cuts holds the witness up
// until the slow connection reads, then hands it every message.

// SlowSubject is the token subject of the slow probe's connections.
const SlowSubject = "slow-probe"

// SlowStall is how long the witness may receive nothing, every publish
// acked, before the slow connection reads again anyway: held up that long
// by one slow client, the others are being held up (G10).
const SlowStall = 1500 * time.Millisecond

// Bounds of the slow probe: the payload of each flood message, the publishes
// per publisher connection (within the gateway's default publish burst of
// 200), the most messages a flood may take, the receive buffer of the slow
// connection, and how long the flood and the final read may take.
const (
	slowPayload      = 4096
	slowPerPublisher = 150
	slowMaxFlood     = 10000
	slowRcvBuf       = 4096
	slowReadBuf      = 1024
	slowFloodBound   = 15 * time.Second
	slowReadBound    = 5 * time.Second
)

// SlowPlan is where the slow probe runs.
type SlowPlan struct {
	Region    string `json:"region"`
	Node      string `json:"node"`      // the gateway of the slow connection and the witness
	Publisher string `json:"publisher"` // the gateway the flood is published through
	Room      string `json:"room"`
}

// SlowRoom is the slow probe's room in region: region-local (no topology
// federates local:*), so that the flood stays in one region and costs no
// bridge anything, and named like no workload room.
func SlowRoom(region string) string { return "local:" + region + ":slow-probe" }

// slowRegion is the first region of topo (in file order) that keeps its
// slow probe room to itself; "" when every region federates it.
func slowRegion(topo *topology.Topology) *topology.Region {
	for i, r := range topo.Regions {
		federated := false
		for _, p := range r.Federate {
			federated = federated || auth.MatchPattern(p, SlowRoom(r.Name))
		}
		if !federated && r.Gateways > 0 {
			return &topo.Regions[i]
		}
	}
	return nil
}

// SlowProbeOn reports whether the plan of s over topo has a slow probe:
// SlowProbe when set, else whether topo has a region that keeps the probe's
// room to itself (every shipped topology does).
func (s *Spec) SlowProbeOn(topo *topology.Topology) bool {
	if slowRegion(topo) == nil {
		return false
	}
	return s.SlowProbe == nil || *s.SlowProbe
}

func planSlow(topo *topology.Topology) *SlowPlan {
	r := slowRegion(topo)
	p := &SlowPlan{Region: r.Name, Node: "gw-1", Publisher: "gw-1", Room: SlowRoom(r.Name)}
	if r.Gateways > 1 {
		p.Publisher = "gw-2"
	}
	return p
}

// GatewayLimits are the gateway settings the flood is sized by
// (docs/gateway.md): --send-queue frames and --send-buffer bytes (0: the
// kernel's autotuning).
type GatewayLimits struct {
	SendQueue  int
	SendBuffer int
}

// SlowFlood is how many messages of slowPayload bytes are certain to
// overflow what a gateway with limits can hold for a client that reads
// nothing: its send queue, a write batch in the writer's hands (64 frames),
// and the bytes both kernels may buffer (Linux doubles SO_SNDBUF and
// SO_RCVBUF; autotuning goes up to tcp_wmem's maximum), plus a tenth.
func SlowFlood(l GatewayLimits) int {
	snd := l.SendBuffer
	if snd <= 0 {
		snd = tcpWmemMax()
	}
	buffered := 2*snd + 2*slowRcvBuf + slowReadBuf
	c := l.SendQueue + 64 + (buffered+slowPayload-1)/slowPayload
	return c + max(c/10, 32)
}

// tcpWmemMax is the most a socket's send buffer grows to by autotuning
// (4 MB when it cannot be read).
func tcpWmemMax() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_wmem")
	if f := strings.Fields(string(b)); err == nil && len(f) == 3 {
		if n, err := strconv.Atoi(f[2]); err == nil && n > 0 {
			return n
		}
	}
	return 4 << 20
}

// SlowOutcome is how the slow probe ended.
type SlowOutcome string

// The slow probe's outcomes.
const (
	// SlowNotPlanned: the run has no slow probe.
	SlowNotPlanned SlowOutcome = "not_planned"
	// SlowCut: the slow connection was closed with 4001 (G10 held).
	SlowCut SlowOutcome = "cut"
	// SlowNotCut: the gateway held the witness up while the slow
	// connection read nothing (or had sent it more than it can hold),
	// then gave the slow connection every message, without 4001: a G10
	// violation.
	SlowNotCut SlowOutcome = "not_cut"
	// SlowUnjudged: the probe could not be carried out (a connection or a
	// publish failed, the flood was not acked in time), or the slow
	// connection ended another way, or got only part of the flood.
	SlowUnjudged SlowOutcome = "unjudged"
)

// SlowResult is what the slow probe saw.
type SlowResult struct {
	Plan    *SlowPlan
	Outcome SlowOutcome
	// Flood is how many messages were published; Got how many the slow
	// connection received; Witness how many the witness had when the slow
	// connection read again.
	Flood, Got, Witness int
	// Code is the close code the slow connection got (0: none).
	Code int
	// Took is how long the probe took, from its first dial to its verdict.
	Took time.Duration
	// Detail says why, in words.
	Detail string
}

// Why the slow connection read again.
const (
	resumeComplete = "complete" // every publish acked and the witness had them all
	resumeStalled  = "stalled"  // every publish acked, the witness got nothing for SlowStall
	resumeBound    = "bound"    // slowFloodBound passed, or the flood failed
)

// slowSeen is what the probe saw, for the verdict.
type slowSeen struct {
	flood      int    // messages published
	acked      bool   // every publish acked
	floodErr   string // why the flood failed ("" when it did not)
	resume     string // resumeComplete, resumeStalled, resumeBound
	witness    int    // the witness's messages when the slow connection read again
	witnessEnd int    // the witness's messages at the end
	queue      int    // the gateway's send queue
	got        int    // messages the slow connection received
	code       int    // its close code (0: none)
	ended      bool   // its connection ended
	endErr     string // how
}

// judgeSlow is the slow probe's verdict on what it saw.
func judgeSlow(s slowSeen) (SlowOutcome, string) {
	switch {
	case s.code == protocol.CloseSlowConsumer:
		return SlowCut, fmt.Sprintf("the slow connection was closed with 4001 after %d of the %d messages flooded into its room (the witness had %d when it read again)",
			s.got, s.flood, s.witness)
	case !s.acked:
		return SlowUnjudged, fmt.Sprintf("the flood of %d messages was not all acked (%s); the slow connection got %d and no 4001", s.flood, s.floodErr, s.got)
	case s.got < s.flood:
		how := "was still open"
		if s.ended {
			how = "ended without 4001 (" + s.endErr + ")"
		}
		return SlowUnjudged, fmt.Sprintf("the slow connection got %d of the %d messages and %s: read again too late, or something else ended it (%s)",
			s.got, s.flood, how, s.resume)
	case s.resume == resumeComplete:
		return SlowNotCut, fmt.Sprintf("the slow connection read nothing while the witness on its gateway received all %d messages flooded into its room, more than the gateway may hold for it (send queue %d); then it was given every one, and never closed with 4001",
			s.flood, s.queue)
	case s.resume == resumeStalled && s.witness >= s.queue && s.witnessEnd > s.witness:
		return SlowNotCut, fmt.Sprintf("the witness on the slow connection's gateway was held up: every publish acked, it got nothing for %s after %d of the %d messages, and went on only once the slow connection read again; the slow connection then got every message and never a close 4001 (send queue %d)",
			SlowStall, s.witness, s.flood, s.queue)
	default:
		return SlowUnjudged, fmt.Sprintf("the slow connection got all %d messages without 4001, but the gateway may not have held more than it may for it (it read again: %s, the witness had %d then and %d at the end, send queue %d)",
			s.flood, s.resume, s.witness, s.witnessEnd, s.queue)
	}
}

// slowDialer dials with a small socket receive buffer, set before the
// connection is made so that the window it offers is small from the start.
var slowDialer = websocket.Dialer{HandshakeTimeout: 5 * time.Second, ReadBufferSize: slowReadBuf,
	NetDialContext: (&net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, slowRcvBuf)
		})
		return errors.Join(err, serr)
	}}).DialContext}

// slowDial connects to the gateway at addr and reads its welcome; with room
// set, it subscribes (live) and reads until the answer.
func slowDial(ctx context.Context, d *websocket.Dialer, addr, tok, room string) (*websocket.Conn, error) {
	ws, _, err := d.DialContext(ctx, "ws://"+addr+"/ws", http.Header{"Authorization": {"Bearer " + tok}})
	if err != nil {
		return nil, err
	}
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	var w protocol.Welcome
	if err := ws.ReadJSON(&w); err != nil || w.Type != protocol.TypeWelcome {
		_ = ws.Close()
		return nil, fmt.Errorf("no welcome (got %+v, %v)", w, err)
	}
	if room != "" {
		if err := ws.WriteJSON(protocol.ClientFrame{Type: protocol.TypeSubscribe, Room: room}); err != nil {
			_ = ws.Close()
			return nil, err
		}
		for {
			var f struct{ Type, Room, Code, Message string }
			if err := ws.ReadJSON(&f); err != nil {
				_ = ws.Close()
				return nil, fmt.Errorf("waiting for subscribed to %s: %w", room, err)
			}
			if f.Type == protocol.TypeError {
				_ = ws.Close()
				return nil, fmt.Errorf("subscribe %s refused: %s: %s", room, f.Code, f.Message)
			}
			if f.Type == protocol.TypeSubscribed && f.Room == room {
				break
			}
		}
	}
	_ = ws.SetReadDeadline(time.Time{})
	return ws, nil
}

// witness counts the messages of the room it receives, and when the last
// one came.
type witness struct {
	mu   sync.Mutex
	n    int
	last time.Time
	done chan struct{} // closed when its connection ended
}

func (w *witness) read(ws *websocket.Conn, room string) {
	defer close(w.done)
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			return
		}
		var f struct{ Type, Room string }
		if json.Unmarshal(b, &f) == nil && f.Type == protocol.TypeMessage && f.Room == room {
			w.mu.Lock()
			w.n++
			w.last = time.Now()
			w.mu.Unlock()
		}
	}
}

func (w *witness) count() (int, time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n, w.last
}

// runSlow runs the slow probe of plan against the gateways env reaches,
// sized by limits, and judges it. It returns within about
// slowFloodBound + slowReadBound + the dials.
func runSlow(ctx context.Context, plan *SlowPlan, env Env, limits GatewayLimits) SlowResult {
	began := time.Now()
	r := SlowResult{Plan: plan, Outcome: SlowUnjudged}
	fail := func(format string, args ...any) SlowResult {
		r.Detail = fmt.Sprintf(format, args...)
		r.Took = time.Since(began)
		return r
	}
	n := SlowFlood(limits)
	if n > slowMaxFlood {
		return fail("the gateways would need %d messages to overflow (send queue %d, send buffer %d): more than the probe's %d", n, limits.SendQueue, limits.SendBuffer, slowMaxFlood)
	}
	r.Flood = n
	addr, err := env.GatewayAddr(plan.Region, plan.Node)
	if err != nil {
		return fail("%v", err)
	}
	pubAddr, err := env.GatewayAddr(plan.Region, plan.Publisher)
	if err != nil {
		return fail("%v", err)
	}
	tok, err := env.Token(SlowSubject, []string{plan.Room}, []string{plan.Room}, time.Hour)
	if err != nil {
		return fail("%v", err)
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	wws, err := slowDial(dctx, websocket.DefaultDialer, addr, tok, plan.Room)
	if err != nil {
		return fail("witness on %s/%s: %v", plan.Region, plan.Node, err)
	}
	defer wws.Close()
	w := &witness{done: make(chan struct{})}
	go w.read(wws, plan.Room)
	sws, err := slowDial(dctx, &slowDialer, addr, tok, plan.Room)
	if err != nil {
		return fail("slow connection to %s/%s: %v", plan.Region, plan.Node, err)
	}
	defer sws.Close()
	pubs := make([]*websocket.Conn, (n+slowPerPublisher-1)/slowPerPublisher)
	for i := range pubs {
		if pubs[i], err = slowDial(dctx, websocket.DefaultDialer, pubAddr, tok, ""); err != nil {
			for _, p := range pubs[:i] {
				_ = p.Close()
			}
			return fail("publisher %d on %s/%s: %v", i+1, plan.Region, plan.Publisher, err)
		}
	}
	defer func() {
		for _, p := range pubs {
			_ = p.Close()
		}
	}()

	seen := slowSeen{flood: n, queue: limits.SendQueue}
	floodDone := make(chan error, 1)
	go func() { floodDone <- flood(pubs, plan.Room, n, began.Add(slowFloodBound)) }()

	// Wait for the moment the slow connection reads again: a condition
	// polled every 20 ms, within slowFloodBound.
	var ackedAt time.Time
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for seen.resume == "" {
		select {
		case err := <-floodDone:
			if err != nil {
				seen.floodErr, seen.resume = err.Error(), resumeBound
			} else {
				seen.acked, ackedAt = true, time.Now()
			}
			floodDone = nil
		case <-tick.C:
		case <-ctx.Done():
			seen.resume = resumeBound
		}
		got, last := w.count()
		switch {
		case seen.acked && got >= n:
			seen.resume = resumeComplete
		case seen.acked && time.Since(maxTime(last, ackedAt)) >= SlowStall:
			seen.resume = resumeStalled
		case time.Since(began) > slowFloodBound:
			seen.resume = resumeBound
			if !seen.acked {
				seen.floodErr = "not acked within " + slowFloodBound.String()
			}
		}
	}
	if ctx.Err() != nil {
		return fail("interrupted: %v", ctx.Err())
	}
	seen.witness, _ = w.count()
	readSlow(sws, plan.Room, n, &seen)
	// The witness, held up, goes on once the slow connection read: wait for
	// it (at most a second) to know.
	for end := time.Now().Add(time.Second); ; {
		got, _ := w.count()
		if got >= n || got > seen.witness || time.Now().After(end) {
			break
		}
		select {
		case <-tick.C:
		case <-w.done:
		}
	}
	seen.witnessEnd, _ = w.count()
	r.Outcome, r.Detail = judgeSlow(seen)
	r.Got, r.Witness, r.Code = seen.got, seen.witness, seen.code
	r.Took = time.Since(began)
	return r
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// readSlow reads the slow connection until it ends, has every one of the n
// messages, or slowReadBound passed.
func readSlow(ws *websocket.Conn, room string, n int, seen *slowSeen) {
	_ = ws.SetReadDeadline(time.Now().Add(slowReadBound))
	for seen.got < n {
		_, b, err := ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				seen.code = ce.Code
			}
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				seen.ended = true
			}
			seen.endErr = err.Error()
			return
		}
		var f struct{ Type, Room string }
		if json.Unmarshal(b, &f) == nil && f.Type == protocol.TypeMessage && f.Room == room {
			seen.got++
		}
	}
}

// flood publishes n messages into room over pubs (slowPerPublisher each, in
// parallel) and waits for every ack, until deadline.
func flood(pubs []*websocket.Conn, room string, n int, deadline time.Time) error {
	data, _ := json.Marshal(map[string]string{"pad": strings.Repeat("s", slowPayload-10)})
	errs := make([]error, len(pubs))
	var wg sync.WaitGroup
	for i, ws := range pubs {
		from, to := i*slowPerPublisher, min((i+1)*slowPerPublisher, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = publishAll(ws, room, from, to, data, deadline)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// publishAll publishes messages from..to-1 on ws, then reads until each is
// acked.
func publishAll(ws *websocket.Conn, room string, from, to int, data json.RawMessage, deadline time.Time) error {
	_ = ws.SetWriteDeadline(deadline)
	_ = ws.SetReadDeadline(deadline)
	for i := from; i < to; i++ {
		if err := ws.WriteJSON(protocol.ClientFrame{Type: protocol.TypePublish, Room: room, ID: "sp-" + strconv.Itoa(i+1), Data: data}); err != nil {
			return fmt.Errorf("publish sp-%d: %w", i+1, err)
		}
	}
	for acked := 0; acked < to-from; {
		var f struct{ Type, ID, Code, Message string }
		if err := ws.ReadJSON(&f); err != nil {
			return fmt.Errorf("%d of %d acks: %w", acked, to-from, err)
		}
		switch f.Type {
		case protocol.TypeAck:
			acked++
		case protocol.TypeError:
			return fmt.Errorf("publish %s refused: %s: %s", f.ID, f.Code, f.Message)
		}
	}
	return nil
}
