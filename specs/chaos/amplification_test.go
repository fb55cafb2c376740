package chaos_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/geolab/geolab/gateway/client"
	"github.com/geolab/geolab/lab/topology"
	"github.com/geolab/geolab/specs/speclab"
)

// The seed article's table, reproduced: Redis deliveries per publish at 1,
// 2, 4 and 8 gateway nodes, targeted SUBSCRIBE against PSUBSCRIBE. Every
// room has its subscribers on exactly one node, so targeted subscription
// must cost one delivery per publish whatever the node count, and pattern
// subscription one per node.
var _ = Describe("G9 bounded amplification", Label("amplification"), Ordered, func() {
	const perRoom = 20
	table := map[string]map[int]float64{"targeted": {}, "pattern": {}}

	measure := func(nodes int, mode string) float64 {
		topo, err := topology.Parse([]byte(fmt.Sprintf(`
name: amplification-%d
source: "one region, loopback: no inter-region figures are used"
regions:
  - name: us-east
    gateways: %d
resolver: {ttl: 2s}
`, nodes, nodes)))
		Expect(err).NotTo(HaveOccurred())
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		l, tok := speclab.StartLab(topo, "amp", "--subscribe-mode", mode)
		defer l.Close() // before the other mode's lab starts
		eps := l.Endpoints("us-east", "us-east")
		dial := func(ep string, got *atomic.Int64) *client.Client {
			c, err := client.Dial(ctx, client.Options{Endpoints: []string{ep},
				Token:     func(context.Context) (string, error) { return tok, nil },
				OnMessage: func(client.Message) { got.Add(1) }})
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(c.Close)
			return c
		}
		rooms := 2 * nodes
		var got, none atomic.Int64
		for r := range rooms { // room r is hosted on node r % nodes only
			sub := dial(eps[r%nodes], &got)
			_, err := sub.Subscribe(ctx, fmt.Sprintf("amp:%d", r))
			Expect(err).NotTo(HaveOccurred())
		}
		pub := dial(eps[0], &none)
		for r := range rooms {
			for i := range perRoom {
				_, err := pub.Publish(ctx, fmt.Sprintf("amp:%d", r), fmt.Sprintf("m-%d-%d", r, i), map[string]int{"i": i})
				Expect(err).NotTo(HaveOccurred())
			}
		}
		publishes := rooms * perRoom
		Eventually(got.Load).WithTimeout(30*time.Second).WithPolling(20*ms).Should(BeEquivalentTo(publishes), "subscribers did not receive every message")
		want := float64(publishes)
		if mode == "pattern" {
			want *= float64(nodes)
		}
		deliveries := func() (float64, error) { return speclab.GatewayMetric(l, "geolab_gateway_redis_deliveries_total") }
		Eventually(deliveries).WithTimeout(30 * time.Second).WithPolling(50 * ms).Should(BeNumerically(">=", want))
		Consistently(deliveries).WithTimeout(500*ms).WithPolling(100*ms).Should(BeNumerically("==", want), "Redis delivered more than %s subscription needs", mode)
		d, err := deliveries()
		Expect(err).NotTo(HaveOccurred())
		return d / float64(publishes)
	}

	for _, nodes := range []int{1, 2, 4, 8} {
		It(fmt.Sprintf("costs one Redis delivery per publish at %d node(s) with targeted subscription, %d with a pattern", nodes, nodes), func() {
			targeted := measure(nodes, "targeted")
			Expect(targeted).To(BeNumerically("==", 1), "targeted: deliveries per publish must equal the nodes hosting the room (1)")
			pattern := measure(nodes, "pattern")
			Expect(pattern).To(BeNumerically("==", nodes), "pattern: every node receives every publish")
			table["targeted"][nodes], table["pattern"][nodes] = targeted, pattern
			AddReportEntry("counts", fmt.Sprintf("deliveries per publish: targeted %.2f, pattern %.2f", targeted, pattern))
		})
	}

	AfterAll(func() {
		var b strings.Builder
		fmt.Fprintln(&b, "Redis deliveries per publish (each room hosted on one node):")
		fmt.Fprintln(&b, "  nodes  targeted SUBSCRIBE  PSUBSCRIBE room:*  wasted with the pattern")
		for _, n := range []int{1, 2, 4, 8} {
			t, p := table["targeted"][n], table["pattern"][n]
			if t == 0 {
				continue
			}
			fmt.Fprintf(&b, "  %5d  %18.2f  %17.2f  %5.0f%%\n", n, t, p, 100*(p-t)/p)
		}
		fmt.Print(b.String())
		AddReportEntry("amplification table", b.String())
	})
})
