package gateway_test

import (
	"slices"
	"testing"
	"time"

	"github.com/geolab/geolab/gateway"
	"github.com/geolab/geolab/gateway/broker"
	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/internal/redistest"
	"github.com/geolab/geolab/internal/wsprobe"
)

// publishBatch is how many publishes one iteration of
// BenchmarkPublishDurability makes: make bench runs 3 iterations.
const publishBatch = 1000

// BenchmarkPublishDurability measures what --durability replicated costs:
// on one real 3×1 Redis Cluster, one gateway per durability, and one
// publisher connection per gateway publishing into one room one publish at
// a time (the next after the previous one's ack), 240-byte data. The two
// publishers take turns, publish by publish, so that both durabilities
// meet the same load of the machine. It reports, per durability, the ack
// latency (publish frame sent → ack read) at p50 and p99, and publishes/s:
// what one publisher that waits for each ack makes, 1 / mean latency
// (make bench; BENCHMARKS.md).
func BenchmarkPublishDurability(b *testing.B) {
	c := redistest.StartCluster(b, 3, 1)
	data := map[string]string{"pad": string(slices.Repeat([]byte("x"), 220))}
	modes := []string{broker.DurabilityAsync, broker.DurabilityReplicated}
	var pubs []*wsprobe.Conn
	for _, mode := range modes {
		gw := startGateway(b, clusterAddr(c), "us-east", "gw-"+mode, func(cfg *gateway.Config) {
			cfg.Durability = mode
		})
		pubs = append(pubs, newClient(b, gw.Addr(), "bench-"+mode))
	}
	lat := make([][]time.Duration, len(modes))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range publishBatch {
			for m, mode := range modes {
				id := msgID(mode, i*publishBatch+j)
				t0 := time.Now()
				f := pubs[m].Publish("tenant:durability-bench", id, data)
				lat[m] = append(lat[m], time.Since(t0))
				if f.Type != protocol.TypeAck {
					b.Fatalf("publish %s under %s durability: %+v", id, mode, f)
				}
			}
		}
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	for m, mode := range modes {
		l := lat[m]
		var sum time.Duration
		for _, d := range l {
			sum += d
		}
		slices.Sort(l)
		b.ReportMetric(ms(l[len(l)/2]), mode+"-p50-ms")
		b.ReportMetric(ms(l[len(l)*99/100]), mode+"-p99-ms")
		b.ReportMetric(float64(len(l))/sum.Seconds(), mode+"-publishes/s")
	}
}
