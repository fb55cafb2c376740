package explore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/geolab/geolab/lab/check"
	"github.com/geolab/geolab/lab/run"
	"github.com/geolab/geolab/lab/scenario"
)

// fakePlay stands in for a lab (the loop, the files and the shrink are
// pure logic): a run "loses" events when its timeline has a redis-blip, and
// writes the report files a run writes, with its fault count in them.
func fakePlay(plays *int) Play {
	return func(_ context.Context, sc *scenario.Scenario, outDir, _ string, progress io.Writer) (*run.Outcome, error) {
		*plays++
		if err := os.MkdirAll(outDir, 0o755); err != nil {
			return nil, err
		}
		for _, f := range []string{"history.jsonl", "report.json", "report.html", "junit.xml"} {
			if err := os.WriteFile(filepath.Join(outDir, f), []byte(fmt.Sprintf("%d faults\n", len(sc.Timeline))), 0o644); err != nil {
				return nil, err
			}
		}
		fmt.Fprintf(progress, "t=  1s/%s publishing\n\nchecking …\n", sc.Workload.Duration)
		res := &check.Result{}
		if has(sc, "redis-blip") {
			res.Counts.Lost = 3 * len(sc.Timeline)
			res.Examples = map[string][]check.Example{"lost": {{Text: "c-us-east-001 never got ev-1"}}}
		}
		return &run.Outcome{Dir: outDir, Seed: sc.Seed, Result: res, Errors: []string{"timeline line 9: a note"}}, nil
	}
}

func exploreOptions(t *testing.T, plays *int) Options {
	topo, path := loadTopo(t, "two-region")
	b := DefaultBounds()
	b.Kinds = []string{"latency", "redis-blip"}
	return Options{Topology: topo, TopologyPath: path, Seed: 1, Runs: 6, Bounds: b, OutDir: t.TempDir(), Play: fakePlay(plays)}
}

