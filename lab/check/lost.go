package check

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/geolab/geolab/gateway/auth"
	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/lab/history"
)

// visible: an event of room from origin reaches region x.
func (c *checker) visible(room, origin, x int32) bool {
	if origin == x {
		return true
	}
	k := [3]int32{room, origin, x}
	if v, ok := c.visCache[k]; ok {
		return v
	}
	name := c.rooms.name(room)
	match := func(region int32) bool {
		for _, p := range c.h.Meta.Federate[c.regions.name(region)] {
			if auth.MatchPattern(p, name) {
				return true
			}
		}
		return false
	}
	v := origin >= 0 && x >= 0 && match(origin) && match(x)
	c.visCache[k] = v
	return v
}

// lost checks every obligation against the room's acked events: an event
// the obligation owes (owed) and the client never received is lost unless
// an announcement excuses it (unrecoverable_announced). It returns the lost
// count per client.
func (c *checker) lost() map[int32]int {
	lostBy := map[int32]int{}
	byRoom := map[int32][]int32{}
	for i := range c.events {
		if ev := &c.events[i]; ev.acked {
			byRoom[ev.room] = append(byRoom[ev.room], int32(i))
		}
	}
	for _, evs := range byRoom {
		slices.SortStableFunc(evs, func(a, b int32) int { return cmp.Compare(c.events[a].pubT, c.events[b].pubT) })
	}
	clients := slices.Clone(c.clients)
	slices.SortFunc(clients, func(a, b *clientState) int { return strings.Compare(a.name, b.name) })
	for _, cs := range clients {
		if cs.region < 0 {
			continue
		}
		rooms := slices.Clone(cs.roomOrder)
		slices.SortFunc(rooms, func(a, b int32) int { return strings.Compare(c.rooms.name(a), c.rooms.name(b)) })
		for _, r := range rooms {
			rs := cs.rooms[r]
			for _, iv := range rs.intervals {
				for _, evi := range byRoom[r] {
					ev := &c.events[evi]
					if cs.received.has(evi) || ev.origin < 0 {
						continue
					}
					region, owed := c.owed(&iv, evi)
					if !owed {
						continue
					}
					if a := excusedBy(rs.announced, ev, c.regions.name(ev.origin), c.margin); a != nil {
						c.res.Counts.UnrecoverableAnnounced++
						if c.wantExample("unrecoverable_announced") {
							c.example("unrecoverable_announced", Example{Client: cs.name, Room: c.rooms.name(r), Event: ev.id,
								T: history.Seconds(ev.pubT), Text: c.lostText(cs, r, iv, ev, region) +
									"; but it received " + a.describe(c.rooms.name(r)) + ", which covers it: announced"})
						}
						continue
					}
					c.res.Counts.Lost++
					lostBy[cs.id]++
					if c.wantExample("lost") {
						c.example("lost", Example{Client: cs.name, Room: c.rooms.name(r), Event: ev.id,
							T: history.Seconds(ev.pubT), Text: c.lostText(cs, r, iv, ev, region) + c.announcedText(rs, r)})
					}
				}
			}
		}
	}
	return lostBy
}

// owed reports whether obligation iv owes event evi, and the region it
// was owed in. The interval's stays in regions where the event is visible
// form spans (a federated room's usually one, the whole interval; another
// region's local room, each stay in that region); the event is owed when
// some span owes it (owedIn).
func (c *checker) owed(iv *interval, evi int32) (int32, bool) {
	ev := &c.events[evi]
	segs := iv.segs
	for k := 0; k < len(segs); {
		if !c.visible(ev.room, ev.origin, segs[k].region) {
			k++
			continue
		}
		m := k + 1
		for m < len(segs) && c.visible(ev.room, ev.origin, segs[m].region) {
			m++
		}
		end := iv.to
		if m < len(segs) {
			end = segs[m].from
		}
		if region, ok := c.owedIn(segs[k:m], m == len(segs) && iv.why == endRun, end, evi); ok {
			return region, true
		}
		k = m
	}
	return -1, false
}

