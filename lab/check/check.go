// Package check judges a run's history (lab/history) against geolab's
// guarantees, the way Jepsen's checkers judge a history of operations: from
// what the clients saw on the wire, never from what the servers say.
//
//	topology → provider → proxies → faults → history → check → report
//
// Check walks the history once in time order (after a first pass over
// publishes and acks) and counts, per finding, with examples in words.
// docs/checker.md is the reference; in short:
//
// Publishes. A publish is a publish frame a client sent (retries reuse its
// client message id); its ack is the ack frame with that id on the same
// client. The acked event is keyed by its event id; its origin is the region
// of the connection that carried the ack (from that connection's welcome
// frame); its publish time is the first send of the client message id by
// that client. A publish never acked is counted in unacked: no promise was
// made, so it is never lost (and being delivered anyway is fine).
//
// Visibility. An event of room R from origin O is visible in region X iff
// X == O, or R matches a federated pattern of O and one of X (meta.federate,
// '*' matching any run of characters).
//
// Obligation. Client S owes room R from the time it received its first
// subscribed frame for R until it sent an unsubscribe for R, its owner
// closed it, or the run ended; disconnects do not end it. A new subscribed
// after an unsubscribe starts a new interval. An interval is cut into
// stays, one per region S was in (a welcome from another region starts the
// next); a stay holds R from the first subscribed answer on one of its
// connections.
//
// lost: an acked event E of R is owed to S when a span of S's stays in
// regions E is visible in owes it: E came after the span's first answer
// (by that answer's position for E's origin and epoch, or the since of
// the resume it answered, or the epochs S received there; time, beyond
// the agents' clock margin, can only add) and, for a span that ends
// before the run does, before its end (S received a later message of E's
// origin and epoch, or one G1's reference receiver had after E, or
// another client of the region had E before the end, beyond the margin):
// lost.go, owedIn and after. Owed and never received is lost, unless a
// recovered:false frame S
// received for R after E's publish covers E (excuse.go: by its reason, the
// origins, positions and epochs it names): then it is
// unrecoverable_announced. leaked: a message received on a connection to a
// region its room's events from its origin must not reach (G7).
// unwarranted_recovered_false: a recovered:false answer to a resume the
// region had no cause for. not_resumed: a live subscribe on a new
// connection for a room still owed. ended_disconnected: a client owing
// rooms and not connected at the end.
//
// duplicated: every message frame whose event id the client already
// received (for the same room) counts once.
//
// reordered, gaps (G2): per client and (room, origin), walking the received
// messages in order (duplicates skipped), within one epoch oseq must be the
// previous + 1: at or below the previous is reordered; above previous + 1 is
// a gap, or an announced gap when a subscribed with recovered:false for the
// room arrived between the two messages. A new epoch starts the count over
// and is an announced or a silent epoch change by the same rule. The answer
// to a subscribe without since starts the room over (no previous).
//
// region_order (G1): per (region, room), the receivers on connections to
// that region must see their common events in one order. The reference is
// the order of the receiver with the most messages there; for every other
// receiver, the count is the number of its common events that are not in
// the longest run agreeing with the reference (common events − the longest
// increasing subsequence of their reference positions): the fewest messages
// that would have to move for the orders to agree. O(n log n) overall.
//
// Latency: receive t − publish t of each first delivery of an acked event,
// intra-region (origin == the receiving connection's region), cross-region,
// and per ordered region pair. Failover (G8): per client, from a
// disconnect to the moment it is connected again with a subscribed frame for
// every room it covered at the disconnect. Replication lag comes from the
// lag records, faults from the fault records.
package check

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/geolab/geolab/gateway/client"
	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/lab/history"
)

// Options tunes Check.
type Options struct {
	// Examples is how many examples to keep per finding; 0 means 20.
	Examples int
}

// Check judges h. It never fails: what it cannot judge (a message on a
// connection with no welcome, an ack whose origin is unknown) is left out of
// the findings it would need, as docs/checker.md says.
func Check(h *history.History, opts Options) *Result {
	if opts.Examples <= 0 {
		opts.Examples = 20
	}
	c := newChecker(h, opts)
	c.publishes()
	c.walk()
	c.finish()
	return c.res
}

