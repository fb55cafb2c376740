package check

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/lab/history"
)

// resumeAsk is what a client asked for in a subscribe with since: its
// positions and the epochs it saw, per origin region.
type resumeAsk struct {
	Since  map[string]uint64 `json:"since"`
	Epochs map[string]string `json:"epochs"`
}

// announcement is one subscribed frame with recovered:false that a client
// received for a room: the gateway telling it that it will not be given
// some events. Which events it excuses depends on its reason, its
// positions and epochs, and whether it answered a resume (asked) or came
// unasked before a message that does not follow (docs/checker.md).
type announcement struct {
	t        int64
	reason   string
	asked    *resumeAsk // the resume it answered; nil: unasked (or the answer to a live subscribe)
	position map[string]uint64
	epochs   map[string]string
	region   int32 // of the connection that carried it
}

// subscribedFields are the fields of a subscribed frame the history does
// not decode.
type subscribedFields struct {
	Position map[string]uint64 `json:"position"`
	Epochs   map[string]string `json:"epochs"`
}

// newAnnouncement reads a recovered:false subscribed frame. Fields of the
// wrong JSON kind are left empty: the frame then excuses less, never more.
func newAnnouncement(e *history.Event, ask *resumeAsk, region int32) announcement {
	var f subscribedFields
	_ = json.Unmarshal(e.Raw, &f)
	return announcement{t: e.T, reason: e.Reason, asked: ask, position: f.Position, epochs: f.Epochs, region: region}
}

// readAsk reads the since and epochs of a subscribe frame with since.
func readAsk(e *history.Event) *resumeAsk {
	var a resumeAsk
	_ = json.Unmarshal(e.Raw, &a)
	return &a
}

// changedOrigin reports whether origin o is one whose sequence the
// announcement says restarted (epoch_changed): the one origin an unasked
// frame names, or an origin whose epoch the client sent and the region no
// longer holds.
func (a *announcement) changedOrigin(o string) bool {
	if a.asked == nil {
		_, named := a.epochs[o]
		return named
	}
	given := a.asked.Epochs[o]
	return given != "" && a.epochs[o] != given
}

// excuses reports whether a tells the client that it will not be given
// event ev (of origin o, published before a, or within the clocks' margin
// after it: no clock error within the agents' bounds keeps it from
// excusing what the region could no longer give): ev is at or below the
// position a names for its origin in a's epoch, or of another epoch of it;
// after an epoch change, any event of the changed origin's old life; for an
// answer to a resume, any event of an origin the region holds nothing of
// (a names no position for it).
func (a *announcement) excuses(ev *eventInfo, o string, margin int64) bool {
	if ev.pubT >= a.t+margin {
		return false
	}
	pos, named := a.position[o]
	epoch := a.epochs[o]
	switch {
	case a.reason == protocol.ReasonEpochChanged && a.changedOrigin(o):
		// Every event of the old life; of the new one, those the frame's
		// position covers.
		return ev.epoch == "" || ev.epoch != epoch || ev.oseq <= pos
	case !named:
		// An unasked frame is about the origin it names only; an answer
		// to a resume that names no position for o says the region holds
		// nothing of o now.
		return a.asked != nil
	case ev.epoch != "" && epoch != "" && ev.epoch != epoch:
		return true // another life of the sequence than the one that goes on
	}
	return ev.oseq <= pos
}

// warrant says why a recovered:false answer to a resume had no cause ("" when
// it had one), judged from what the client asked and the answer's own
// positions and epochs, by the rules the protocol gives each reason
// (docs/protocol.md, "recovered false reasons"). visible tells whether the
// room's events of an origin reach the answering region.
func (a *announcement) warrant(region string, visible func(origin string) bool) string {
	ask := a.asked
	origins := make([]string, 0, len(ask.Since))
	for o := range ask.Since {
		origins = append(origins, o)
	}
	slices.Sort(origins)
	switch a.reason {
	case protocol.ReasonEpochChanged:
		for _, o := range origins {
			given := ask.Epochs[o]
			if given == "" {
				continue
			}
			// The region holds another epoch of o; or an empty one, the
			// life the client had ended here (the origin lost its data);
			// or o is the region itself, which no longer holds the epoch.
			have, named := a.epochs[o]
			if have != "" && have != given || have == "" && (named || o == region && ask.Since[o] > 0) {
				return ""
			}
		}
		return "epoch_changed, but every epoch the client sent is the one the region holds"
	case protocol.ReasonAheadOfHistory:
		for _, o := range origins {
			if ask.Since[o] <= a.position[o] {
				continue // not ahead of this origin's history
			}
			_, have := a.position[o]
			if o == region || !visible(o) || ask.Epochs[o] == "" && have {
				return ""
			}
		}
		return "ahead_of_history, but the client is ahead only of origins this region can simply be behind on " +
			"(another region's, federated here, with the epoch given): it should have been recovered:true"
	case protocol.ReasonHistoryTrimmed:
		for o, pos := range a.position {
			given, asked := ask.Epochs[o], ask.Since[o]
			if _, named := ask.Since[o]; !named && pos > 0 || pos > asked || given != "" && given != a.epochs[o] {
				return "" // something to replay, which may have been too much or gone
			}
		}
		return "history_trimmed, but the client had everything the region held: nothing was to be replayed"
	case protocol.ReasonGapMarked:
		for _, o := range origins {
			if o != region && visible(o) {
				return ""
			}
		}
		return "gap_marked, but no origin the client named reaches this region through federation"
	}
	return fmt.Sprintf("reason %q is not one of the protocol's", a.reason)
}

// describe is the announcement in words, for examples.
func (a *announcement) describe(room string) string {
	how := "unasked"
	if a.asked != nil {
		how = "answering its resume"
	}
	return fmt.Sprintf("subscribed recovered:false (%s) for %s at %s, %s, position %s", orNone(a.reason), room, sec(a.t), how, positions(a.position, a.epochs))
}

func positions(pos map[string]uint64, epochs map[string]string) string {
	if len(pos) == 0 {
		return "{}"
	}
	k := make([]string, 0, len(pos))
	for o := range pos {
		k = append(k, o)
	}
	slices.Sort(k)
	var b strings.Builder
	b.WriteByte('{')
	for i, o := range k {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s: %d", o, pos[o])
		if e := epochs[o]; e != "" {
			fmt.Fprintf(&b, " (epoch %s)", e)
		}
	}
	b.WriteByte('}')
	return b.String()
}
