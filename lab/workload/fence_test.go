package workload

import (
	"context"
	"testing"
	"time"

	"github.com/geolab/geolab/gateway/protocol"
)

// TestFenceVerdict: how the fence probe judges what it saw, on every path:
// fenced only by a 4003 after a takeover; not fenced only when the takeover
// happened and the holder was still served at the end; anything else is
// not judged.
func TestFenceVerdict(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC)
	cases := []struct {
		name     string
		taken    time.Time
		closedAt time.Time
		code     int
		want     FenceOutcome
	}{
		{"closed with 4003 after the takeover", t0, t0.Add(300 * time.Millisecond), protocol.CloseSessionTakenOver, FenceFenced},
		{"still served at the end", t0, time.Time{}, 0, FenceNotFenced},
		{"ended by a fault before the takeover", t0, t0.Add(-time.Second), 4000, FenceUnjudged},
		{"ended by a fault after the takeover", t0, t0.Add(time.Second), 0, FenceUnjudged},
		{"no takeover, still open", time.Time{}, time.Time{}, 0, FenceUnjudged},
		{"no takeover, ended", time.Time{}, t0, 1006, FenceUnjudged},
	}
	for _, tc := range cases {
		f := &fence{plan: &FencePlan{Holder: "us-east", Taker: "eu-west"}, closed: make(chan struct{}),
			takenAt: tc.taken, closedAt: tc.closedAt, code: tc.code, endErr: "x"}
		if !tc.closedAt.IsZero() {
			close(f.closed)
		}
		r := f.result(context.Background(), time.Millisecond)
		if r.Outcome != tc.want || r.Detail == "" {
			t.Errorf("%s: %s (%s), want %s", tc.name, r.Outcome, r.Detail, tc.want)
		}
	}
}
