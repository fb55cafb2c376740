package chaos_test

import (
	. "github.com/onsi/ginkgo/v2"

	"github.com/geolab/geolab/lab/fault"
	"github.com/geolab/geolab/specs/speclab"
	"time"
)

var _ = Describe("G1 region order and G2 per-origin FIFO", Label("ordering"), func() {
	It("hold under inter-region latency and jitter", func() {
		wl := speclab.Workload(15 * time.Second)
		_, c := play("ordering-jitter", "three-region", wl, 21, nil, nil,
			speclab.At(0, fault.Spec{Kind: "latency", Regions: []string{"us-east", "eu-west"}, Latency: 60 * ms, Jitter: 50 * ms}),
			speclab.At(0, fault.Spec{Kind: "latency", Regions: []string{"eu-west", "ap-southeast"}, Latency: 40 * ms, Jitter: 40 * ms}))
		expectClean(c, 3000)
	})

	It("hold with many publishers on one room", func() {
		wl := speclab.Workload(12 * time.Second)
		wl.Clients, wl.FederatedRooms, wl.RoomsPerClient, wl.LocalRooms, wl.PublishRate = 40, 1, 1, 0, 150
		_, c := play("ordering-one-room", "three-region", wl, 22, nil, nil)
		expectClean(c, 40*1500)
	})
})
