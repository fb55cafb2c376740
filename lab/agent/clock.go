package agent

import (
	"errors"
	"time"

	"github.com/geolab/geolab/lab/history"
)

// Sample is one round trip of a clock message, as NTP takes it: the agent
// sent at T0 and received the answer at T3 on its clock; the controller
// received it at T1 and answered at T2 on its own (Unix nanoseconds).
type Sample struct {
	T0, T1, T2, T3 int64
}

// Offset is the sample's estimate of controller clock − agent clock:
// ((T1−T0) + (T2−T3)) / 2.
func (s Sample) Offset() time.Duration {
	return time.Duration(((s.T1 - s.T0) + (s.T2 - s.T3)) / 2)
}

// RTT is the time the round trip spent on the network: (T3−T0) − (T2−T1).
func (s Sample) RTT() time.Duration { return time.Duration((s.T3 - s.T0) - (s.T2 - s.T1)) }

// Estimate is a clock offset and its bound: the true offset lies within
// Offset ± Bound.
type Estimate struct {
	Offset, Bound, RTT time.Duration
	Samples            int
}

// ErrNoSample is Best's error when no sample is usable.
var ErrNoSample = errors.New("no usable clock sample (every round trip negative or none taken)")

// Best keeps the sample with the smallest round trip, as NTP does: the
// offset is its Offset and the bound half its RTT (wherever in the round
// trip the controller read its clock, the offset is off by at most that).
// A sample with a negative round trip (a clock stepped during it) is not
// usable.
func Best(samples []Sample) (Estimate, error) {
	best, found := Sample{}, false
	for _, s := range samples {
		if s.RTT() < 0 || s.T3 < s.T0 || s.T2 < s.T1 {
			continue
		}
		if !found || s.RTT() < best.RTT() {
			best, found = s, true
		}
	}
	if !found {
		return Estimate{Samples: len(samples)}, ErrNoSample
	}
	return Estimate{Offset: best.Offset(), Bound: best.RTT() / 2, RTT: best.RTT(), Samples: len(samples)}, nil
}

// Span joins the estimates taken before and after the run: the offset at
// any moment of the run lies within one of them or between the two (the
// clocks drift steadily over minutes), so the run's estimate is the middle
// of the interval that covers both, and its bound half that interval's
// width. RTT is the smaller of the two.
func Span(before, after Estimate) Estimate {
	lo := min(before.Offset-before.Bound, after.Offset-after.Bound)
	hi := max(before.Offset+before.Bound, after.Offset+after.Bound)
	return Estimate{Offset: lo + (hi-lo)/2, Bound: (hi - lo) / 2, RTT: min(before.RTT, after.RTT),
		Samples: before.Samples + after.Samples}
}

// clockOf is e as an agent's history records it.
func clockOf(name string, clients int, e Estimate) history.AgentClock {
	return history.AgentClock{Name: name, Clients: clients, Offset: history.Duration(e.Offset),
		Bound: history.Duration(e.Bound), RTT: history.Duration(e.RTT), Samples: e.Samples}
}
