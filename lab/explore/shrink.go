package explore

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/geolab/geolab/lab/scenario"
	"github.com/geolab/geolab/lab/workload"
)

// Candidate is a smaller scenario the shrinker tries: What it changed, and
// the scenario as a file gives it back (Marshal, then Parse: what a replay
// of minimal.yaml runs).
type Candidate struct {
	What     string
	Scenario *scenario.Scenario
}

// cut is one change to a workload.
type cut struct {
	what  string
	apply func(*workload.Spec)
}

// Candidates lists the scenarios one step smaller than sc, in the order the
// shrinker tries them: drop one fault; halve one fault's duration (not
// below 1s); move one fault later (by half the room left after it); halve
// the clients; cut the rooms (federated, local, rooms per client); halve the
// publish rate (not below 1/s; to 0 when bursts still publish); drop a
// burst, halve a burst; cut the churn. Each keeps sc's seed. A change
// the scenario file would refuse (Parse) is left out. Every candidate is
// smaller in a measure that cannot fall forever, so that a greedy shrink
// ends.
func Candidates(sc *scenario.Scenario) []Candidate {
	var out []Candidate
	add := func(what string, change func(c *scenario.Scenario)) {
		c := clone(sc)
		change(c)
		if parsed, err := reparse(c); err == nil {
			out = append(out, Candidate{What: what, Scenario: parsed})
		}
	}
	for i, st := range sc.Timeline {
		add(fmt.Sprintf("drop fault %d (%s)", i+1, FaultWords(st)), func(c *scenario.Scenario) {
			c.Timeline = slices.Delete(c.Timeline, i, i+1)
		})
	}
	for i, st := range sc.Timeline {
		if half := (st.Fault.For / 2).Round(100 * time.Millisecond); half >= time.Second {
			add(fmt.Sprintf("shorten fault %d (%s) to %s", i+1, FaultWords(st), half), func(c *scenario.Scenario) {
				c.Timeline[i].Fault.For = half
			})
		}
	}
	for i, st := range sc.Timeline {
		end := st.At + max(st.Fault.For, time.Second)
		if later := st.At + ((sc.Workload.Duration - end) / 2).Round(100*time.Millisecond); later-st.At >= time.Second {
			add(fmt.Sprintf("move fault %d (%s) to %s", i+1, FaultWords(st), later), func(c *scenario.Scenario) {
				c.Timeline[i].At = later
				slices.SortStableFunc(c.Timeline, func(a, b scenario.Step) int { return int(a.At - b.At) })
			})
		}
	}
	for _, k := range workloadCuts(sc.Workload) {
		add(k.what, func(c *scenario.Scenario) { k.apply(&c.Workload) })
	}
	return out
}

