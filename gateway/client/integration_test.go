package client_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/geolab/geolab/gateway/auth"
	"github.com/geolab/geolab/gateway/client"
	"github.com/geolab/geolab/internal/gatewaytest"
	"github.com/geolab/geolab/internal/redistest"
	"github.com/geolab/geolab/internal/wait"
)

// These tests run the client against real gateway nodes on a real
// redis-server: the unit tests' scripted fake cannot say whether the two
// sides agree.

const secret = "client-integration-secret-0123456789abcdef0123"

type recorder struct {
	mu   sync.Mutex
	msgs []client.Message
	subs []client.SubscribedEvent
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

func dialClient(t *testing.T, a *auth.Authority, sub string, endpoints ...string) (*client.Client, *recorder) {
	t.Helper()
	rec := &recorder{}
	tok := gatewaytest.Token(t, a, sub)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c, err := client.Dial(ctx, client.Options{
		Endpoints:  endpoints,
		Token:      func(context.Context) (string, error) { return tok, nil },
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		OnMessage: func(m client.Message) { rec.mu.Lock(); rec.msgs = append(rec.msgs, m); rec.mu.Unlock() },
		OnSubscribed: func(e client.SubscribedEvent) {
			rec.mu.Lock()
			rec.subs = append(rec.subs, e)
			rec.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c, rec
}

// TestClientFailsOverToAnotherNodeAndResumes: the client's node dies; it
// reconnects to the next endpoint, resumes with its tracked positions, and
// gets exactly what was published meanwhile, with no duplicate and no gap.
func TestClientFailsOverToAnotherNodeAndResumes(t *testing.T) {
	rs := redistest.Start(t)
	a := gatewaytest.Authority(secret)
	gw1 := gatewaytest.Start(t, a, rs.Addr(), "us-east", "gw-1")
	gw2 := gatewaytest.Start(t, a, rs.Addr(), "us-east", "gw-2")
	c, rec := dialClient(t, a, "watcher", "ws://"+gw1.Addr()+"/ws", "ws://"+gw2.Addr()+"/ws")
	if _, err := c.Subscribe(context.Background(), "tenant:fo"); err != nil {
		t.Fatal(err)
	}
	pub, _ := dialClient(t, a, "pub", "ws://"+gw2.Addr()+"/ws")
	ctx := context.Background()
	for i := 0; i < 10; i++ {
		if _, err := pub.Publish(ctx, "tenant:fo", fmt.Sprintf("a-%d", i), i); err != nil {
			t.Fatal(err)
		}
	}
	wait.For(t, 10*time.Second, "10 messages", func() bool { return rec.count() == 10 })
	gw1.Close() // the watcher's node dies
	for i := 10; i < 30; i++ {
		if _, err := pub.Publish(ctx, "tenant:fo", fmt.Sprintf("a-%d", i), i); err != nil {
			t.Fatal(err)
		}
	}
	wait.For(t, 20*time.Second, "30 messages after the failover", func() bool { return rec.count() >= 30 })
	if c.Endpoint() != "ws://"+gw2.Addr()+"/ws" {
		t.Fatalf("client on %s, want gw-2", c.Endpoint())
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for i, m := range rec.msgs {
		if m.Oseq != uint64(i+1) {
			t.Fatalf("message %d has oseq %d", i, m.Oseq)
		}
	}
	st := c.Stats()
	if st.Duplicates != 0 || st.Gaps != 0 || st.Reconnects < 1 {
		t.Fatalf("stats after failover: %+v (want a reconnect, no duplicate, no gap)", st)
	}
	last := rec.subs[len(rec.subs)-1]
	if !last.Recovered || !last.Resumed {
		t.Fatalf("resume after failover: %+v", last)
	}
}

// TestClientPublishRetryAcrossNodeLossIsOneEvent: G4 through the client. The
// publisher's node dies; retries reuse the id on the next node; the
// subscriber sees each publish exactly once.
func TestClientPublishRetryAcrossNodeLossIsOneEvent(t *testing.T) {
	rs := redistest.Start(t)
	a := gatewaytest.Authority(secret)
	gw1 := gatewaytest.Start(t, a, rs.Addr(), "us-east", "gw-1")
	gw2 := gatewaytest.Start(t, a, rs.Addr(), "us-east", "gw-2")
	sub, rec := dialClient(t, a, "sub", "ws://"+gw2.Addr()+"/ws")
	if _, err := sub.Subscribe(context.Background(), "tenant:g4"); err != nil {
		t.Fatal(err)
	}
	pub, _ := dialClient(t, a, "pub", "ws://"+gw1.Addr()+"/ws", "ws://"+gw2.Addr()+"/ws")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	events := make([]string, 50)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ack, err := pub.Publish(ctx, "tenant:g4", fmt.Sprintf("p-%d", i), i)
			if err != nil {
				t.Errorf("publish %d: %v", i, err)
				return
			}
			events[i] = ack.Event
		}()
		if i == 20 {
			gw1.Close()
		}
	}
	wg.Wait()
	wait.For(t, 20*time.Second, "50 deliveries", func() bool { return rec.count() >= 50 })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	seen := map[string]bool{}
	for _, m := range rec.msgs {
		if seen[m.ID] {
			t.Fatalf("event %s delivered twice", m.ID)
		}
		seen[m.ID] = true
	}
	for i, e := range events {
		if !seen[e] {
			t.Fatalf("publish %d acked as %s but never delivered", i, e)
		}
	}
	if len(rec.msgs) != 50 || sub.Stats().Duplicates != 0 {
		t.Fatalf("%d deliveries for 50 publishes; backstop dropped %d", len(rec.msgs), sub.Stats().Duplicates)
	}
}