func TestExploreFindsShrinksAndWritesTheOutputs(t *testing.T) {
	plays := 0
	opts := exploreOptions(t, &plays)
	var progress bytes.Buffer
	opts.Progress = &progress
	sum, err := Explore(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Runs != 6 || sum.Stopped != StoppedRuns || sum.Failing == 0 || len(sum.Failures) != sum.Failing || len(sum.RunLog) != 6 {
		t.Fatalf("runs %d (%s), failing %d, failures %d, log %d", sum.Runs, sum.Stopped, sum.Failing, len(sum.Failures), len(sum.RunLog))
	}
	first := sum.Failures[0]
	if sum.RunsToFirstFailure != first.Run || first.RunsToFirstFailure != first.Run || !first.Shrunk {
		t.Fatalf("runs to first failure %d, first failing run %d (shrunk %v)", sum.RunsToFirstFailure, first.Run, first.Shrunk)
	}
	for _, r := range sum.RunLog {
		dir := filepath.Join(opts.OutDir, fmt.Sprintf("run-%03d", r.Run))
		_, statErr := os.Stat(dir)
		if failing := len(r.Violations) > 0; failing == os.IsNotExist(statErr) {
			t.Errorf("run %d: failing %v, directory there: %v", r.Run, failing, statErr == nil)
		}
		if len(r.Errors) != 1 {
			t.Errorf("run %d: the run's note is not in the log: %v", r.Run, r.Errors)
		}
	}
	if first.Violation.Name != "lost" || first.Example != "c-us-east-001 never got ev-1" || first.MinimalViolation.Count != 3 {
		t.Fatalf("violation %+v (%q), minimal %+v", first.Violation, first.Example, first.MinimalViolation)
	}
	if len(first.FaultsAfter) != 1 || !strings.HasPrefix(first.FaultsAfter[0], "redis-blip ") || len(first.FaultsBefore) < len(first.FaultsAfter) {
		t.Fatalf("faults %v → %v", first.FaultsBefore, first.FaultsAfter)
	}
	// The files of a failing run.
	dir := first.Dir
	for _, f := range []string{"original/history.jsonl", "original/report.json", "original/report.html", "original/junit.xml",
		"minimal/history.jsonl", "minimal/report.json", "minimal/report.html", "minimal/junit.xml",
		"minimal.yaml", "original.yaml", "replay.txt", "summary.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s not written: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "shrink")); !os.IsNotExist(err) {
		t.Errorf("the shrink's attempts are left behind: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "minimal", "report.json")); string(b) != "1 faults\n" {
		t.Errorf("minimal/ is not the last failing attempt of the minimal scenario: %q", b)
	}
	min, err := scenario.Load(filepath.Join(dir, "minimal.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(min.Timeline) != 1 || min.Seed != first.Seed || min.Name != Name(1, first.Run) {
		t.Fatalf("minimal.yaml: %d faults, seed %d (want %d), name %s", len(min.Timeline), min.Seed, first.Seed, min.Name)
	}
	abs, _ := filepath.Abs(filepath.Join(dir, "minimal.yaml"))
	if b, _ := os.ReadFile(filepath.Join(dir, "replay.txt")); string(b) != fmt.Sprintf("geolab run %s --seed %d\n", abs, first.Seed) {
		t.Errorf("replay.txt: %q", b)
	}
	// A later run failing the same way is kept, not shrunk again.
	for _, f := range sum.Failures[1:] {
		if f.Shrunk || !strings.Contains(f.NotShrunk, fmt.Sprintf("shrunk in run %d", first.Run)) || len(f.FaultsAfter) != len(f.FaultsBefore) {
			t.Errorf("run %d: shrunk %v (%s)", f.Run, f.Shrunk, f.NotShrunk)
		}
	}
	var back Summary
	b, err := os.ReadFile(filepath.Join(opts.OutDir, "summary.json"))
	if err != nil || json.Unmarshal(b, &back) != nil || back.Failing != sum.Failing || len(back.RunLog) != 6 {
		t.Fatalf("summary.json: %v\n%s", err, b)
	}
	if !strings.Contains(string(b), `"min_duration": "15s"`) {
		t.Errorf("summary.json's bounds are not in Go durations:\n%s", b)
	}
	// Progress: the state before every line, the run's own lines too.
	p := progress.String()
	for _, want := range []string{"[explore runs done 0/6 | 0 failing | run 1] run 1 (explore-1-1, seed ",
		"[explore runs done 0/6 | 0 failing | run 1] t=  1s/", "| shrink run ", "candidate 1/", "try 1/3", "VIOLATION lost (G5–G8) ×"} {
		if !strings.Contains(p, want) {
			t.Errorf("progress has no %q:\n%s", want, p)
		}
	}
	var out bytes.Buffer
	sum.Print(&out)
	for _, want := range []string{"lost (G5–G8) ×", "faults before (", "faults after  (1): redis-blip", "runs to first failure: ", "replay: geolab run "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the printed summary has no %q:\n%s", want, out.String())
		}
	}
}

// The budget ends the exploration and, by default, the shrink.
func TestExploreStopsAtTheBudget(t *testing.T) {
	plays := 0
	opts := exploreOptions(t, &plays)
	opts.Runs, opts.Budget = 0, 5*time.Minute
	now := time.Unix(0, 0)
	opts.Now = func() time.Time { return now }
	play := opts.Play
	opts.Play = func(ctx context.Context, sc *scenario.Scenario, out, work string, p io.Writer) (*run.Outcome, error) {
		now = now.Add(time.Minute)
		return play(ctx, sc, out, work, p)
	}
	sum, err := Explore(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Stopped != StoppedBudget || plays != 5 || sum.ElapsedSeconds != 300 {
		t.Fatalf("stopped %q after %d plays, %gs", sum.Stopped, plays, sum.ElapsedSeconds)
	}
	if sum.RunsLimit != MaxRuns {
		t.Fatalf("a budget alone: runs limit %d, want %d", sum.RunsLimit, MaxRuns)
	}
}

// A run that could not be carried out stops the exploration with an
// error; the summary says where.
func TestExploreStopsAtALabError(t *testing.T) {
	plays := 0
	opts := exploreOptions(t, &plays)
	opts.Bounds.Kinds = []string{"latency"}
	opts.Play = func(_ context.Context, sc *scenario.Scenario, out, _ string, _ io.Writer) (*run.Outcome, error) {
		plays++
		if plays == 2 {
			return nil, errors.New("lab did not start")
		}
		return &run.Outcome{Result: &check.Result{}}, nil
	}
	sum, err := Explore(context.Background(), opts)
	if err == nil || !strings.Contains(err.Error(), "run 2") || sum.Stopped != StoppedLabError || sum.LabError != "lab did not start" || len(sum.RunLog) != 2 {
		t.Fatalf("err %v, summary %+v", err, sum)
	}
	if _, err := os.Stat(filepath.Join(opts.OutDir, "summary.json")); err != nil {
		t.Fatal(err)
	}
}

func TestExploreOptionsAreValidated(t *testing.T) {
	plays := 0
	for _, c := range []struct {
		change func(*Options)
		want   string
	}{
		{func(o *Options) { o.Runs = -1 }, "Runs -1 must be in 1..100000"},
		{func(o *Options) { o.Budget = -time.Second }, "Budget -1s must be in"},
		{func(o *Options) { o.Tries = 21 }, "Tries 21 must be in 1..20"},
		{func(o *Options) { o.Bounds.MaxClients = 0 }, "MaxClients 0"},
		{func(o *Options) { o.OutDir = "" }, "OutDir is required"},
	} {
		opts := exploreOptions(t, &plays)
		c.change(&opts)
		if _, err := Explore(context.Background(), opts); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want %q, got %v", c.want, err)
		}
	}
	if plays != 0 {
		t.Fatalf("%d runs played with bad options", plays)
	}
}

// What an earlier exploration wrote into --out goes; nothing else does.
func TestExploreClearsAnEarlierExplorationOnly(t *testing.T) {
	plays := 0
	opts := exploreOptions(t, &plays)
	opts.Runs, opts.Bounds.Kinds = 1, []string{"latency"}
	for _, p := range []string{"run-999/original/report.json", "summary.json", "keep.txt", "run-notes/a.txt"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(opts.OutDir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(opts.OutDir, p), []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Explore(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(opts.OutDir, "run-999")); !os.IsNotExist(err) {
		t.Errorf("an earlier run directory is left: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(opts.OutDir, "summary.json")); string(b) == "old" {
		t.Error("summary.json is the earlier one")
	}
	for _, p := range []string{"keep.txt", "run-notes/a.txt"} {
		if _, err := os.Stat(filepath.Join(opts.OutDir, p)); err != nil {
			t.Errorf("%s was removed: %v", p, err)
		}
	}
}
