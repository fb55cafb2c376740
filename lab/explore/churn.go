package explore

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/geolab/geolab/lab/workload"
)

// drawChurn gives half the runs churn (workload.Churn): leaves of up to
// MaxLeaves a second, each rejoined 0.5–3 s later, and reconnects of up to
// MaxReconnects a second, each of the two on in two runs of three of those.
// rng is a stream of its own (Draw).
func drawChurn(rng *rand.Rand, b Bounds, w *workload.Spec) {
	// Every draw is made whatever the bounds, so that turning one kind of
	// churn off leaves the other as it was.
	on, leaves, reconnects := rng.IntN(2) == 1, rng.IntN(3) > 0, rng.IntN(3) > 0
	leaveRate, reconnectRate := float64(1+rng.IntN(20))/20, float64(1+rng.IntN(20))/20
	rejoin := between(rng, 500*time.Millisecond, min(3*time.Second, w.Duration/2), 500*time.Millisecond)
	if !on {
		return
	}
	if leaves && b.MaxLeaves > 0 {
		w.Churn.Leaves, w.Churn.RejoinAfter = leaveRate*b.MaxLeaves, rejoin
	}
	if reconnects && b.MaxReconnects > 0 {
		w.Churn.Reconnects = reconnectRate * b.MaxReconnects
	}
}

// churnCuts are the shrinker's cuts of the churn: leaves off, halved;
// reconnects off, halved (a rate below 0.1 a second is only turned off).
func churnCuts(w workload.Spec) []cut {
	c := w.Churn
	var out []cut
	if c.Leaves > 0 {
		out = append(out, cut{"no churn leaves", func(w *workload.Spec) { w.Churn.Leaves, w.Churn.RejoinAfter = 0, 0 }})
		if c.Leaves >= 0.1 {
			out = append(out, cut{fmt.Sprintf("churn leaves %g/s → %g/s", c.Leaves, c.Leaves/2), func(w *workload.Spec) { w.Churn.Leaves /= 2 }})
		}
	}
	if c.Reconnects > 0 {
		out = append(out, cut{"no churn reconnects", func(w *workload.Spec) { w.Churn.Reconnects = 0 }})
		if c.Reconnects >= 0.1 {
			out = append(out, cut{fmt.Sprintf("churn reconnects %g/s → %g/s", c.Reconnects, c.Reconnects/2), func(w *workload.Spec) { w.Churn.Reconnects /= 2 }})
		}
	}
	return out
}

// churnWords says the churn in a few words ("" for none).
func churnWords(c workload.Churn) string {
	s := ""
	if c.Leaves > 0 {
		s += fmt.Sprintf(", churn %g leaves/s (rejoin after %s)", c.Leaves, c.RejoinAfter)
	}
	if c.Reconnects > 0 {
		s += fmt.Sprintf(", %g reconnects/s", c.Reconnects)
	}
	return s
}
