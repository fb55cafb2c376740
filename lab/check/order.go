package check

import (
	"fmt"
	"slices"
	"strings"

	"github.com/geolab/geolab/lab/history"
)

// perOrigin is G2 at one client for one message.
func (c *checker) perOrigin(cs *clientState, rs *roomState, e *history.Event, origin int32, i int) {
	var st *originSeq
	for k := range rs.origins {
		if rs.origins[k].origin == origin {
			st = &rs.origins[k]
			break
		}
	}
	if st == nil {
		rs.origins = append(rs.origins, originSeq{origin: origin, epoch: e.Epoch, last: e.Oseq, lastI: i, lastT: e.T})
		return
	}
	announced := rs.recFalseI > st.lastI
	where := func() string {
		return fmt.Sprintf("%s received %s from %s oseq %d (epoch %s) at %s", cs.name, e.Room, e.Origin, e.Oseq, e.Epoch, sec(e.T))
	}
	switch {
	case e.Epoch != st.epoch:
		if announced {
			c.res.Counts.AnnouncedEpochChanges++
		} else {
			c.res.Counts.SilentEpochChanges++
			if c.wantExample("silent_epoch_changes") {
				c.example("silent_epoch_changes", Example{Client: cs.name, Room: e.Room, Event: e.ID, T: history.Seconds(e.T),
					Text: fmt.Sprintf("%s after oseq %d of epoch %s at %s, with no recovered:false subscribed frame for %s in between",
						where(), st.last, st.epoch, sec(st.lastT), e.Room)})
			}
		}
	case e.Oseq <= st.last:
		c.res.Counts.Reordered++
		if c.wantExample("reordered") {
			c.example("reordered", Example{Client: cs.name, Room: e.Room, Event: e.ID, T: history.Seconds(e.T),
				Text: fmt.Sprintf("%s after oseq %d at %s: per-origin order broken", where(), st.last, sec(st.lastT))})
		}
		return // the position stays where it was
	case e.Oseq == st.last+1:
	case announced:
		c.res.Counts.AnnouncedGaps++
	default:
		c.res.Counts.Gaps++
		if c.wantExample("gaps") {
			missing := fmt.Sprintf("oseq %d missing", st.last+1)
			if e.Oseq > st.last+2 {
				missing = fmt.Sprintf("oseq %d to %d missing", st.last+1, e.Oseq-1)
			}
			c.example("gaps", Example{Client: cs.name, Room: e.Room, Event: e.ID, T: history.Seconds(e.T),
				Text: fmt.Sprintf("%s right after oseq %d at %s: %s, and no recovered:false subscribed frame announced it",
					where(), st.last, sec(st.lastT), missing)})
		}
	}
	*st = originSeq{origin: origin, epoch: e.Epoch, last: e.Oseq, lastI: i, lastT: e.T}
}

// rrSeq is what one client received of one room on connections to one
// region: event indexes in receive order, first copies only.
type rrSeq struct {
	client int32
	events []int32
}

// rrGroup holds the receivers of one (region, room).
type rrGroup struct {
	region, room int32
	seqs         []*rrSeq
}

func (c *checker) group(k [2]int32) *rrGroup {
	g, ok := c.groups[k]
	if !ok {
		g = &rrGroup{region: k[0], room: k[1]}
		c.groups[k] = g
	}
	return g
}

func (g *rrGroup) add(client int32) *rrSeq {
	s := &rrSeq{client: client}
	g.seqs = append(g.seqs, s)
	return s
}

// regionOrder is G1: per (region, room), every receiver's common events
// against the reference order of the receiver with the most messages. A
// receiver's disagreements are its common events outside the longest
// increasing subsequence of their reference positions. Each event's
// reference position is kept in one array for all groups, stamped with the
// group's number, so the whole check is linear plus the LIS's log factor.
func (c *checker) regionOrder() {
	groups := make([]*rrGroup, 0, len(c.groups))
	for _, g := range c.groups {
		if len(g.seqs) > 1 {
			groups = append(groups, g)
		}
	}
	slices.SortFunc(groups, func(a, b *rrGroup) int {
		if d := strings.Compare(c.regions.name(a.region), c.regions.name(b.region)); d != 0 {
			return d
		}
		return strings.Compare(c.rooms.name(a.room), c.rooms.name(b.room))
	})
	pos := make([]int32, len(c.events))
	stamp := make([]int32, len(c.events))
	var common, tails []int32
	for gi, g := range groups {
		gen := int32(gi + 1)
		ref := c.referenceSeq(g)
		for j, ev := range ref.events {
			stamp[ev], pos[ev] = gen, int32(j)
		}
		for _, s := range g.seqs {
			if s == ref {
				continue
			}
			common = common[:0]
			for _, ev := range s.events {
				if stamp[ev] == gen {
					common = append(common, pos[ev])
				}
			}
			var lis int
			lis, tails = lisLen(common, tails)
			bad := len(common) - lis
			if bad == 0 {
				continue
			}
			c.res.Counts.RegionOrder += bad
			if c.wantExample("region_order") {
				c.orderExample(g, ref, s, common, bad)
			}
		}
	}
}

// referenceSeq is a group's reference receiver: the one with the most
// messages there (ties: the first name).
func (c *checker) referenceSeq(g *rrGroup) *rrSeq {
	ref := g.seqs[0]
	for _, s := range g.seqs[1:] {
		if len(s.events) > len(ref.events) ||
			len(s.events) == len(ref.events) && c.clients[s.client].name < c.clients[ref.client].name {
			ref = s
		}
	}
	return ref
}

// lisLen returns the length of the longest strictly increasing subsequence
// of xs (patience sorting), reusing tails as scratch.
func lisLen(xs, tails []int32) (int, []int32) {
	tails = tails[:0]
	for _, x := range xs {
		i, _ := slices.BinarySearch(tails, x)
		if i == len(tails) {
			tails = append(tails, x)
		} else {
			tails[i] = x
		}
	}
	return len(tails), tails
}

func (c *checker) orderExample(g *rrGroup, ref, s *rrSeq, common []int32, bad int) {
	m := 0 // the reference position received latest so far (the running maximum)
	for j := 1; j < len(common); j++ {
		if common[j] < common[m] {
			x, y := &c.events[ref.events[common[m]]], &c.events[ref.events[common[j]]]
			who, refName := c.clients[s.client].name, c.clients[ref.client].name
			region, room := c.regions.name(g.region), c.rooms.name(g.room)
			c.example("region_order", Example{Client: who, Room: room, Event: y.id, T: history.Seconds(y.pubT),
				Text: fmt.Sprintf("in %s, %s: %s received %s before %s, but %s (the reference: the most messages there, %d) received %s first; "+
					"%d of %s's %d messages in common with the reference are out of its order",
					region, room, who, x.id, y.id, refName, len(ref.events), y.id, bad, who, len(common))})
			return
		}
		if common[j] > common[m] {
			m = j
		}
	}
}
