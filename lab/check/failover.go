package check

import (
	"fmt"
	"slices"
	"strings"

	"github.com/geolab/geolab/lab/history"
)

// failoverState is G8 at one client: a failover runs from a disconnect
// until the client is up on a later connection with a subscribed frame for
// every room it covered.
type failoverState struct {
	active   bool
	start    int64
	startC   int64 // the connection lost first
	lostConn int64 // the connection lost last
	pending  map[int32]bool
	rooms    int
}

// failoverDone ends a failover once the client is up on a new connection
// with every room resubscribed.
func (c *checker) failoverDone(cs *clientState, t int64) {
	fo := &cs.fo
	if !fo.active || !cs.up || cs.conn <= fo.lostConn || len(fo.pending) > 0 {
		return
	}
	fo.active = false
	d := t - fo.start
	c.failovers = append(c.failovers, d)
	c.res.Counts.Failovers++
	c.foWorst = append(c.foWorst, Example{
		Client: cs.name, T: history.Seconds(fo.start), Value: history.Seconds(d),
		Text: fmt.Sprintf("%s lost connection %d at %s; it was back on connection %d in %s with all %d room(s) resubscribed at %s: %s",
			cs.name, fo.startC, sec(fo.start), cs.conn, c.regions.name(cs.region), fo.rooms, sec(t), dur(d)),
	})
}

func (c *checker) unfinished(cs *clientState) {
	if !c.wantExample("failover_unfinished") {
		return
	}
	var rooms []string
	for r := range cs.fo.pending {
		rooms = append(rooms, c.rooms.name(r))
	}
	slices.Sort(rooms)
	why := "it never connected again"
	if cs.up && cs.conn > cs.fo.lostConn {
		why = fmt.Sprintf("it was connected again (connection %d) but had no subscribed frame for %s", cs.conn, strings.Join(rooms, ", "))
	}
	c.example("failover_unfinished", Example{Client: cs.name, T: history.Seconds(cs.fo.start),
		Text: fmt.Sprintf("%s lost connection %d at %s and had not failed over by the end (%s): %s",
			cs.name, cs.fo.startC, sec(cs.fo.start), sec(c.end), why)})
}
