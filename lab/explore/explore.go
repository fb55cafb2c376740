// Package explore is randomized chaos with shrinking (docs/explore.md):
// it draws runs — a workload and a timeline of faults from the whole fault
// book — from a seed, plays each against a real lab, judges it by the
// checker's violations, and shrinks a failing run to a small scenario that
// `geolab run` replays.
//
//	(seed, i) ─▶ Draw ─▶ run.Scenario ─▶ Result.Violations()
//	                                       └─ one? ─▶ Shrink (candidates × tries) ─▶ minimal.yaml, replay.txt, summary.json
package explore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/geolab/geolab/internal/fielderr"
	"github.com/geolab/geolab/lab"
	"github.com/geolab/geolab/lab/check"
	"github.com/geolab/geolab/lab/run"
	"github.com/geolab/geolab/lab/scenario"
	"github.com/geolab/geolab/lab/topology"
)

// Defaults and bounds of an exploration.
const (
	// DefaultRuns is the number of runs when neither runs nor a budget is
	// given.
	DefaultRuns = 10
	// MaxRuns bounds the runs, also of an exploration bounded by its
	// budget alone.
	MaxRuns = 100_000
	// MaxBudget bounds the budget (and the shrink budget): 30 days.
	MaxBudget = 30 * 24 * time.Hour
	// DefaultShrinkBudget bounds a shrink when no budget is given.
	DefaultShrinkBudget = 10 * time.Minute
	// DefaultTries is how many times a candidate is played before it
	// counts as passing.
	DefaultTries = 3
	// MaxTries bounds Tries.
	MaxTries = 20
)

// Play plays one scenario, writing its reports into outDir (workDir: the
// lab's logs and data, "" for a temporary one), with run's live progress
// on progress (nil: none). The default is run.Scenario.
type Play func(ctx context.Context, sc *scenario.Scenario, outDir, workDir string, progress io.Writer) (*run.Outcome, error)

