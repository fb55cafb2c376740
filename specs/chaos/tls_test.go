package chaos_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/geolab/geolab/lab"
	"github.com/geolab/geolab/lab/provider"
	"github.com/geolab/geolab/specs/speclab"
)

// Redis as fleets run it (two-region-tls.yaml): every Redis speaks TLS only
// and knows only ACL users, the gateways and bridges log in as users of
// their own over rediss://, through the same Toxiproxy links. A Redis blip
// (G5) and a partition (G7) must come out as clean as on plain Redis: the
// reconnects dial TLS and log in again, nothing lost, doubled or reordered.
var _ = Describe("Redis with TLS and ACL users", Label("tls"), func() {
	BeforeEach(func() {
		if p := speclab.Provider(); p != provider.ProcessName {
			Skip("the " + p + " provider runs no TLS or ACL Redis (lab.Start refuses two-region-tls.yaml there): the process provider only")
		}
	})

	It("fills the gap after a Redis blip on a TLS region", Label("resubscribe"), func() {
		_, c := speclab.Play(speclab.Spec{
			Name: "tls-resubscribe-blip", Topology: "two-region-tls", Seed: 91,
			Workload: speclab.Workload(12 * time.Second),
			Steps:    []speclab.Step{speclab.At(4*time.Second, speclab.RedisBlip("us-east").For(2*time.Second))},
		})
		speclab.ExpectClean(c, 2000)
		Expect(c.Retried).To(BeNumerically(">", 0), "no publish met the blip")
	})

	It("catches up after a partition between TLS regions, every outbox its own", Label("partition"), func() {
		var own int
		out, c := speclab.Play(speclab.Spec{
			Name: "tls-partition", Topology: "two-region-tls", Seed: 92,
			Workload: speclab.Workload(17 * time.Second),
			Steps: []speclab.Step{
				speclab.At(3*time.Second, speclab.Partition("us-east", "us-west").For(5*time.Second)),
				speclab.At(10*time.Second, speclab.Partition("us-east", "us-west").Blackhole().For(5*time.Second)),
			},
			// Read as the lab's ACL user over TLS (lab.Region.RedisClient).
			Inspect: func(ctx context.Context, l *lab.Lab) error {
				if err := speclab.OutboxesHoldOnlyOwn(ctx, l); err != nil {
					return err
				}
				return speclab.HistoriesOnce(&own)(ctx, l)
			},
		})
		speclab.ExpectClean(c, 2500)
		Expect(out.InspectErr).NotTo(HaveOccurred())
		Expect(own).To(Equal(c.Published), "the regions hold another number of their own events than were acked")
		Expect(out.Result.Faults).To(HaveLen(2))
		lag, err := out.Result.Value("replication_lag_max", "us-west", "us-east")
		Expect(err).NotTo(HaveOccurred())
		Expect(lag).To(BeNumerically(">=", 1.0), "us-west's lag from us-east never crossed the warn threshold during the partitions")
	})
})
