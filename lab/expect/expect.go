// Package expect reads and evaluates a scenario's expectations: one-line
// comparisons of a checker metric (lab/check) with a value, such as
//
//	lost == 0
//	failover_p99 <= 10s
//	cross_region_p99{us-east,eu-west} <= 400ms
//	delivered >= 1000
//	replication_lag_max < 30s
//
// The grammar (spaces allowed between tokens):
//
//	expectation = metric [ "{" label { "," label } "}" ] op value
//	metric      = [a-z_] { [a-z0-9_] }
//	label       = 1*( [A-Za-z0-9_.:*-] )
//	op          = "==" | "!=" | "<" | "<=" | ">" | ">="
//	value       = number | duration
//	number      = [ "-" ] digits [ "." digits ] [ ( "e" | "E" ) [ "+" | "-" ] digits ]
//	duration    = a Go duration: "400ms", "1.5s", "2m30s"
//
// A duration is compared in seconds, the unit of every time metric: "<= 10s"
// is "<= 10". A duration against a count (lost < 1s) is allowed and
// compares numerically, seconds against the count. docs/checker.md lists
// the metrics and their labels.
package expect

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/geolab/geolab/lab/check"
)

// Op is a comparison operator.
type Op string

// The operators.
const (
	Eq Op = "=="
	Ne Op = "!="
	Lt Op = "<"
	Le Op = "<="
	Gt Op = ">"
	Ge Op = ">="
)

// Expectation is one parsed expression.
type Expectation struct {
	Expr   string   // the expression as given, trimmed
	Metric string   // e.g. "cross_region_p99"
	Labels []string // e.g. ["us-east", "eu-west"]; nil when none
	Op     Op
	Value  float64 // the value; a duration in seconds
	// ValueText is the value as written ("400ms"), Duration whether it was
	// a duration.
	ValueText string
	Duration  bool
}

// String returns the expectation in canonical form: Parse(e.String())
// gives e back (but for Expr).
func (e Expectation) String() string {
	var b strings.Builder
	b.WriteString(e.Metric)
	if len(e.Labels) > 0 {
		b.WriteString("{" + strings.Join(e.Labels, ",") + "}")
	}
	b.WriteString(" " + string(e.Op) + " " + e.ValueText)
	return b.String()
}

// SyntaxError is an expression Parse cannot read.
type SyntaxError struct {
	Expr   string
	Column int    // 1-based byte position in Expr
	Msg    string // what was expected and what was found
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("expectation %q: column %d: %s", e.Expr, e.Column, e.Msg)
}

// Parse reads one expression. Errors are *SyntaxError, naming the column
// and what was expected there.
func Parse(s string) (Expectation, error) {
	p := parser{s: s}
	e, err := p.parse()
	if err != nil {
		return Expectation{}, err
	}
	e.Expr = strings.TrimSpace(s)
	return e, nil
}

type parser struct {
	s string
	i int
}