// Options configure an exploration.
type Options struct {
	Topology *topology.Topology
	// TopologyPath is written into every scenario; make it absolute, so
	// that minimal.yaml replays from anywhere.
	TopologyPath string
	Seed         int64
	// Runs bounds the runs (0: DefaultRuns, or MaxRuns with a Budget).
	Runs int
	// Budget bounds the exploration's time (0: none). A run started
	// before it ends is played to its end.
	Budget time.Duration
	// ShrinkBudget bounds each shrink (0: what is left of Budget, or
	// DefaultShrinkBudget without one).
	ShrinkBudget time.Duration
	// Tries is how many times a candidate is played at most (0:
	// DefaultTries).
	Tries  int
	Bounds Bounds
	// GatewayArgs go into every drawn scenario's gateway_args.
	GatewayArgs []string
	// OutDir receives a directory per failing run (run-NNN) and
	// summary.json; those of an earlier exploration there are removed first.
	OutDir string
	// WorkDir, when set, holds a directory per run for the lab's logs and
	// Redis data, kept; empty: temporary ones, removed.
	WorkDir string
	// Lab options of every run (binary, logger); WorkDir is set per run.
	Lab lab.Options
	// Command is the command line, shown in the reports.
	Command string
	// Replay is the command that replays a minimal scenario file with a
	// seed (default: geolab run PATH --seed N).
	Replay func(path string, seed int64) string
	// Progress receives live progress lines (nil: none).
	Progress io.Writer
	// Logger receives the runs' own logs (default: discarded).
	Logger *slog.Logger
	// Play plays a scenario (default: run.Scenario against a real lab).
	Play Play
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// validate names the first option out of bounds, as a *fielderr.Error.
func (o *Options) validate() error {
	switch {
	case o.Topology == nil:
		return fielderr.Missing("Topology", "(a topology file)")
	case o.Runs < 0 || o.Runs > MaxRuns:
		return fielderr.New("Runs", o.Runs, "must be in", fmt.Sprintf("1..%d", MaxRuns))
	case o.Budget < 0 || o.Budget > MaxBudget:
		return fielderr.New("Budget", o.Budget, "must be in", "0.."+MaxBudget.String())
	case o.ShrinkBudget < 0 || o.ShrinkBudget > MaxBudget:
		return fielderr.New("ShrinkBudget", o.ShrinkBudget, "must be in", "0.."+MaxBudget.String())
	case o.Tries < 0 || o.Tries > MaxTries:
		return fielderr.New("Tries", o.Tries, "must be in", fmt.Sprintf("1..%d", MaxTries))
	case o.OutDir == "":
		return fielderr.Missing("OutDir", "")
	}
	return o.Bounds.Validate()
}

// Summary is what an exploration did and found; summary.json holds it.
type Summary struct {
	Topology     string         `json:"topology"`
	TopologyPath string         `json:"topology_path"`
	Seed         int64          `json:"seed"`
	Out          string         `json:"out"`
	Command      string         `json:"command,omitempty"`
	RunsLimit    int            `json:"runs_limit"`
	Budget       string         `json:"budget,omitempty"`
	Tries        int            `json:"tries"`
	Bounds       map[string]any `json:"bounds"`
	Kinds        []string       `json:"kinds"`
	// Runs counts the runs played, Failing those that showed a violation.
	Runs    int `json:"runs"`
	Failing int `json:"failing"`
	// RunsToFirstFailure is the number of the first failing run (0: none);
	// FirstFailureSeconds the time from the start to the end of that run.
	RunsToFirstFailure  int     `json:"runs_to_first_failure"`
	FirstFailureSeconds float64 `json:"first_failure_seconds,omitempty"`
	ElapsedSeconds      float64 `json:"elapsed_seconds"`
	// Stopped says why the exploration ended.
	Stopped string `json:"stopped"`
	// LabError is a run that could not be carried out (the exploration
	// stopped there).
	LabError string      `json:"lab_error,omitempty"`
	RunLog   []RunRecord `json:"run_log"`
	Failures []*Failure  `json:"failures"`
}

// RunRecord is one run of the exploration.
type RunRecord struct {
	Run        int               `json:"run"`
	Name       string            `json:"name"`
	Seed       int64             `json:"seed"`
	Digest     string            `json:"digest,omitempty"`
	Workload   string            `json:"workload"`
	Faults     []string          `json:"faults"`
	Violations []check.Violation `json:"violations"`
	// Errors are faults that could not be injected or healed, quiesce
	// failures: kept here, never counted as violations.
	Errors  []string `json:"errors,omitempty"`
	Error   string   `json:"error,omitempty"` // the run could not be carried out
	Seconds float64  `json:"seconds"`
}

// Failure is a failing run and its shrink.
type Failure struct {
	Run  int    `json:"run"`
	Name string `json:"name"`
	Dir  string `json:"dir"`
	// Seed is the workload's seed (the replay's --seed).
	Seed int64 `json:"seed"`
	// Violation is the one shrunk: the first of the run's violations, with
	// the first example of it; Violations are all of them.
	Violation  check.Violation   `json:"violation"`
	Example    string            `json:"example,omitempty"`
	Violations []check.Violation `json:"violations"`
	// Minimal: the violation in the last failing attempt of the minimal
	// scenario.
	MinimalViolation check.Violation `json:"minimal_violation"`
	MinimalExample   string          `json:"minimal_example,omitempty"`
	FaultsBefore     []string        `json:"faults_before"`
	FaultsAfter      []string        `json:"faults_after"`
	WorkloadBefore   string          `json:"workload_before"`
	WorkloadAfter    string          `json:"workload_after"`
	// Shrunk is false when the violation was already shrunk in an earlier
	// run: then minimal is the original, and NotShrunk says which run.
	Shrunk    bool   `json:"shrunk"`
	NotShrunk string `json:"not_shrunk,omitempty"`
	Shrink    struct {
		Steps    []string `json:"steps"`
		Judged   int      `json:"candidates_judged"`
		Skipped  int      `json:"candidates_skipped"` // the same scenario had passed before
		Attempts int      `json:"attempts"`
		Seconds  float64  `json:"seconds"`
		Stopped  string   `json:"stopped"`
		Errors   []string `json:"errors,omitempty"`
	} `json:"shrink"`
	RunsToFirstFailure int     `json:"runs_to_first_failure"`
	FoundSeconds       float64 `json:"found_seconds"`
	ElapsedSeconds     float64 `json:"elapsed_seconds"`
	MinimalYAML        string  `json:"minimal_yaml"`
	Replay             string  `json:"replay"`
}

// Why an exploration stopped.
const (
	StoppedRuns        = "runs done"
	StoppedBudget      = "budget spent"
	StoppedInterrupted = "interrupted"
	StoppedLabError    = "lab error"
)

// explorer is one exploration in progress.
type explorer struct {
	opts     Options
	sum      *Summary
	start    time.Time
	deadline time.Time // of the budget; zero: none
	status   *status
	shrunk   map[string]int // violation name → the run that shrank it
}

// Explore plays runs 1, 2, … drawn from (Seed, i) until Runs were played,
// the Budget is spent or ctx ends, and shrinks each failing run. It returns
// the summary (also written to OutDir/summary.json) and an error when a
// run could not be carried out or the outputs could not be written; the
// summary then says how far it got.
func Explore(ctx context.Context, opts Options) (*Summary, error) {
	if opts.Tries == 0 {
		opts.Tries = DefaultTries
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if opts.Runs == 0 {
		opts.Runs = DefaultRuns
		if opts.Budget > 0 {
			opts.Runs = MaxRuns
		}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Replay == nil {
		opts.Replay = func(path string, seed int64) string { return fmt.Sprintf("geolab run %s --seed %d", path, seed) }
	}
	if opts.Play == nil {
		opts.Play = opts.playRun
	}
	if err := cleanOut(opts.OutDir); err != nil {
		return nil, fmt.Errorf("explore: %w", err)
	}
	x := &explorer{opts: opts, start: opts.Now(), shrunk: map[string]int{}}
	if opts.Budget > 0 {
		x.deadline = x.start.Add(opts.Budget)
	}
	x.sum = &Summary{Topology: opts.Topology.Name, TopologyPath: opts.TopologyPath, Seed: opts.Seed, Out: opts.OutDir,
		Command: opts.Command, RunsLimit: opts.Runs, Tries: opts.Tries, Bounds: opts.Bounds.Fields(),
		Kinds: KindsFor(opts.Topology, opts.Bounds), RunLog: []RunRecord{}, Failures: []*Failure{}}
	if opts.Budget > 0 {
		x.sum.Budget = opts.Budget.String()
	}
	x.status = &status{w: opts.Progress, x: x}
	runErr := x.loop(ctx)
	x.sum.ElapsedSeconds = x.since()
	if err := writeJSON(filepath.Join(opts.OutDir, "summary.json"), x.sum); err != nil {
		return x.sum, errors.Join(runErr, err)
	}
	return x.sum, runErr
}

func (x *explorer) since() float64 { return x.opts.Now().Sub(x.start).Seconds() }

// budgetOver reports whether the exploration's budget is spent.
func (x *explorer) budgetOver() bool {
	return !x.deadline.IsZero() && !x.opts.Now().Before(x.deadline)
}

func (x *explorer) loop(ctx context.Context) error {
	o := x.opts
	for i := 1; i <= o.Runs; i++ {
		if ctx.Err() != nil {
			x.sum.Stopped = StoppedInterrupted
			return nil
		}
		if x.budgetOver() {
			x.sum.Stopped = StoppedBudget
			return nil
		}
		sc := Draw(o.Topology, o.TopologyPath, o.Seed, i, o.Bounds)
		sc.GatewayArgs = slices.Clone(o.GatewayArgs)
		dir := filepath.Join(o.OutDir, fmt.Sprintf("run-%03d", i))
		rec := RunRecord{Run: i, Name: sc.Name, Seed: sc.Seed, Workload: WorkloadWords(sc.Workload), Faults: faultList(sc)}
		x.status.phase(fmt.Sprintf("run %d", i))
		x.status.event("run %d (%s, seed %d): %s; faults: %s", i, sc.Name, sc.Seed, rec.Workload, orNone(rec.Faults))
		began := o.Now()
		out, err := o.Play(ctx, sc, filepath.Join(dir, "original"), x.workDir(i, 0), x.status)
		rec.Seconds = o.Now().Sub(began).Seconds()
		x.sum.Runs = i
		x.status.counts(x.sum.Runs, x.sum.Failing)
		if err != nil {
			rec.Error = err.Error()
			x.sum.RunLog = append(x.sum.RunLog, rec)
			_ = os.RemoveAll(dir)
			if ctx.Err() != nil {
				x.sum.Stopped = StoppedInterrupted
				return nil
			}
			x.sum.Stopped, x.sum.LabError = StoppedLabError, err.Error()
			x.status.event("run %d could not be carried out: %v", i, err)
			return fmt.Errorf("explore: run %d (%s): %w", i, sc.Name, err)
		}
		rec.Digest, rec.Errors = out.Digest, out.Errors
		rec.Violations = out.Result.Violations()
		if rec.Violations == nil {
			rec.Violations = []check.Violation{}
		}
		x.sum.RunLog = append(x.sum.RunLog, rec)
		for _, e := range out.Errors {
			x.status.event("run %d: note: %s", i, e)
		}
		if len(rec.Violations) == 0 {
			x.status.event("run %d: no violation (%.0fs)", i, rec.Seconds)
			_ = os.RemoveAll(dir)
			continue
		}
		x.sum.Failing++
		x.status.counts(x.sum.Runs, x.sum.Failing)
		if x.sum.RunsToFirstFailure == 0 {
			x.sum.RunsToFirstFailure, x.sum.FirstFailureSeconds = i, x.since()
		}
		x.status.event("run %d: VIOLATION %s", i, violationWords(rec.Violations))
		f, err := x.failure(ctx, i, dir, sc, out)
		if f != nil {
			x.sum.Failures = append(x.sum.Failures, f)
		}
		if err != nil {
			x.sum.Stopped = StoppedLabError
			return err
		}
	}
	x.sum.Stopped = StoppedRuns
	if ctx.Err() != nil {
		x.sum.Stopped = StoppedInterrupted
	}
	return nil
}

// workDir is the lab's directory of run i's attempt k (0: the run itself),
// kept under Options.WorkDir; "" without one (temporary, removed).
func (x *explorer) workDir(i, k int) string {
	if x.opts.WorkDir == "" {
		return ""
	}
	name := fmt.Sprintf("run-%03d", i)
	if k > 0 {
		name += fmt.Sprintf("-attempt-%03d", k)
	}
	return filepath.Join(x.opts.WorkDir, name)
}

// failure shrinks failing run i (its reports in dir/original) and writes
// dir/minimal/, minimal.yaml, original.yaml, replay.txt and summary.json.
func (x *explorer) failure(ctx context.Context, i int, dir string, sc *scenario.Scenario, out *run.Outcome) (*Failure, error) {
	o := x.opts
	vs := out.Result.Violations()
	f := &Failure{Run: i, Name: sc.Name, Dir: dir, Seed: sc.Seed, Violation: vs[0], Example: example(out.Result, vs[0].Name),
		Violations: vs, FaultsBefore: faultList(sc), WorkloadBefore: WorkloadWords(sc.Workload),
		RunsToFirstFailure: x.sum.RunsToFirstFailure, FoundSeconds: x.since()}
	minimal, best, bestOut := sc, filepath.Join(dir, "original"), out
	shrinkStart := o.Now()
	if prev, done := x.shrunk[f.Violation.Name]; done {
		f.NotShrunk = fmt.Sprintf("%s was shrunk in run %d", f.Violation.Name, prev)
		f.Shrink.Stopped = "not shrunk: " + f.NotShrunk
		x.status.event("run %d: not shrunk (%s)", i, f.NotShrunk)
	} else {
		x.shrunk[f.Violation.Name] = i
		f.Shrunk = true
		deadline := shrinkStart.Add(x.shrinkBudget())
		target := f.Violation.Name
		steps, attempts := 0, 0
		judge := func(ctx context.Context, c Candidate, k, n int) (bool, error) {
			fails, err := anyTry(ctx, o.Tries, deadline, o.Now, func(ctx context.Context, try int) (bool, error) {
				attempts++
				adir := filepath.Join(dir, "shrink", fmt.Sprintf("attempt-%03d", attempts))
				x.status.phase(fmt.Sprintf("shrink run %d: step %d, candidate %d/%d, try %d/%d", i, steps+1, k, n, try, o.Tries))
				x.status.shrinkDeadline(deadline)
				ao, err := o.Play(ctx, c.Scenario, adir, x.workDir(i, attempts), x.status)
				if err != nil {
					_ = os.RemoveAll(adir)
					return false, err
				}
				for _, e := range ao.Errors {
					x.status.event("shrink run %d: note: %s", i, e)
				}
				if hasViolation(ao.Result, target) {
					if best != filepath.Join(dir, "original") {
						_ = os.RemoveAll(best)
					}
					best, bestOut = adir, ao
					return true, nil
				}
				_ = os.RemoveAll(adir)
				return false, nil
			})
			verdict := "passes"
			if fails {
				verdict, steps = "FAILS: taken", steps+1
			} else if err != nil {
				verdict = "could not be judged: " + err.Error()
			}
			x.status.event("shrink run %d: candidate %d/%d %s: %s", i, k, n, c.What, verdict)
			return fails, err
		}
		sh := Shrink(ctx, sc, judge, ShrinkOptions{Deadline: deadline, Now: o.Now})
		x.status.shrinkDeadline(time.Time{})
		minimal = sh.Minimal
		f.Shrink.Steps, f.Shrink.Judged, f.Shrink.Skipped, f.Shrink.Attempts = sh.Steps, sh.Judged, sh.Skipped, attempts
		f.Shrink.Stopped, f.Shrink.Errors = sh.Stopped, sh.Errors
	}
	if f.Shrink.Steps == nil {
		f.Shrink.Steps = []string{}
	}
	f.Shrink.Seconds = o.Now().Sub(shrinkStart).Seconds()
	f.FaultsAfter, f.WorkloadAfter = faultList(minimal), WorkloadWords(minimal.Workload)
	f.MinimalViolation = violationOf(bestOut.Result, f.Violation.Name)
	f.MinimalExample = example(bestOut.Result, f.Violation.Name)
	var errs []error
	if best == filepath.Join(dir, "original") {
		errs = append(errs, copyFiles(best, filepath.Join(dir, "minimal")))
	} else {
		errs = append(errs, os.Rename(best, filepath.Join(dir, "minimal")))
	}
	_ = os.RemoveAll(filepath.Join(dir, "shrink"))
	for name, s := range map[string]*scenario.Scenario{"original.yaml": sc, "minimal.yaml": minimal} {
		b, err := scenario.Marshal(s)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, name), b, 0o644)
		}
		errs = append(errs, err)
	}
	f.MinimalYAML = filepath.Join(dir, "minimal.yaml")
	abs, err := filepath.Abs(f.MinimalYAML)
	errs = append(errs, err)
	f.Replay = o.Replay(abs, minimal.Seed)
	errs = append(errs, os.WriteFile(filepath.Join(dir, "replay.txt"), []byte(f.Replay+"\n"), 0o644))
	f.ElapsedSeconds = x.since()
	errs = append(errs, writeJSON(filepath.Join(dir, "summary.json"), f))
	x.status.event("run %d: %s ×%d, faults %d → %d, replay: %s", i, f.Violation.Name, f.MinimalViolation.Count,
		len(f.FaultsBefore), len(f.FaultsAfter), f.Replay)
	if err := errors.Join(errs...); err != nil {
		return f, fmt.Errorf("explore: run %d: writing the outputs: %w", i, err)
	}
	return f, nil
}

