package report

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/geolab/geolab/lab/check"
	"github.com/geolab/geolab/lab/history"
)

//go:embed report.html.tmpl
var pageTemplate string

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"ms":    ms,
	"secs":  secs,
	"num":   num,
	"value": valueText,
	"pair":  pairName,
	"args":  argsText,
	"add1":  func(i int) int { return i + 1 },
	"sub":   func(a, b float64) float64 { return a - b },
	"clock": clockMS,
}).Parse(pageTemplate))

// view is what the page template shows.
type view struct {
	In       Input
	R        *check.Result
	Passed   bool
	Failures int
	Started  string

	Guarantees []guarantee
	Latency    chart
	LatencyRow []percentileRow
	Timeline   chart
	Faults     []check.FaultWindow
	Lag        []lagRow
	Failover   chart
	// AgentBound is Input.CrossAgentBound in milliseconds.
	AgentBound float64
}

type percentileRow struct {
	Name string
	check.Percentiles
	Group bool // a summary row (all, intra, cross) rather than a pair
}

type lagRow struct {
	Name string
	check.LinkLag
}

// WriteHTML writes report.html: one self-contained page (inline CSS and
// SVG, no script, no external URL) with the verdict, the expectations,
// the checker's counts by guarantee with examples, and the charts: latency
// CDFs per region pair, a timeline of deliveries and replication lag with
// the fault windows shaded, and the failover time distribution. Every text
// is escaped; where there is no data, the page says so instead of drawing.
func WriteHTML(path string, in Input) error {
	var buf bytes.Buffer
	if err := page.Execute(&buf, newView(in)); err != nil {
		return fmt.Errorf("report: render %s: %w", path, err)
	}
	return writeFile(path, buf.Bytes())
}

func newView(in Input) view {
	r := in.result()
	v := view{
		In: in, R: r, Passed: in.Passed(), Failures: in.failures(),
		Guarantees: guarantees(r),
		Latency:    latencyChart(r),
		Timeline:   timelineChart(r),
		Faults:     r.Faults,
		Failover:   failoverChart(r),
		AgentBound: float64(in.CrossAgentBound()) / float64(time.Millisecond),
	}
	if !in.Started.IsZero() {
		v.Started = in.Started.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	l := r.Latency
	for _, row := range []percentileRow{
		{"all deliveries", l.All, true}, {"intra-region", l.IntraRegion, true}, {"cross-region", l.CrossRegion, true},
	} {
		if row.Count > 0 {
			v.LatencyRow = append(v.LatencyRow, row)
		}
	}
	for _, name := range sortedKeys(l.Pairs) {
		v.LatencyRow = append(v.LatencyRow, percentileRow{Name: pairName(name), Percentiles: l.Pairs[name]})
	}
	for _, name := range sortedKeys(r.Lag) {
		v.Lag = append(v.Lag, lagRow{pairName(name), r.Lag[name]})
	}
	return v
}

// ms formats seconds as milliseconds with about three significant digits.
func ms(s float64) string {
	if !finite(s) {
		return "–"
	}
	m := s * 1000
	switch {
	case m == 0:
		return "0"
	case math.Abs(m) < 10:
		return strconv.FormatFloat(m, 'f', 2, 64)
	case math.Abs(m) < 100:
		return strconv.FormatFloat(m, 'f', 1, 64)
	}
	return num(int(math.Round(m)))
}

// clockMS formats a clock offset or bound in milliseconds to the
// microsecond: on one machine they are microseconds.
func clockMS(d history.Duration) string {
	return strconv.FormatFloat(float64(time.Duration(d))/float64(time.Millisecond), 'f', 3, 64)
}

// secs formats seconds to the millisecond below 1 s, to 10 ms below 10 s
// and to 100 ms above.
func secs(s float64) string {
	if !finite(s) {
		return "–"
	}
	switch {
	case s == 0:
		return "0"
	case math.Abs(s) < 1:
		return strconv.FormatFloat(s, 'f', 3, 64)
	case math.Abs(s) < 10:
		return strconv.FormatFloat(s, 'f', 2, 64)
	}
	return strconv.FormatFloat(s, 'f', 1, 64)
}

// num formats an integer with thousands separators.
func num(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// argsText lists a fault's arguments as k=v, sorted.
func argsText(args map[string]string) string {
	var parts []string
	for _, k := range sortedKeys(args) {
		parts = append(parts, k+"="+args[k])
	}
	return strings.Join(parts, " ")
}
