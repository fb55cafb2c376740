// Package report writes what a scenario run found as the three artefacts a
// release manager reads and attaches, and CI parses:
//
//	topology → provider → proxies → faults → history → check → report
//	                                                     │
//	                  report.json  (everything, for machines and for re-rendering)
//	                  junit.xml    (one testcase per expectation, for CI)
//	                  report.html  (one self-contained page: verdict, counts, charts)
//
// A report shows an Input: the scenario's identity, the checker's Result and
// one Outcome per expectation. It judges nothing itself: the run passed iff
// every Outcome passed (Input.Passed), and the three files always agree on
// that verdict. Every writer replaces its file whole (write to a temporary
// file, then rename), so a reader never sees half a report.
package report

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/geolab/geolab/lab/check"
	"github.com/geolab/geolab/lab/history"
)

// Input is everything a report shows.
type Input struct {
	Scenario    string    `json:"scenario"`    // the scenario's name
	Description string    `json:"description"` // what the scenario reproduces (may be multi-line)
	Topology    string    `json:"topology"`
	Seed        int64     `json:"seed"`
	Started     time.Time `json:"started"`
	Command     string    `json:"command"` // the command line that produced the run
	// Result is what the checker found; nil renders as a run with no data.
	Result *check.Result `json:"result"`
	// Outcomes holds one verdict per expectation, in the scenario file's order.
	Outcomes []Outcome `json:"outcomes"`
	// Agents are the workload agents the clients ran in, each with its
	// clock's offset to the controller and that estimate's bound
	// (docs/agents.md); empty when they ran in the controller's process.
	Agents []history.AgentClock `json:"agents,omitempty"`
}

// CrossAgentBound is how far a time difference between records of two
// agents (a publish on one, its delivery on another) can be off for their
// clocks: the two largest bounds added; with one agent, its bound (against
// the controller's own clients, the probes). 0 without agents.
func (in Input) CrossAgentBound() time.Duration {
	var b1, b2 time.Duration
	for _, a := range in.Agents {
		b := time.Duration(a.Bound)
		switch {
		case b > b1:
			b1, b2 = b, b1
		case b > b2:
			b2 = b
		}
	}
	return b1 + b2
}

// Outcome is one expectation's verdict.
type Outcome struct {
	Expr  string  `json:"expr"`  // e.g. "cross_region_p99{us-east,eu-west} <= 400ms"
	Value float64 `json:"value"` // the metric's value (seconds for durations); NaN when it has none
	Pass  bool    `json:"pass"`
	// Message says why, e.g. "cross_region_p99{us-east,eu-west} = 0.212s, want <= 0.4s".
	Message string `json:"message"`
}

// Passed reports whether every outcome passed; a scenario with no
// expectations passes.
func (in Input) Passed() bool {
	for _, o := range in.Outcomes {
		if !o.Pass {
			return false
		}
	}
	return true
}

// failures counts the outcomes that did not pass.
func (in Input) failures() int {
	n := 0
	for _, o := range in.Outcomes {
		if !o.Pass {
			n++
		}
	}
	return n
}

// result returns in.Result, or an empty Result when there is none, so that
// the writers never have to check.
func (in Input) result() *check.Result {
	if in.Result != nil {
		return in.Result
	}
	return &check.Result{}
}

// The artefacts' file names inside a run's directory.
const (
	JSONFile  = "report.json"
	JUnitFile = "junit.xml"
	HTMLFile  = "report.html"
)

// WriteAll writes report.json, junit.xml and report.html into dir, creating
// it if needed. It writes all three even when one fails and returns the
// first error.
func WriteAll(dir string, in Input) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report: create %s: %w", dir, err)
	}
	var first error
	for _, w := range []struct {
		name  string
		write func(string, Input) error
	}{
		{JSONFile, WriteJSON},
		{JUnitFile, WriteJUnit},
		{HTMLFile, WriteHTML},
	} {
		if err := w.write(filepath.Join(dir, w.name), in); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// writeFile replaces path with data: it writes a temporary file beside it
// and renames it into place.
func writeFile(path string, data []byte) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".*")
	if err != nil {
		return fmt.Errorf("report: write %s: %w", path, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("report: write %s: %w", path, err)
	}
	return nil
}
