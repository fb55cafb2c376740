package chaos_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/geolab/geolab/specs/speclab"
)

var _ = Describe("G5 resubscribe-on-reconnect", Label("resubscribe"), func() {

	It("fills the gap after a Redis blip", func() {
		_, c := speclab.Play(speclab.Spec{
			Name: "resubscribe-blip", Topology: "three-region", Seed: 41,
			Workload: speclab.Workload(12 * time.Second),
			Steps:    []speclab.Step{speclab.At(4*time.Second, speclab.RedisBlip("us-east").For(2*time.Second))},
		})
		speclab.ExpectClean(c, 2500)
	})

	It("fills the gap after a Redis restart under load", func() {
		_, c := speclab.Play(speclab.Spec{
			Name: "resubscribe-restart", Topology: "three-region", Seed: 42,
			Workload: speclab.Workload(14 * time.Second),
			Steps:    []speclab.Step{speclab.At(4*time.Second, speclab.RedisKill("us-east").For(3*time.Second))},
		})
		speclab.ExpectClean(c, 2500)
		Expect(c.Retried).To(BeNumerically(">", 0), "no publish met the outage")
	})

	It("fills the gap after its Redis link is blackholed longer than every timeout", func() {
		_, c := speclab.Play(speclab.Spec{
			Name: "resubscribe-blackhole", Topology: "three-region", Seed: 43,
			Workload: speclab.Workload(24 * time.Second),
			Steps:    []speclab.Step{speclab.At(4*time.Second, speclab.RedisBlip("eu-west").Blackhole().For(12*time.Second))},
		})
		speclab.ExpectClean(c, 4000)
	})

	It("announces a Redis that lost its data: a new epoch, never a silent renumbering", func() {
		out, c := speclab.Play(speclab.Spec{
			Name: "resubscribe-lost-data", Topology: "three-region", Seed: 44,
			Workload: speclab.Workload(14 * time.Second),
			Steps:    []speclab.Step{speclab.At(5*time.Second, speclab.RedisRestart("us-east").LoseData())},
		})
		speclab.ExpectNothingSilent(c, 2500)
		Expect(c.AnnouncedEpochChanges).To(BeNumerically(">", 0), "us-east's sequences restarted without a new epoch being announced")
		speclab.ExpectReasons(out.Result, "epoch_changed")
	})
})
