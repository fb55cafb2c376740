package historytest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/geolab/geolab/gateway/client"
	"github.com/geolab/geolab/lab/history"
)

// GenStats says what a generated history holds.
type GenStats struct {
	Records     int           // lines, meta included
	Bytes       int           // size of the file
	Clients     int           // lab clients (20 per region)
	Rooms       int           // 14 federated (tenant:*), 6 region-local (local:<region>:*)
	Publishes   int           // acked publishes
	Deliveries  int           // message frames received
	Disconnects int           // clients that lost their connection and resumed
	Faults      int           // fault windows (one partition us-east<->eu-west)
	Duration    time.Duration // from the start to the end record
}

func (s GenStats) String() string {
	return fmt.Sprintf("%d records (%.0f MB): %d clients in 3 regions, %d rooms, %d publishes, %d deliveries, "+
		"%d disconnects with resume, %d partition, %.1fs",
		s.Records, float64(s.Bytes)/1e6, s.Clients, s.Rooms, s.Publishes, s.Deliveries, s.Disconnects, s.Faults,
		s.Duration.Seconds())
}

var genRegions = []string{"us-east", "eu-west", "ap-southeast"}

// genRTT holds rough round trips between the regions in ms (public
// inter-region figures are of this order: US East–EU West ~75 ms, US
// East–AP Southeast ~215 ms, EU West–AP Southeast ~160 ms).
var genRTT = [3][3]float64{{0, 75, 215}, {75, 0, 160}, {215, 160, 0}}

const (
	perRegion   = 20
	tenantRooms = 14
	rate        = 1000.0 // publishes per second
	padding     = 200    // bytes of payload padding (the fan-out yardstick sends 240 B)
)

// kinds of generated records
const (
	gConnecting = iota
	gConnected
	gDisconnected
	gWelcome
	gSubscribe
	gResume
	gSubscribed
	gPublish
	gAck
	gMessage
	gFault
	gLag
	gEnd
)

type grec struct {
	t    int64
	kind uint8
	c    int16 // client
	conn int16
	room int16
	ev   int32 // event, lag sample, fault action
}

type genEvent struct {
	room, origin, publisher int
	oseq                    uint64
	pubT                    int64
}

type window struct{ down, back, resubscribed int64 }

