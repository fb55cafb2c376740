package chaos_test

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/geolab/geolab/lab"
	"github.com/geolab/geolab/lab/provider"
	"github.com/geolab/geolab/specs/speclab"
)

// Regions on Redis Cluster (three-region-cluster.yaml: 3 shards of a
// primary and a replica per region): the suite's workload must come out as
// clean as on one Redis (G1–G3, G7), and a shard's primary killed or failed
// over, or the busiest room's slot moved to another shard and back, under
// load must cost no event, no duplicate and no client (G5, G12): every
// gateway hosting a room of that shard or slot subscribes it again on the
// new owner and fills the gap from history.
var _ = Describe("G12 regions on Redis Cluster", Label("cluster"), func() {
	BeforeEach(func() {
		if p := speclab.Provider(); p != provider.ProcessName {
			Skip("the " + p + " provider runs no Redis Cluster (lab.Start refuses three-region-cluster.yaml there): the process provider only")
		}
	})

	It("keeps region order, per-origin FIFO, no duplicates and federation on a cluster", func() {
		var own int
		out, c := speclab.Play(speclab.Spec{
			Name: "cluster-steady", Topology: "three-region-cluster", Seed: 121,
			Workload: speclab.Workload(10 * time.Second),
			Inspect: func(ctx context.Context, l *lab.Lab) error {
				if err := speclab.OutboxesHoldOnlyOwn(ctx, l); err != nil {
					return err
				}
				return speclab.HistoriesOnce(&own)(ctx, l)
			},
		})
		speclab.ExpectClean(c, 1500)
		Expect(out.InspectErr).NotTo(HaveOccurred())
		Expect(own).To(Equal(c.Published), "the clusters' histories hold another number of their own events than were acked")
	})

	for _, k := range []struct {
		name  string
		fault speclab.Fault
		seed  int64
	}{
		{"shard-kill", speclab.ShardKill("us-east", 1), 122},
		{"shard-failover", speclab.ShardFailover("us-east", 2), 123},
		// moved at 4 s, back at 8 s: two migrations under load.
		{"slot-migrate", speclab.SlotMigrate("us-east").For(4 * time.Second), 124},
	} {
		It(fmt.Sprintf("loses, doubles and disconnects nothing through a %s under load", k.name), func() {
			var own int
			var lost float64
			out, c := speclab.Play(speclab.Spec{
				Name: "cluster-" + k.name, Topology: "three-region-cluster", Seed: k.seed,
				Workload: speclab.Workload(12 * time.Second),
				Steps:    []speclab.Step{speclab.At(4*time.Second, k.fault)},
				Inspect: func(ctx context.Context, l *lab.Lab) (err error) {
					if lost, err = regionMetric(l, "us-east", "geolab_gateway_redis_disconnects_total"); err != nil {
						return err
					}
					return speclab.HistoriesOnce(&own)(ctx, l)
				},
			})
			speclab.ExpectClean(c, 2000)
			Expect(out.InspectErr).NotTo(HaveOccurred())
			Expect(out.Result.Faults).To(HaveLen(1))
			Expect(lost).To(BeNumerically(">", 0), "no us-east gateway lost a subscription: the %s hit no hosted room, the spec proved nothing about G12", k.name)
			Expect(own).To(Equal(c.Published), "the clusters' histories hold another number of their own events than were acked")
		})
	}

	// us-east's gateways ack a publish only once a replica of its primary
	// has it (three-region-cluster-replicated.yaml: redis.durability:
	// replicated). Shard 1's primary is killed -9 under load and started
	// again 4 s later (it comes back as its successor's replica): from the
	// failover until then the shard has no replica, so us-east refuses its
	// rooms' publishes (unavailable) and the clients retry them with their
	// ids. Nothing acked may be lost, doubled or disconnected, and the
	// refusals must have happened (the durability was on and the fault bit).
	// On loopback an async primary loses nothing acked either (the window is
	// practically closed, docs/guarantees.md): the gateway package's
	// TestDurabilityAsyncLosesAckedPublishes is the run that tells the two
	// apart.
	It("loses no acked publish through a shard-kill with replicated durability", func() {
		var own int
		var lost, refused float64
		out, c := speclab.Play(speclab.Spec{
			Name: "cluster-shard-kill-replicated", Topology: "three-region-cluster-replicated", Seed: 125,
			Workload: speclab.Workload(12 * time.Second),
			Steps:    []speclab.Step{speclab.At(4*time.Second, speclab.ShardKill("us-east", 1).For(4*time.Second))},
			Inspect: func(ctx context.Context, l *lab.Lab) (err error) {
				if lost, err = regionMetric(l, "us-east", "geolab_gateway_redis_disconnects_total"); err != nil {
					return err
				}
				if refused, err = regionMetric(l, "us-east", "geolab_gateway_publish_not_replicated_total"); err != nil {
					return err
				}
				return speclab.HistoriesOnce(&own)(ctx, l)
			},
		})
		speclab.ExpectClean(c, 2000)
		Expect(out.InspectErr).NotTo(HaveOccurred())
		Expect(out.Result.Faults).To(HaveLen(1))
		Expect(lost).To(BeNumerically(">", 0), "no us-east gateway lost a subscription: the shard-kill hit no hosted room")
		Expect(refused).To(BeNumerically(">", 0), "no us-east publish was refused for want of a replica: the gateways did not run --durability replicated, or the shard never lacked a replica")
		Expect(own).To(Equal(c.Published), "the clusters' histories hold another number of their own events than were acked")
	})
})

// regionMetric sums a metric over region's gateways.
func regionMetric(l *lab.Lab, region, name string) (float64, error) {
	total := 0.0
	for _, g := range l.Region(region).Gateways() {
		v, err := speclab.Metric(g.Listen, name)
		if err != nil {
			return 0, err
		}
		total += v
	}
	return total, nil
}