// names interns strings as small ints.
type names struct {
	ids  map[string]int32
	list []string
}

func (n *names) id(s string) int32 {
	if i, ok := n.ids[s]; ok {
		return i
	}
	if n.ids == nil {
		n.ids = map[string]int32{}
	}
	i := int32(len(n.list))
	n.ids[s] = i
	n.list = append(n.list, s)
	return i
}

func (n *names) name(i int32) string {
	if i < 0 {
		return "?"
	}
	return n.list[i]
}

// eventInfo is what is known of one event id.
type eventInfo struct {
	id        string
	room      int32
	origin    int32 // region of the ack's connection; else the origin of a message; -1
	oseq      uint64
	epoch     string // of its ack, else of the first message that carried it; "" when neither named it
	pubT      int64
	ackT      int64
	publisher int32 // client; -1 when not acked
	acked     bool
}

type pubKey struct {
	client int32
	id     string
}

type pub struct {
	t     int64
	room  string
	conn  int64
	acked bool
}

type interval struct {
	from, to int64
	why      uint8 // how it ended: endRun, endUnsub, endDown
	// segs: its stays in one region each, in order; a new one starts at a
	// welcome from another region than the last one's.
	segs []segment
}

// segment is a stay of one obligation in one region: from the welcome
// that brought the client there (the interval's start, for the first)
// until the welcome from another region, or the interval's end.
type segment struct {
	region int32
	from   int64 // its first welcome, or the interval's start
	// answered: a subscribed answer for the room came on a connection of
	// this stay, at answerT; pos and ep are the first one's position and
	// epochs (live delivery starts after them), and ask the resume (since,
	// epochs) it answered, nil for a live subscribe.
	answered bool
	answerT  int64
	pos      map[string]uint64
	ep       map[string]string
	ask      *resumeAsk
	// got: per (origin, epoch), the highest oseq received in it; last:
	// the last message received (a first copy), -1 when none.
	got  []gotSeq
	last int32
}

// seg is the interval's current stay.
func (iv *interval) seg() *segment { return &iv.segs[len(iv.segs)-1] }

// gotSeq is the highest oseq of one (origin, epoch) a client received in
// one stay.
type gotSeq struct {
	origin int32
	epoch  string
	oseq   uint64
}

// received notes a message received in the stay.
func (sg *segment) received(evi, origin int32, epoch string, oseq uint64) {
	sg.last = evi
	for i := range sg.got {
		if g := &sg.got[i]; g.origin == origin && g.epoch == epoch {
			g.oseq = max(g.oseq, oseq)
			return
		}
	}
	sg.got = append(sg.got, gotSeq{origin, epoch, oseq})
}

const (
	endRun = iota
	endUnsub
	endClosed
)

// originSeq is G2's position of one (room, origin) at one client.
type originSeq struct {
	origin int32
	epoch  string
	last   uint64
	lastI  int // index in h.Events of the previous message
	lastT  int64
}

type roomState struct {
	covering  bool
	intervals []interval
	subConn   int64 // connection of the last subscribed frame
	// pend: the subscribes sent and not answered yet, in order.
	pend      []pendingSub
	recFalseI int // index of the last recovered:false subscribed; -1
	// liveAt is 1 + the history index of the answer to the live subscribe
	// (no since) the room's current subscription started with, 0 when it
	// started with a resume; livePos and liveEp are that answer's position
	// and epochs: live delivery starts after them.
	liveAt  int
	livePos map[string]uint64
	liveEp  map[string]string
	// liveResumes: the resumes answered since that live subscribe (on a
	// reconnect): their since is built from what the live answer told the
	// client, so an event it had before and neither names is asked for again.
	liveResumes []*resumeAsk
	// again: the events given again live in the current subscription
	// (live_redeliveries); a further copy of one is a duplicate.
	again     map[int32]bool
	announced []announcement
	origins   []originSeq
}

