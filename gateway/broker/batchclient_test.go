package broker

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2/client"
	"github.com/redis/go-redis/v9"

	"github.com/geolab/geolab/internal/redistest"
	"github.com/geolab/geolab/internal/toxitest"
)

// batchRequests is n publishes of sender into room, client ids prefix0..
func batchRequests(room, prefix string, n int) []PublishRequest {
	ps := make([]PublishRequest, n)
	for i := range ps {
		id := prefix + strconv.Itoa(i)
		ps[i] = PublishRequest{Room: room, Sender: "alice", ClientID: id, EventID: "ev-" + id,
			Epoch: "e1", TS: time.Now(), Data: []byte(`"` + id + `"`)}
	}
	return ps
}

// TestPublishBatchTriesADeadLinkOnce: a batch on a link that drops
// everything (Toxiproxy's timeout toxic, as the chaos spec's blackhole) is
// tried once: it opens at most one connection and fails with the read
// timeout, nothing answered as stored. With go-redis's own retries each
// batch opened a second connection and sent the batch again, and ran into
// the deadline the gateway gives it (pipeline.go says what that did to
// clients). The deadline here is generous, so that a slow machine cannot
// fail the test; the connections opened are what tell the two apart.
func TestPublishBatchTriesADeadLinkOnce(t *testing.T) {
	rs := redistest.Start(t)
	proxy, err := toxiproxy.NewClient(toxitest.Start(t)).CreateProxy("batch-redis", "127.0.0.1:0", rs.Addr())
	if err != nil {
		t.Fatal(err)
	}
	const readTimeout = time.Second
	rdb := redis.NewClient(&redis.Options{Addr: proxy.Listen, DialTimeout: readTimeout, ReadTimeout: readTimeout,
		WriteTimeout: readTimeout, MaxRetries: 1, DisableIdentity: true})
	t.Cleanup(func() { _ = rdb.Close() })
	b := New(rdb, "eu-west", DefaultHistory())
	t.Cleanup(func() { _ = b.Close() })
	ctx := context.Background()
	if _, errs := b.PublishBatch(ctx, batchRequests("room:dead", "before", 2)); errors.Join(errs...) != nil {
		t.Fatalf("batch before the blackhole: %v", errs)
	}
	for _, dir := range []string{"upstream", "downstream"} {
		if _, err := proxy.AddToxic("blackhole-"+dir, "timeout", dir, 1, toxiproxy.Attributes{"timeout": 0}); err != nil {
			t.Fatal(err)
		}
	}
	before := b.batch.PoolStats().Misses
	const batches = 3
	for n := range batches {
		bctx, cancel := context.WithTimeout(ctx, 20*readTimeout)
		results, errs := b.PublishBatch(bctx, batchRequests("room:dead", "during"+strconv.Itoa(n)+"-", 3))
		cancel()
		for i, err := range errs {
			var ne net.Error
			if err == nil || !errors.Is(err, ErrUnavailable) || !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("batch %d, publish %d on a dead link: %+v, %v; want unavailable after the read timeout", n, i, results[i], err)
			}
		}
	}
	if opened := b.batch.PoolStats().Misses - before; opened > batches {
		t.Fatalf("%d batches on a dead link opened %d connections, want at most one each (no retry after a timeout)", batches, opened)
	}
}

// TestPublishBatchAfterARedisRestartIsStored: after Redis restarted, the
// batch client's pooled connection is dead. With go-redis's retries off the
// batch is still stored, every publish in order, not answered unavailable:
// the dead connection is replaced before the batch is sent on it.
func TestPublishBatchAfterARedisRestartIsStored(t *testing.T) {
	rs := redistest.Start(t)
	b := New(rs.Client(), "us-east", DefaultHistory())
	t.Cleanup(func() { _ = b.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, errs := b.PublishBatch(ctx, batchRequests("room:lost", "a", 2)); errors.Join(errs...) != nil {
		t.Fatalf("first batch: %v", errs)
	}
	if err := rs.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := rs.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	results, errs := b.PublishBatch(ctx, batchRequests("room:lost", "b", 3))
	for i, r := range results {
		if errs[i] != nil || r.Status != "ok" || r.Oseq != uint64(i+1) {
			t.Fatalf("publish %d after the restart: %+v, %v; want ok at oseq %d (Redis came back empty)", i, r, errs[i], i+1)
		}
	}
}
