package check

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/geolab/geolab/gateway/auth"
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

// lost checks every coverage interval against the room's acked events.
func (c *checker) lost() {
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
					if cs.received.has(evs[k]) || ev.origin < 0 || !c.visible(r, ev.origin, cs.region) {
						continue
					}
					if rs.recFalseI >= 0 && rs.recFalseT > ev.pubT {
						c.res.Counts.UnrecoverableAnnounced++
						if c.wantExample("unrecoverable_announced") {
							c.example("unrecoverable_announced", Example{Client: cs.name, Room: c.rooms.name(r), Event: ev.id,
								T: history.Seconds(ev.pubT), Text: c.lostText(cs, r, iv, ev) + fmt.Sprintf(
									"; but it received subscribed recovered:false (%s) for %s at %s, after the publish: announced",
									orNone(rs.recReason), c.rooms.name(r), sec(rs.recFalseT))})
						}
						continue
					}
					c.res.Counts.Lost++
					if c.wantExample("lost") {
						c.example("lost", Example{Client: cs.name, Room: c.rooms.name(r), Event: ev.id,
							T: history.Seconds(ev.pubT), Text: c.lostText(cs, r, iv, ev)})
					}
				}
			}
		}
	}
}

func (c *checker) lostText(cs *clientState, room int32, iv interval, ev *eventInfo) string {
	rn := c.rooms.name(room)
	region := c.regions.name(cs.region)
	var until string
	switch iv.why {
	case endRun:
		until = "stayed subscribed to the end"
	case endUnsub:
		until = "stayed subscribed until it unsubscribed at " + sec(iv.to)
	default:
		until = "stayed subscribed until its last disconnect at " + sec(iv.to)
	}
	var vis string
	if ev.origin == cs.region {
		vis = fmt.Sprintf("the event was published in %s, the client's own region", region)
	} else {
		vis = fmt.Sprintf("%s is federated from %s to %s", rn, c.regions.name(ev.origin), region)
	}
	publisher := "?"
	if ev.publisher >= 0 {
		publisher = c.clients[ev.publisher].name
	}
	return fmt.Sprintf("%s subscribed to %s at %s in %s and %s; %s; event %s (oseq %d) was published by %s at %s and acked at %s, and never reached %s",
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