// workloadCuts are the cuts of a workload, in the shrinker's order.
func workloadCuts(w workload.Spec) []cut {
	var out []cut
	if w.Clients > 1 {
		out = append(out, cut{fmt.Sprintf("clients %d → %d", w.Clients, w.Clients/2), func(w *workload.Spec) { w.Clients /= 2 }})
	}
	if w.FederatedRooms > 1 {
		n := w.FederatedRooms / 2
		out = append(out, cut{fmt.Sprintf("federated rooms %d → %d", w.FederatedRooms, n), func(w *workload.Spec) {
			w.FederatedRooms = n
			w.RoomsPerClient = min(w.RoomsPerClient, n)
		}})
	}
	if w.LocalRooms > 0 && (w.LocalRooms > 1 || w.FederatedRooms > 0) {
		n := w.LocalRooms / 2
		out = append(out, cut{fmt.Sprintf("local rooms %d → %d", w.LocalRooms, n), func(w *workload.Spec) { w.LocalRooms = n }})
	}
	if w.RoomsPerClient > 1 {
		n := w.RoomsPerClient / 2
		out = append(out, cut{fmt.Sprintf("rooms per client %d → %d", w.RoomsPerClient, n), func(w *workload.Spec) { w.RoomsPerClient = n }})
	}
	switch {
	case w.PublishRate > 1:
		n := max(1, math.Round(w.PublishRate/2))
		out = append(out, cut{fmt.Sprintf("publish rate %g/s → %g/s", w.PublishRate, n), func(w *workload.Spec) { w.PublishRate = n }})
	case w.PublishRate > 0 && len(w.Bursts) > 0: // the bursts still publish
		out = append(out, cut{fmt.Sprintf("publish rate %g/s → 0/s", w.PublishRate), func(w *workload.Spec) { w.PublishRate = 0 }})
	}
	for i, b := range w.Bursts {
		out = append(out, cut{fmt.Sprintf("drop burst %d (%d at %s)", i+1, b.Count, b.At), func(w *workload.Spec) {
			w.Bursts = slices.Delete(w.Bursts, i, i+1)
		}})
	}
	for i, b := range w.Bursts {
		if b.Count > 1 {
			out = append(out, cut{fmt.Sprintf("burst %d: %d → %d publishes", i+1, b.Count, b.Count/2), func(w *workload.Spec) {
				w.Bursts[i].Count /= 2
			}})
		}
	}
	return append(out, churnCuts(w)...)
}

// clone copies what a candidate changes.
func clone(sc *scenario.Scenario) *scenario.Scenario {
	c := *sc
	c.Timeline = slices.Clone(sc.Timeline)
	c.Workload.Bursts = slices.Clone(sc.Workload.Bursts)
	c.GatewayArgs = slices.Clone(sc.GatewayArgs)
	c.Expect = slices.Clone(sc.Expect)
	return &c
}

// reparse is sc as a file gives it back: what `geolab run minimal.yaml`
// plays. A relative topology path is resolved from the working directory.
func reparse(sc *scenario.Scenario) (*scenario.Scenario, error) {
	b, err := scenario.Marshal(sc)
	if err != nil {
		return nil, err
	}
	return scenario.Parse(b, ".")
}

// FaultWords says a timeline step in one line: "partition
// us-east<->us-west at 4s for 6s (mode blackhole)".
func FaultWords(st scenario.Step) string {
	s := st.Fault
	var args []string
	add := func(k, v string) {
		if v != "" {
			args = append(args, k+" "+v)
		}
	}
	add("mode", s.Mode)
	add("direction", s.Direction)
	if s.Latency > 0 {
		add("latency", s.Latency.String())
	}
	if s.Jitter > 0 {
		add("jitter", s.Jitter.String())
	}
	if s.RateKB > 0 {
		add("rate_kb", fmt.Sprint(s.RateKB))
	}
	if s.LoseData {
		add("lose_data", "true")
	}
	add("room", s.Room)
	if s.Clients > 0 {
		add("clients", fmt.Sprint(s.Clients))
	}
	w := fmt.Sprintf("%s %s at %s", s.Kind, s.Target(), st.At)
	if s.For > 0 {
		w += " for " + s.For.String()
	}
	if len(args) > 0 {
		w += " (" + strings.Join(args, ", ") + ")"
	}
	return w
}

// WorkloadWords says a workload in one line.
func WorkloadWords(w workload.Spec) string {
	s := fmt.Sprintf("%d clients, %d federated + %d local rooms (%d per client), %g/s for %s, %d B",
		w.Clients, w.FederatedRooms, w.LocalRooms, w.RoomsPerClient, w.PublishRate, w.Duration, w.PayloadBytes)
	for _, b := range w.Bursts {
		s += fmt.Sprintf(", burst %d at %s within %s", b.Count, b.At, b.Within)
	}
	return s + churnWords(w.Churn)
}

// Judge says whether a candidate still fails: whether it shows the
// violation being shrunk. An error is a candidate that could not be judged
// (the lab did not start): it counts as not failing.
type Judge func(ctx context.Context, c Candidate, k, n int) (bool, error)