type clientState struct {
	id         int32
	name, home string
	conns      map[int64]int32 // connection → region of its welcome
	conn       int64           // the last connection with a welcome
	region     int32           // region of the last welcome; -1
	up         bool
	lastDown   int64
	lastErr    string // of the last disconnected or closed state
	// endUp, endOwes: whether the client was up, and the rooms it covered,
	// at the end record (the run's end, before the lab closes its clients);
	// endSeen once they are taken.
	endUp, endSeen bool
	endOwes        []int32
	// normalClose: the last disconnected record was a normal (1000) close,
	// which the client's own Close causes just before its closed record.
	normalClose bool
	rooms       map[int32]*roomState
	roomOrder   []int32 // rooms in the order first seen
	received    bitset
	deliveries  []int32 // events in receive order (first copies), for examples
	rr          map[[2]int32]*rrSeq
	fo          failoverState
	refused     map[string]string // client msg id → error code
}

// snapEnd takes the client's state at the end of the run.
func (cs *clientState) snapEnd() {
	cs.endUp, cs.endSeen = cs.up, true
	for _, r := range cs.roomOrder {
		if cs.rooms[r].covering {
			cs.endOwes = append(cs.endOwes, r)
		}
	}
}

type checker struct {
	h     *history.History
	opts  Options
	res   *Result
	end   int64
	ended bool // the walk is past the end record

	regions, rooms names
	clients        []*clientState
	byName         map[string]*clientState
	events         []eventInfo
	eventIDs       map[string]int32
	otherRooms     map[otherRoom]int32
	pubs           map[pubKey]*pub
	pubOrder       []pubKey
	visCache       map[[3]int32]bool

	latency   map[[2]int32][]int64
	failovers []int64
	foWorst   []Example
	groups    map[[2]int32]*rrGroup
	deliv     map[int32][]int // timeline: region → deliveries per second
	// arrive holds, per event and meta region, 1 + the time the event
	// first reached a client connected to that region (0: never), at
	// arrive[event*len(meta regions)+region].
	arrive []int64
	// margin: twice the widest clock bound of the history's agents (0
	// on one clock); a time compared across clients counts only beyond it.
	margin int64
	// refPos: per (region, room) group, each event's place in the
	// reference receiver's order (built when first needed).
	refPos map[[2]int32]map[int32]int32
	// pubTimes: per room, the sorted times of its publishes (built when
	// first needed).
	pubTimes map[int32][]int64
}

func newChecker(h *history.History, opts Options) *checker {
	c := &checker{
		h: h, opts: opts,
		res: &Result{
			Run: h.Meta.Run, Seed: h.Meta.Seed, Examples: map[string][]Example{},
			Timeline: Timeline{BucketSeconds: 1},
		},
		byName:     map[string]*clientState{},
		eventIDs:   map[string]int32{},
		otherRooms: map[otherRoom]int32{},
		pubs:       map[pubKey]*pub{},
		visCache:   map[[3]int32]bool{},
		latency:    map[[2]int32][]int64{},
		groups:     map[[2]int32]*rrGroup{},
		deliv:      map[int32][]int{},
	}
	for _, a := range h.Meta.Agents {
		c.margin = max(c.margin, 2*int64(a.Bound))
	}
	for _, r := range h.Meta.Regions {
		c.regions.id(r)
	}
	for i := len(h.Events) - 1; i >= 0; i-- {
		if e := &h.Events[i]; e.Kind == history.KindEnd {
			c.end, c.res.Ended = e.T, true
			break
		}
	}
	if !c.res.Ended && len(h.Events) > 0 {
		c.end = h.Events[len(h.Events)-1].T
	}
	c.res.Duration = history.Seconds(c.end)
	return c
}

func (c *checker) client(e *history.Event) *clientState {
	if cs, ok := c.byName[e.Client]; ok {
		return cs
	}
	cs := &clientState{
		id: int32(len(c.clients)), name: e.Client, home: e.Home, region: -1,
		conns: map[int64]int32{}, rooms: map[int32]*roomState{}, rr: map[[2]int32]*rrSeq{},
	}
	c.clients = append(c.clients, cs)
	c.byName[e.Client] = cs
	return cs
}

