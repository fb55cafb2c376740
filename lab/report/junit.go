package report

import (
	"encoding/xml"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/geolab/geolab/lab/check"
)

// The JUnit XML that CI systems parse (Jenkins, GitLab, GitHub Actions
// reporters): <testsuites> around one <testsuite> per scenario run.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr,omitempty"`
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitCase     `xml:"testcase"`
	SystemOut  string          `xml:"system-out,omitempty"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes junit.xml: one <testsuite> named after the scenario with
// one <testcase> per expectation, named by its expression; a failed
// expectation carries a <failure> whose message is Outcome.Message. The
// suite's properties name the seed, topology, command and run, and its
// system-out lists the checker's counts, so a CI page shows what was found
// even where no expectation asked. A run with no expectations is a suite of
// zero tests (it passed).
func WriteJUnit(path string, in Input) error {
	r := in.result()
	suite := junitSuite{
		Name:     in.Scenario,
		Tests:    len(in.Outcomes),
		Failures: in.failures(),
		Time:     seconds(r.Duration),
		Properties: []junitProperty{
			{"seed", strconv.FormatInt(in.Seed, 10)},
			{"topology", in.Topology},
			{"command", in.Command},
			{"run", r.Run},
		},
		SystemOut: countsText(r),
		Cases:     []junitCase{},
	}
	if !in.Started.IsZero() {
		suite.Timestamp = in.Started.UTC().Format("2006-01-02T15:04:05")
	}
	for _, o := range in.Outcomes {
		c := junitCase{Name: o.Expr, Classname: "geolab.scenario." + in.Scenario, Time: "0"}
		if !o.Pass {
			c.Failure = &junitFailure{Message: o.Message, Type: "expectation",
				Text: fmt.Sprintf("%s\nexpectation: %s\nvalue: %s", o.Message, o.Expr, valueText(o.Value))}
		}
		suite.Cases = append(suite.Cases, c)
	}
	doc := junitSuites{Name: "geolab", Tests: suite.Tests, Failures: suite.Failures, Time: suite.Time,
		Suites: []junitSuite{suite}}
	b, err := xml.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("report: encode %s: %w", path, err)
	}
	return writeFile(path, append([]byte(xml.Header), append(b, '\n')...))
}

// seconds formats a duration in seconds for JUnit's time attributes.
func seconds(s float64) string {
	if math.IsNaN(s) || math.IsInf(s, 0) || s < 0 {
		s = 0
	}
	return strconv.FormatFloat(s, 'f', 3, 64)
}

// valueText formats an Outcome's value; a metric with no value reads "none".
func valueText(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "none"
	}
	return strconv.FormatFloat(v, 'g', 6, 64)
}

// countsText lists the checker's counts by guarantee, one per line.
func countsText(r *check.Result) string {
	var b strings.Builder
	for _, g := range guarantees(r) {
		if len(g.Counts) == 0 {
			continue
		}
		fmt.Fprintf(&b, "%s %s:", g.ID, g.Title)
		for _, c := range g.Counts {
			fmt.Fprintf(&b, " %s=%d", c.Name, c.Value)
		}
		b.WriteByte('\n')
	}
	return b.String()
}
