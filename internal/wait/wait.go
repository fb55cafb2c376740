// Package wait is how every geolab test waits: on a condition, polled,
// within a generous bound, never on a sleep alone. For waits until a
// condition holds; Never watches a window in which an effect must not
// appear. It depends on nothing of geolab's, so that any package's tests,
// internal ones included, can use it; internal/harness builds the lab
// verbs on it.
package wait

import (
	"time"
)

// TB is what the waits need of a test: *testing.T, testing.TB and
// Ginkgo's GinkgoT() all satisfy it.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Poll is how often a condition is evaluated.
const Poll = 10 * time.Millisecond

// For polls cond until it holds and fails t, naming what it waited for,
// when bound passes first. cond is evaluated once more at the bound, so a
// condition that became true while the last poll slept is not missed.
func For(t TB, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Until(bound, cond) {
		t.Fatalf("not within %s: %s", bound, what)
	}
}

// Until polls cond until it holds or bound passes, and reports whether it
// held: for a test that must decide, not fail.
func Until(bound time.Duration, cond func() bool) bool {
	end := time.Now().Add(bound)
	for {
		if cond() {
			return true
		}
		if !time.Now().Before(end) {
			return false
		}
		time.Sleep(min(Poll, time.Until(end)+time.Millisecond)) // polling a condition, not synchronising
	}
}

// Never fails t if cond holds at any poll within window: the absence of an
// effect, watched for a window many times longer than the path the effect
// would take.
func Never(t TB, window time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(window)
	for {
		if cond() {
			t.Fatalf("within %s: %s", window, what)
			return // for a TB whose Fatalf returns
		}
		if !time.Now().Before(end) {
			return
		}
		time.Sleep(min(Poll, time.Until(end)+time.Millisecond)) // polling a condition, not synchronising
	}
}
