package report

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/geolab/geolab/lab/check"
)

// sampleInput is a run of three regions with a partition and a Redis blip,
// one failed expectation, lost messages with examples, and failovers.
func sampleInput() Input {
	regions := []string{"ap-southeast", "eu-west", "us-east"}
	rtt := map[string]float64{ // one-way ms, from the topology's RTT matrix
		"us-east->eu-west": 38, "eu-west->us-east": 38, "us-east->ap-southeast": 108,
		"ap-southeast->us-east": 108, "eu-west->ap-southeast": 86, "ap-southeast->eu-west": 86,
	}
	pairs := map[string]check.Percentiles{}
	for i, from := range regions {
		for j, to := range regions {
			base := 0.6 + 0.25*float64(i) // intra-region: Redis and the LAN
			if from != to {
				base = rtt[from+"->"+to] * (1 + 0.06*float64(i-j))
			}
			pairs[from+"->"+to] = percentiles(base, base*0.15)
		}
	}
	const duration, bucket = 120.0, 1.0
	deliveries := map[string][]int{}
	for k, name := range regions {
		d := make([]int, int(duration/bucket))
		for i := range d {
			t := float64(i)
			rate := 380 + 40*k + int(25*math.Sin(t/7))
			switch {
			case name != "ap-southeast" && t >= 30 && t < 60: // the partition halves cross-region fan-in
				rate = rate * 6 / 10
			case name == "eu-west" && t >= 80 && t < 83: // the Redis blip
				rate = 0
			case name == "eu-west" && t >= 83 && t < 85: // the gap is filled from history
				rate = rate * 2
			}
			d[i] = rate
		}
		deliveries[name] = d
	}
	lag := map[string][]check.LagPoint{}
	for _, link := range []string{"eu-west->us-east", "us-east->eu-west", "us-east->ap-southeast"} {
		var pts []check.LagPoint
		for t := 0.5; t < duration; t++ {
			s := 0.05 + 0.02*math.Sin(t)
			if link != "us-east->ap-southeast" && t >= 30 {
				k := 1.0 // us-east publishes more than eu-west
				if link == "eu-west->us-east" {
					k = 0.8
				}
				switch {
				case t < 60:
					s = k * (t - 30)
				case t < 66:
					s = k * (30 - 5*(t-60))
				}
			}
			state := "ok"
			if s >= 5 {
				state = "alert"
			} else if s >= 1 {
				state = "warn"
			}
			pts = append(pts, check.LagPoint{T: t, Seconds: s, State: state})
		}
		lag[link] = pts
	}
	r := &check.Result{
		Run: "partition-heals-20260101T120000Z", Seed: 42, Duration: duration, Ended: true,
		Counts: check.Counts{Published: 48210, Delivered: 142518, Lost: 3, UnrecoverableAnnounced: 12, Duplicated: 0,
			Reordered: 0, Gaps: 0, AnnouncedGaps: 12, RegionOrder: 0, Disconnects: 40, Failovers: 40, Unacked: 2, Retried: 17},
		Examples: map[string][]check.Example{
			"lost": {
				{Client: "eu-west/c07", Room: "fed:lobby", Event: "01JF3K5Q", T: 58.2,
					Text: "eu-west/c07 covered fed:lobby from 2.1s to the end but never received event 01JF3K5Q published at 58.2s by us-east/c01"},
				{Client: "eu-west/c11", Room: "fed:lobby", Event: "01JF3K5R", T: 58.4,
					Text: "eu-west/c11 covered fed:lobby <and> never received event 01JF3K5R & was not told"},
				{Client: "us-east/c02", Room: "fed:news", Event: "01JF3K7Z", T: 59.9,
					Text: "us-east/c02 never received event 01JF3K7Z"},
			},
			"unacked": {{Client: "eu-west/c03", Room: "fed:lobby", T: 81.2, Text: "publish m-118 by eu-west/c03 was never acked"}},
		},
		Latency: check.Latency{
			All: percentiles(40, 20), IntraRegion: percentiles(0.8, 0.2), CrossRegion: percentiles(70, 20),
			Pairs: pairs,
		},
		Failover: check.Failover{Percentiles: failovers(40),
			Worst: []check.Example{{Client: "eu-west/c07", T: 80.1, Value: 4.9, Text: "eu-west/c07 took 4.9s to resubscribe fed:lobby"}}},
		Lag: map[string]check.LinkLag{
			"eu-west->us-east":      {Region: "us-east", From: "eu-west", Samples: 240, Max: 23.6, P99: 23.2, WarnSeconds: 5, AlertSeconds: 27},
			"us-east->eu-west":      {Region: "eu-west", From: "us-east", Samples: 240, Max: 29.5, P99: 29, WarnSeconds: 4, AlertSeconds: 29},
			"us-east->ap-southeast": {Region: "ap-southeast", From: "us-east", Samples: 240, Max: 0.07, P99: 0.07},
		},
		Faults: []check.FaultWindow{
			{ID: "f1", Kind: "partition", Target: "us-east<->eu-west", Args: map[string]string{"mode": "blackhole"}, Inject: 30, Heal: 60, Healed: true},
			{ID: "f2", Kind: "redis-blip", Target: "eu-west", Inject: 80, Heal: 83, Healed: true},
		},
		Timeline: check.Timeline{BucketSeconds: bucket, Deliveries: deliveries, Lag: lag},
	}
	return Input{
		Scenario:    "partition-heals",
		Description: "A 30 s blackhole between us-east and eu-west, then a Redis blip in eu-west.\nReproduces INC-2041: <lag> alerts & lost messages after the heal.",
		Topology:    "topologies/three-regions.yaml",
		Seed:        42,
		Started:     time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC),
		Command:     "geolab run scenarios/partition-heals.yaml --seed 42",
		Result:      r,
		Outcomes: []Outcome{
			{Expr: "lost == 0", Value: 3, Pass: false, Message: "lost = 3, want == 0"},
			{Expr: "duplicated == 0", Value: 0, Pass: true, Message: "duplicated = 0, want == 0"},
			{Expr: "cross_region_p99{us-east,eu-west} <= 400ms", Value: 0.212, Pass: true,
				Message: "cross_region_p99{us-east,eu-west} = 0.212s, want <= 0.4s"},
			{Expr: "replication_lag_max <= 45s", Value: 29.5, Pass: true, Message: "replication_lag_max = 29.5s, want <= 45s"},
		},
	}
}

