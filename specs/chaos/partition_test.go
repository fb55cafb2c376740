package chaos_test

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/geolab/geolab/specs/speclab"
)

var _ = Describe("G7 federation across partitions", Label("partition"), func() {
	pairs := [][2]string{{"us-east", "eu-west"}, {"us-east", "ap-southeast"}, {"eu-west", "ap-southeast"}}
	for i, p := range pairs {
		It(fmt.Sprintf("catches up after every partition kind between %s and %s", p[0], p[1]), func() {
			// reset both ways, blackhole both ways (8 s: past the 5 s alert
			// threshold), reset one way, blackhole one way: 5 s each, 2 s apart.
			var steps []speclab.Step
			at := 3 * time.Second
			for _, k := range []struct {
				mode, dir string
				d         time.Duration
			}{{"reset", "both", 5 * time.Second}, {"blackhole", "both", 8 * time.Second}, {"reset", "one", 5 * time.Second}, {"blackhole", "one", 5 * time.Second}} {
				steps = append(steps, speclab.At(at, speclab.Partition(p[0], p[1]).Mode(k.mode).Direction(k.dir).For(k.d)))
				at += k.d + 2*time.Second
			}
			out, c := speclab.Play(speclab.Spec{
				Name: fmt.Sprintf("partition-%s-%s", p[0], p[1]), Topology: "three-region", Seed: int64(61 + i),
				// Publishing goes on 10 s past the last heal (at is 2 s
				// past it): the lag timeline must hold samples taken after
				// the links caught up, and a run that ends as soon as
				// everything is delivered may end before the next scrape
				// (CI under load: the last sample, 3 s after the heal,
				// still read warn).
				Workload: speclab.Workload(at + 8*time.Second),
				Steps:    steps,
			})
			speclab.ExpectClean(c, 4000)
			Expect(out.Result.Faults).To(HaveLen(4))
			lag, err := out.Result.Value("replication_lag_max", p[1], p[0])
			Expect(err).NotTo(HaveOccurred())
			Expect(lag).To(BeNumerically(">=", 1.0), "the lag of %s from %s never crossed the warn threshold during the partitions", p[1], p[0])
			// Both directions cross the 1 s warning and the 5 s alert during
			// the 8 s blackhole, and are back to ok after the heal.
			for _, d := range [][2]string{{p[1], p[0]}, {p[0], p[1]}} {
				warn, err := out.Result.Value("lag_warn_seconds", d[0], d[1])
				Expect(err).NotTo(HaveOccurred())
				Expect(warn).To(BeNumerically(">", 0), "%s applying %s's events never reached the warn threshold", d[0], d[1])
				alert, err := out.Result.Value("lag_alert_seconds", d[0], d[1])
				Expect(err).NotTo(HaveOccurred())
				Expect(alert).To(BeNumerically(">", 0), "%s applying %s's events never reached the 5 s alert threshold in an 8 s blackhole", d[0], d[1])
			}
			speclab.ExpectLagBackToOK(out.Result, p[0], p[1])
		})
	}
})
