package smoke_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/geolab/geolab/internal/redistest"
)

var _ = Describe("a region's Redis", func() {
	It("answers PING on a loopback port", func(ctx SpecContext) {
		rs := redistest.Start(GinkgoT())
		Expect(rs.Addr()).To(HavePrefix("127.0.0.1:"))
		Expect(rs.Client().Ping(ctx).Result()).To(Equal("PONG"))
	}, SpecTimeout(time.Minute))

	DescribeTable("keeps every acknowledged write across a persistent restart",
		func(ctx SpecContext, down func(*redistest.Server) error) {
			rs := redistest.Start(GinkgoT(), redistest.Persistent())
			rdb := rs.Client()
			Expect(rdb.Set(ctx, "smoke:key", "kept", 0).Err()).To(Succeed())
			pid := rs.Pid()

			Expect(down(rs)).To(Succeed())
			Expect(rs.Running()).To(BeFalse())
			Expect(rs.Restart(ctx)).To(Succeed())
			Expect(rs.Pid()).NotTo(Equal(pid))

			Eventually(func(g Gomega) string {
				v, err := rdb.Get(ctx, "smoke:key").Result()
				g.Expect(err).NotTo(HaveOccurred())
				return v
			}).WithContext(ctx).WithTimeout(10 * time.Second).WithPolling(50 * time.Millisecond).Should(Equal("kept"))
		},
		Entry("after a graceful stop (SIGTERM)", (*redistest.Server).Stop, SpecTimeout(time.Minute)),
		Entry("after kill -9", (*redistest.Server).Kill, SpecTimeout(time.Minute)),
	)
})