// percentiles is a made-up but plausible latency distribution: base plus
// an exponential tail of the given scale, in ms.
func percentiles(baseMS, tailMS float64) check.Percentiles {
	p := check.Percentiles{Count: 1000, CDF: make([]float64, 101)}
	for i := range p.CDF {
		q := float64(i) / 101
		p.CDF[i] = (baseMS + tailMS*-math.Log(1-q)) / 1000
	}
	p.P50, p.P90, p.P99, p.Max = p.CDF[50], p.CDF[90], p.CDF[99], p.CDF[100]
	return p
}

// failovers is the distribution of n failover times between 2.6 s and 5 s.
func failovers(n int) check.Percentiles {
	p := check.Percentiles{Count: n, CDF: make([]float64, 101)}
	for i := range p.CDF {
		k := min(n-1, i*n/100) // nearest rank of the i-th percentile among n values
		p.CDF[i] = 2.6 + 2.4*math.Pow(float64(k)/float64(n-1), 2)
	}
	p.P50, p.P90, p.P99, p.Max = p.CDF[50], p.CDF[90], p.CDF[99], p.CDF[100]
	return p
}

// sampleDir is a temporary directory, or $GEOLAB_REPORT_KEEP/name when set.
func sampleDir(t *testing.T, name string) string {
	if keep := os.Getenv("GEOLAB_REPORT_KEEP"); keep != "" {
		return filepath.Join(keep, name)
	}
	return t.TempDir()
}

// writeSample writes the artefacts of in into a temporary directory, or
// into $GEOLAB_REPORT_KEEP/name when set (to look at them).
func writeSample(t *testing.T, name string, in Input) string {
	t.Helper()
	dir := sampleDir(t, name)
	if err := WriteAll(dir, in); err != nil {
		t.Fatalf("WriteAll: %v", err)
	}
	return dir
}

