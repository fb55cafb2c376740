package broker_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/geolab/geolab/gateway/broker"
	"github.com/geolab/geolab/internal/redistest"
)

// TestPublishBatchStoresInOrderAfterAScriptFlush runs PublishBatch on a
// real Redis whose script cache is empty (SCRIPT FLUSH, as after a restart):
// every EVALSHA of the pipeline is refused with NOSCRIPT, and the batch is
// run again with EVAL, in order. Each publish gets the oseq of its place in
// the batch, the history holds them in that order, and a batch that repeats
// a client id of an earlier publish answers it "dup" with that publish's
// oseq and stores nothing (G4).
func TestPublishBatchStoresInOrderAfterAScriptFlush(t *testing.T) {
	rs := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := broker.New(rs.Client(), "us-east", broker.DefaultHistory())
	batch := func(ids ...string) []broker.PublishRequest {
		var ps []broker.PublishRequest
		for _, id := range ids {
			ps = append(ps, broker.PublishRequest{Room: "room:b", Sender: "alice", ClientID: id, EventID: "ev-" + id,
				Epoch: "e1", TS: time.Now(), Data: []byte(`"` + id + `"`)})
		}
		return ps
	}
	for round, ids := range [][]string{{"a", "b", "c", "d"}, {"e", "b", "f"}} {
		if err := rs.Client().ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		results, errs := b.PublishBatch(ctx, batch(ids...))
		for i, id := range ids {
			if errs[i] != nil {
				t.Fatalf("round %d, publish %s: %v", round, id, errs[i])
			}
		}
		if round == 0 {
			for i, r := range results {
				if r.Status != "ok" || r.Oseq != uint64(i+1) || r.EventID != "ev-"+ids[i] {
					t.Fatalf("publish %s: %+v, want ok with oseq %d", ids[i], r, i+1)
				}
			}
			continue
		}
		if r := results[1]; r.Status != "dup" || r.Oseq != 2 || r.EventID != "ev-b" {
			t.Fatalf("repeated id b: %+v, want dup of oseq 2, event ev-b", r)
		}
		if results[0].Oseq != 5 || results[2].Oseq != 6 {
			t.Fatalf("e and f: oseq %d and %d, want 5 and 6", results[0].Oseq, results[2].Oseq)
		}
	}
	entries, err := rs.Client().XRange(ctx, b.Layout().HistoryKey("room:b"), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var got string
	for i, e := range entries {
		if e.Values["q"] != strconv.Itoa(i+1) {
			t.Fatalf("history entry %d has oseq %v, want %d", i, e.Values["q"], i+1)
		}
		got += e.Values["c"].(string)
	}
	if got != "abcdef" {
		t.Fatalf("history holds the client ids %q in this order, want abcdef", got)
	}
}
