package gateway_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/geolab/geolab/internal/redistest"
)

// TestIdempotencyKeysOfDifferentSendersNeverCollide: G4 deduplicates per
// (sender, client id). Sender "a:b" publishing id "c" and sender "a"
// publishing id "b:c" are two events: both stored, both delivered, neither
// acked as a duplicate of the other. A retry of either is still one event.
// Every idempotency key keeps the room's {hash tag}.
func TestIdempotencyKeysOfDifferentSendersNeverCollide(t *testing.T) {
	rs := redistest.Start(t)
	gw := startGateway(t, rs.Addr(), "us-east", "gw-1")
	const room = "tenant:idem"
	sub := newClient(t, gw.Addr(), "watcher")
	sub.Subscribe(room, nil, nil)

	ab := newClient(t, gw.Addr(), "a:b")
	a := newClient(t, gw.Addr(), "a")
	first := ab.Publish(room, "c", map[string]int{"n": 1})
	second := a.Publish(room, "b:c", map[string]int{"n": 2})
	if first.Type != "ack" || first.Duplicate {
		t.Fatalf("sender a:b id c: %+v, want a fresh ack", first)
	}
	if second.Type != "ack" || second.Duplicate || second.Event == first.Event {
		t.Fatalf("sender a id b:c: %+v, want a fresh ack of another event than %s", second, first.Event)
	}
	msgs := sub.Collect(2, 5*time.Second)
	if len(msgs) != 2 || msgs[0].Sender != "a:b" || msgs[1].Sender != "a" ||
		msgs[0].ID != first.Event || msgs[1].ID != second.Event {
		t.Fatalf("subscriber got %v, want a:b's %s then a's %s", ids(msgs), first.Event, second.Event)
	}
	if n, err := rs.Client().XLen(context.Background(), "geolab:h:{"+room+"}").Result(); err != nil || n != 2 {
		t.Fatalf("history holds %d events (%v), want 2", n, err)
	}

	// The same sender and id is still one event.
	again := ab.Publish(room, "c", map[string]int{"n": 1})
	if again.Type != "ack" || !again.Duplicate || again.Event != first.Event || again.Oseq != first.Oseq {
		t.Fatalf("retry of a:b/c: %+v, want the duplicate ack of %s", again, first.Event)
	}
	again = a.Publish(room, "b:c", map[string]int{"n": 2})
	if again.Type != "ack" || !again.Duplicate || again.Event != second.Event {
		t.Fatalf("retry of a/b:c: %+v, want the duplicate ack of %s", again, second.Event)
	}
	if more := sub.Collect(1, 500*time.Millisecond); len(more) != 0 {
		t.Fatalf("a retry was delivered again: %v", ids(more))
	}

	keys, err := rs.Client().Keys(context.Background(), "geolab:idem:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	idem := 0
	for _, k := range keys {
		idem++
		// A cluster hashes the first {…}: it must be the room.
		if open := strings.IndexByte(k, '{'); open < 0 || !strings.HasPrefix(k[open:], "{"+room+"}") {
			t.Errorf("idempotency key %q does not carry the room's hash tag {%s} first", k, room)
		}
	}
	if idem != 2 {
		t.Errorf("%d idempotency keys in %v, want 2", idem, keys)
	}
}