func TestPassed(t *testing.T) {
	for _, tc := range []struct {
		name     string
		outcomes []Outcome
		want     bool
	}{
		{"no expectations", nil, true},
		{"all pass", []Outcome{{Pass: true}, {Pass: true}}, true},
		{"one fails", []Outcome{{Pass: true}, {Pass: false}}, false},
	} {
		if got := (Input{Outcomes: tc.outcomes}).Passed(); got != tc.want {
			t.Errorf("%s: Passed() = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestHTMLShowsVerdictExpectationsCountsAndCharts(t *testing.T) {
	in := sampleInput()
	dir := writeSample(t, "sample", in)
	doc := parseHTML(t, filepath.Join(dir, HTMLFile))

	if got := textOf(byID(doc, "verdict")); got != "FAIL" {
		t.Errorf("verdict = %q, want FAIL", got)
	}
	body := textOf(doc)
	for _, want := range []string{
		in.Scenario, in.Topology, in.Command, "42", "2026-01-01 12:00:00 UTC",
		"Reproduces INC-2041: <lag> alerts & lost messages after the heal.", // escaped, then read back as text
		"1 of 4 expectations failed",
		"eu-west/c11 covered fed:lobby <and> never received event 01JF3K5R & was not told",
		"publish m-118 by eu-west/c03 was never acked",
		"unrecoverable_announced", "region_order", "failover_unfinished",
		"us-east → eu-west", "eu-west → us-east", // latency pairs and lag links
		"eu-west/c07 took 4.9s to resubscribe fed:lobby",
		"Nothing lost silently BROKEN", "No duplicates HELD", "Idempotent publish HELD",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("report.html does not contain %q", want)
		}
	}
	for _, o := range in.Outcomes {
		for _, want := range []string{o.Expr, o.Message} {
			if !strings.Contains(body, want) {
				t.Errorf("report.html does not contain the expectation text %q", want)
			}
		}
	}

	svgs := charts(t, doc, "Latency", "Timeline", "Failover")
	// The first series of every chart is drawn in the palette's first colour:
	// a path in that colour is data, not an axis or the grid.
	series := "stroke:" + svgColour(palette[0])
	for i, name := range []string{"latency", "timeline", "failover"} {
		n := 0
		for _, p := range all(svgs[i], "path") {
			if strings.Contains(attr(p, "style"), series) && strings.Count(attr(p, "d"), "L") >= 2 {
				n++
			}
		}
		if n == 0 {
			t.Errorf("%s chart: no data line drawn (no path styled %s with points)", name, series)
		}
	}
	timeline := textOf(svgs[1])
	for _, want := range []string{"partition us-east ↔ eu-west", "redis-blip eu-west", "time since the start of the run (s)",
		"deliveries/s by receiving region", "replication lag (s) by link", "ap-southeast"} {
		if !strings.Contains(timeline, want) {
			t.Errorf("timeline chart does not contain %q", want)
		}
	}
	bands := 0
	for _, p := range all(svgs[1], "path") {
		if strings.Contains(attr(p, "style"), "fill:"+svgColour(bandFill)) {
			bands++
		}
	}
	if bands < 2*3 { // two windows, each a bar in the lane and a band on two panels
		t.Errorf("timeline chart has %d fault bands and bars, want 6", bands)
	}
	latency := textOf(svgs[0])
	for _, want := range []string{"publish → delivery latency (ms, log scale)", "us-east → ap-southeast", "100"} {
		if !strings.Contains(latency, want) {
			t.Errorf("latency chart does not contain %q", want)
		}
	}
	for _, n := range all(doc, "script") {
		t.Errorf("report.html has a <script>: %v", n.Attr)
	}
	raw := string(mustRead(t, filepath.Join(dir, HTMLFile)))
	for _, bad := range []string{`src="http`, `href="http`, `url(http`, "@import"} {
		if strings.Contains(raw, bad) {
			t.Errorf("report.html refers to something outside itself: %q", bad)
		}
	}
}

func TestHTMLOfAnEmptyResultSaysNoData(t *testing.T) {
	for name, in := range map[string]Input{
		"nil result":    {Scenario: "empty"},
		"empty result":  {Scenario: "empty", Result: &check.Result{}, Outcomes: []Outcome{{Expr: "lost == 0", Pass: true}}},
		"empty buckets": {Scenario: "empty", Result: &check.Result{Duration: 5, Timeline: check.Timeline{BucketSeconds: 1, Deliveries: map[string][]int{"x": {}}}, Latency: check.Latency{Pairs: map[string]check.Percentiles{"a->b": {}}}}},
	} {
		t.Run(name, func(t *testing.T) {
			dir := writeSample(t, strings.ReplaceAll(name, " ", "-"), in)
			doc := parseHTML(t, filepath.Join(dir, HTMLFile))
			if got := textOf(byID(doc, "verdict")); got != "PASS" {
				t.Errorf("verdict = %q, want PASS", got)
			}
			if got := textOf(doc); !strings.Contains(got, "No duplicates NOT EXERCISED") {
				t.Errorf("a run that delivered nothing does not say G3 was not exercised")
			}
			if n := len(all(doc, "svg")); n != 0 {
				t.Errorf("%d charts drawn from no data", n)
			}
			notes := 0
			for _, d := range all(doc, "div") {
				if attr(d, "class") == "nodata" {
					notes++
				}
			}
			if notes < 5 { // latency, timeline, faults, lag, failover
				t.Errorf("%d no-data notes, want at least 5", notes)
			}
		})
	}
}

func TestTimelineWithFaultsButNoLag(t *testing.T) {
	in := sampleInput()
	in.Result.Timeline.Lag, in.Result.Lag = nil, nil
	in.Result.Faults = append(in.Result.Faults, check.FaultWindow{ID: "f3", Kind: "region-down", Target: "ap-southeast", Inject: 100, Heal: 120})
	dir := writeSample(t, "no-lag", in)
	doc := parseHTML(t, filepath.Join(dir, HTMLFile))
	timeline := textOf(charts(t, doc, "Latency", "Timeline", "Failover")[1])
	if !strings.Contains(timeline, "region-down ap-southeast (not healed)") {
		t.Errorf("timeline does not label the unhealed fault: %q", timeline)
	}
	if strings.Contains(timeline, "replication lag") {
		t.Errorf("timeline draws a lag panel with no lag")
	}
}

func TestJUnitCountsTestsAndFailures(t *testing.T) {
	in := sampleInput()
	dir := writeSample(t, "junit", in)
	var got junitSuites
	if err := xml.Unmarshal(mustRead(t, filepath.Join(dir, JUnitFile)), &got); err != nil {
		t.Fatalf("junit.xml does not parse: %v", err)
	}
	if got.Tests != 4 || got.Failures != 1 || len(got.Suites) != 1 {
		t.Fatalf("testsuites: tests=%d failures=%d suites=%d, want 4, 1, 1", got.Tests, got.Failures, len(got.Suites))
	}
	s := got.Suites[0]
	if s.Name != in.Scenario || s.Tests != 4 || s.Failures != 1 || len(s.Cases) != 4 {
		t.Fatalf("testsuite %q: tests=%d failures=%d cases=%d", s.Name, s.Tests, s.Failures, len(s.Cases))
	}
	for i, c := range s.Cases {
		o := in.Outcomes[i]
		if c.Name != o.Expr {
			t.Errorf("testcase %d is %q, want %q", i, c.Name, o.Expr)
		}
		if (c.Failure == nil) != o.Pass {
			t.Errorf("testcase %q: failure %v, pass %v", c.Name, c.Failure, o.Pass)
		}
		if c.Failure != nil && c.Failure.Message != o.Message {
			t.Errorf("testcase %q: failure message %q, want %q", c.Name, c.Failure.Message, o.Message)
		}
	}
	if s.Timestamp != "2026-01-01T12:00:00" || s.Time != "120.000" {
		t.Errorf("timestamp %q time %q", s.Timestamp, s.Time)
	}
	if !strings.Contains(s.SystemOut, "lost=3") {
		t.Errorf("system-out does not list the counts: %q", s.SystemOut)
	}

	empty := writeSample(t, "junit-empty", Input{Scenario: "none"})
	got = junitSuites{}
	if err := xml.Unmarshal(mustRead(t, filepath.Join(empty, JUnitFile)), &got); err != nil {
		t.Fatalf("junit.xml of no expectations does not parse: %v", err)
	}
	if got.Tests != 0 || got.Failures != 0 || len(got.Suites) != 1 {
		t.Errorf("no expectations: tests=%d failures=%d suites=%d", got.Tests, got.Failures, len(got.Suites))
	}
}

func TestJSONRoundTrips(t *testing.T) {
	in := sampleInput()
	dir := writeSample(t, "json", in)
	raw := mustRead(t, filepath.Join(dir, JSONFile))
	var top map[string]any
	if err := json.Unmarshal(raw, &top); err != nil {
		t.Fatalf("report.json does not parse: %v", err)
	}
	if top["passed"] != false {
		t.Errorf(`"passed" = %v, want false`, top["passed"])
	}
	got, err := ReadJSON(filepath.Join(dir, JSONFile))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, in) {
		a, _ := json.Marshal(got)
		b, _ := json.Marshal(in)
		t.Errorf("report.json does not round-trip:\n got %s\nwant %s", a, b)
	}
	if v, ok := got.Result.Metric("lost"); !ok || v != 3 {
		t.Errorf("Metric(lost) of the read Result = %v, %v", v, ok)
	}
}

func TestJSONWritesAMissingValueAsNull(t *testing.T) {
	in := Input{Scenario: "nan", Outcomes: []Outcome{{Expr: "failover_p99 <= 5s", Value: math.NaN(), Message: "failover_p99 has no samples"}}}
	dir := writeSample(t, "nan", in)
	if raw := string(mustRead(t, filepath.Join(dir, JSONFile))); !strings.Contains(raw, `"value": null`) {
		t.Errorf("NaN value not written as null:\n%s", raw)
	}
	got, err := ReadJSON(filepath.Join(dir, JSONFile))
	if err != nil {
		t.Fatal(err)
	}
	if v := got.Outcomes[0].Value; !math.IsNaN(v) {
		t.Errorf("null read back as %v, want NaN", v)
	}
	if !strings.Contains(textOf(parseHTML(t, filepath.Join(dir, HTMLFile))), "none") {
		t.Errorf("report.html does not show the missing value as none")
	}
}

// svgColour is how vgsvg writes c: #RRGGBB, not premultiplied by alpha.
func svgColour(c color.Color) string {
	r, g, b, a := c.RGBA()
	k := 255.0 / float64(a)
	return fmt.Sprintf("#%02X%02X%02X", int(float64(r)*k), int(float64(g)*k), int(float64(b)*k))
}

// charts returns the page's <svg> charts, which must be one per title, in
// that order, each labelled (aria-label) with a name starting with its title.
func charts(t *testing.T, doc *html.Node, titles ...string) []*html.Node {
	t.Helper()
	svgs := all(doc, "svg")
	if len(svgs) != len(titles) {
		t.Fatalf("report.html has %d <svg> charts, want %d (%s)", len(svgs), len(titles), strings.Join(titles, ", "))
	}
	byTitle := make([]*html.Node, len(titles))
	for _, s := range svgs {
		for i, title := range titles {
			if strings.HasPrefix(attr(s, "aria-label"), title) {
				byTitle[i] = s
			}
		}
	}
	for i, s := range byTitle {
		if s == nil {
			t.Fatalf("report.html has no chart labelled %s…", titles[i])
		}
	}
	return byTitle
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// parseHTML parses a page strictly enough to catch broken markup: it must
// have exactly one html, head, body and main, and the parse must not have
// had to invent elements that the page left unclosed.
func parseHTML(t *testing.T, path string) *html.Node {
	t.Helper()
	raw := string(mustRead(t, path))
	if !strings.HasPrefix(raw, "<!DOCTYPE html>") {
		t.Errorf("%s does not start with <!DOCTYPE html>", path)
	}
	doc, err := html.Parse(strings.NewReader(raw))
	if err != nil {
		t.Fatalf("%s does not parse: %v", path, err)
	}
	for _, tag := range []string{"html", "head", "body", "main", "title"} {
		if n := len(all(doc, tag)); n != 1 {
			t.Errorf("%s has %d <%s>, want 1", path, n, tag)
		}
	}
	// Every start tag the page wrote must be closed in order: tokenise and
	// keep a stack (void elements aside).
	void := map[string]bool{"meta": true, "br": true, "img": true, "hr": true, "link": true, "input": true, "col": true, "wbr": true}
	z := html.NewTokenizer(strings.NewReader(raw))
	var stack []string
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			break
		}
		name, _ := z.TagName()
		switch tt {
		case html.StartTagToken:
			if !void[string(name)] {
				stack = append(stack, string(name))
			}
		case html.EndTagToken:
			if len(stack) == 0 || stack[len(stack)-1] != string(name) {
				t.Fatalf("%s: </%s> closes <%s>", path, name, strings.Join(stack[max(0, len(stack)-1):], ""))
			}
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) != 0 {
		t.Errorf("%s: unclosed elements %v", path, stack)
	}
	return doc
}

func all(n *html.Node, tag string) []*html.Node {
	var out []*html.Node
	for d := range n.Descendants() {
		if d.Type == html.ElementNode && d.Data == tag {
			out = append(out, d)
		}
	}
	return out
}

func byID(n *html.Node, id string) *html.Node {
	for d := range n.Descendants() {
		if d.Type == html.ElementNode && attr(d, "id") == id {
			return d
		}
	}
	return nil
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// textOf is n's text content with runs of white space made one space.
func textOf(n *html.Node) string {
	if n == nil {
		return ""
	}
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode && (d.Parent == nil || d.Parent.Data != "style") {
			b.WriteString(d.Data)
			b.WriteByte(' ')
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

func TestHTMLSurvivesOddNumbers(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	var many []check.FaultWindow
	for i := range 30 {
		many = append(many, check.FaultWindow{ID: fmt.Sprint(i), Kind: "latency", Target: "a<->b", Inject: float64(i), Heal: float64(i) + 0.5, Healed: true})
	}
	many = append(many,
		check.FaultWindow{Kind: "kill", Target: "x", Inject: 5, Heal: 5, Healed: true},      // an instant
		check.FaultWindow{Kind: "pause", Target: "y", Inject: 50, Heal: 40, Healed: true},   // heal before inject
		check.FaultWindow{Kind: "nan", Target: "z", Inject: nan, Heal: inf},                 // nonsense
		check.FaultWindow{Kind: "late", Target: "w", Inject: 500, Heal: 1e9, Healed: false}, // far past the end
	)
	pairs := map[string]check.Percentiles{}
	for i := range 16 {
		pairs[fmt.Sprintf("r%d->r%d", i/4, i%4)] = percentiles(float64(1+i*10), 5)
	}
	pairs["zero->zero"] = check.Percentiles{Count: 3, CDF: make([]float64, 101)}              // all zero: nothing on a log axis
	pairs["one->one"] = check.Percentiles{Count: 1, CDF: slicesRepeat(0.05, 101)}             // one value
	pairs["odd->odd"] = check.Percentiles{Count: 2, CDF: []float64{nan, -1, inf, 0.01, 0.02}} // garbage in
	in := Input{Scenario: "odd", Result: &check.Result{
		Duration: 60,
		Latency:  check.Latency{Pairs: pairs},
		Failover: check.Failover{Percentiles: check.Percentiles{Count: 1, CDF: slicesRepeat(2, 101)}},
		Faults:   many,
		Timeline: check.Timeline{BucketSeconds: 0.5,
			Deliveries: map[string][]int{"a": {0, 0, 0}, "b": {1}},
			Lag:        map[string][]check.LagPoint{"a->b": {{T: 3, Seconds: 2}}, "b->a": {{T: nan, Seconds: 1}}}},
	}}
	dir := sampleDir(t, "odd")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, HTMLFile)
	if err := WriteHTML(path, in); err != nil { // not WriteAll: JSON has no NaN
		t.Fatal(err)
	}
	doc := parseHTML(t, path)
	svgs := charts(t, doc, "Latency", "Timeline", "Failover")
	if got := textOf(svgs[1]); !strings.Contains(got, "late w (not healed)") || !strings.Contains(got, "latency a ↔ b") {
		t.Errorf("timeline lane lacks labels: %q", got)
	}
	if got := textOf(svgs[0]); !strings.Contains(got, "r3 → r3") {
		t.Errorf("latency legend lacks the 16th pair: %q", got)
	}
	for _, d := range all(doc, "div") {
		if attr(d, "class") == "nodata" && strings.Contains(textOf(d), "could not be drawn") {
			t.Errorf("a chart failed: %s", textOf(d))
		}
	}
}

func slicesRepeat(v float64, n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = v
	}
	return s
}
