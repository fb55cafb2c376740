// Package scenario reads scenario files: a topology, a workload, a timeline
// of faults at offsets and the expectations a run must meet — an incident
// written down so that it can be replayed with a seed (docs/scenarios.md).
//
//	scenario.yaml ─▶ Parse (field and line errors) ─▶ Scenario ─▶ lab/run
package scenario

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/geolab/geolab/lab/expect"
	"github.com/geolab/geolab/lab/fault"
	"github.com/geolab/geolab/lab/topology"
	"github.com/geolab/geolab/lab/workload"
)

// Scenario is one parsed, validated scenario file.
type Scenario struct {
	Name        string
	Description string
	// TopologyPath is the topology file, resolved against the scenario's
	// directory; Topology is that file parsed.
	TopologyPath string
	Topology     *topology.Topology
	Seed         int64
	// GatewayArgs are extra flags for every gateway (docs/gateway.md).
	GatewayArgs []string
	Workload    workload.Spec
	Timeline    []Step
	Expect      []expect.Expectation
}

// Step is a fault injected At after the workload starts. Faults without a
// duration are healed when publishing ends; every fault is healed before the
// run quiesces.
type Step struct {
	At    time.Duration
	Fault fault.Spec
	Line  int
}

// file is the YAML layout.
type file struct {
	Name        string        `yaml:"name"`
	Description string        `yaml:"description"`
	Topology    string        `yaml:"topology"`
	Seed        *int64        `yaml:"seed"`
	GatewayArgs []string      `yaml:"gateway_args"`
	Workload    workload.Spec `yaml:"workload"`
	Timeline    []step        `yaml:"timeline"`
	Expect      []string      `yaml:"expect"`
}

type step struct {
	At         time.Duration `yaml:"at"`
	Fault      string        `yaml:"fault"`
	fault.Spec `yaml:",inline"`
}

// DefaultSeed is the seed of a scenario that names none.
const DefaultSeed = 1

// Parse reads a scenario. dir resolves its topology path; errors name the
// field and the line.
func Parse(data []byte, dir string) (*Scenario, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	if len(root.Content) == 0 {
		return nil, errors.New("scenario: the file is empty")
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("scenario: line %d: want a mapping of name, topology, workload, timeline, expect", doc.Line)
	}
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	s := &Scenario{Name: f.Name, Description: strings.TrimSpace(f.Description), GatewayArgs: f.GatewayArgs,
		Workload: f.Workload, Seed: DefaultSeed}
	if f.Seed != nil {
		s.Seed = *f.Seed
	}
	at := func(path ...any) string { return lineOf(doc, path...) }
	if s.Name == "" {
		return nil, fmt.Errorf("scenario: %sname: required", at())
	}
	if f.Topology == "" {
		return nil, fmt.Errorf("scenario: %stopology: required (a topology file, relative to the scenario)", at())
	}
	s.TopologyPath = f.Topology
	if !filepath.IsAbs(s.TopologyPath) {
		s.TopologyPath = filepath.Join(dir, f.Topology)
	}
	topo, err := topology.Load(s.TopologyPath)
	if err != nil {
		return nil, fmt.Errorf("scenario: %stopology: %w", at("topology"), err)
	}
	s.Topology = topo
	s.Workload.Defaults()
	if err := s.Workload.Validate(); err != nil {
		return nil, fmt.Errorf("scenario: %sworkload.%w", workloadLine(doc, err), err)
	}
	if err := s.Workload.ValidateFor(topo); err != nil {
		return nil, fmt.Errorf("scenario: %sworkload.%w", workloadLine(doc, err), err)
	}
	for i, st := range f.Timeline {
		where := at("timeline", i)
		if st.Spec.Kind != "" {
			return nil, fmt.Errorf("scenario: %stimeline[%d]: the kind is written fault: KIND, not kind: KIND", where, i)
		}
		if st.Fault == "" {
			return nil, fmt.Errorf("scenario: %stimeline[%d].fault: required (e.g. partition)", where, i)
		}
		if st.At < 0 || st.At >= s.Workload.Duration {
			return nil, fmt.Errorf("scenario: %stimeline[%d].at: %s is outside the workload's duration %s", where, i, st.At, s.Workload.Duration)
		}
		spec := st.Spec
		spec.Kind = st.Fault
		if err := fault.Validate(spec, topo); err != nil {
			return nil, fmt.Errorf("scenario: %stimeline[%d]: %w", where, i, err)
		}
		s.Timeline = append(s.Timeline, Step{At: st.At, Fault: spec, Line: nodeAt(doc, "timeline", i).Line})
	}
	if len(f.Expect) == 0 {
		return nil, fmt.Errorf("scenario: %sexpect: at least one expectation (e.g. lost == 0)", at())
	}
	for i, e := range f.Expect {
		x, err := expect.Parse(e)
		if err != nil {
			return nil, fmt.Errorf("scenario: %sexpect[%d]: %w", at("expect", i), i, err)
		}
		s.Expect = append(s.Expect, x)
	}
	return s, nil
}

// Load reads a scenario file.
func Load(path string) (*Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	s, err := Parse(b, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// IsScenario reports whether a YAML document looks like a scenario (it has
// a top-level workload or timeline key) rather than a topology.
func IsScenario(data []byte) bool {
	var m map[string]any
	if yaml.Unmarshal(data, &m) != nil {
		return false
	}
	_, w := m["workload"]
	_, t := m["timeline"]
	_, e := m["expect"]
	return w || t || e
}

// workloadLine is "line N: " for the workload field an error of
// workload.Spec names ("churn.rejoin_after: …"), or for the workload when
// that field is not in the file.
func workloadLine(doc *yaml.Node, err error) string {
	field, _, _ := strings.Cut(err.Error(), ":")
	path := []any{"workload"}
	for _, k := range strings.Split(field, ".") {
		path = append(path, k)
	}
	if n := nodeAt(doc, path...); n != nil {
		return fmt.Sprintf("line %d: ", n.Line)
	}
	return lineOf(doc, "workload")
}

// nodeAt walks a mapping by keys and sequences by indexes; nil when absent.
func nodeAt(n *yaml.Node, path ...any) *yaml.Node {
	for _, p := range path {
		if n == nil {
			return nil
		}
		switch k := p.(type) {
		case string:
			var next *yaml.Node
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == k {
						next = n.Content[i+1]
					}
				}
			}
			n = next
		case int:
			if n.Kind != yaml.SequenceNode || k >= len(n.Content) {
				return nil
			}
			n = n.Content[k]
		}
	}
	return n
}

// lineOf is "line N: " for the node at path, or "" when it is absent.
func lineOf(doc *yaml.Node, path ...any) string {
	if n := nodeAt(doc, path...); n != nil {
		return fmt.Sprintf("line %d: ", n.Line)
	}
	return ""
}
