package chaos_test

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"

	"github.com/geolab/geolab/lab"
	"github.com/geolab/geolab/lab/fault"
	"github.com/geolab/geolab/specs/speclab"
)

var _ = Describe("G3 no duplicates on the wire and G4 idempotent publish", Label("dedup"), func() {
	It("turns publish retries across dropped connections into one event each", func() {
		wl := speclab.Workload(16 * time.Second)
		var own int
		once := func(ctx context.Context, l *lab.Lab) (err error) { own, err = speclab.HistoryOnce(ctx, l); return err }
		out, c := play("dedup-retries", "three-region", wl, 31, nil, once,
			speclab.At(4*time.Second, fault.Spec{Kind: "gateway-kill", Regions: []string{"us-east"}, Node: "gw-1", For: 2 * time.Second}),
			speclab.At(9*time.Second, fault.Spec{Kind: "redis-blip", Regions: []string{"eu-west"}, For: 1500 * ms}))
		expectClean(c, 3000)
		Expect(c.Retried).To(BeNumerically(">", 0), "no publish was retried: the spec proved nothing about G4")
		Expect(c.Unacked).To(BeZero(), "unacked publishes")
		Expect(out.InspectErr).NotTo(HaveOccurred())
		Expect(own).To(Equal(c.Published), "the regions' histories hold a different number of events than were acked: a retry became a second event")
	})

	It("delivers nothing twice when a bridge replays after kill -9", func() {
		wl := speclab.Workload(16 * time.Second)
		var own int
		once := func(ctx context.Context, l *lab.Lab) (err error) { own, err = speclab.HistoryOnce(ctx, l); return err }
		out, c := play("dedup-bridge-kill", "three-region", wl, 32, nil, once,
			speclab.At(4*time.Second, fault.Spec{Kind: "bridge-kill", Regions: []string{"eu-west"}, For: 3 * time.Second}),
			speclab.At(9*time.Second, fault.Spec{Kind: "bridge-kill", Regions: []string{"ap-southeast"}, For: 2 * time.Second}))
		expectClean(c, 3000)
		Expect(out.InspectErr).NotTo(HaveOccurred(), "a replayed event was applied twice into a region's history")
		Expect(own).To(Equal(c.Published))
	})

	It("keeps a full mesh from echoing: every outbox holds only its own region's events", func() {
		wl := speclab.Workload(8 * time.Second)
		outboxes := func(ctx context.Context, l *lab.Lab) error {
			for _, r := range l.Topology().RegionNames() {
				rc := redis.NewClient(&redis.Options{Addr: l.Region(r).Redis().Addr()})
				entries, err := rc.XRange(ctx, "geolab:outbox:"+r, "-", "+").Result()
				rc.Close()
				if err != nil {
					return err
				}
				if len(entries) == 0 {
					return fmt.Errorf("outbox of %s is empty: nothing was federated", r)
				}
				for _, e := range entries {
					if o := fmt.Sprint(e.Values["o"]); o != r {
						return fmt.Errorf("outbox of %s holds an event of origin %s (entry %s): a bridge echoed", r, o, e.ID)
					}
				}
			}
			return nil
		}
		out, c := play("dedup-no-echo", "three-region", wl, 33, nil, outboxes)
		Expect(out.InspectErr).NotTo(HaveOccurred())
		expectClean(c, 1500)
	})
})