// owedIn reports whether a span of stays owes event evi: it came after the
// span's start (after) and, unless the span lasts to the end of the run
// (toEnd), before its end. The start is the first subscribed answer on a
// connection of the span; a span without one owes nothing (the client
// never held the room there). The region returned is the region of the
// stay that answer came in.
//
// The end (an unsubscribe, the owner's close, or a move to a region the
// event does not reach) owes the event when the client received in the
// span a message of the same origin and epoch with a higher oseq, or one
// that the reference receiver of its region and room (G1's: the one with
// the most messages there) received after the event; these use no clock.
// Otherwise only when another client of the region had received it before
// the end by more than the clocks' margin. What was still on its way when
// the client left is not owed.
func (c *checker) owedIn(span []segment, toEnd bool, end int64, evi int32) (int32, bool) {
	ev := &c.events[evi]
	spanFrom := span[0].from
	for len(span) > 0 && !span[0].answered {
		span = span[1:]
	}
	if len(span) == 0 {
		return -1, false
	}
	st := &span[0]
	o := c.regions.name(ev.origin)
	gotAbove := func(oseq uint64) bool {
		for i := range span {
			for _, g := range span[i].got {
				if g.origin == ev.origin && g.epoch == ev.epoch && g.oseq > oseq {
					return true
				}
			}
		}
		return false
	}
	if !c.after(st, gotAbove, spanFrom, ev, o) {
		return -1, false
	}
	if toEnd || ev.epoch != "" && gotAbove(ev.oseq) {
		return st.region, true
	}
	for i := len(span) - 1; i >= 0; i-- {
		if sg := &span[i]; sg.last >= 0 {
			ref := c.reference(sg.region, ev.room)
			p, ok := ref[evi]
			q, ok2 := ref[sg.last]
			if ok && ok2 && p < q {
				return st.region, true
			}
			break
		}
	}
	if c.arrivedBy(evi, span[len(span)-1].region, end-c.margin) {
		return st.region, true
	}
	return -1, false
}

// after reports whether event ev (of origin o) came after the start of a
// span whose first answer is st. Sequence positions decide wherever the
// history has them, so that an event still on its way to the region when
// the answer came is owed whatever the clocks say:
//   - st answers a live subscribe and names a position and epoch for o,
//     and ev is of that epoch: ev's oseq above the position (live delivery
//     starts right after it);
//   - st answers a resume whose since and epochs name o with ev's epoch:
//     ev's oseq above since (the client asked for everything after what it
//     had; the region replays it or announces what it cannot);
//   - else, the client received in the span a message of o in ev's epoch
//     (the room held nothing of o there, or the sequence restarted since).
//
// Time is a second witness that can only add: ev published after the
// answer (a resume: after the span began, spanFrom, when the client came
// into the span's regions or subscribed) by more than the clocks' margin
// (0 on one clock) came after it, whatever position the answer claimed, so
// that a gateway naming a position it did not have hides nothing. No clock
// error within the agents' bounds makes an event owed. gotAbove tells
// whether the client received in the span a message of ev's origin and
// epoch above an oseq.
func (c *checker) after(st *segment, gotAbove func(uint64) bool, spanFrom int64, ev *eventInfo, o string) bool {
	from := st.answerT
	if st.ask != nil {
		from = spanFrom // a resume carries the obligation on from the span's start
	}
	later := ev.pubT > from+c.margin
	if st.ask == nil {
		if ep, named := st.ep[o]; named && ep != "" && ev.epoch == ep {
			return ev.oseq > st.pos[o] || later
		}
	} else if since, named := st.ask.Since[o]; named && st.ask.Epochs[o] != "" && ev.epoch == st.ask.Epochs[o] {
		return ev.oseq > since || later
	}
	return ev.epoch != "" && gotAbove(0) || later
}

