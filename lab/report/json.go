package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/geolab/geolab/lab/check"
	"github.com/geolab/geolab/lab/history"
)

// document is report.json: the Input with its verdict beside it, identity
// first and the (long) Result last.
type document struct {
	Scenario    string    `json:"scenario"`
	Description string    `json:"description"`
	Topology    string    `json:"topology"`
	Seed        int64     `json:"seed"`
	Started     time.Time `json:"started"`
	Command     string    `json:"command"`
	Passed      bool      `json:"passed"`
	Outcomes    []Outcome `json:"outcomes"`
	// Agents: the workload agents' clocks (absent without agents).
	Agents []history.AgentClock `json:"agents,omitempty"`
	// CrossAgentBound is Input.CrossAgentBound (absent without agents).
	CrossAgentBound history.Duration `json:"cross_agent_bound,omitzero"`
	Result          *check.Result    `json:"result"`
}

// WriteJSON writes report.json: the Input (its Result and Outcomes
// included), indented, with "passed" = in.Passed(). ReadJSON reads it back.
func WriteJSON(path string, in Input) error {
	outcomes := in.Outcomes
	if outcomes == nil {
		outcomes = []Outcome{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // "<= 400ms" stays readable
	err := enc.Encode(document{
		Scenario: in.Scenario, Description: in.Description, Topology: in.Topology, Seed: in.Seed,
		Started: in.Started, Command: in.Command, Passed: in.Passed(), Outcomes: outcomes, Result: in.Result,
		Agents: in.Agents, CrossAgentBound: history.Duration(in.CrossAgentBound()),
	})
	if err != nil {
		return fmt.Errorf("report: encode %s: %w", path, err)
	}
	return writeFile(path, buf.Bytes())
}

// ReadJSON reads a report.json written by WriteJSON, e.g. to render its
// HTML again. The "passed" field is not read back: Input.Passed derives it.
func ReadJSON(path string) (Input, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Input{}, fmt.Errorf("report: read %s: %w", path, err)
	}
	var in Input
	if err := json.Unmarshal(b, &in); err != nil {
		return Input{}, fmt.Errorf("report: decode %s: %w", path, err)
	}
	return in, nil
}

// outcomeJSON is Outcome on the wire: a value that is not a finite number
// (a metric with no samples) is written as null, which JSON can carry.
type outcomeJSON struct {
	Expr    string   `json:"expr"`
	Value   *float64 `json:"value"`
	Pass    bool     `json:"pass"`
	Message string   `json:"message"`
}

// MarshalJSON writes the outcome with "value": null when Value is NaN or
// infinite.
func (o Outcome) MarshalJSON() ([]byte, error) {
	w := outcomeJSON{Expr: o.Expr, Pass: o.Pass, Message: o.Message}
	if !math.IsNaN(o.Value) && !math.IsInf(o.Value, 0) {
		w.Value = &o.Value
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(w); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// UnmarshalJSON reads an outcome; "value": null (or no value) reads as NaN.
func (o *Outcome) UnmarshalJSON(b []byte) error {
	var w outcomeJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*o = Outcome{Expr: w.Expr, Value: math.NaN(), Pass: w.Pass, Message: w.Message}
	if w.Value != nil {
		o.Value = *w.Value
	}
	return nil
}
