// Package backoff is the one retry pacing of geolab's components: exponential
// backoff with full jitter, and a sleep that ends early when its context does.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Ceiling is lo doubled attempt times, capped at hi (never overflowing).
func Ceiling(lo, hi time.Duration, attempt int) time.Duration {
	d := lo << min(max(attempt, 0), 30)
	if d > hi || d <= 0 {
		d = hi
	}
	return d
}

// FullJitter is a uniform draw in [0, Ceiling(lo, hi, attempt)] from rnd (the
// global source when rnd is nil), so that many clients that lost the same
// server do not come back in step.
func FullJitter(lo, hi time.Duration, attempt int, rnd *rand.Rand) time.Duration {
	c := int64(Ceiling(lo, hi, attempt))
	if rnd == nil {
		return time.Duration(rand.Int64N(c + 1))
	}
	return time.Duration(rnd.Int64N(c + 1))
}

// Sleep waits for d or until ctx ends; it reports whether the full d passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