func (cs *clientState) room(id int32) *roomState {
	rs, ok := cs.rooms[id]
	if !ok {
		rs = &roomState{recFalseI: -1}
		cs.rooms[id] = rs
		cs.roomOrder = append(cs.roomOrder, id)
	}
	return rs
}

func (cs *clientState) connRegion(conn int64) int32 {
	if r, ok := cs.conns[conn]; ok {
		return r
	}
	return -1
}

// event returns the index of the event (id, room). Event ids are globally
// unique, so one map by id serves; the same id seen in another room (which
// no correct gateway sends) is another event, found in a second map.
func (c *checker) event(id string, room int32) int32 {
	i, ok := c.eventIDs[id]
	if ok && c.events[i].room == room {
		return i
	}
	k := otherRoom{id, room}
	if ok {
		if j, found := c.otherRooms[k]; found {
			return j
		}
	}
	j := int32(len(c.events))
	c.events = append(c.events, eventInfo{id: id, room: room, origin: -1, publisher: -1})
	if ok {
		c.otherRooms[k] = j
	} else {
		c.eventIDs[id] = j
	}
	return j
}

type otherRoom struct {
	id   string
	room int32
}

// example keeps an example of finding if there is room for it.
func (c *checker) example(finding string, ex Example) {
	if len(c.res.Examples[finding]) < c.opts.Examples {
		c.res.Examples[finding] = append(c.res.Examples[finding], ex)
	}
}

func (c *checker) wantExample(finding string) bool {
	return len(c.res.Examples[finding]) < c.opts.Examples
}

// publishes is the first pass: welcome regions, publishes and their acks.
func (c *checker) publishes() {
	for i := range c.h.Events {
		e := &c.h.Events[i]
		if e.Kind != history.KindFrame {
			continue
		}
		switch {
		case e.Dir == client.In && e.Type == protocol.TypeWelcome:
			c.client(e).conns[e.Conn] = c.regions.id(e.Region)
		case e.Dir == client.Out && e.Type == protocol.TypePublish && e.ID != "":
			k := pubKey{c.client(e).id, e.ID}
			if _, ok := c.pubs[k]; !ok {
				c.pubs[k] = &pub{t: e.T, room: e.Room, conn: e.Conn}
				c.pubOrder = append(c.pubOrder, k)
			} else {
				c.res.Counts.Retried++
			}
		case e.Dir == client.In && e.Type == protocol.TypeAck && e.ID != "" && e.EventID != "":
			cs := c.client(e)
			k := pubKey{cs.id, e.ID}
			p, ok := c.pubs[k]
			if !ok { // an ack of a publish the history did not record: publish time = ack time
				p = &pub{t: e.T, room: e.Room, conn: e.Conn}
				c.pubs[k] = p
				c.pubOrder = append(c.pubOrder, k)
			}
			if p.acked {
				continue
			}
			p.acked = true
			room := p.room
			if room == "" {
				room = e.Room
			}
			ev := &c.events[c.event(e.EventID, c.rooms.id(room))]
			if ev.acked {
				continue
			}
			// The ack names the origin that assigned its oseq when it is not
			// the connection's region (a retry answered there with the event
			// its first attempt made elsewhere); before the field, it was.
			origin := cs.connRegion(e.Conn)
			if e.Origin != "" {
				origin = c.regions.id(e.Origin)
			}
			ev.acked, ev.origin, ev.oseq, ev.pubT, ev.ackT, ev.publisher = true, origin, e.Oseq, p.t, e.T, cs.id
			if e.Epoch != "" { // the ack names it (a gateway older than the field does not)
				ev.epoch = e.Epoch
			}
			c.res.Counts.Published++
		case e.Dir == client.In && e.Type == protocol.TypeError && e.Ref != "":
			cs := c.client(e)
			if cs.refused == nil {
				cs.refused = map[string]string{}
			}
			cs.refused[e.Ref] = e.Code
		}
	}
}

