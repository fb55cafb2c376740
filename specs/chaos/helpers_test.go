package chaos_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/geolab/geolab/lab"
	"github.com/geolab/geolab/lab/check"
	"github.com/geolab/geolab/lab/run"
	"github.com/geolab/geolab/lab/scenario"
	"github.com/geolab/geolab/lab/topology"
	"github.com/geolab/geolab/lab/workload"
	"github.com/geolab/geolab/specs/speclab"
)

const ms = time.Millisecond

// play builds and runs a scenario, records its counts for the summary and
// returns them.
func play(name, topo string, wl workload.Spec, seed int64, gatewayArgs []string, inspect func(context.Context, *lab.Lab) error, steps ...scenario.Step) (*run.Outcome, check.Counts) {
	GinkgoHelper()
	sc, err := speclab.Scenario(name, topo, wl, seed, steps...)
	Expect(err).NotTo(HaveOccurred())
	out, err := speclab.Play(sc, gatewayArgs, inspect)
	Expect(err).NotTo(HaveOccurred())
	AddReportEntry("counts", speclab.Summary(out))
	AddReportEntry("report", out.Dir+"/report.html")
	GinkgoWriter.Printf("%s: %s\n", name, speclab.Summary(out))
	for _, e := range out.Errors {
		GinkgoWriter.Printf("%s: note: %s\n", name, e)
	}
	return out, out.Result.Counts
}

// expectClean asserts the counts every healthy run must show: nothing lost,
// doubled, reordered or skipped, in region order, with real traffic — and
// nothing announced as unrecoverable either: with history kept, every gap
// must be filled, not merely told.
func expectClean(c check.Counts, minDelivered int) {
	GinkgoHelper()
	expectNothingSilent(c, minDelivered)
	Expect(c.UnrecoverableAnnounced).To(BeZero(), "events announced unrecoverable though history held them")
	Expect(c.AnnouncedGaps).To(BeZero(), "gaps announced though history held them")
}

// expectNothingSilent is expectClean for runs where losing history is the
// point (a region down, Redis losing its data): gaps may be announced, never
// silent.
func expectNothingSilent(c check.Counts, minDelivered int) {
	GinkgoHelper()
	Expect(c.Delivered).To(BeNumerically(">=", minDelivered), "too little traffic for the spec to mean anything")
	Expect(c.Lost).To(BeZero(), "lost")
	Expect(c.Duplicated).To(BeZero(), "duplicated on the wire (G3)")
	Expect(c.Reordered).To(BeZero(), "reordered per origin (G2)")
	Expect(c.Gaps).To(BeZero(), "unannounced gaps (G2)")
	Expect(c.RegionOrder).To(BeZero(), "region order disagreements (G1)")
	Expect(c.SilentEpochChanges).To(BeZero(), "silent epoch changes (G6)")
}

// startLab brings topo up for one spec (stopped when the spec ends; Close may
// also be called earlier) and mints a token for sub that may read and
// publish every room.
func startLab(topo *topology.Topology, sub string, gatewayArgs ...string) (*lab.Lab, string) {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := lab.Start(ctx, topo, speclab.LabOptions(gatewayArgs...))
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(l.Close)
	tok, err := l.Token(sub, []string{"*"}, []string{"*"}, time.Hour)
	Expect(err).NotTo(HaveOccurred())
	return l, tok
}