// reference returns, for the receivers of room on connections to region,
// each event's place in the reference receiver's order.
func (c *checker) reference(region, room int32) map[int32]int32 {
	k := [2]int32{region, room}
	if m, ok := c.refPos[k]; ok {
		return m
	}
	if c.refPos == nil {
		c.refPos = map[[2]int32]map[int32]int32{}
	}
	m := map[int32]int32{}
	if g := c.groups[k]; g != nil && len(g.seqs) > 0 {
		for j, ev := range c.referenceSeq(g).events {
			m[ev] = int32(j)
		}
	}
	c.refPos[k] = m
	return m
}

// excusedBy returns the first announcement that excuses ev, or nil.
func excusedBy(as []announcement, ev *eventInfo, origin string, margin int64) *announcement {
	for i := range as {
		if as[i].excuses(ev, origin, margin) {
			return &as[i]
		}
	}
	return nil
}

// announcedText says, in a lost example, which recovered:false frames the
// client did get for the room and that none covers the event.
func (c *checker) announcedText(rs *roomState, room int32) string {
	if len(rs.announced) == 0 {
		return ""
	}
	a := &rs.announced[len(rs.announced)-1]
	return fmt.Sprintf("; %d recovered:false frame(s) for it, none covering this event (the last: %s)", len(rs.announced), a.describe(c.rooms.name(room)))
}

// warranted counts a recovered:false answer to a resume that the region
// had no cause for (unwarranted_recovered_false).
func (c *checker) warranted(cs *clientState, room int32, a *announcement) {
	if a.region < 0 {
		return // no welcome: which region answered is unknown
	}
	why := a.warrant(c.regions.name(a.region), func(origin string) bool {
		return c.visible(room, c.regions.id(origin), a.region)
	})
	if why == "" {
		return
	}
	c.res.Counts.UnwarrantedRecoveredFalse++
	if c.wantExample("unwarranted_recovered_false") {
		c.example("unwarranted_recovered_false", Example{Client: cs.name, Room: c.rooms.name(room), T: history.Seconds(a.t),
			Text: fmt.Sprintf("%s resumed %s in %s with since %s and got %s: %s",
				cs.name, c.rooms.name(room), c.regions.name(a.region), positions(a.asked.Since, a.asked.Epochs), a.describe(c.rooms.name(room)), why)})
	}
}

// warrantedUnasked counts an unasked recovered:false (the frame a gateway
// sends before a message that does not follow) that had no cause:
// epoch_changed naming the epoch the client already had of that origin, or
// history_trimmed in a room whose history cannot have been trimmed yet (no
// more publishes of the room by then than the gateways' history length,
// and the run younger than their history age: the gap could have been
// filled from it).
func (c *checker) warrantedUnasked(cs *clientState, rs *roomState, room int32, a *announcement) {
	var why string
	switch a.reason {
	case protocol.ReasonEpochChanged:
		for o, ep := range a.epochs {
			for _, st := range rs.origins {
				if c.regions.name(st.origin) == o && st.epoch == ep {
					why = fmt.Sprintf("epoch_changed, but %s's epoch %s is the one the client already had", o, ep)
				}
			}
		}
	case protocol.ReasonHistoryTrimmed:
		maxLen, maxAge := c.h.Meta.HistoryMaxLen, time.Duration(c.h.Meta.HistoryMaxAge)
		if maxLen <= 0 {
			return // the history bounds are unknown: not judged
		}
		if n := c.publishesBefore(room, a.t); int64(n) <= maxLen && (maxAge <= 0 || time.Duration(a.t) < maxAge) {
			why = fmt.Sprintf("history_trimmed, but only %d publish(es) of the room had been made by then, within the history length %d (and the run was younger than the history age): the gap could have been filled from the history",
				n, maxLen)
		}
	case protocol.ReasonAheadOfHistory, protocol.ReasonGapMarked:
		return // possible unasked only after a resume; judged there
	default:
		why = fmt.Sprintf("reason %q is not one of the protocol's", a.reason)
	}
	if why == "" {
		return
	}
	c.res.Counts.UnwarrantedRecoveredFalse++
	if c.wantExample("unwarranted_recovered_false") {
		c.example("unwarranted_recovered_false", Example{Client: cs.name, Room: c.rooms.name(room), T: history.Seconds(a.t),
			Text: fmt.Sprintf("%s got %s: %s", cs.name, a.describe(c.rooms.name(room)), why)})
	}
}

