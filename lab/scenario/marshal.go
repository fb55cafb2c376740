package scenario

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Marshal writes s as a scenario file that Parse reads back into the same
// Scenario (but for each step's Line). Keys are written in the order of
// docs/scenarios.md, durations as Go durations ("1.5s"), fields left at
// their zero value and marked omitempty are left out. The workload and each
// fault are written field by field from their yaml tags, so that a field
// added to workload.Spec or fault.Spec is written without a change here.
//
// TopologyPath is written as it is: Parse resolves a relative path against
// the directory of the file it reads, so give an absolute path, or one
// relative to where the file will be written.
func Marshal(s *Scenario) ([]byte, error) {
	if s == nil {
		return nil, fmt.Errorf("scenario: marshal: no scenario")
	}
	root := &yaml.Node{Kind: yaml.MappingNode}
	add := func(key string, v *yaml.Node) { root.Content = append(root.Content, scalar(key), v) }
	add("name", scalar(s.Name))
	if s.Description != "" {
		d := scalar(s.Description)
		if strings.Contains(s.Description, "\n") {
			d.Style = yaml.LiteralStyle
		}
		add("description", d)
	}
	add("topology", scalar(s.TopologyPath))
	seed := &yaml.Node{}
	_ = seed.Encode(s.Seed) // encoding an int64 cannot fail
	add("seed", seed)
	if len(s.GatewayArgs) > 0 {
		n, err := encode(reflect.ValueOf(s.GatewayArgs))
		if err != nil {
			return nil, fmt.Errorf("scenario: marshal gateway_args: %w", err)
		}
		add("gateway_args", n)
	}
	w, err := encode(reflect.ValueOf(s.Workload))
	if err != nil {
		return nil, fmt.Errorf("scenario: marshal workload: %w", err)
	}
	add("workload", w)
	if len(s.Timeline) > 0 {
		seq := &yaml.Node{Kind: yaml.SequenceNode}
		for i, st := range s.Timeline {
			spec := st.Fault
			kind := spec.Kind
			spec.Kind = "" // written as fault: KIND
			f, err := encode(reflect.ValueOf(spec))
			if err != nil {
				return nil, fmt.Errorf("scenario: marshal timeline[%d]: %w", i, err)
			}
			m := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle, Content: []*yaml.Node{
				scalar("at"), scalar(st.At.String()), scalar("fault"), scalar(kind)}}
			for j := 0; j+1 < len(f.Content); j += 2 {
				if f.Content[j].Value != "kind" {
					m.Content = append(m.Content, f.Content[j], f.Content[j+1])
				}
			}
			seq.Content = append(seq.Content, m)
		}
		add("timeline", seq)
	}
	ex := &yaml.Node{Kind: yaml.SequenceNode}
	for _, e := range s.Expect {
		text := e.Expr
		if text == "" {
			text = e.String()
		}
		ex.Content = append(ex.Content, scalar(text))
	}
	add("expect", ex)
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}}); err != nil {
		return nil, fmt.Errorf("scenario: marshal: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("scenario: marshal: %w", err)
	}
	return b.Bytes(), nil
}

// scalar is a string node; the encoder quotes it where YAML would read it
// as something else.
func scalar(s string) *yaml.Node {
	n := &yaml.Node{}
	_ = n.Encode(s) // encoding a string cannot fail
	return n
}

var durationType = reflect.TypeFor[time.Duration]()

// encode turns v into a node: a struct by its yaml tags (omitempty, inline),
// a slice into a sequence (a flow one of scalars: regions: [a, b]), a
// time.Duration into its Go form, anything else as yaml encodes it.
func encode(v reflect.Value) (*yaml.Node, error) {
	switch {
	case v.Type() == durationType:
		return scalar(time.Duration(v.Int()).String()), nil
	case v.Kind() == reflect.Pointer:
		if v.IsNil() {
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}, nil
		}
		return encode(v.Elem())
	case v.Kind() == reflect.Struct:
		m := &yaml.Node{Kind: yaml.MappingNode}
		t := v.Type()
		for i := range t.NumField() {
			sf := t.Field(i)
			if !sf.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
			if name == "-" {
				continue
			}
			fv := v.Field(i)
			if strings.Contains(opts, "inline") {
				n, err := encode(fv)
				if err != nil {
					return nil, err
				}
				m.Content = append(m.Content, n.Content...)
				continue
			}
			if strings.Contains(opts, "omitempty") && fv.IsZero() {
				continue
			}
			if name == "" {
				name = strings.ToLower(sf.Name) // yaml's own default
			}
			n, err := encode(fv)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			m.Content = append(m.Content, scalar(name), n)
		}
		return m, nil
	case v.Kind() == reflect.Slice:
		seq := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for i := range v.Len() {
			n, err := encode(v.Index(i))
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			if n.Kind != yaml.ScalarNode {
				seq.Style = 0
			}
			seq.Content = append(seq.Content, n)
		}
		return seq, nil
	}
	n := &yaml.Node{}
	if err := n.Encode(v.Interface()); err != nil {
		return nil, err
	}
	return n, nil
}