func (p *parser) fail(format string, args ...any) error {
	return &SyntaxError{Expr: p.s, Column: p.i + 1, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) space() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

// found describes what is at the current position.
func (p *parser) found() string {
	if p.i >= len(p.s) {
		return "the end"
	}
	end := p.i
	for end < len(p.s) && end-p.i < 12 && p.s[end] != ' ' {
		end++
	}
	if end == p.i {
		end = p.i + 1
	}
	return strconv.Quote(p.s[p.i:end])
}

func (p *parser) run(ok func(c byte) bool) string {
	start := p.i
	for p.i < len(p.s) && ok(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

func metricByte(c byte, first bool) bool {
	return c >= 'a' && c <= 'z' || c == '_' || !first && c >= '0' && c <= '9'
}

func labelByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '.' || c == ':' || c == '*' || c == '-'
}

func (p *parser) parse() (Expectation, error) {
	var e Expectation
	p.space()
	if p.i >= len(p.s) || !metricByte(p.s[p.i], true) {
		return e, p.fail("expected a metric name (lowercase letters, digits and _, e.g. lost), found %s", p.found())
	}
	first := true
	e.Metric = p.run(func(c byte) bool { ok := metricByte(c, first); first = false; return ok })
	p.space()
	if p.i < len(p.s) && p.s[p.i] == '{' {
		p.i++
		for {
			p.space()
			label := p.run(labelByte)
			if label == "" {
				return e, p.fail("expected a label (a region, e.g. us-east), found %s", p.found())
			}
			e.Labels = append(e.Labels, label)
			p.space()
			if p.i < len(p.s) && p.s[p.i] == ',' {
				p.i++
				continue
			}
			if p.i < len(p.s) && p.s[p.i] == '}' {
				p.i++
				break
			}
			return e, p.fail("expected ',' or '}' after a label, found %s", p.found())
		}
		p.space()
	}
	op := Op(p.run(func(c byte) bool { return c == '=' || c == '!' || c == '<' || c == '>' }))
	switch op {
	case Eq, Ne, Lt, Le, Gt, Ge:
	default:
		p.i -= len(op)
		return e, p.fail("expected an operator (==, !=, <, <=, >, >=), found %s", p.found())
	}
	e.Op = op
	p.space()
	start := p.i
	e.ValueText = p.run(func(c byte) bool { return c != ' ' && c != '\t' })
	if e.ValueText == "" {
		return e, p.fail("expected a value (a number like 1000 or a duration like 400ms), found the end")
	}
	if v, ok := number(e.ValueText); ok {
		e.Value = v
	} else if d, err := time.ParseDuration(e.ValueText); err == nil {
		e.Value, e.Duration = d.Seconds(), true
	} else {
		p.i = start
		return e, p.fail("expected a value (a number like 1000 or a duration like 400ms), found %s", p.found())
	}
	p.space()
	if p.i < len(p.s) {
		return e, p.fail("expected the end after the value, found %s", p.found())
	}
	return e, nil
}

// number parses a plain decimal number (no NaN, Inf, hex or underscores).
func number(s string) (float64, bool) {
	i := 0
	digits := func() int {
		k := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i - k
	}
	if i < len(s) && s[i] == '-' {
		i++
	}
	if digits() == 0 {
		return 0, false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return 0, false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return 0, false
		}
	}
	if i != len(s) {
		return 0, false
	}
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil
}

// Outcome is an expectation evaluated against a run.
type Outcome struct {
	Expr    string  `json:"expr"`
	Value   float64 `json:"value"` // the metric's value (0 when it has none)
	Pass    bool    `json:"pass"`
	Message string  `json:"message"` // e.g. "failover_p99 = 2.31s, want <= 10s: ok"
}

// Evaluate reads e's metric from r and compares it. A metric r has no value
// for (an unknown name or label, no samples) fails, with the reason in
// Message; it never panics.
func Evaluate(e Expectation, r *check.Result) Outcome {
	o := Outcome{Expr: e.Expr}
	if o.Expr == "" {
		o.Expr = e.String()
	}
	name := e.Metric
	if len(e.Labels) > 0 {
		name += "{" + strings.Join(e.Labels, ",") + "}"
	}
	if r == nil {
		o.Message = name + ": no checker result"
		return o
	}
	v, err := r.Value(e.Metric, e.Labels...)
	if err != nil {
		o.Message = fmt.Sprintf("%s: %v: FAIL", name, err)
		return o
	}
	o.Value = v
	o.Pass = compare(v, e.Op, e.Value)
	verdict := "ok"
	if !o.Pass {
		verdict = "FAIL"
	}
	shown := strconv.FormatFloat(v, 'g', -1, 64)
	if e.Duration && math.Abs(v) < 1e9 {
		shown = time.Duration(math.Round(v * 1e9)).String()
	}
	o.Message = fmt.Sprintf("%s = %s, want %s %s: %s", name, shown, e.Op, e.ValueText, verdict)
	return o
}

func compare(v float64, op Op, want float64) bool {
	switch op {
	case Eq:
		return v == want
	case Ne:
		return v != want
	case Lt:
		return v < want
	case Le:
		return v <= want
	case Gt:
		return v > want
	case Ge:
		return v >= want
	}
	return false
}