// shrinkBudget is ShrinkBudget, else what is left of the budget, else
// DefaultShrinkBudget.
func (x *explorer) shrinkBudget() time.Duration {
	switch {
	case x.opts.ShrinkBudget > 0:
		return x.opts.ShrinkBudget
	case !x.deadline.IsZero():
		return max(x.deadline.Sub(x.opts.Now()), 0)
	}
	return DefaultShrinkBudget
}

// playRun is the default Play: run.Scenario against a real lab.
func (o *Options) playRun(ctx context.Context, sc *scenario.Scenario, outDir, workDir string, progress io.Writer) (*run.Outcome, error) {
	lopts := o.Lab
	if workDir != "" {
		lopts.WorkDir, lopts.KeepWorkDir = workDir, true
		if err := os.MkdirAll(workDir, 0o755); err != nil {
			return nil, err
		}
	}
	if lopts.Logger == nil {
		lopts.Logger = o.Logger
	}
	var p io.Writer
	if o.Progress != nil {
		p = progress
	}
	return run.Scenario(ctx, sc, run.Options{OutDir: outDir, Progress: p, Command: o.Command, Lab: lopts, Logger: o.Logger})
}

func faultList(sc *scenario.Scenario) []string {
	out := []string{}
	for _, st := range sc.Timeline {
		out = append(out, FaultWords(st))
	}
	return out
}

