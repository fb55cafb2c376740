package chaos_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/geolab/geolab/lab/fault"
	"github.com/geolab/geolab/specs/speclab"
)

var _ = Describe("G5 resubscribe-on-reconnect", Label("resubscribe"), func() {

	It("fills the gap after a Redis blip", func() {
		wl := speclab.Workload(12 * time.Second)
		_, c := play("resubscribe-blip", "three-region", wl, 41, nil, nil,
			speclab.At(4*time.Second, fault.Spec{Kind: "redis-blip", Regions: []string{"us-east"}, For: 2 * time.Second}))
		expectClean(c, 2500)
	})

	It("fills the gap after a Redis restart under load", func() {
		wl := speclab.Workload(14 * time.Second)
		_, c := play("resubscribe-restart", "three-region", wl, 42, nil, nil,
			speclab.At(4*time.Second, fault.Spec{Kind: "redis-kill", Regions: []string{"us-east"}, For: 3 * time.Second}))
		expectClean(c, 2500)
		Expect(c.Retried).To(BeNumerically(">", 0), "no publish met the outage")
	})

	It("fills the gap after its Redis link is blackholed longer than every timeout", func() {
		wl := speclab.Workload(24 * time.Second)
		_, c := play("resubscribe-blackhole", "three-region", wl, 43, nil, nil,
			speclab.At(4*time.Second, fault.Spec{Kind: "redis-blip", Regions: []string{"eu-west"}, Mode: "blackhole", For: 12 * time.Second}))
		expectClean(c, 4000)
	})

	It("announces a Redis that lost its data: a new epoch, never a silent renumbering", func() {
		wl := speclab.Workload(14 * time.Second)
		_, c := play("resubscribe-lost-data", "three-region", wl, 44, nil, nil,
			speclab.At(5*time.Second, fault.Spec{Kind: "redis-restart", Regions: []string{"us-east"}, LoseData: true}))
		expectNothingSilent(c, 2500)
		Expect(c.AnnouncedEpochChanges).To(BeNumerically(">", 0), "us-east's sequences restarted without a new epoch being announced")
	})
})