// walk is the second pass, in time order.
func (c *checker) walk() {
	for i := range c.h.Events {
		e := &c.h.Events[i]
		switch e.Kind {
		case history.KindEnd:
			c.ended = true
			for _, cs := range c.clients {
				if !cs.endSeen {
					cs.snapEnd()
				}
			}
		case history.KindState:
			// The lab closes its clients after the end record: the run is
			// judged as it stood at the end, and a client disconnected or
			// failing over then stays so.
			if !c.ended {
				c.state(c.client(e), e)
			}
		case history.KindFrame:
			if e.NotJSON {
				continue
			}
			cs := c.client(e)
			if e.Dir == client.Out {
				switch e.Type {
				case protocol.TypeSubscribe:
					if e.Room != "" {
						c.subscribe(cs, c.rooms.id(e.Room), e)
					}
				case protocol.TypeUnsubscribe:
					if e.Room != "" {
						c.unsubscribe(cs, c.rooms.id(e.Room), e.T)
					}
				}
				continue
			}
			switch e.Type {
			case protocol.TypeWelcome:
				cs.conn, cs.region, cs.up = e.Conn, c.regions.id(e.Region), true
				for _, r := range cs.roomOrder {
					if rs := cs.rooms[r]; rs.covering && rs.lastSeg().region != cs.region {
						iv := &rs.intervals[len(rs.intervals)-1]
						iv.segs = append(iv.segs, segment{region: cs.region, from: e.T, last: -1})
					}
				}
				c.failoverDone(cs, e.T)
			case protocol.TypeSubscribed:
				if e.Room != "" {
					c.subscribed(cs, e, i)
				}
			case protocol.TypeMessage:
				if e.ID != "" && e.Room != "" {
					c.message(cs, e, i)
				}
			}
		}
	}
}

func (c *checker) state(cs *clientState, e *history.Event) {
	switch e.State.State {
	case history.StateConnected:
		cs.up = true
	case history.StateDisconnected:
		c.res.Counts.Disconnects++
		cs.up, cs.lastDown, cs.lastErr = false, e.T, e.State.Err
		cs.normalClose = strings.Contains(e.State.Err, "close 1000")
		fo := &cs.fo
		if !fo.active {
			*fo = failoverState{active: true, start: e.T, startC: e.Conn}
		}
		fo.lostConn = e.Conn
		fo.pending = map[int32]bool{}
		for _, r := range cs.roomOrder {
			if cs.rooms[r].covering {
				fo.pending[r] = true
			}
		}
		fo.rooms = len(fo.pending)
	case history.StateClosed:
		if cs.up {
			cs.lastDown = e.T
		}
		cs.up = false
		if e.State.Err != "" {
			cs.lastErr = e.State.Err
		}
		// A client its owner closed ended on purpose: not a failover, and
		// its obligations end there as if it unsubscribed every room. One
		// that gave up or was told not to reconnect stays unfinished and
		// owes to the end.
		if err := e.State.Err; err == "" || strings.HasPrefix(err, client.ErrClosed.Error()) {
			cs.fo.active = false
			for _, r := range cs.roomOrder {
				c.endInterval(cs.rooms[r], e.T, endClosed)
			}
			// The disconnect its own Close caused (a normal 1000 close just
			// before) is the end of the run, not a disconnection.
			if cs.normalClose {
				c.res.Counts.Disconnects--
				cs.normalClose = false
			}
		}
	}
}

// pendingSub is a subscribe awaiting its answer: on conn, a resume (ask)
// or a live one (ask nil). overtaken: the client unsubscribed after
// sending it; the gateway answers it, then leaves the room.
type pendingSub struct {
	conn      int64
	ask       *resumeAsk
	overtaken bool
}