// Generate writes a realistic clean run of about records records: 60
// clients (20 per region) each in 4 federated rooms and 1 local room,
// 1,000 publishes/s with 200-byte payloads, deliveries at the regions'
// round-trip times, one partition us-east<->eu-west during which the two
// regions' cross traffic waits (and is caught up after the heal, in order),
// 6 clients that lose their connection and resume with recovered:true, and
// a lag sample per link per second. The checker must find nothing wrong in
// it: no loss, duplicate, reorder, gap or region-order disagreement.
func Generate(records int, seed int64) ([]byte, GenStats) {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))
	nClients := perRegion * len(genRegions)
	var rooms []string
	for i := range tenantRooms {
		rooms = append(rooms, "tenant:"+strconv.Itoa(i))
	}
	for _, r := range genRegions {
		rooms = append(rooms, "local:"+r+":0", "local:"+r+":1")
	}
	home := func(c int) int { return c / perRegion }
	names := make([]string, nClients)
	clientRooms := make([][]int, nClients)
	subs := make([][3][]int, len(rooms)) // room → region → clients
	offset := make([]int64, nClients)
	for c := range nClients {
		names[c] = fmt.Sprintf("c-%s-%02d", genRegions[home(c)], c%perRegion)
		perm := rng.Perm(tenantRooms)[:4]
		slices.Sort(perm)
		clientRooms[c] = append(perm, tenantRooms+2*home(c)+c%2)
		for _, r := range clientRooms[c] {
			subs[r][home(c)] = append(subs[r][home(c)], c)
		}
		offset[c] = int64(100+rng.IntN(800)) * int64(time.Microsecond)
	}
	visible := func(room, origin, x int) bool { return x == origin || room < tenantRooms }

	// Size the run: records per publish on average.
	var perPub float64
	for c := range nClients {
		for _, r := range clientRooms[c] {
			n := 2
			for x := range genRegions {
				if visible(r, home(c), x) {
					n += len(subs[r][x])
				}
			}
			perPub += float64(n) / float64(len(clientRooms[c])) / float64(nClients)
		}
	}
	pubs := max(1, int(float64(records)/perPub))
	dur := int64(float64(pubs)/rate*1e9) + int64(time.Second)
	sec := int64(time.Second)
	ms := int64(time.Millisecond)
	us := int64(time.Microsecond)

	var out []grec
	// Connect and subscribe.
	subscribedAt := int64(0)
	for c := range nClients {
		t := 10*ms + int64(c)*ms
		out = append(out, grec{t: t, kind: gConnecting, c: int16(c)},
			grec{t: t + ms, kind: gWelcome, c: int16(c), conn: 1},
			grec{t: t + ms, kind: gConnected, c: int16(c), conn: 1})
		for i, r := range clientRooms[c] {
			out = append(out, grec{t: t + 2*ms + int64(i)*100*us, kind: gSubscribe, c: int16(c), conn: 1, room: int16(r)},
				grec{t: t + 4*ms + int64(i)*100*us, kind: gSubscribed, c: int16(c), conn: 1, room: int16(r)})
		}
		subscribedAt = max(subscribedAt, t+5*ms)
	}
	// Disconnects: two clients per region lose their connection once.
	downs := map[int]window{}
	for r := range genRegions {
		for _, c := range []int{r*perRegion + 3, r*perRegion + 11} {
			d := dur/5 + rng.Int64N(dur*3/5)
			back := d + min(300*ms+rng.Int64N(1200*ms), dur/20)
			w := window{down: d, back: back, resubscribed: back + 3*ms}
			downs[c] = w
			out = append(out, grec{t: d, kind: gDisconnected, c: int16(c), conn: 1},
				grec{t: d + 100*ms, kind: gConnecting, c: int16(c)},
				grec{t: back, kind: gWelcome, c: int16(c), conn: 2},
				grec{t: back, kind: gConnected, c: int16(c), conn: 2})
			for i, room := range clientRooms[c] {
				out = append(out, grec{t: back + ms + int64(i)*10*us, kind: gResume, c: int16(c), conn: 2, room: int16(room)},
					grec{t: w.resubscribed + int64(i)*10*us, kind: gSubscribed, c: int16(c), conn: 2, room: int16(room)})
			}
		}
	}
	connAt := func(c int, t int64) int16 {
		if w, ok := downs[c]; ok && t >= w.down {
			return 2
		}
		return 1
	}
	upAround := func(c int, t int64) bool {
		w, ok := downs[c]
		return !ok || t+10*ms < w.down || t > w.resubscribed+ms
	}
	// The partition.
	pStart, pEnd := dur*3/10, dur*9/20
	out = append(out, grec{t: pStart, kind: gFault, ev: 0}, grec{t: pEnd, kind: gFault, ev: 1})
	partitioned := func(a, b int) bool { return a != b && a+b == 1 } // us-east(0) <-> eu-west(1)

	// Publishes and region arrivals.
	type arrival struct {
		t      int64
		ev     int32
		region int8
	}
	var (
		events   []genEvent
		arrivals []arrival
		oseq     = map[[2]int]uint64{}
		lastA    = map[[3]int]int64{}
	)
	t := 500 * ms
	for range pubs {
		t += int64(1e9/rate) + rng.Int64N(50*int64(time.Microsecond)) - 25*us
		c := rng.IntN(nClients)
		for !upAround(c, t) {
			c = rng.IntN(nClients)
		}
		room := clientRooms[c][rng.IntN(len(clientRooms[c]))]
		o := home(c)
		oseq[[2]int{room, o}]++
		e := int32(len(events))
		events = append(events, genEvent{room: room, origin: o, publisher: c, oseq: oseq[[2]int{room, o}], pubT: t})
		out = append(out, grec{t: t, kind: gPublish, c: int16(c), conn: connAt(c, t), room: int16(room), ev: e},
			grec{t: t + 1500*us + rng.Int64N(ms), kind: gAck, c: int16(c), conn: connAt(c, t), room: int16(room), ev: e})
		for x := range genRegions {
			if !visible(room, o, x) || len(subs[room][x]) == 0 {
				continue
			}
			a := t + 800*us + rng.Int64N(400*us)
			if x != o {
				a = t + int64(genRTT[o][x]/2*float64(ms)) + rng.Int64N(5*ms)
				if partitioned(o, x) && a >= pStart && a < pEnd {
					a = pEnd + 40*ms
				}
			}
			k := [3]int{room, o, x}
			if l, ok := lastA[k]; ok && a <= l {
				a = l + us
			}
			lastA[k] = a
			arrivals = append(arrivals, arrival{t: a, ev: e, region: int8(x)})
		}
	}
	slices.SortStableFunc(arrivals, func(a, b arrival) int { return cmpInt(a.t, b.t) })
	// Deliveries, in region arrival order; a client that is down gets what
	// it missed replayed after its resubscribe.
	last := make([]int64, nClients)
	deliveries := 0
	for _, a := range arrivals {
		ev := events[a.ev]
		for _, c := range subs[ev.room][a.region] {
			r := a.t + offset[c]
			if w, ok := downs[c]; ok && r >= w.down-2*ms && r <= w.resubscribed+ms {
				r = w.resubscribed + ms
			}
			r = max(r, last[c]+us)
			last[c] = r
			out = append(out, grec{t: r, kind: gMessage, c: int16(c), conn: connAt(c, r), room: int16(ev.room), ev: a.ev})
			deliveries++
		}
	}
	end := slices.Max(last) + 500*ms
	// Lag samples, one per link per second.
	for s := sec; s < end; s += sec {
		for x := range genRegions {
			for o := range genRegions {
				if x != o {
					out = append(out, grec{t: s, kind: gLag, c: int16(x), conn: int16(o)})
				}
			}
		}
	}
	out = append(out, grec{t: end, kind: gEnd})
	slices.SortStableFunc(out, func(a, b grec) int { return cmpInt(a.t, b.t) })

	// Write it.
	var buf bytes.Buffer
	buf.Grow(len(out) * 330)
	meta := ThreeRegions(fmt.Sprintf("generated-%d", seed))
	meta.Seed = seed
	w, err := history.NewWriter(&buf, Start, meta)
	if err != nil {
		panic(err)
	}
	pad := bytes.Repeat([]byte{'x'}, padding)
	var f []byte
	at := func(t int64) time.Time { return Start.Add(time.Duration(t)) }
	frame := func(g grec, dir client.Direction) {
		w.Frame(names[g.c], genRegions[home(int(g.c))], client.RawFrame{Conn: int64(g.conn), Dir: dir, Time: at(g.t), Data: f})
	}
	for _, g := range out {
		f = f[:0]
		switch g.kind {
		case gConnecting:
			w.State(names[g.c], 0, history.StateConnecting, "ws://resolver/ws", nil, at(g.t))
		case gConnected:
			w.State(names[g.c], int64(g.conn), history.StateConnected, "ws://"+genRegions[home(int(g.c))]+"/ws", nil, at(g.t))
		case gDisconnected:
			w.State(names[g.c], int64(g.conn), history.StateDisconnected, "", errConnReset, at(g.t))
		case gWelcome:
			f = fmt.Appendf(f, `{"type":"welcome","session":"s-%s","region":%q,"node":"gw-%d","version":1}`,
				names[g.c], genRegions[home(int(g.c))], g.c%2+1)
			frame(g, client.In)
		case gSubscribe:
			f = fmt.Appendf(f, `{"type":"subscribe","room":%q}`, rooms[g.room])
			frame(g, client.Out)
		case gResume:
			f = fmt.Appendf(f, `{"type":"subscribe","room":%q,"since":{"us-east":1},"epochs":{"us-east":"ep-us"}}`, rooms[g.room])
			frame(g, client.Out)
		case gSubscribed:
			f = fmt.Appendf(f, `{"type":"subscribed","room":%q,"recovered":true,"missed":0,"position":{},"epochs":{}}`, rooms[g.room])
			frame(g, client.In)
		case gPublish:
			f = fmt.Appendf(f, `{"type":"publish","room":%q,"id":"m-%d","data":{"n":%d,"pad":"%s"}}`, rooms[g.room], g.ev, g.ev, pad)
			frame(g, client.Out)
		case gAck:
			e := events[g.ev]
			f = fmt.Appendf(f, `{"type":"ack","id":"m-%d","event":"ev-%07d","oseq":%d,"room":%q,"duplicate":false}`, g.ev, g.ev, e.oseq, rooms[g.room])
			frame(g, client.In)
		case gMessage:
			e := events[g.ev]
			f = fmt.Appendf(f, `{"type":"message","room":%q,"id":"ev-%07d","origin":%q,"oseq":%d,"epoch":"ep-%s","sender":"u-%s","ts":%q,"data":{"n":%d,"pad":"%s"}}`,
				rooms[g.room], g.ev, genRegions[e.origin], e.oseq, genRegions[e.origin][:2], names[e.publisher],
				at(e.pubT).Format(time.RFC3339Nano), g.ev, pad)
			frame(g, client.In)
		case gFault:
			action := "inject"
			if g.ev == 1 {
				action = "heal"
			}
			w.Fault("f1", action, "partition", "us-east<->eu-west", map[string]string{"mode": "blackhole"}, at(g.t))
		case gLag:
			x, o := int(g.c), int(g.conn)
			s := 0.04 + float64(genRTT[o][x])/2000 + rng.Float64()*0.02
			if partitioned(o, x) && g.t > pStart && g.t < pEnd+sec {
				s = float64(g.t-pStart) / 1e9
			}
			state := history.LagOK
			switch {
			case s >= 5:
				state = history.LagAlert
			case s >= 1:
				state = history.LagWarn
			}
			w.Lag(genRegions[x], genRegions[o], s, int64(s*rate/3), state, at(g.t))
		case gEnd:
			w.End(at(g.t))
		}
	}
	if err := w.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes(), GenStats{
		Records: len(out) + 1, Bytes: buf.Len(), Clients: nClients, Rooms: len(rooms), Publishes: len(events),
		Deliveries: deliveries, Disconnects: len(downs), Faults: 1, Duration: time.Duration(end),
	}
}

var errConnReset = fmt.Errorf("read tcp: connection reset by peer")

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
