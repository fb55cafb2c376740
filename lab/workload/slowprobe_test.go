package workload

import (
	"strings"
	"testing"

	"github.com/geolab/geolab/gateway/protocol"
)

// TestSlowVerdict: how the slow probe judges what it saw, on every path:
// cut only by a 4001; not cut only when the whole flood was acked, the
// slow connection then got every message without 4001, and the gateway
// either sent the witness everything while the slow connection read
// nothing or held the witness up at a full queue until it read; anything
// else is not judged.
func TestSlowVerdict(t *testing.T) {
	held := slowSeen{flood: 1340, acked: true, resume: resumeStalled, witness: 1115, witnessEnd: 1340, queue: 1024, got: 1340}
	cases := []struct {
		name string
		seen func(s *slowSeen)
		want SlowOutcome
	}{
		{"closed with 4001", func(s *slowSeen) {
			*s = slowSeen{flood: 1340, acked: true, resume: resumeComplete, witness: 1340, witnessEnd: 1340, queue: 1024, got: 89, code: protocol.CloseSlowConsumer, ended: true}
		}, SlowCut},
		{"4001 though the flood failed half-way", func(s *slowSeen) {
			s.acked, s.floodErr, s.resume, s.got, s.code = false, "refused", resumeBound, 10, protocol.CloseSlowConsumer
		}, SlowCut},
		{"witness held up at a full queue, then everything, no 4001", func(*slowSeen) {}, SlowNotCut},
		{"witness had everything before it read, then everything, no 4001", func(s *slowSeen) {
			s.resume, s.witness = resumeComplete, 1340
		}, SlowNotCut},
		{"flood not all acked", func(s *slowSeen) { s.acked, s.floodErr, s.resume = false, "not acked within 15s", resumeBound }, SlowUnjudged},
		{"ended by something else with part of the flood", func(s *slowSeen) {
			s.got, s.ended, s.code, s.endErr = 300, true, 1006, "unexpected EOF"
		}, SlowUnjudged},
		{"part of the flood, still open", func(s *slowSeen) { s.got = 300 }, SlowUnjudged},
		{"witness stalled below the queue (something else held the gateway)", func(s *slowSeen) { s.witness = 500 }, SlowUnjudged},
		{"witness stalled and never went on", func(s *slowSeen) { s.witnessEnd = s.witness }, SlowUnjudged},
		{"read again at the bound", func(s *slowSeen) { s.resume = resumeBound }, SlowUnjudged},
	}
	for _, tc := range cases {
		s := held
		tc.seen(&s)
		got, detail := judgeSlow(s)
		if got != tc.want || detail == "" {
			t.Errorf("%s: %s (%s), want %s", tc.name, got, detail, tc.want)
		}
		if got == SlowCut && !strings.Contains(detail, "4001") {
			t.Errorf("%s: detail %q does not name the close code", tc.name, detail)
		}
	}
}
