package expect_test

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/geolab/geolab/lab/check"
	"github.com/geolab/geolab/lab/expect"
	"github.com/geolab/geolab/lab/history/historytest"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in     string
		metric string
		labels []string
		op     expect.Op
		value  float64
		dur    bool
	}{
		{"lost == 0", "lost", nil, expect.Eq, 0, false},
		{"duplicated==0", "duplicated", nil, expect.Eq, 0, false},
		{"  failover_p99 <= 10s ", "failover_p99", nil, expect.Le, 10, true},
		{"cross_region_p99{us-east,eu-west} <= 400ms", "cross_region_p99", []string{"us-east", "eu-west"}, expect.Le, 0.4, true},
		{"cross_region_p99 { us-east , eu-west } < 1.5s", "cross_region_p99", []string{"us-east", "eu-west"}, expect.Lt, 1.5, true},
		{"delivered >= 1000", "delivered", nil, expect.Ge, 1000, false},
		{"replication_lag_max < 30s", "replication_lag_max", nil, expect.Lt, 30, true},
		{"replication_lag_max{eu-west,us-east} > 2m30s", "replication_lag_max", []string{"eu-west", "us-east"}, expect.Gt, 150, true},
		{"gaps != -1.5e2", "gaps", nil, expect.Ne, -150, false},
		{"intra_region_p50{us-east} <= 0.25", "intra_region_p50", []string{"us-east"}, expect.Le, 0.25, false},
		{"lost\t<\t1us", "lost", nil, expect.Lt, 1e-6, true},
	} {
		e, err := expect.Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if e.Metric != tc.metric || !reflect.DeepEqual(e.Labels, tc.labels) || e.Op != tc.op ||
			math.Abs(e.Value-tc.value) > 1e-12 || e.Duration != tc.dur || e.Expr != strings.TrimSpace(tc.in) {
			t.Errorf("Parse(%q) = %+v", tc.in, e)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", `column 1: expected a metric name (lowercase letters, digits and _, e.g. lost), found the end`},
		{"Lost == 0", `column 1: expected a metric name (lowercase letters, digits and _, e.g. lost), found "Lost"`},
		{"9lives == 0", `column 1: expected a metric name`},
		{"lost", `column 5: expected an operator (==, !=, <, <=, >, >=), found the end`},
		{"lost = 0", `column 6: expected an operator (==, !=, <, <=, >, >=), found "="`},
		{"lost =< 0", `column 6: expected an operator (==, !=, <, <=, >, >=), found "=<"`},
		{"lost ==", `column 8: expected a value (a number like 1000 or a duration like 400ms), found the end`},
		{"lost == zero", `column 9: expected a value (a number like 1000 or a duration like 400ms), found "zero"`},
		{"lost == 10 s", `column 12: expected the end after the value, found "s"`},
		{"lost == NaN", `column 9: expected a value`},
		{"lost == 0x10", `column 9: expected a value`},
		{"lost == 1_000", `column 9: expected a value`},
		{"x{} == 0", `column 3: expected a label (a region, e.g. us-east), found "}"`},
		{"x{a,} == 0", `column 5: expected a label (a region, e.g. us-east), found "}"`},
		{"x{a b} == 0", `column 5: expected ',' or '}' after a label, found "b}"`},
		{"x{a == 0", `column 5: expected ',' or '}' after a label, found "=="`},
		{"x{a}{b} == 0", `column 5: expected an operator (==, !=, <, <=, >, >=), found "{b}"`},
	} {
		_, err := expect.Parse(tc.in)
		var se *expect.SyntaxError
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.As(err, &se) {
			t.Errorf("Parse(%q) = %v; want an error containing %q", tc.in, err, tc.want)
		}
	}
}