func (c *checker) subscribed(cs *clientState, e *history.Event, i int) {
	room := c.rooms.id(e.Room)
	rs := cs.room(room)
	// A gateway answers the subscribes of one connection in order; those
	// sent on an earlier connection are never answered.
	for len(rs.pend) > 0 && rs.pend[0].conn < e.Conn {
		rs.pend = rs.pend[1:]
	}
	unasked := len(rs.pend) == 0
	var ask *resumeAsk
	overtaken := false
	if !unasked {
		ask, overtaken = rs.pend[0].ask, rs.pend[0].overtaken
		rs.pend = rs.pend[1:]
	}
	live := !unasked && ask == nil
	// Only an answer starts an obligation: an unasked frame (a gap
	// announcement) still in flight when the client unsubscribed does not
	// subscribe it again, nor does the answer to a subscribe the client
	// took back with an unsubscribe sent before the answer came.
	if !rs.covering && !unasked && !overtaken {
		rs.covering = true
		rs.intervals = append(rs.intervals, interval{from: e.T, segs: []segment{{region: cs.connRegion(e.Conn), from: e.T, last: -1}}})
	}
	if sg := rs.lastSeg(); sg != nil && rs.covering && !unasked && !sg.answered {
		var f subscribedFields
		_ = json.Unmarshal(e.Raw, &f)
		sg.answered, sg.answerT, sg.pos, sg.ep, sg.ask = true, e.T, f.Position, f.Epochs, ask
	}
	rs.subConn = e.Conn
	if live {
		rs.origins = rs.origins[:0]
		var f subscribedFields
		_ = json.Unmarshal(e.Raw, &f)
		rs.liveAt, rs.livePos, rs.liveEp, rs.again, rs.liveResumes = i+1, f.Position, f.Epochs, nil, nil
	} else if ask != nil && rs.liveAt != 0 {
		rs.liveResumes = append(rs.liveResumes, ask)
	}
	if !e.Recovered {
		if c.res.RecoveredFalse == nil {
			c.res.RecoveredFalse = map[string]int{}
		}
		c.res.RecoveredFalse[e.Reason]++
		rs.recFalseI = i
		a := newAnnouncement(e, ask, cs.connRegion(e.Conn))
		rs.announced = append(rs.announced, a)
		if ask != nil {
			c.warranted(cs, room, &a)
		} else if unasked {
			c.warrantedUnasked(cs, rs, room, &a)
		}
	}
	if fo := &cs.fo; fo.active && e.Conn > fo.lostConn {
		delete(fo.pending, room)
		c.failoverDone(cs, e.T)
	}
}

// subscribe is a subscribe frame the client sent: a live one, or a resume
// (since). A live subscribe for a room the client still covers, sent on
// another connection than the one its last subscribed frame came on, is a
// resume owed and not asked for (not_resumed): what it missed is not given.
func (c *checker) subscribe(cs *clientState, room int32, e *history.Event) {
	rs := cs.room(room)
	if e.Since {
		rs.pend = append(rs.pend, pendingSub{conn: e.Conn, ask: readAsk(e)})
		return
	}
	rs.pend = append(rs.pend, pendingSub{conn: e.Conn})
	if rs.covering && rs.subConn != e.Conn {
		c.res.Counts.NotResumed++
		if c.wantExample("not_resumed") {
			c.example("not_resumed", Example{Client: cs.name, Room: e.Room, T: history.Seconds(e.T),
				Text: fmt.Sprintf("%s subscribed to %s at %s on connection %d without since, though it was subscribed on connection %d and never unsubscribed: "+
					"what it missed in between is not asked for", cs.name, e.Room, sec(e.T), e.Conn, rs.subConn)})
		}
	}
}

// lastSeg is the current stay of the room's last interval; nil when the
// room has none.
func (rs *roomState) lastSeg() *segment {
	if len(rs.intervals) == 0 {
		return nil
	}
	return rs.intervals[len(rs.intervals)-1].seg()
}

func (c *checker) endInterval(rs *roomState, t int64, why uint8) {
	if rs.covering {
		rs.covering = false
		rs.intervals[len(rs.intervals)-1].to = t
		rs.intervals[len(rs.intervals)-1].why = why
	}
}

