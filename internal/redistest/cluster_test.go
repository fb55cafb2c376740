package redistest_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/geolab/geolab/internal/redistest"
	"github.com/geolab/geolab/internal/wait"
)

// TestClusterMovesASlotFailsOverAndSurvivesAKill drives the helpers every
// cluster test uses on a real 3×1 cluster, and shows what a sharded
// subscriber sees of each: a slot that moves and a coordinated failover
// push sunsubscribe; the data stays readable through the cluster client.
func TestClusterMovesASlotFailsOverAndSurvivesAKill(t *testing.T) {
	c := redistest.StartCluster(t, 3, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if n := len(c.Primaries(t)); n != 3 {
		t.Fatalf("primaries: got %d, want 3", n)
	}
	const key, ch = "k:{room}", "ch:{room}"
	rc := c.Client()
	if err := rc.Set(ctx, key, "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	sub := func() *redis.PubSub {
		// The client learns a moved slot from the MOVED answer (and a
		// reload of its slot map after it): try again, bounded.
		for i := 0; ; i++ {
			ps := rc.SSubscribe(ctx, ch)
			_, err := ps.ReceiveTimeout(ctx, 5*time.Second)
			if err == nil {
				return ps
			}
			_ = ps.Close()
			if i == 50 {
				t.Fatalf("ssubscribe: %v", err)
			}
			rc.ReloadState(ctx)
			time.Sleep(100 * time.Millisecond) // a retry's pause, not a synchronisation
		}
	}
	// expectDropped: the subscription ends with sunsubscribe or a closed
	// connection, within the bound.
	expectDropped := func(ps *redis.PubSub, what string) {
		t.Helper()
		for i := 0; i < 100; i++ {
			m, err := ps.ReceiveTimeout(ctx, 10*time.Second)
			if err != nil {
				t.Logf("%s: connection ended: %v", what, err)
				return
			}
			if s, ok := m.(*redis.Subscription); ok && s.Kind == "sunsubscribe" {
				t.Logf("%s: sunsubscribe pushed", what)
				return
			}
		}
		t.Fatalf("%s: the sharded subscription was not dropped", what)
	}

	ps := sub()
	from := c.PrimaryOf(t, key)
	var to *redistest.ClusterNode
	for _, p := range c.Primaries(t) {
		if p != from {
			to = p
			break
		}
	}
	if got := c.MigrateSlotOf(t, key, to); got != from {
		t.Fatalf("migrated from %s, want %s", got.Addr, from.Addr)
	}
	if p := c.PrimaryOf(t, key); p != to {
		t.Fatalf("after the migration the slot is on %s, want %s", p.Addr, to.Addr)
	}
	expectDropped(ps, "slot migration")
	_ = ps.Close()
	if v, err := rc.Get(ctx, key).Result(); err != nil || v != "v" {
		t.Fatalf("after the migration: %q %v", v, err)
	}

	ps = sub()
	old, promoted := c.FailoverOf(t, key)
	if old == promoted || promoted == nil {
		t.Fatalf("failover: old %v promoted %v", old, promoted)
	}
	expectDropped(ps, "CLUSTER FAILOVER")
	_ = ps.Close()

	ps = sub()
	killed, promoted := c.KillPrimaryOf(t, key)
	if killed.Running() || promoted == killed {
		t.Fatalf("kill: killed %s running %v, promoted %v", killed.Addr, killed.Running(), promoted)
	}
	expectDropped(ps, "primary killed")
	_ = ps.Close()
	// The client may still route to the killed node until its slot map
	// is reloaded: try again, bounded.
	var v string
	wait.For(t, 30*time.Second, "the key read from the promoted replica", func() bool {
		var err error
		if v, err = rc.Get(ctx, key).Result(); err != nil {
			rc.ReloadState(ctx)
			return false
		}
		return true
	})
	if v != "v" {
		t.Fatalf("after the kill: %q", v)
	}
}