func orNone(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, "; ")
}

func violationWords(vs []check.Violation) string {
	var out []string
	for _, v := range vs {
		out = append(out, fmt.Sprintf("%s (%s) ×%d", v.Name, v.Guarantee, v.Count))
	}
	return strings.Join(out, ", ")
}

func hasViolation(r *check.Result, name string) bool { return violationOf(r, name).Count > 0 }

func violationOf(r *check.Result, name string) check.Violation {
	if r == nil {
		return check.Violation{Name: name}
	}
	for _, v := range r.Violations() {
		if v.Name == name {
			return v
		}
	}
	return check.Violation{Name: name}
}

// example is the first example text of a finding, "" when none.
func example(r *check.Result, name string) string {
	if r == nil || len(r.Examples[name]) == 0 {
		return ""
	}
	return r.Examples[name][0].Text
}

func writeJSON(path string, v any) error {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // "us-east<->us-west" as it reads
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// runDir is the name of a run's directory in OutDir.
var runDir = regexp.MustCompile(`^run-[0-9]{3,}$`)

// cleanOut makes dir, and removes what an earlier exploration wrote there
// (its run-NNN directories and summary.json), so that every failing run in
// it is of this exploration. Nothing else in it is touched.
func cleanOut(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if (e.IsDir() && runDir.MatchString(e.Name())) || (!e.IsDir() && e.Name() == "summary.json") {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// copyFiles copies the regular files of from into a new directory to.
func copyFiles(from, to string) error {
	if err := os.MkdirAll(to, 0o755); err != nil {
		return err
	}
	ents, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// status prints the live progress: events as they happen, and every line
// of a run's own progress, each behind the exploration's state (runs done,
// violations found, time left, phase). Its Write takes a run's progress.
type status struct {
	w             io.Writer
	x             *explorer
	mu            sync.Mutex
	buf           []byte
	ph            string
	shrinkBy      time.Time
	runs, failing int
}

// counts sets the runs done and the failing runs shown.
func (s *status) counts(runs, failing int) {
	s.mu.Lock()
	s.runs, s.failing = runs, failing
	s.mu.Unlock()
}

func (s *status) phase(p string) {
	s.mu.Lock()
	s.ph = p
	s.mu.Unlock()
}

func (s *status) shrinkDeadline(t time.Time) {
	s.mu.Lock()
	s.shrinkBy = t
	s.mu.Unlock()
}

// prefix is the state, e.g. "[run 3/10 | 1 failing | 7m12s left | shrink run 3: …]"; s.mu held.
func (s *status) prefix() string {
	x := s.x
	runs := fmt.Sprintf("%d", s.runs)
	if x.opts.Runs < MaxRuns {
		runs += fmt.Sprintf("/%d", x.opts.Runs)
	}
	parts := []string{"runs done " + runs, fmt.Sprintf("%d failing", s.failing)}
	now := x.opts.Now()
	if !x.deadline.IsZero() {
		parts = append(parts, fmt.Sprintf("%s left", max(x.deadline.Sub(now), 0).Round(time.Second)))
	}
	if !s.shrinkBy.IsZero() {
		parts = append(parts, fmt.Sprintf("shrink %s left", max(s.shrinkBy.Sub(now), 0).Round(time.Second)))
	}
	if s.ph != "" {
		parts = append(parts, s.ph)
	}
	return "[explore " + strings.Join(parts, " | ") + "]"
}

func (s *status) event(format string, args ...any) {
	if s.w == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.w, "%s %s\n", s.prefix(), fmt.Sprintf(format, args...))
}

// Write takes a run's progress and prints each whole non-empty line of it
// behind the state.
func (s *status) Write(p []byte) (int, error) {
	if s.w == nil {
		return len(p), nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf = append(s.buf, p...)
	for {
		i := slices.Index(s.buf, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimSpace(string(s.buf[:i]))
		s.buf = s.buf[i+1:]
		if line != "" {
			fmt.Fprintf(s.w, "%s %s\n", s.prefix(), line)
		}
	}
	return len(p), nil
}

// Print writes the summary for a person: one paragraph per failing run.
func (s *Summary) Print(w io.Writer) {
	fmt.Fprintf(w, "\ngeolab explore %s seed %d: %d run(s) in %s, %d failing (%s)\n", s.Topology, s.Seed, s.Runs,
		(time.Duration(s.ElapsedSeconds * float64(time.Second))).Round(time.Second), s.Failing, s.Stopped)
	if s.LabError != "" {
		fmt.Fprintf(w, "  lab error: %s\n", s.LabError)
	}
	for _, r := range s.RunLog {
		for _, e := range r.Errors {
			fmt.Fprintf(w, "  run %d note: %s\n", r.Run, e)
		}
	}
	if len(s.Failures) == 0 {
		fmt.Fprintf(w, "  no violation found; summary in %s\n", filepath.Join(s.Out, "summary.json"))
		return
	}
	for _, f := range s.Failures {
		fmt.Fprintf(w, "\nrun %d (%s, seed %d): %s (%s) ×%d in the original, ×%d in the minimal run\n", f.Run, f.Name, f.Seed,
			f.Violation.Name, f.Violation.Guarantee, f.Violation.Count, f.MinimalViolation.Count)
		if ex := firstNonEmpty(f.MinimalExample, f.Example); ex != "" {
			fmt.Fprintf(w, "  e.g. %s\n", ex)
		}
		if len(f.Violations) > 1 {
			fmt.Fprintf(w, "  all violations of the original: %s\n", violationWords(f.Violations))
		}
		fmt.Fprintf(w, "  faults before (%d): %s\n", len(f.FaultsBefore), orNone(f.FaultsBefore))
		fmt.Fprintf(w, "  faults after  (%d): %s\n", len(f.FaultsAfter), orNone(f.FaultsAfter))
		fmt.Fprintf(w, "  workload before: %s\n  workload after:  %s\n", f.WorkloadBefore, f.WorkloadAfter)
		if f.Shrunk {
			skipped := ""
			if f.Shrink.Skipped > 0 {
				skipped = fmt.Sprintf(" (%d more skipped: the same scenario had passed)", f.Shrink.Skipped)
			}
			fmt.Fprintf(w, "  shrink: %d step(s), %d candidate(s) judged%s in %d attempt(s), %s (%s)\n", len(f.Shrink.Steps),
				f.Shrink.Judged, skipped, f.Shrink.Attempts, (time.Duration(f.Shrink.Seconds * float64(time.Second))).Round(time.Second), f.Shrink.Stopped)
		} else {
			fmt.Fprintf(w, "  not shrunk: %s\n", f.NotShrunk)
		}
		fmt.Fprintf(w, "  runs to first failure: %d; found after %s, done after %s\n", f.RunsToFirstFailure,
			(time.Duration(f.FoundSeconds * float64(time.Second))).Round(time.Second),
			(time.Duration(f.ElapsedSeconds * float64(time.Second))).Round(time.Second))
		fmt.Fprintf(w, "  reports: %s/{original,minimal}/; scenario %s\n  replay: %s\n", f.Dir, f.MinimalYAML, f.Replay)
	}
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
