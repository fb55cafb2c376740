package chaos_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/geolab/geolab/specs/speclab"
)

var _ = Describe("G3 no duplicates on the wire and G4 idempotent publish", Label("dedup"), func() {
	It("turns publish retries across dropped connections into one event each", func() {
		var own int
		out, c := speclab.Play(speclab.Spec{
			Name: "dedup-retries", Topology: "three-region", Seed: 31,
			Workload: speclab.Workload(16 * time.Second),
			Inspect:  speclab.HistoriesOnce(&own),
			Steps: []speclab.Step{
				speclab.At(4*time.Second, speclab.GatewayKill("us-east", "gw-1").For(2*time.Second)),
				speclab.At(9*time.Second, speclab.RedisBlip("eu-west").For(1500*ms)),
			},
		})
		speclab.ExpectClean(c, 3000)
		Expect(c.Retried).To(BeNumerically(">", 0), "no publish was retried: the spec proved nothing about G4")
		Expect(c.Unacked).To(BeZero(), "unacked publishes")
		Expect(out.InspectErr).NotTo(HaveOccurred())
		Expect(own).To(Equal(c.Published), "the regions' histories hold a different number of events than were acked: a retry became a second event")
	})

	It("delivers nothing twice when a bridge replays after kill -9", func() {
		var own int
		out, c := speclab.Play(speclab.Spec{
			Name: "dedup-bridge-kill", Topology: "three-region", Seed: 32,
			Workload: speclab.Workload(16 * time.Second),
			Inspect:  speclab.HistoriesOnce(&own),
			Steps: []speclab.Step{
				speclab.At(4*time.Second, speclab.BridgeKill("eu-west").For(3*time.Second)),
				speclab.At(9*time.Second, speclab.BridgeKill("ap-southeast").For(2*time.Second)),
			},
		})
		speclab.ExpectClean(c, 3000)
		Expect(out.InspectErr).NotTo(HaveOccurred(), "a replayed event was applied twice into a region's history")
		Expect(own).To(Equal(c.Published))
	})

	It("keeps a full mesh from echoing: every outbox holds only its own region's events", func() {
		out, c := speclab.Play(speclab.Spec{
			Name: "dedup-no-echo", Topology: "three-region", Seed: 33,
			Workload: speclab.Workload(8 * time.Second),
			Inspect:  speclab.OutboxesHoldOnlyOwn,
		})
		Expect(out.InspectErr).NotTo(HaveOccurred())
		speclab.ExpectClean(c, 1500)
	})
})
