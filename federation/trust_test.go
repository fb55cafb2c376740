package federation_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/internal/wait"
)

// syncBuffer is a bytes.Buffer a bridge's logger and a test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// counterValue is the value of the counter name with labels on a bridge's
// registry (0 when it has no such series).
func counterValue(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// msgFrame is a message frame as publish.lua writes it.
func msgFrame(room, id, origin string, oseq uint64, epoch, data string) string {
	return `{"type":"message","room":` + strconv.Quote(room) + `,"id":` + strconv.Quote(id) + `,"origin":` + strconv.Quote(origin) +
		`,"oseq":` + strconv.FormatUint(oseq, 10) + `,"epoch":` + strconv.Quote(epoch) +
		`,"sender":"mallory","ts":"2026-11-23T01:33:22.123456Z","data":` + data + `}`
}

// TestForgedOutboxEntriesAreRefusedCountedAndPassed: entries written into
// us-east's outbox by something other than publish.lua (a mismatched room,
// a frame of another origin, bad JSON, an oversize frame, a bad room, a
// forged session takeover) are refused by eu-west's bridge, counted by
// reason and logged with their entry id; none reaches a client or eu-west's
// Redis, the checkpoint moves past them and the valid events after them
// are applied. A refused entry that stood for a real event is a gap: the
// next valid event finds it, marks it and tells the live subscriber.
func TestForgedOutboxEntriesAreRefusedCountedAndPassed(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t, "us-east", "eu-west")
	logs := &syncBuffer{}
	w.startBridge("us-east")
	w.startBridgeLog("eu-west", slog.New(slog.NewJSONHandler(logs, nil)))
	eu, us := w.regions["eu-west"], w.regions["us-east"]
	const room = "tenant:forge"
	live := dial(t, eu.gw.Addr(), "live")
	live.Subscribe(room, nil, nil)
	pub := dial(t, us.gw.Addr(), "pub")
	publish(pub, room, "real-1", 1)
	wait.For(t, 20*time.Second, "eu-west applies the first event", func() bool { return live.Count() == 1 })
	epoch := live.Messages()[0].Epoch

	// Forge entries straight into us-east's outbox, as anything that can
	// reach us-east's Redis could.
	rdb := us.redis.Client()
	outbox := "geolab:outbox:us-east"
	forge := func(values ...any) string {
		n, err := rdb.Incr(ctx, outbox+":n").Result()
		if err != nil {
			t.Fatal(err)
		}
		id, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: outbox, Values: append([]any{"n", n}, values...)}).Result()
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	event := func(r string, oseq uint64, e, frame string) []any {
		return []any{"r", r, "o", "us-east", "q", oseq, "e", e, "f", frame}
	}
	// Each takes oseq 2, the next of the sequence: applied, it would stand
	// in eu-west for the real event 2 published below, which would then be
	// dropped as a duplicate.
	wrongRoom := forge(event(room, 2, epoch, msgFrame("tenant:other", "f-1", "us-east", 2, epoch, `{}`))...)
	forge(event(room, 2, epoch, msgFrame(room, "f-2", "eu-west", 2, epoch, `{}`))...)
	badJSON := forge(event(room, 2, epoch, `{"type":"message","room":`)...)
	forge(event(room, 2, epoch, msgFrame(room, "f-4", "us-east", 2, epoch, `"`+strings.Repeat("x", 1<<20)+`"`))...)
	forge(event("tenant forge", 2, epoch, msgFrame("tenant forge", "f-5", "us-east", 2, epoch, `{}`))...)
	takeover := forge("t", "s", "s", "sess-forged", "g", "eu-west", "p", 99, "o", "us-east")
	// An entry of another origin is loop prevention's business: skipped.
	forge("r", room, "o", "eu-west", "q", 2, "e", epoch, "f", msgFrame(room, "f-7", "eu-west", 2, epoch, `{}`))

	publish(pub, room, "real-2", 2)
	wait.For(t, 20*time.Second, "eu-west applies the event after the forged ones", func() bool { return live.Count() == 2 })
	if m := live.Messages()[1]; m.Oseq != 2 || m.Room != room || string(m.Data) != `{"n":2}` {
		t.Fatalf("eu-west delivered %+v as event 2, want the real one", m)
	}

	// A refused entry that stood for a real event: us-east's sequence
	// moves past oseq 3, and the entry of 3 carries a frame of another
	// epoch. The next event (4) finds the gap.
	if err := rdb.HIncrBy(ctx, "geolab:s:{"+room+"}", "q:us-east", 1).Err(); err != nil {
		t.Fatal(err)
	}
	corrupt := forge(event(room, 3, epoch, msgFrame(room, "f-8", "us-east", 3, "0ther", `{}`))...)
	publish(pub, room, "real-4", 4)
	wait.For(t, 20*time.Second, "eu-west applies the event after the refused one", func() bool { return live.Count() == 3 })
	if m := live.Messages()[2]; m.Oseq != 4 || string(m.Data) != `{"n":4}` {
		t.Fatalf("eu-west delivered %+v as event 4", m)
	}
	// The live subscriber was told of the gap before event 4.
	if notice, _ := live.Next(0, "subscribed"); notice == nil || notice.Recovered ||
		notice.Reason != protocol.ReasonHistoryTrimmed || notice.Position["us-east"] != 3 {
		t.Fatalf("gap notice %+v, want recovered:false history_trimmed at us-east 3", notice)
	}
	if g, err := eu.redis.Client().HGet(ctx, "geolab:s:{"+room+"}", "g:us-east").Uint64(); err != nil || g != 3 {
		t.Fatalf("gap marker g:us-east = %d (%v), want 3", g, err)
	}

	// Counted by reason, and the feed moved past every one.
	mfs := eu.bridge.b.Registry()
	for reason, want := range map[string]float64{"frame_mismatch": 3, "bad_frame": 1, "oversize": 1, "bad_room": 1, "bad_owner": 1} {
		if got := counterValue(t, mfs, "geolab_federation_rejected_total", map[string]string{"origin": "us-east", "reason": reason}); got != want {
			t.Errorf("rejected_total{reason=%s} = %v, want %v", reason, got, want)
		}
	}
	if got := counterValue(t, mfs, "geolab_federation_skipped_total", map[string]string{"origin": "us-east", "reason": "not_origin"}); got != 1 {
		t.Errorf("skipped_total{reason=not_origin} = %v, want 1", got)
	}
	if got := counterValue(t, mfs, "geolab_federation_skipped_total", map[string]string{"origin": "us-east", "reason": "malformed"}); got != 7 {
		t.Errorf("skipped_total{reason=malformed} = %v, want 7 (every refused entry)", got)
	}
	st := eu.bridge.b.Status().Feeds[0]
	if st.Rejected != 7 || st.Gaps != 1 || st.Applied != 3 {
		t.Errorf("status %+v, want 7 rejected, 1 gap, 3 applied", st)
	}
	last, err := rdb.XRevRangeN(ctx, outbox, "+", "-", 1).Result()
	if err != nil || len(last) != 1 {
		t.Fatal(last, err)
	}
	wait.For(t, 10*time.Second, "the checkpoint reaches the newest entry", func() bool {
		return eu.bridge.b.Status().Feeds[0].Checkpoint == last[0].ID
	})

	// Nothing forged reached eu-west's Redis.
	hist, err := eu.redis.Client().XRange(ctx, "geolab:h:{"+room+"}", "-", "+").Result()
	if err != nil || len(hist) != 3 {
		t.Fatalf("eu-west's history of %s holds %d events (%v), want the 3 real ones", room, len(hist), err)
	}
	for _, h := range hist {
		if f, _ := h.Values["f"].(string); strings.Contains(f, "mallory") {
			t.Fatalf("a forged frame is in eu-west's history: %s", f)
		}
	}
	if n, _ := eu.redis.Client().Exists(ctx, "geolab:session:{sess-forged}", "geolab:h:{tenant forge}").Result(); n != 0 {
		t.Fatalf("a forged session record or room reached eu-west (%d keys)", n)
	}
	for _, f := range []*protocol.ServerFrame{live.Messages()[0], live.Messages()[1], live.Messages()[2]} {
		if f.Sender == "mallory" {
			t.Fatalf("a forged frame reached a client: %+v", f)
		}
	}

	// One log line per refused entry, naming its id and reason.
	logged := map[string]string{}
	for _, line := range strings.Split(logs.String(), "\n") {
		var rec struct{ Msg, Entry, Reason string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "outbox entry refused" {
			logged[rec.Entry] = rec.Reason
		}
	}
	for id, reason := range map[string]string{wrongRoom: "frame_mismatch", badJSON: "bad_frame", takeover: "bad_owner", corrupt: "frame_mismatch"} {
		if logged[id] != reason {
			t.Errorf("log of entry %s: reason %q, want %q (logged: %v)", id, logged[id], reason, logged)
		}
	}
	if len(logged) != 7 {
		t.Errorf("%d refused entries logged, want 7: %v", len(logged), logged)
	}
}