// result is a small run: 2 events from us-east, each seen by a us-east and
// an eu-west client, one of them lost in eu-west.
func result(t *testing.T) *check.Result {
	ms := time.Millisecond
	b := historytest.New(historytest.ThreeRegions("expect"))
	a, c := b.Client("a", "us-east"), b.Client("c", "eu-west")
	a.Connect(10*ms, "us-east", "gw-1")
	c.Connect(10*ms, "eu-west", "gw-1")
	for _, cl := range []*historytest.Client{a, c} {
		cl.Subscribe(11*ms, "tenant:1")
		cl.Subscribed(12*ms, "tenant:1", true, "")
	}
	a.Publish(100*ms, "tenant:1", "m1")
	a.Ack(102*ms, "m1", "ev1", 1)
	a.Message(101*ms, "tenant:1", "ev1", "us-east", 1, "e")
	c.Message(180*ms, "tenant:1", "ev1", "us-east", 1, "e")
	a.Publish(200*ms, "tenant:1", "m2")
	a.Ack(202*ms, "m2", "ev2", 2)
	a.Message(201*ms, "tenant:1", "ev2", "us-east", 2, "e")
	b.End(time.Second)
	return check.Check(b.History(t), check.Options{})
}

func TestEvaluate(t *testing.T) {
	r := result(t)
	for _, tc := range []struct {
		expr string
		pass bool
		msg  string
	}{
		{"lost == 0", false, "lost = 1, want == 0: FAIL"},
		{"lost <= 1", true, "lost = 1, want <= 1: ok"},
		{"delivered >= 3", true, "delivered = 3, want >= 3: ok"},
		{"delivered > 3", false, "delivered = 3, want > 3: FAIL"},
		{"duplicated != 0", false, "duplicated = 0, want != 0: FAIL"},
		{"published < 3", true, "published = 2, want < 3: ok"},
		{"cross_region_p99{us-east,eu-west} <= 400ms", true, "cross_region_p99{us-east,eu-west} = 80ms, want <= 400ms: ok"},
		{"cross_region_p99{eu-west,us-east} < 50ms", false, "cross_region_p99{eu-west,us-east} = 80ms, want < 50ms: FAIL"},
		{"intra_region_max == 1ms", true, "intra_region_max = 1ms, want == 1ms: ok"},
		{"lost < 2s", true, "lost = 1s, want < 2s: ok"}, // a duration against a count compares numerically
		{"failover_p99 <= 10s", false, "failover_p99: failover_p99 has no samples: FAIL"},
		{"bogus == 0", false, `bogus: unknown metric "bogus"`},
		{"lost{us-east} == 0", false, "lost{us-east}: lost takes no labels: FAIL"},
		{"cross_region_p99{us-east,mars} < 1s", false, "no deliveries between us-east and mars"},
		{"replication_lag_max < 30s", false, "the history has no lag samples"},
	} {
		e, err := expect.Parse(tc.expr)
		if err != nil {
			t.Fatal(err)
		}
		o := expect.Evaluate(e, r)
		if o.Pass != tc.pass || !strings.Contains(o.Message, tc.msg) || o.Expr != tc.expr {
			t.Errorf("%s: %+v; want pass %v, message %q", tc.expr, o, tc.pass, tc.msg)
		}
	}
	if o := expect.Evaluate(expect.Expectation{Metric: "lost", Op: expect.Eq, ValueText: "0"}, nil); o.Pass || o.Message == "" || o.Expr != "lost == 0" {
		t.Errorf("nil result: %+v", o)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"lost == 0", "failover_p99 <= 10s", "cross_region_p99{us-east,eu-west} <= 400ms",
		"delivered >= 1000", "replication_lag_max < 30s", "x{a , b}!=-1e-3", "y >= 1h2m3.5s", "z{", "a <"} {
		f.Add(s)
	}
	r := &check.Result{}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := expect.Parse(s)
		if err != nil {
			var se *expect.SyntaxError
			if !errors.As(err, &se) || se.Column < 1 || se.Column > len(s)+1 {
				t.Fatalf("Parse(%q): error %v with a bad column", s, err)
			}
			return
		}
		if math.IsNaN(e.Value) {
			t.Fatalf("Parse(%q) gave NaN", s)
		}
		e2, err := expect.Parse(e.String())
		if err != nil {
			t.Fatalf("Parse(%q) ok, but its String %q does not parse: %v", s, e.String(), err)
		}
		e2.Expr = e.Expr
		if !reflect.DeepEqual(e, e2) && !(math.IsInf(e.Value, 0) && e.Value == e2.Value) {
			t.Fatalf("round trip of %q: %+v, then %+v", s, e, e2)
		}
		_ = expect.Evaluate(e, r)
	})
}
