package chaos_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"

	"github.com/geolab/geolab/specs/speclab"
)

var _ = Describe("G1 region order and G2 per-origin FIFO", Label("ordering"), func() {
	It("hold under inter-region latency and jitter", func() {
		_, c := speclab.Play(speclab.Spec{
			Name: "ordering-jitter", Topology: "three-region", Seed: 21,
			Workload: speclab.Workload(15 * time.Second),
			Steps: []speclab.Step{
				speclab.At(0, speclab.Latency("us-east", "eu-west", 60*ms, 50*ms)),
				speclab.At(0, speclab.Latency("eu-west", "ap-southeast", 40*ms, 40*ms)),
			},
		})
		speclab.ExpectClean(c, 3000)
	})

	It("hold with many publishers on one room", func() {
		wl := speclab.Workload(12 * time.Second)
		wl.Clients, wl.FederatedRooms, wl.RoomsPerClient, wl.LocalRooms, wl.PublishRate = 40, 1, 1, 0, 150
		_, c := speclab.Play(speclab.Spec{Name: "ordering-one-room", Topology: "three-region", Seed: 22, Workload: wl})
		speclab.ExpectClean(c, 40*1500)
	})
})
