package explore

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/geolab/geolab/lab/fault"
	"github.com/geolab/geolab/lab/scenario"
	"github.com/geolab/geolab/lab/workload"
)

// sample is a scenario with a bit of everything the shrinker cuts.
func sample(t *testing.T) *scenario.Scenario {
	t.Helper()
	topo, path := loadTopo(t, "two-region")
	sc := &scenario.Scenario{Name: "sample", TopologyPath: path, Topology: topo, Seed: 77, Expect: Expectations(),
		Workload: workload.Spec{Clients: 16, FederatedRooms: 4, LocalRooms: 2, RoomsPerClient: 2, PublishRate: 20,
			PayloadBytes: 240, Duration: 20 * time.Second, Quiesce: 20 * time.Second,
			Bursts: []workload.Burst{{At: 5 * time.Second, Count: 100, Within: time.Second}},
			Churn:  workload.Churn{Leaves: 0.5, RejoinAfter: time.Second, Reconnects: 0.2}},
		Timeline: []scenario.Step{
			{At: 2 * time.Second, Fault: fault.Spec{Kind: "partition", Regions: []string{"us-east", "us-west"}, Mode: "blackhole", For: 4 * time.Second}},
			{At: 8 * time.Second, Fault: fault.Spec{Kind: "redis-blip", Regions: []string{"us-east"}, For: 2 * time.Second}},
		}}
	sc.Workload.Defaults()
	return sc
}

