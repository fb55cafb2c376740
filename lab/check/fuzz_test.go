package check_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/geolab/geolab/lab/check"
	"github.com/geolab/geolab/lab/history"
	"github.com/geolab/geolab/lab/history/historytest"
)

func TestEmptyHistory(t *testing.T) {
	r := check.Check(&history.History{}, check.Options{})
	if r.Counts != (check.Counts{}) || r.Ended || r.Faults == nil {
		t.Errorf("empty history: %+v", r)
	}
	if _, err := json.Marshal(r); err != nil {
		t.Error(err)
	}
}

// FuzzCheck: whatever history Read accepts, Check judges without panicking
// and its Result marshals to JSON.
func FuzzCheck(f *testing.F) {
	w := newWorld()
	w.publish(w.a, 100*ms, "tenant:1", "1", "us-east", 1, map[*historytest.Client]time.Duration{w.a: 1 * ms, w.c: 40 * ms})
	w.c.Message(150*ms, "tenant:1", "ev-1", "us-east", 1, "e1")
	w.c.Disconnect(200 * ms)
	w.c.Connect(300*ms, "eu-west", "gw-2")
	w.c.Subscribed(310*ms, "tenant:1", false, "history_trimmed")
	w.c.Message(320*ms, "tenant:1", "ev-9", "us-east", 9, "e2")
	w.b.Lag(time.Second, "eu-west", "us-east", 1.5, 3, "")
	w.b.Fault(time.Second, "f", "heal", "partition", "a<->b", nil)
	w.b.End(2 * time.Second)
	f.Add(w.b.Bytes())
	f.Fuzz(func(t *testing.T, in []byte) {
		h, err := history.Read(bytes.NewReader(in))
		if h == nil {
			return
		}
		_ = err // a truncated history is checked too
		r := check.Check(h, check.Options{Examples: 3})
		if _, err := json.Marshal(r); err != nil {
			t.Fatalf("Result does not marshal: %v", err)
		}
		for _, m := range []string{"lost", "latency_p99", "failover_max", "replication_lag_max"} {
			r.Metric(m)
		}
	})
}
