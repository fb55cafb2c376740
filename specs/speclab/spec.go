package speclab

import (
	"context"
	"path/filepath"
	"slices"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	"github.com/geolab/geolab/federation"
	"github.com/geolab/geolab/lab"
	"github.com/geolab/geolab/lab/check"
	"github.com/geolab/geolab/lab/expect"
	"github.com/geolab/geolab/lab/fault"
	"github.com/geolab/geolab/lab/run"
	"github.com/geolab/geolab/lab/scenario"
	"github.com/geolab/geolab/lab/topology"
	"github.com/geolab/geolab/lab/workload"
)

// Spec is one scenario a chaos spec plays: what a scenario file says
// (docs/scenarios.md), written in Go.
//
//	_, c := speclab.Play(speclab.Spec{
//		Name: "resubscribe-blip", Topology: "three-region", Seed: 41,
//		Workload: speclab.Workload(12 * time.Second),
//		Steps:    []speclab.Step{speclab.At(4*time.Second, speclab.RedisBlip("us-east").For(2*time.Second))},
//	})
//	speclab.ExpectClean(c, 2500)
type Spec struct {
	// Name names the scenario and its reports, reports/specs/NAME.
	Name string
	// Topology is a shipped topology: topologies/TOPOLOGY.yaml.
	Topology string
	// Workload is what the clients do (Workload gives the suite's default).
	Workload workload.Spec
	// Seed draws the workload's plan: the same seed, the same run.
	Seed int64
	// GatewayArgs are extra flags for every gateway (docs/gateway.md).
	GatewayArgs []string
	// Inspect, when set, looks at the lab itself after the run quiesced
	// and before it goes down (Redis keys, metrics: HistoriesOnce,
	// OutboxesHoldOnlyOwn); what it returns is the outcome's InspectErr.
	Inspect func(ctx context.Context, l *lab.Lab) error
	// Steps are the faults of the timeline (At).
	Steps []Step
	// Agents, above 0, runs the clients in that many local workload agent
	// processes (docs/agents.md) instead of the spec's process.
	Agents int
}

// Scenario builds and validates the scenario s stands for. Its one
// expectation is lost == 0; specs assert on the counts themselves.
func (s Spec) Scenario() (*scenario.Scenario, error) {
	t, err := Topology(s.Topology)
	if err != nil {
		return nil, err
	}
	wl := s.Workload
	wl.Defaults()
	if err := wl.Validate(); err != nil {
		return nil, err
	}
	for _, st := range s.Steps {
		if err := fault.Validate(st.Fault, t); err != nil {
			return nil, err
		}
	}
	lost, _ := expect.Parse("lost == 0")
	return &scenario.Scenario{Name: s.Name, TopologyPath: s.Topology, Topology: t, Seed: s.Seed, Workload: wl,
		Timeline: s.Steps, Expect: []expect.Expectation{lost}}, nil
}

// Run plays s against a real lab on the suite's provider (LabOptions),
// writing its history and reports under reports/specs/NAME. It is Play
// without Ginkgo: it returns what went wrong instead of failing a spec.
func (s Spec) Run(ctx context.Context) (*run.Outcome, error) {
	sc, err := s.Scenario()
	if err != nil {
		return nil, err
	}
	return run.Scenario(ctx, sc, run.Options{
		OutDir:  filepath.Join(Root(), "reports", "specs", sc.Name),
		Lab:     LabOptions(s.GatewayArgs...),
		Inspect: s.Inspect,
		Command: "make chaos (spec " + sc.Name + ")",
		Agents:  s.Agents,
	})
}

// Play runs s (Spec.Run, within 5 minutes) from inside a Ginkgo spec and
// returns the outcome and the checker's counts. A scenario that does not
// build or a run that could not be carried out fails the spec. The counts
// (Summary) become the spec's "counts" report entry, which the suite's
// summary table shows, and the HTML report's path its "report" entry;
// faults that could not be injected or healed are printed as notes.
func Play(s Spec) (*run.Outcome, check.Counts) {
	ginkgo.GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := s.Run(ctx)
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	ginkgo.AddReportEntry("counts", Summary(out))
	ginkgo.AddReportEntry("report", out.Dir+"/report.html")
	ginkgo.GinkgoWriter.Printf("%s: %s\n", s.Name, Summary(out))
	for _, e := range out.Errors {
		ginkgo.GinkgoWriter.Printf("%s: note: %s\n", s.Name, e)
	}
	return out, out.Result.Counts
}

// ExpectClean asserts the counts every healthy run must show: nothing lost,
// doubled, reordered or skipped, in region order, with at least
// minDelivered deliveries — and nothing announced as unrecoverable either:
// with history kept, every gap must be filled, not merely told.
func ExpectClean(c check.Counts, minDelivered int) {
	ginkgo.GinkgoHelper()
	ExpectNothingSilent(c, minDelivered)
	gomega.Expect(c.UnrecoverableAnnounced).To(gomega.BeZero(), "events announced unrecoverable though history held them")
	gomega.Expect(c.AnnouncedGaps).To(gomega.BeZero(), "gaps announced though history held them")
}