func TestCandidatesInOrderEachOneStepSmaller(t *testing.T) {
	sc := sample(t)
	cands := Candidates(sc)
	want := []string{
		"drop fault 1 (partition us-east<->us-west at 2s for 4s (mode blackhole))",
		"drop fault 2 (redis-blip us-east at 8s for 2s)",
		"shorten fault 1 (partition us-east<->us-west at 2s for 4s (mode blackhole)) to 2s",
		"shorten fault 2 (redis-blip us-east at 8s for 2s) to 1s",
		"move fault 1 (partition us-east<->us-west at 2s for 4s (mode blackhole)) to 9s",
		"move fault 2 (redis-blip us-east at 8s for 2s) to 13s",
		"clients 16 → 8",
		"federated rooms 4 → 2",
		"local rooms 2 → 1",
		"rooms per client 2 → 1",
		"publish rate 20/s → 10/s",
		"drop burst 1 (100 at 5s)",
		"burst 1: 100 → 50 publishes",
		"no churn leaves",
		"churn leaves 0.5/s → 0.25/s",
		"no churn reconnects",
		"churn reconnects 0.2/s → 0.1/s",
	}
	var got []string
	for _, c := range cands {
		got = append(got, c.What)
		if c.Scenario.Seed != sc.Seed {
			t.Errorf("%s: seed %d, want the original's %d", c.What, c.Scenario.Seed, sc.Seed)
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("candidates:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Each changes only what it says, and the original is left as it was.
	if n := len(cands[0].Scenario.Timeline); n != 1 || cands[0].Scenario.Timeline[0].Fault.Kind != "redis-blip" {
		t.Errorf("drop fault 1 left %v", cands[0].Scenario.Timeline)
	}
	if f := cands[3].Scenario.Timeline[1].Fault.For; f != time.Second {
		t.Errorf("shorten fault 2: for %s", f)
	}
	if m := cands[4].Scenario.Timeline; m[0].Fault.Kind != "redis-blip" || m[1].At != 9*time.Second {
		t.Errorf("move fault 1: timeline not by offset: %v", m)
	}
	if w := cands[7].Scenario.Workload; w.FederatedRooms != 2 || w.RoomsPerClient != 2 {
		t.Errorf("federated rooms: %d rooms, %d per client", w.FederatedRooms, w.RoomsPerClient)
	}
	if w := cands[13].Scenario.Workload; w.Churn.Leaves != 0 || w.Churn.RejoinAfter != 0 || w.Churn.Reconnects != 0.2 {
		t.Errorf("no churn leaves: %+v", w.Churn)
	}
	if len(sc.Timeline) != 2 || sc.Workload.Clients != 16 || sc.Timeline[1].Fault.For != 2*time.Second || len(sc.Workload.Bursts) != 1 {
		t.Fatalf("Candidates changed the original: %+v", sc)
	}
}

// The smallest scenario has no candidate left.
func TestCandidatesOfTheSmallestScenarioAreNone(t *testing.T) {
	sc := sample(t)
	sc.Timeline = nil
	sc.Workload = workload.Spec{Clients: 1, FederatedRooms: 1, PublishRate: 0.75, Duration: 20 * time.Second}
	sc.Workload.Defaults()
	if c := Candidates(sc); len(c) != 0 {
		t.Fatalf("want no candidate, got %d: %s", len(c), c[0].What)
	}
}

func has(sc *scenario.Scenario, kind string) bool {
	for _, st := range sc.Timeline {
		if st.Fault.Kind == kind {
			return true
		}
	}
	return false
}

// The greedy loop with a fake judge: the "bug" needs a redis-blip and at
// least 3 clients. The shrink ends at one fault, a blip of 1s, 4
// clients (8 → 4; 4 → 2 passes), and nothing else left that can be cut.
func TestShrinkGreedyEndsAtAMinimalScenario(t *testing.T) {
	sc := sample(t)
	judged := 0
	judge := func(_ context.Context, c Candidate, k, n int) (bool, error) {
		judged++
		if k < 1 || k > n {
			t.Fatalf("candidate %d of %d", k, n)
		}
		return has(c.Scenario, "redis-blip") && c.Scenario.Workload.Clients >= 3, nil
	}
	res := Shrink(context.Background(), sc, judge, ShrinkOptions{})
	m := res.Minimal
	if res.Stopped != StopMinimal || res.Judged != judged || len(res.Errors) != 0 {
		t.Fatalf("stopped %q after %d judged (%d), errors %v", res.Stopped, res.Judged, judged, res.Errors)
	}
	if len(m.Timeline) != 1 || m.Timeline[0].Fault.Kind != "redis-blip" || m.Timeline[0].Fault.For != time.Second {
		t.Fatalf("timeline %v, want one blip of 1s", m.Timeline)
	}
	if w := m.Workload; w.Clients != 4 || w.FederatedRooms != 1 || w.LocalRooms != 0 || w.RoomsPerClient != 1 ||
		w.PublishRate != 0 || len(w.Bursts) != 0 || w.Churn != (workload.Churn{}) {
		t.Fatalf("workload not minimal: %s", WorkloadWords(w))
	}
	if len(res.Steps) == 0 || !strings.HasPrefix(res.Steps[0], "drop fault 1 (partition") {
		t.Fatalf("steps %v: the first taken should drop the partition", res.Steps)
	}
	for _, c := range Candidates(m) {
		if ok, _ := judge(context.Background(), c, 1, 1); ok {
			t.Fatalf("the minimal scenario still has a failing candidate: %s", c.What)
		}
	}
	if len(sc.Timeline) != 2 {
		t.Fatal("the original was changed")
	}
}

// A scenario that passed is not played again when a later round makes it
// once more.
func TestShrinkDoesNotPlayAPassingScenarioTwice(t *testing.T) {
	sc := sample(t)
	played := map[string]bool{}
	res := Shrink(context.Background(), sc, func(_ context.Context, c Candidate, _, _ int) (bool, error) {
		key := fileOf(c.Scenario)
		if played[key] {
			t.Fatalf("%s: played again", c.What)
		}
		played[key] = true
		return len(c.Scenario.Timeline) == 2 && c.Scenario.Workload.Clients >= 8, nil
	}, ShrinkOptions{})
	if res.Skipped == 0 || res.Stopped != StopMinimal || len(res.Minimal.Timeline) != 2 || res.Minimal.Workload.Clients != 8 {
		t.Fatalf("skipped %d, stopped %q, %d faults, %d clients", res.Skipped, res.Stopped, len(res.Minimal.Timeline), res.Minimal.Workload.Clients)
	}
}

// A judge that never fails leaves the original as the minimal one after
// judging each of its candidates once.
func TestShrinkWithNoFailingCandidateKeepsTheOriginal(t *testing.T) {
	sc := sample(t)
	res := Shrink(context.Background(), sc, func(context.Context, Candidate, int, int) (bool, error) { return false, nil }, ShrinkOptions{})
	if res.Minimal != sc || len(res.Steps) != 0 || res.Judged != len(Candidates(sc)) || res.Stopped != StopMinimal {
		t.Fatalf("got %+v", res)
	}
}

// The budget, the step bound and ctx each end a shrink, saying which.
func TestShrinkStopsAtItsBounds(t *testing.T) {
	sc := sample(t)
	always := func(context.Context, Candidate, int, int) (bool, error) { return true, nil }

	now := time.Unix(0, 0)
	clock := func() time.Time { return now }
	tick := func(ctx context.Context, c Candidate, k, n int) (bool, error) {
		now = now.Add(time.Minute)
		return true, nil
	}
	res := Shrink(context.Background(), sc, tick, ShrinkOptions{Deadline: time.Unix(0, 0).Add(3 * time.Minute), Now: clock})
	if res.Stopped != StopBudget || res.Judged != 3 || len(res.Steps) != 3 {
		t.Fatalf("budget: %q, %d judged, %d steps", res.Stopped, res.Judged, len(res.Steps))
	}

	res = Shrink(context.Background(), sc, always, ShrinkOptions{MaxSteps: 2})
	if res.Stopped != StopSteps || len(res.Steps) != 2 {
		t.Fatalf("steps: %q, %d steps", res.Stopped, len(res.Steps))
	}

	ctx, cancel := context.WithCancel(context.Background())
	res = Shrink(ctx, sc, func(context.Context, Candidate, int, int) (bool, error) { cancel(); return false, nil }, ShrinkOptions{})
	if res.Stopped != StopInterrupted || res.Judged != 1 {
		t.Fatalf("interrupted: %q, %d judged", res.Stopped, res.Judged)
	}
}

// A candidate that could not be judged counts as not failing, and says
// why.
func TestShrinkKeepsJudgeErrors(t *testing.T) {
	sc := sample(t)
	res := Shrink(context.Background(), sc, func(_ context.Context, c Candidate, k, _ int) (bool, error) {
		if k == 1 {
			return true, errors.New("lab did not start")
		}
		return false, nil
	}, ShrinkOptions{})
	if len(res.Steps) != 0 || len(res.Errors) != 1 || !strings.Contains(res.Errors[0], "drop fault 1") || !strings.Contains(res.Errors[0], "lab did not start") {
		t.Fatalf("got steps %v, errors %v", res.Steps, res.Errors)
	}
}

func TestAnyTry(t *testing.T) {
	ctx := context.Background()
	plays := 0
	failOn := func(n int) func(context.Context, int) (bool, error) {
		return func(_ context.Context, try int) (bool, error) { plays++; return try == n, nil }
	}
	if ok, err := anyTry(ctx, 3, time.Time{}, time.Now, failOn(2)); !ok || err != nil || plays != 2 {
		t.Fatalf("fails on try 2: %v %v after %d plays", ok, err, plays)
	}
	plays = 0
	if ok, err := anyTry(ctx, 3, time.Time{}, time.Now, failOn(0)); ok || err != nil || plays != 3 {
		t.Fatalf("never fails: %v %v after %d plays", ok, err, plays)
	}
	plays = 0
	boom := errors.New("boom")
	ok, err := anyTry(ctx, 3, time.Time{}, time.Now, func(_ context.Context, try int) (bool, error) {
		plays++
		if try == 1 {
			return false, boom
		}
		return try == 3, nil
	})
	if !ok || err != nil || plays != 3 {
		t.Fatalf("an error then a failure: %v %v after %d plays", ok, err, plays)
	}
	plays = 0
	if ok, err := anyTry(ctx, 2, time.Time{}, time.Now, func(context.Context, int) (bool, error) { plays++; return false, boom }); ok || !errors.Is(err, boom) || plays != 2 {
		t.Fatalf("only errors: %v %v after %d plays", ok, err, plays)
	}
	plays = 0
	past := time.Now().Add(-time.Second)
	if ok, _ := anyTry(ctx, 3, past, time.Now, failOn(0)); ok || plays != 1 {
		t.Fatalf("past the deadline: the first try is played, no other: %d plays", plays)
	}
}
