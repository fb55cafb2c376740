package chaos_test

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/geolab/geolab/lab"
	"github.com/geolab/geolab/lab/workload"
	"github.com/geolab/geolab/specs/speclab"
)

var _ = Describe("G10 slow consumers", Label("slow-consumer"), func() {
	It("cuts clients that stop reading while everyone else keeps receiving, in order", func() {
		wl := speclab.Workload(14 * time.Second)
		wl.FederatedRooms, wl.RoomsPerClient, wl.PayloadBytes = 2, 1, 2048
		wl.Bursts = []workload.Burst{{At: 5 * time.Second, Count: 1500, Within: 3 * time.Second}}
		var cut float64
		slowCut := func(ctx context.Context, l *lab.Lab) error {
			v, err := speclab.Metric(l.Region("us-east").Gateway(1).Listen, "geolab_gateway_slow_consumer_disconnects_total")
			cut = v
			if err == nil && v < 5 {
				return fmt.Errorf("slow-consumer disconnects %v, want 5", v)
			}
			return err
		}
		out, c := speclab.Play(speclab.Spec{
			Name: "slow-consumer", Topology: "three-region", Seed: 71, Workload: wl,
			GatewayArgs: []string{"--send-queue", "64"},
			Inspect:     slowCut,
			Steps:       []speclab.Step{speclab.At(2*time.Second, speclab.SlowClients("us-east", "gw-1", "tenant:1", 5))},
		})
		Expect(out.InspectErr).NotTo(HaveOccurred())
		// The slow probe (before the timeline, on the same gateway) is cut
		// too: the five slow clients are what is left of the metric.
		Expect(c.SlowConsumersCut).To(Equal(1), "the slow probe's connection was not cut with 4001")
		Expect(cut - float64(c.SlowConsumersCut)).To(BeNumerically(">=", 5))
		speclab.ExpectClean(c, 5000)
		Expect(c.Disconnects).To(BeZero(), "a client that kept reading was disconnected")
		p99, err := out.Result.Value("intra_region_p99")
		Expect(err).NotTo(HaveOccurred())
		Expect(p99).To(BeNumerically("<", 2.0), "the others' latency moved")
	})
})