// ExpectNothingSilent is ExpectClean for runs where losing history is the
// point (a region down, Redis losing its data): gaps may be announced, never
// silent.
func ExpectNothingSilent(c check.Counts, minDelivered int) {
	ginkgo.GinkgoHelper()
	gomega.Expect(c.Delivered).To(gomega.BeNumerically(">=", minDelivered), "too little traffic for the spec to mean anything")
	gomega.Expect(c.Lost).To(gomega.BeZero(), "lost")
	gomega.Expect(c.Duplicated).To(gomega.BeZero(), "duplicated on the wire (G3)")
	gomega.Expect(c.Reordered).To(gomega.BeZero(), "reordered per origin (G2)")
	gomega.Expect(c.Gaps).To(gomega.BeZero(), "unannounced gaps (G2)")
	gomega.Expect(c.RegionOrder).To(gomega.BeZero(), "region order disagreements (G1)")
	gomega.Expect(c.SilentEpochChanges).To(gomega.BeZero(), "silent epoch changes (G6)")
	gomega.Expect(c.Leaked).To(gomega.BeZero(), "events outside the regions their room reaches (G7)")
	gomega.Expect(c.UnwarrantedRecoveredFalse).To(gomega.BeZero(), "recovered:false answers the region had no cause for (G6)")
	gomega.Expect(c.NotResumed).To(gomega.BeZero(), "reconnects that subscribed without since (G6)")
	gomega.Expect(c.EndedDisconnected).To(gomega.BeZero(), "clients disconnected at the end (G8)")
	gomega.Expect(c.FailoverUnfinished).To(gomega.BeZero(), "failovers not finished by the end (G8)")
	gomega.Expect(c.SessionsNotFenced).To(gomega.BeZero(), "the fence probe's session still served where it was taken from (G11)")
	gomega.Expect(c.SlowConsumersNotCut).To(gomega.BeZero(), "the slow probe's connection was not cut with 4001 (G10)")
	gomega.Expect(c.ReplicatedAcksLost).To(gomega.BeZero(), "publishes acked under --durability replicated gone from their region's history (G12's edge)")
}

// StartLab brings topo up for a spec that drives the lab itself instead of
// playing a scenario, and mints a token for sub that may read and publish
// every room. The lab is closed when the spec ends (DeferCleanup); Close
// may also be called earlier. A lab that does not start fails the spec.
func StartLab(topo *topology.Topology, sub string, gatewayArgs ...string) (*lab.Lab, string) {
	ginkgo.GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := lab.Start(ctx, topo, LabOptions(gatewayArgs...))
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	ginkgo.DeferCleanup(l.Close)
	tok, err := l.Token(sub, []string{"*"}, []string{"*"}, time.Hour)
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	return l, tok
}

// FailoverBound is G8's bound for a topology of topologies/: the resolver's
// answer TTL (resolver.ttl) plus 2 s, read from the file so that it is
// written once.
func FailoverBound(topologyName string) time.Duration {
	ginkgo.GinkgoHelper()
	topo, err := Topology(topologyName)
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	return topo.Resolver.TTL + 2*time.Second
}

// ExpectReasons asserts that every recovered:false the clients received
// gave one of the reasons a spec's faults may cause (docs/protocol.md).
func ExpectReasons(r *check.Result, allowed ...string) {
	ginkgo.GinkgoHelper()
	for reason, n := range r.RecoveredFalse {
		gomega.Expect(allowed).To(gomega.ContainElement(reason),
			"%d recovered:false frame(s) gave reason %q, which this spec's faults cannot cause (allowed: %v)", n, reason, allowed)
	}
}

// ExpectLagBackToOK asserts that each direction between regions a and b (a
// applying b's events, and b applying a's) is back to ok after the last
// fault healed: some lag sample after the heal has the bridge's state ok and
// a lag under the warn threshold (federation.DefaultLagWarn, which the specs
// run with). A link that never catches up has no such sample.
//
// Neither the last sample's figure nor its state alone can say it: the
// timeline keeps the highest lag of each second and the state of one of its
// scrapes, so under load the last second can pair a 1.04 s figure with state
// ok, or a 0 s figure with a warn the bridge has not yet cleared.
func ExpectLagBackToOK(r *check.Result, a, b string) {
	ginkgo.GinkgoHelper()
	healed := 0.0
	for _, f := range r.Faults {
		healed = max(healed, f.Heal)
	}
	warn := federation.DefaultLagWarn.Seconds()
	for _, link := range []string{a + "->" + b, b + "->" + a} {
		var after []check.LagPoint
		for _, p := range r.Timeline.Lag[link] {
			if p.T >= healed {
				after = append(after, p)
			}
		}
		gomega.Expect(after).NotTo(gomega.BeEmpty(), "no lag samples of link %s after the last heal at %.1fs", link, healed)
		back := slices.ContainsFunc(after, func(p check.LagPoint) bool { return p.State == "ok" && p.Seconds < warn })
		gomega.Expect(back).To(gomega.BeTrue(), "link %s never back to ok (under %.0fs) after the last heal at %.1fs: %v",
			link, warn, healed, after)
	}
}
