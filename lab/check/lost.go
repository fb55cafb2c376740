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
// published inside it and visible where the client was at that moment is
// owed; owed and never received is lost unless an announcement excuses it
// (unrecoverable_announced). It returns the lost count per client.
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
			evs := byRoom[r]
			k := 0
			for _, iv := range rs.intervals {
				for k < len(evs) && c.events[evs[k]].pubT <= iv.from {
					k++
				}
				for ; k < len(evs) && c.events[evs[k]].pubT < iv.to; k++ {
					ev := &c.events[evs[k]]
					if cs.received.has(evs[k]) || ev.origin < 0 {
						continue
					}
					region := cs.regionAt(ev.pubT)
					if !c.visible(r, ev.origin, region) {
						continue
					}
					// An interval the client ended (unsubscribe, owner
					// close) owes only what had reached its region before
					// the end: an event still on its way (federation lag,
					// the origin's fan-out) could not be given.
					if iv.why != endRun && !c.arrivedBy(evs[k], region, iv.to) {
						continue
					}
					if a := excusedBy(rs.announced, ev, c.regions.name(ev.origin)); a != nil {
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

// excusedBy returns the first announcement that excuses ev, or nil.
func excusedBy(as []announcement, ev *eventInfo, origin string) *announcement {
	for i := range as {
		if as[i].excuses(ev, origin) {
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
	return fmt.Sprintf("%s subscribed to %s at %s, was in %s when the event was published, and %s; %s; event %s (oseq %d) was published by %s at %s and acked at %s, and never reached %s",
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
