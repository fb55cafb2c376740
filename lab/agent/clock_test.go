package agent

import (
	"testing"
	"time"
)

// sampleAt makes a round trip with the agent's clock behind the
// controller's by offset: the request takes up ns on the network, the
// controller holds it hold ns, the answer takes down ns; t0 on the agent.
func sampleAt(t0 int64, offset, up, hold, down time.Duration) Sample {
	t1 := t0 + int64(up) + int64(offset)
	t2 := t1 + int64(hold)
	t3 := t2 - int64(offset) + int64(down)
	return Sample{T0: t0, T1: t1, T2: t2, T3: t3}
}

// The estimate is NTP's: the sample with the smallest round trip wins, its
// offset is within half its round trip of the true one, whatever the
// asymmetry of the network, and the controller's hold time is not counted
// as network.
func TestBestKeepsTheSmallestRoundTripAndBoundsTheOffset(t *testing.T) {
	const offset = 5*time.Millisecond + 300*time.Microsecond
	samples := []Sample{
		sampleAt(1e9, offset, 4*time.Millisecond, time.Millisecond, 9*time.Millisecond),        // slow, lopsided
		sampleAt(2e9, offset, 300*time.Microsecond, 50*time.Millisecond, 900*time.Microsecond), // fast, held long
		sampleAt(3e9, offset, 2*time.Millisecond, 0, 2*time.Millisecond),
	}
	e, err := Best(samples)
	if err != nil {
		t.Fatal(err)
	}
	if e.RTT != 1200*time.Microsecond {
		t.Fatalf("rtt %s: want the fast sample's 1.2ms (its 50ms hold is not network)", e.RTT)
	}
	if e.Bound != 600*time.Microsecond {
		t.Fatalf("bound %s: want rtt/2 = 600µs", e.Bound)
	}
	// Lopsided (300µs up, 900µs down): the estimate is off by
	// (up−down)/2 = −300µs, inside the bound.
	if got := e.Offset - offset; got != -300*time.Microsecond {
		t.Fatalf("offset %s: want the true %s − 300µs", e.Offset, offset)
	}
	if d := e.Offset - offset; d < -e.Bound || d > e.Bound {
		t.Fatalf("offset %s ± %s does not hold the true %s", e.Offset, e.Bound, offset)
	}
	if e.Samples != 3 {
		t.Fatalf("samples %d, want 3", e.Samples)
	}
}

// A symmetric network gives the offset exactly; a negative offset (agent
// ahead) is as good as a positive one.
func TestBestSymmetricAndNegative(t *testing.T) {
	e, err := Best([]Sample{sampleAt(7e9, -42*time.Millisecond, time.Millisecond, 0, time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	if e.Offset != -42*time.Millisecond || e.Bound != time.Millisecond {
		t.Fatalf("got %s ± %s, want -42ms ± 1ms", e.Offset, e.Bound)
	}
}

// A sample whose round trip is negative (a clock stepped during it) is
// not used; with none usable Best says so.
func TestBestRefusesImpossibleSamples(t *testing.T) {
	bad := Sample{T0: 100, T1: 500, T2: 600, T3: 50}
	if _, err := Best([]Sample{bad}); err != ErrNoSample {
		t.Fatalf("want ErrNoSample, got %v", err)
	}
	if _, err := Best(nil); err != ErrNoSample {
		t.Fatalf("no samples: want ErrNoSample, got %v", err)
	}
	good := sampleAt(1e9, time.Second, time.Millisecond, 0, time.Millisecond)
	e, err := Best([]Sample{bad, good})
	if err != nil || e.Offset != time.Second {
		t.Fatalf("got %v, %v: want the good sample's 1s", e, err)
	}
}

// Span covers the estimates before and after the run: a clock that
// drifted between them widens the bound to hold both.
func TestSpanCoversBeforeAndAfter(t *testing.T) {
	before := Estimate{Offset: 10 * time.Millisecond, Bound: time.Millisecond, RTT: 2 * time.Millisecond, Samples: 8}
	after := Estimate{Offset: 14 * time.Millisecond, Bound: 2 * time.Millisecond, RTT: 4 * time.Millisecond, Samples: 8}
	s := Span(before, after)
	// [9ms, 11ms] ∪ [12ms, 16ms] → [9ms, 16ms]: 12.5ms ± 3.5ms.
	if s.Offset != 12500*time.Microsecond || s.Bound != 3500*time.Microsecond {
		t.Fatalf("got %s ± %s, want 12.5ms ± 3.5ms", s.Offset, s.Bound)
	}
	if s.RTT != 2*time.Millisecond || s.Samples != 16 {
		t.Fatalf("rtt %s samples %d: want the smaller rtt 2ms and 16 samples", s.RTT, s.Samples)
	}
	for _, e := range []Estimate{before, after} {
		if e.Offset-e.Bound < s.Offset-s.Bound || e.Offset+e.Bound > s.Offset+s.Bound {
			t.Fatalf("span %s ± %s does not cover %s ± %s", s.Offset, s.Bound, e.Offset, e.Bound)
		}
	}
	if same := Span(before, before); same.Offset != before.Offset || same.Bound != before.Bound {
		t.Fatalf("a span of one estimate is %s ± %s, want it unchanged", same.Offset, same.Bound)
	}
}