// publishesBefore is how many publishes of room (client message ids, acked
// or not) clients had sent before t: an upper bound on the entries of the
// room's history stream in any region then.
func (c *checker) publishesBefore(room int32, t int64) int {
	if c.pubTimes == nil {
		c.pubTimes = map[int32][]int64{}
		for _, k := range c.pubOrder {
			p := c.pubs[k]
			r := c.rooms.id(p.room)
			c.pubTimes[r] = append(c.pubTimes[r], p.t)
		}
		for _, ts := range c.pubTimes {
			slices.Sort(ts)
		}
	}
	n, _ := slices.BinarySearch(c.pubTimes[room], t)
	return n
}

// endedDisconnected counts the clients that owed rooms at the end of the
// run and were not connected then (they gave up, or never came back).
func (c *checker) endedDisconnected(lostBy map[int32]int) {
	for _, cs := range c.clients {
		if cs.endUp || len(cs.endOwes) == 0 {
			continue
		}
		c.res.Counts.EndedDisconnected++
		if !c.wantExample("ended_disconnected") {
			continue
		}
		rooms := make([]string, len(cs.endOwes))
		for i, r := range cs.endOwes {
			rooms[i] = c.rooms.name(r)
		}
		slices.Sort(rooms)
		c.example("ended_disconnected", Example{Client: cs.name, T: history.Seconds(cs.lastDown),
			Text: fmt.Sprintf("%s ended the run disconnected (since %s: %s) while subscribed to %s; it missed %d event(s) it was owed",
				cs.name, sec(cs.lastDown), orNone(cs.lastErr), strings.Join(rooms, ", "), lostBy[cs.id])})
	}
}

func (c *checker) lostText(cs *clientState, room int32, iv interval, ev *eventInfo, at int32) string {
	rn := c.rooms.name(room)
	region := c.regions.name(at)
	var until string
	switch iv.why {
	case endRun:
		until = "stayed subscribed to the end"
		if !cs.endUp {
			until += fmt.Sprintf(" (disconnected at the end, since %s)", sec(cs.lastDown))
		}
	case endUnsub:
		until = "stayed subscribed until it unsubscribed at " + sec(iv.to)
	default:
		until = "stayed subscribed until its owner closed it at " + sec(iv.to)
	}
	var vis string
	if ev.origin == at {
		vis = fmt.Sprintf("the event was published in %s, the client's own region", region)
	} else {
		vis = fmt.Sprintf("%s is federated from %s to %s", rn, c.regions.name(ev.origin), region)
	}
	publisher := "?"
	if ev.publisher >= 0 {
		publisher = c.clients[ev.publisher].name
	}
	return fmt.Sprintf("%s subscribed to %s at %s, held it in %s when the event came there, and %s; %s; event %s (oseq %d) was published by %s at %s and acked at %s, and never reached %s",
		cs.name, rn, sec(iv.from), region, until, vis, ev.id, ev.oseq, publisher, sec(ev.pubT), sec(ev.ackT), cs.name)
}

func (c *checker) unacked() {
	for _, k := range c.pubOrder {
		p := c.pubs[k]
		if p.acked {
			continue
		}
		c.res.Counts.Unacked++
		if !c.wantExample("unacked") {
			continue
		}
		cs := c.clients[k.client]
		why := "no ack came"
		if code, ok := cs.refused[k.id]; ok {
			why = "the gateway refused it: " + code
		}
		c.example("unacked", Example{Client: cs.name, Room: p.room, T: history.Seconds(p.t),
			Text: fmt.Sprintf("%s published %s to %s at %s on connection %d and %s (not a loss: no promise was made)",
				cs.name, k.id, p.room, sec(p.t), p.conn, why)})
	}
}

func orNone(s string) string {
	if s == "" {
		return "no reason given"
	}
	return s
}