func (c *checker) unsubscribe(cs *clientState, room int32, t int64) {
	rs := cs.room(room)
	c.endInterval(rs, t, endUnsub)
	for i := range rs.pend {
		rs.pend[i].overtaken = true
	}
	if cs.fo.active {
		delete(cs.fo.pending, room)
		c.failoverDone(cs, t)
	}
}

func (c *checker) message(cs *clientState, e *history.Event, i int) {
	room := c.rooms.id(e.Room)
	evi := c.event(e.ID, room)
	ev := &c.events[evi]
	origin := c.regions.id(e.Origin)
	if ev.origin < 0 && e.Origin != "" {
		ev.origin = origin
	}
	if ev.epoch == "" {
		ev.epoch = e.Epoch
	}
	// Leaks are judged between the topology's regions only (the first
	// names interned): an origin the meta does not list has no patterns.
	if recv := cs.connRegion(e.Conn); recv >= 0 && e.Origin != "" && int(origin) < len(c.h.Meta.Regions) && !c.visible(room, origin, recv) {
		c.res.Counts.Leaked++
		if c.wantExample("leaked") {
			c.example("leaked", Example{Client: cs.name, Room: e.Room, Event: e.ID, T: history.Seconds(e.T),
				Text: fmt.Sprintf("%s received event %s of %s (origin %s, oseq %d) at %s on connection %d to %s, where %s's events from %s must never go (G7)",
					cs.name, e.ID, e.Room, e.Origin, e.Oseq, sec(e.T), e.Conn, c.regions.name(recv), e.Room, e.Origin)})
		}
	}
	if cs.received.has(evi) && c.liveRedelivery(cs, cs.room(room), e, evi) {
		c.res.Counts.LiveRedeliveries++
		return
	}
	if cs.received.has(evi) {
		c.res.Counts.Duplicated++
		if c.wantExample("duplicated") {
			c.example("duplicated", Example{Client: cs.name, Room: e.Room, Event: e.ID, T: history.Seconds(e.T),
				Text: fmt.Sprintf("%s received event %s (%s, origin %s, oseq %d) again at %s on connection %d; %s",
					cs.name, e.ID, e.Room, e.Origin, e.Oseq, sec(e.T), e.Conn, c.firstCopy(cs, evi))})
		}
		return
	}
	cs.received.set(evi)
	cs.deliveries = append(cs.deliveries, int32(i))
	c.res.Counts.Delivered++
	recv := cs.connRegion(e.Conn)
	c.arrived(evi, recv, e.T)
	if rs := cs.room(room); rs.covering {
		rs.lastSeg().received(evi, origin, e.Epoch, e.Oseq)
	}
	if ev.acked {
		o := ev.origin
		if o < 0 {
			o = origin
		}
		k := [2]int32{o, recv}
		c.latency[k] = append(c.latency[k], e.T-ev.pubT)
	}
	if b := e.T / 1e9; e.T >= 0 && b < 1<<20 {
		d := c.deliv[recv]
		for int64(len(d)) <= b {
			d = append(d, 0)
		}
		d[b]++
		c.deliv[recv] = d
	}
	if recv >= 0 {
		k := [2]int32{recv, room}
		s, ok := cs.rr[k]
		if !ok {
			s = c.group(k).add(cs.id)
			cs.rr[k] = s
		}
		s.events = append(s.events, evi)
	}
	c.perOrigin(cs, cs.room(room), e, origin, i)
}

// arrived notes that event evi reached region at t (the first time is kept).
func (c *checker) arrived(evi, region int32, t int64) {
	n := int32(len(c.h.Meta.Regions))
	if region < 0 || region >= n {
		return
	}
	k := int(evi)*int(n) + int(region)
	for k >= len(c.arrive) {
		c.arrive = append(c.arrive, make([]int64, max(len(c.arrive), int(n)))...)
	}
	if c.arrive[k] == 0 || t+1 < c.arrive[k] {
		c.arrive[k] = t + 1
	}
}

