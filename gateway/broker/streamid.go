package broker

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// StreamID is a Redis stream entry id (milliseconds and sequence). Ids of one
// stream are strictly increasing, so they order a room's events in a region.
type StreamID struct {
	Ms, Seq uint64
}

// ParseStreamID parses "<ms>-<seq>".
func ParseStreamID(s string) (StreamID, error) {
	ms, seq, ok := strings.Cut(s, "-")
	if !ok {
		return StreamID{}, fmt.Errorf("stream id %q is not <ms>-<seq>", s)
	}
	a, err1 := strconv.ParseUint(ms, 10, 64)
	b, err2 := strconv.ParseUint(seq, 10, 64)
	if err1 != nil || err2 != nil {
		return StreamID{}, fmt.Errorf("stream id %q is not <ms>-<seq>", s)
	}
	return StreamID{a, b}, nil
}

// String formats the id as Redis does.
func (id StreamID) String() string {
	return strconv.FormatUint(id.Ms, 10) + "-" + strconv.FormatUint(id.Seq, 10)
}

// Less reports whether id comes before o.
func (id StreamID) Less(o StreamID) bool {
	return id.Ms < o.Ms || (id.Ms == o.Ms && id.Seq < o.Seq)
}

// IsZero reports whether id is 0-0 (before every entry).
func (id StreamID) IsZero() bool { return id.Ms == 0 && id.Seq == 0 }

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
