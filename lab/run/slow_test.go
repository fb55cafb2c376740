package run

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/geolab/geolab/lab/check"
	"github.com/geolab/geolab/lab/history/historytest"
	"github.com/geolab/geolab/lab/workload"
)

const ms = time.Millisecond

// slowHistory is a hand-made clean run: c-us-east-a publishes two events
// into tenant:1, each delivered to it and to c-eu-west-b.
func slowHistory(t *testing.T) *check.Result {
	t.Helper()
	b := historytest.New(historytest.ThreeRegions("slow"))
	a, c := b.Client("c-us-east-a", "us-east"), b.Client("c-eu-west-b", "eu-west")
	for _, cl := range []*historytest.Client{a, c} {
		region := map[*historytest.Client]string{a: "us-east", c: "eu-west"}[cl]
		cl.Connect(10*ms, region, "gw-1")
		cl.Subscribe(11*ms, "tenant:1")
		cl.Subscribed(12*ms, "tenant:1", true, "")
	}
	for i, id := range []string{"1", "2"} {
		at := time.Duration(100+100*i) * ms
		a.Publish(at, "tenant:1", "m-"+id)
		a.Ack(at+2*ms, "m-"+id, "ev-"+id, uint64(i+1))
		a.Message(at+3*ms, "tenant:1", "ev-"+id, "us-east", uint64(i+1), "e1")
		c.Message(at+40*ms, "tenant:1", "ev-"+id, "us-east", uint64(i+1), "e1")
	}
	b.End(time.Second)
	return check.Check(b.History(t), check.Options{})
}

// TestSlowProbeCounts: the slow probe's verdict joins the checker's result
// of a hand-made history with exact numbers: a cut is slow_consumers_cut 1
// and no violation; not cut is slow_consumers_not_cut 1, a G10 violation
// with the probe's words as its example; a probe not judged or not
// planned counts in neither. The history's own counts stay as they were.
func TestSlowProbeCounts(t *testing.T) {
	plan := &workload.SlowPlan{Region: "us-east", Node: "gw-1", Publisher: "gw-2", Room: "local:us-east:slow-probe"}
	cases := []struct {
		outcome      workload.SlowOutcome
		cut, notCut  float64
		violations   []check.Violation
		exampleWords string
	}{
		{workload.SlowCut, 1, 0, nil, ""},
		{workload.SlowNotCut, 0, 1, []check.Violation{{Name: "slow_consumers_not_cut", Guarantee: "G10", Count: 1}}, "held up"},
		{workload.SlowUnjudged, 0, 0, nil, ""},
		{workload.SlowNotPlanned, 0, 0, nil, ""},
	}
	for _, tc := range cases {
		r := slowHistory(t)
		addSlow(r, workload.SlowResult{Plan: plan, Outcome: tc.outcome, Flood: 1340,
			Detail: "the witness on the slow connection's gateway was held up: …"})
		for name, want := range map[string]float64{"published": 2, "delivered": 4, "lost": 0,
			"slow_consumers_cut": tc.cut, "slow_consumers_not_cut": tc.notCut} {
			if got, ok := r.Metric(name); !ok || got != want {
				t.Errorf("%s: %s = %v (%v), want %v", tc.outcome, name, got, ok, want)
			}
		}
		if got := r.Violations(); !reflect.DeepEqual(got, tc.violations) {
			t.Errorf("%s: violations %+v, want %+v", tc.outcome, got, tc.violations)
		}
		ex := r.Examples["slow_consumers_not_cut"]
		switch {
		case tc.exampleWords == "" && len(ex) != 0:
			t.Errorf("%s: examples %+v, want none", tc.outcome, ex)
		case tc.exampleWords != "" && (len(ex) != 1 || ex[0].Room != plan.Room || !strings.Contains(ex[0].Text, tc.exampleWords)):
			t.Errorf("%s: examples %+v, want one in %s saying %q", tc.outcome, ex, plan.Room, tc.exampleWords)
		}
	}
}

// TestGatewayLimits: the flood is sized by the gateways' last --send-queue
// and --send-buffer, in either flag form, else the gateway's defaults.
func TestGatewayLimits(t *testing.T) {
	cases := []struct {
		args []string
		want workload.GatewayLimits
	}{
		{nil, workload.GatewayLimits{SendQueue: 1024, SendBuffer: 256 << 10}},
		{[]string{"--send-queue", "64"}, workload.GatewayLimits{SendQueue: 64, SendBuffer: 256 << 10}},
		{[]string{"--send-queue=64", "-send-buffer=0", "--history-maxlen", "9"}, workload.GatewayLimits{SendQueue: 64}},
		{[]string{"--send-queue", "64", "--send-queue", "128"}, workload.GatewayLimits{SendQueue: 128, SendBuffer: 256 << 10}},
		{[]string{"--send-queue", "lots"}, workload.GatewayLimits{SendQueue: 1024, SendBuffer: 256 << 10}},
		{[]string{"--send-buffer"}, workload.GatewayLimits{SendQueue: 1024, SendBuffer: 256 << 10}},
	}
	for _, tc := range cases {
		if got := gatewayLimits(tc.args); got != tc.want {
			t.Errorf("gatewayLimits(%q) = %+v, want %+v", tc.args, got, tc.want)
		}
	}
}