// arrivedBy reports whether event evi had reached region before t: some
// client connected there received it earlier.
func (c *checker) arrivedBy(evi, region int32, t int64) bool {
	n := int32(len(c.h.Meta.Regions))
	if region < 0 || region >= n {
		return true // not judged: owe it
	}
	k := int(evi)*int(n) + int(region)
	return k < len(c.arrive) && c.arrive[k] != 0 && c.arrive[k]-1 < t
}

// firstCopy says where a client first had an event (for a duplicate's
// example).
// liveRedelivery reports whether a second copy of event evi is one the
// client asked for without knowing: its room's current subscription is a
// live one (no since), started after the first copy came, and the event
// follows that answer's position for its origin (another epoch, or an
// origin the answer does not name, follows too), and no resume since (on
// a reconnect, its since built from that answer) named it. The client told
// the region nothing of what it had; a region behind on the event's origin
// then delivers it live, as the protocol says (live_redeliveries, not G3).
func (c *checker) liveRedelivery(cs *clientState, rs *roomState, e *history.Event, evi int32) bool {
	if rs.liveAt == 0 || rs.again[evi] {
		return false
	}
	first := -1
	ev := &c.events[evi]
	for _, i := range cs.deliveries {
		if f := &c.h.Events[i]; f.ID == ev.id && f.Room == c.rooms.name(ev.room) {
			first = int(i)
			break
		}
	}
	if first < 0 || first >= rs.liveAt-1 {
		return false
	}
	covers := func(pos map[string]uint64, ep map[string]string) bool {
		q, named := pos[e.Origin]
		return named && (ep[e.Origin] == "" || e.Epoch == "" || ep[e.Origin] == e.Epoch) && e.Oseq <= q
	}
	if covers(rs.livePos, rs.liveEp) {
		return false
	}
	for _, a := range rs.liveResumes {
		if covers(a.Since, a.Epochs) {
			return false // the client said it had it: sending it again is G3's
		}
	}
	if rs.again == nil {
		rs.again = map[int32]bool{}
	}
	rs.again[evi] = true
	return true
}

func (c *checker) firstCopy(cs *clientState, evi int32) string {
	ev := &c.events[evi]
	for _, i := range cs.deliveries {
		if f := &c.h.Events[i]; f.ID == ev.id && f.Room == c.rooms.name(ev.room) {
			return fmt.Sprintf("it first had it at %s on connection %d", sec(f.T), f.Conn)
		}
	}
	return "it had it before"
}

// finish closes the coverage intervals and computes everything the walk
// collected. An obligation still open lasts to the end of the run, whether
// or not the client is connected then: disconnects do not end it.
func (c *checker) finish() {
	for _, cs := range c.clients {
		if !cs.endSeen {
			cs.snapEnd()
		}
		for _, r := range cs.roomOrder {
			if rs := cs.rooms[r]; rs.covering {
				c.endInterval(rs, max(c.end, rs.intervals[len(rs.intervals)-1].from), endRun)
			}
		}
		if cs.fo.active {
			c.res.Counts.FailoverUnfinished++
			c.unfinished(cs)
		}
	}
	lostBy := c.lost()
	c.endedDisconnected(lostBy)
	c.unacked()
	c.regionOrder()
	c.latencies()
	c.failoverStats()
	c.lagAndFaults()
	c.timeline()
}

// sec formats t (ns since the start) as seconds, e.g. "3.511s".
func sec(t int64) string { return fmt.Sprintf("%.3fs", history.Seconds(t)) }

// dur formats a duration in ns as seconds.
func dur(d int64) string { return fmt.Sprintf("%.3fs", history.Seconds(d)) }

// bitset is a set of small non-negative ints.
type bitset []uint64

func (b bitset) has(i int32) bool {
	w := int(i >> 6)
	return w < len(b) && b[w]&(1<<(uint(i)&63)) != 0
}

func (b *bitset) set(i int32) {
	w := int(i >> 6)
	for w >= len(*b) {
		*b = append(*b, 0)
	}
	(*b)[w] |= 1 << (uint(i) & 63)
}
