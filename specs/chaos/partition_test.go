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
			// reset both ways, blackhole both ways, reset one way, blackhole one
			// way: 5 s each, 2 s apart.
			var steps []speclab.Step
			at := 3 * time.Second
			for _, k := range []struct{ mode, dir string }{{"reset", "both"}, {"blackhole", "both"}, {"reset", "one"}, {"blackhole", "one"}} {
				steps = append(steps, speclab.At(at, speclab.Partition(p[0], p[1]).Mode(k.mode).Direction(k.dir).For(5*time.Second)))
				at += 7 * time.Second
			}
			out, c := speclab.Play(speclab.Spec{
				Name: fmt.Sprintf("partition-%s-%s", p[0], p[1]), Topology: "three-region", Seed: int64(61 + i),
				Workload: speclab.Workload(at),
				Steps:    steps,
			})
			speclab.ExpectClean(c, 4000)
			Expect(out.Result.Faults).To(HaveLen(4))
			lag, err := out.Result.Value("replication_lag_max", p[1], p[0])
			Expect(err).NotTo(HaveOccurred())
			Expect(lag).To(BeNumerically(">=", 1.0), "the lag of %s from %s never crossed the warn threshold during the partitions", p[1], p[0])
		})
	}
})
