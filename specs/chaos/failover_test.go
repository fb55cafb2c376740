package chaos_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/geolab/geolab/specs/speclab"
)

var _ = Describe("G6 resume and G8 region failover", Label("failover"), func() {
	// G8's bound, the resolver's TTL + 2 s, read from the topology.
	var failoverBound float64
	BeforeEach(func() { failoverBound = speclab.FailoverBound("three-region").Seconds() })

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
		// A local room resumed in another region is ahead of its history
		// there: announced recovered:false, and nothing else may be refused.
		// (Nothing of it is owed there, so unrecoverable_announced stays 0.)
		Expect(out.Result.RecoveredFalse).To(HaveKey("ahead_of_history"), "local rooms of the dead region were not announced recovered:false")
		speclab.ExpectReasons(out.Result, "ahead_of_history")
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
		speclab.ExpectReasons(out.Result, "ahead_of_history")
	})
})
