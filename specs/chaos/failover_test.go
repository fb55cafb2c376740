package chaos_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/geolab/geolab/specs/speclab"
)

// The failover bound of G8: the resolver's TTL + 2 s.
var failoverBound = (2*time.Second + 2*time.Second).Seconds()

var _ = Describe("G6 resume and G8 region failover", Label("failover"), func() {
	It("moves a dead region's clients to the nearest healthy region within the bound, and its stranded events arrive once", func() {
		out, c := speclab.Play(speclab.Spec{
			Name: "failover-region-down", Topology: "three-region", Seed: 51,
			Workload: speclab.Workload(30 * time.Second),
			Steps:    []speclab.Step{speclab.At(6*time.Second, speclab.RegionDown("eu-west").For(14*time.Second))},
		})
		speclab.ExpectNothingSilent(c, 3000)
		Expect(c.Failovers).To(BeNumerically(">", 0), "no client failed over")
		Expect(c.FailoverUnfinished).To(BeZero(), "clients never resubscribed")
		Expect(out.Result.Failover.P99).To(BeNumerically("<=", failoverBound), "failover p99 past TTL + 2 s")
		Expect(c.UnrecoverableAnnounced).To(BeNumerically(">", 0), "local rooms of the dead region were not announced recovered:false")
	})

	It("moves the clients of a region isolated by blackhole within the bound", func() {
		out, c := speclab.Play(speclab.Spec{
			Name: "failover-isolate-blackhole", Topology: "three-region", Seed: 52,
			Workload: speclab.Workload(30 * time.Second),
			Steps:    []speclab.Step{speclab.At(6*time.Second, speclab.Isolate("ap-southeast").Blackhole().For(14*time.Second))},
		})
		speclab.ExpectNothingSilent(c, 3000)
		Expect(c.Failovers).To(BeNumerically(">", 0), "no client failed over")
		Expect(c.FailoverUnfinished).To(BeZero(), "clients never resubscribed")
		Expect(out.Result.Failover.P99).To(BeNumerically("<=", failoverBound+3), "failover p99 past TTL + 2 s + the heartbeat timeout a blackhole needs")
	})
})
