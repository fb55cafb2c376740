package chaos_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"

	"github.com/geolab/geolab/gateway/client"
	"github.com/geolab/geolab/lab/link"
	"github.com/geolab/geolab/specs/speclab"
)

// G4 at its sharpest: the publishes reach Redis but their acks never reach
// the client (its link to gw-1 passes nothing back). The client gives the
// connection up, reconnects to gw-2 and retries every publish with the same
// id: each must be answered from the dedup record as the same event, and the
// room must hold each event once.
var _ = Describe("G4 idempotent publish when the ack is lost", Label("dedup"), func() {
	It("answers a retry whose first attempt was stored with the same event, once", func() {
		topo, err := speclab.Topology("single-region")
		Expect(err).NotTo(HaveOccurred())
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		l, tok := speclab.StartLab(topo, "acker")
		eps := l.Endpoints("us-east", "us-east")
		const room, n = "tenant:ack", 5

		var got atomic.Int64
		sub, err := client.Dial(ctx, client.Options{Endpoints: eps[1:], Token: func(context.Context) (string, error) { return tok, nil },
			OnMessage: func(m client.Message) { got.Add(1) }})
		Expect(err).NotTo(HaveOccurred())
		defer sub.Close()
		_, err = sub.Subscribe(ctx, room)
		Expect(err).NotTo(HaveOccurred())

		pub, err := client.Dial(ctx, client.Options{Endpoints: eps, Token: func(context.Context) (string, error) { return tok, nil },
			PingInterval: 500 * time.Millisecond, DialTimeout: 2 * time.Second, MaxBackoff: 500 * time.Millisecond})
		Expect(err).NotTo(HaveOccurred())
		defer pub.Close()
		Expect(pub.Node()).To(Equal("gw-1"))

		// gw-1 → client: nothing passes (the publishes still reach gw-1).
		cut := link.Name(link.Client, "us-east", "us-east", "gw-1")
		Expect(l.Net().AddToxic(cut, "ack_cut", "timeout", "downstream", map[string]any{"timeout": 0})).To(Succeed())
		defer l.Net().RemoveToxic(cut, "ack_cut")

		acks := make([]client.Ack, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer GinkgoRecover()
				a, err := pub.Publish(ctx, room, fmt.Sprintf("ack-%d", i), map[string]int{"i": i})
				Expect(err).NotTo(HaveOccurred())
				acks[i] = a
			}()
		}
		wg.Wait()
		for i, a := range acks {
			Expect(a.Attempts).To(BeNumerically(">=", 2), "publish %d was not retried: its ack was not lost", i)
			Expect(a.Duplicate).To(BeTrue(), "publish %d: the retry was not answered from the dedup record", i)
		}
		Eventually(got.Load).WithTimeout(10 * time.Second).Should(BeEquivalentTo(n))
		Consistently(got.Load).WithTimeout(time.Second).Should(BeEquivalentTo(n), "a retry became a second event")
		rc := redis.NewClient(&redis.Options{Addr: l.Region("us-east").Redis().Addr()})
		defer rc.Close()
		Expect(rc.XLen(ctx, "geolab:h:{"+room+"}").Val()).To(BeEquivalentTo(n), "the room's history holds a retry twice")
		AddReportEntry("counts", fmt.Sprintf("%d publishes with lost acks, each retried and answered as a duplicate; %d events stored", n, n))
	})
})
