package chaos_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/geolab/geolab/lab/fault"
	"github.com/geolab/geolab/specs/speclab"
)

// The failover bound of G8: the resolver's TTL + 2 s.
var failoverBound = (2*time.Second + 2*time.Second).Seconds()

var _ = Describe("G6 resume and G8 region failover", Label("failover"), func() {
	It("moves a dead region's clients to the nearest healthy region within the bound, and its stranded events arrive once", func() {
		wl := speclab.Workload(30 * time.Second)
		out, c := play("failover-region-down", "three-region", wl, 51, nil, nil,
			speclab.At(6*time.Second, fault.Spec{Kind: "region-down", Regions: []string{"eu-west"}, For: 14 * time.Second}))
		expectNothingSilent(c, 3000)
		Expect(c.Failovers).To(BeNumerically(">", 0), "no client failed over")
		Expect(c.FailoverUnfinished).To(BeZero(), "clients never resubscribed")
		Expect(out.Result.Failover.P99).To(BeNumerically("<=", failoverBound), "failover p99 past TTL + 2 s")
		Expect(c.UnrecoverableAnnounced).To(BeNumerically(">", 0), "local rooms of the dead region were not announced recovered:false")
	})

	It("moves the clients of a region isolated by blackhole within the bound", func() {
		wl := speclab.Workload(30 * time.Second)
		out, c := play("failover-isolate-blackhole", "three-region", wl, 52, nil, nil,
			speclab.At(6*time.Second, fault.Spec{Kind: "isolate", Regions: []string{"ap-southeast"}, Mode: "blackhole", For: 14 * time.Second}))
		expectNothingSilent(c, 3000)
		Expect(c.Failovers).To(BeNumerically(">", 0), "no client failed over")
		Expect(c.FailoverUnfinished).To(BeZero(), "clients never resubscribed")
		Expect(out.Result.Failover.P99).To(BeNumerically("<=", failoverBound+3), "failover p99 past TTL + 2 s + the heartbeat timeout a blackhole needs")
	})
})
