package wait_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/geolab/geolab/internal/wait"
)

// recorder is a TB that records a failure instead of ending the test.
type recorder struct{ failed string }

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
}

func TestForReturnsOnceTheConditionHolds(t *testing.T) {
	var n atomic.Int32
	r := &recorder{}
	wait.For(r, time.Minute, "third poll", func() bool { return n.Add(1) >= 3 })
	if r.failed != "" || n.Load() != 3 {
		t.Fatalf("failed %q after %d polls; want success on poll 3", r.failed, n.Load())
	}
}

func TestForFailsNamingWhatItWaitedFor(t *testing.T) {
	r := &recorder{}
	wait.For(r, 30*time.Millisecond, "the impossible", func() bool { return false })
	if !strings.Contains(r.failed, "the impossible") || !strings.Contains(r.failed, "30ms") {
		t.Fatalf("failure %q does not name the condition and its bound", r.failed)
	}
}

func TestForChecksOnceMoreAtTheBound(t *testing.T) {
	r := &recorder{}
	start := time.Now()
	wait.For(r, 25*time.Millisecond, "late", func() bool { return time.Since(start) >= 25*time.Millisecond })
	if r.failed != "" {
		t.Fatalf("a condition true at the bound failed: %s", r.failed)
	}
}

func TestNeverFailsWhenTheEffectAppears(t *testing.T) {
	var n atomic.Int32
	r := &recorder{}
	wait.Never(r, time.Minute, "a duplicate arrived", func() bool { return n.Add(1) == 2 })
	if !strings.Contains(r.failed, "a duplicate arrived") {
		t.Fatalf("failure %q; want one naming the effect", r.failed)
	}
}

func TestNeverWatchesTheWholeWindow(t *testing.T) {
	var n atomic.Int32
	r := &recorder{}
	start := time.Now()
	wait.Never(r, 50*time.Millisecond, "x", func() bool { n.Add(1); return false })
	if r.failed != "" || time.Since(start) < 50*time.Millisecond || n.Load() < 2 {
		t.Fatalf("failed %q, watched %s with %d polls; want the whole 50ms", r.failed, time.Since(start), n.Load())
	}
}