// ShrinkOptions bound a shrink.
type ShrinkOptions struct {
	// Deadline: no candidate is judged after it (zero: none).
	Deadline time.Time
	// MaxSteps bounds the candidates taken (default 200).
	MaxSteps int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Shrunk is what a shrink ended with.
type Shrunk struct {
	// Minimal is the smallest scenario found failing (the original when no
	// candidate failed).
	Minimal *scenario.Scenario
	// Steps says what each candidate taken changed, in order.
	Steps []string
	// Judged counts the candidates judged; Skipped those not judged
	// again because the same scenario had passed before.
	Judged, Skipped int
	// Stopped says why the shrink ended.
	Stopped string
	// Errors are the candidates that could not be judged, and why.
	Errors []string
}

// Why a shrink stopped.
const (
	StopMinimal     = "no smaller candidate fails"
	StopBudget      = "shrink budget spent"
	StopInterrupted = "interrupted"
	StopSteps       = "step bound reached"
)

// Shrink shrinks sc greedily: it judges sc's candidates in order, takes the
// first that fails and starts over from it, until none fails, the deadline
// passes, ctx ends or MaxSteps candidates were taken. A candidate that is
// the same scenario as one that passed before (dropping the only fault
// after shortening it, say) is not played again.
//
// The cost is in the candidates that pass: each is played Tries times,
// while one that fails is usually taken on its first try.
func Shrink(ctx context.Context, sc *scenario.Scenario, judge Judge, opts ShrinkOptions) Shrunk {
	if opts.MaxSteps <= 0 {
		opts.MaxSteps = 200
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	res := Shrunk{Minimal: sc}
	passed := map[string]bool{} // scenario files that passed
	over := func() string {
		switch {
		case ctx.Err() != nil:
			return StopInterrupted
		case !opts.Deadline.IsZero() && !opts.Now().Before(opts.Deadline):
			return StopBudget
		}
		return ""
	}
	for len(res.Steps) < opts.MaxSteps {
		cands := Candidates(res.Minimal)
		taken := false
		for k, c := range cands {
			if why := over(); why != "" {
				res.Stopped = why
				return res
			}
			key := fileOf(c.Scenario)
			if passed[key] {
				res.Skipped++
				continue
			}
			res.Judged++
			fails, err := judge(ctx, c, k+1, len(cands))
			if err != nil {
				res.Errors = append(res.Errors, c.What+": "+err.Error())
			} else if !fails {
				passed[key] = true
			}
			if err == nil && fails {
				res.Minimal, taken = c.Scenario, true
				res.Steps = append(res.Steps, c.What)
				break
			}
		}
		if !taken {
			if why := over(); why != "" {
				res.Stopped = why // the last candidates were cut short
			} else {
				res.Stopped = StopMinimal
			}
			return res
		}
	}
	res.Stopped = StopSteps
	return res
}

// fileOf is sc as a file, what tells two candidates apart.
func fileOf(sc *scenario.Scenario) string {
	b, err := scenario.Marshal(sc)
	if err != nil {
		return fmt.Sprintf("%p", sc) // never equal to another
	}
	return string(b)
}

// anyTry plays up to tries attempts and reports whether one failed; it
// stops at the first that does, and before an attempt once ctx ends or the
// deadline passed. The same seed gives the same plan, not the same
// interleaving: a candidate that fails once in a few tries still fails.
// An error of an attempt is kept and the next attempt played; it is
// returned when no attempt failed.
func anyTry(ctx context.Context, tries int, deadline time.Time, now func() time.Time, play func(ctx context.Context, try int) (bool, error)) (bool, error) {
	var first error
	for try := 1; try <= tries; try++ {
		if ctx.Err() != nil || (try > 1 && !deadline.IsZero() && !now().Before(deadline)) {
			break
		}
		fails, err := play(ctx, try)
		if err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		if fails {
			return true, nil
		}
	}
	return false, first
}
