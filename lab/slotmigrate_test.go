package lab_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/geolab/geolab/gateway/broker"
	"github.com/geolab/geolab/internal/harness"
	"github.com/geolab/geolab/lab"
	"github.com/geolab/geolab/lab/fault"
)

// publisher publishes into one room through the broker, as a gateway does
// (a cluster client through the proxies), retrying each publish with the
// same ids until it is acked: what a client's retry does. It counts the
// acked events.
type publisher struct {
	b      *broker.Broker
	room   string
	acked  atomic.Int64
	errors atomic.Int64
	stop   chan struct{}
	done   sync.WaitGroup
}

func startPublisher(t *testing.T, rdb *redis.ClusterClient, room string) *publisher {
	t.Helper()
	p := &publisher{b: broker.New(rdb, "us-east", broker.DefaultHistory()), room: room, stop: make(chan struct{})}
	p.done.Add(1)
	go func() {
		defer p.done.Done()
		for i := 0; ; i++ {
			req := broker.PublishRequest{Room: room, Sender: "alice", ClientID: "m-" + strconv.Itoa(i), EventID: room + "-" + strconv.Itoa(i),
				Epoch: "ep-" + room, TS: time.Now(), Data: []byte(`{}`)}
			for try := 0; ; try++ { // bounded: a publish not acked in 200 tries fails the test below
				select {
				case <-p.stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_, err := p.b.Publish(ctx, req)
				cancel()
				if err == nil {
					p.acked.Add(1)
					break
				}
				p.errors.Add(1)
				rdb.ReloadState(context.Background())
				if try >= 200 {
					t.Errorf("publish %s in %s not acked after %d tries: %v", req.EventID, room, try, err)
					return
				}
				time.Sleep(20 * time.Millisecond) // a retry's backoff, not synchronisation
			}
		}
	}()
	t.Cleanup(p.halt)
	return p
}

func (p *publisher) halt() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	p.done.Wait()
}

// slotServer is the index of the shard serving slot now, 0 if none.
func slotServer(t *testing.T, l *lab.Lab, slot int) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	shards, err := l.Region("us-east").Cluster().Shards(ctx)
	if err != nil {
		return 0
	}
	for _, sh := range shards {
		for _, r := range sh.Slots {
			if slot >= r[0] && slot <= r[1] {
				return sh.Index
			}
		}
	}
	return 0
}

// TestSlotMigrate: slot-migrate without a room moves the slot of the room
// with the longest history to the next shard while a publisher writes
// into it through the proxies, and the heal moves it back, with real
// CLUSTER SETSLOT and MIGRATE; every acked publish is in the room's history
// exactly once, in order, on whichever shard serves it.
func TestSlotMigrate(t *testing.T) {
	l := startCluster(t)
	ctx := context.Background()
	sys := redis.NewClusterClient(&redis.ClusterOptions{Addrs: l.Region("us-east").Cluster().Seeds(), DisableIdentity: true,
		MaxRedirects: 16, MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}})
	t.Cleanup(func() { _ = sys.Close() })
	busy, quiet := "tenant:busy", "tenant:quiet"
	if broker.PartitionOf(busy) == broker.PartitionOf(quiet) {
		t.Fatalf("%s and %s share a partition: pick other names", busy, quiet)
	}
	q := startPublisher(t, sys, quiet)
	harness.WaitFor(t, 30*time.Second, "5 publishes in "+quiet, func() bool { return q.acked.Load() >= 5 })
	q.halt()
	p := startPublisher(t, sys, busy)
	harness.WaitFor(t, 30*time.Second, "20 publishes in "+busy, func() bool { return p.acked.Load() >= 20 })

	key := broker.Clustered.HistoryKey(busy)
	s, err := sys.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	slot := int(s)
	home := slotServer(t, l, slot)
	if home == 0 {
		t.Fatalf("no shard serves slot %d", slot)
	}
	next := home%3 + 1
	a, err := l.Inject(ctx, fault.Spec{Kind: "slot-migrate", Regions: []string{"us-east"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := slotServer(t, l, slot); got != next {
		t.Fatalf("after slot-migrate (%s) slot %d of %s is on shard %d, want %d (the next after %d)", a.Target, slot, busy, got, next, home)
	}
	moved := p.acked.Load()
	harness.WaitFor(t, 30*time.Second, "20 more publishes on the new owner", func() bool { return p.acked.Load() >= moved+20 })

	harness.Heal(t, l)
	if got := slotServer(t, l, slot); got != home {
		t.Fatalf("after the heal slot %d is on shard %d, want %d again", slot, got, home)
	}
	back := p.acked.Load()
	harness.WaitFor(t, 30*time.Second, "20 more publishes back home", func() bool { return p.acked.Load() >= back+20 })
	p.halt()

	entries, err := sys.XRange(ctx, key, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(entries)) != p.acked.Load() {
		t.Fatalf("%s's history holds %d events, %d publishes were acked (%d errors retried)", busy, len(entries), p.acked.Load(), p.errors.Load())
	}
	for i, e := range entries {
		if q := fmt.Sprint(e.Values["q"]); q != strconv.Itoa(i+1) {
			t.Fatalf("entry %d of %s has oseq %s, want %d: lost, doubled or reordered", i, busy, q, i+1)
		}
	}
	t.Logf("%d publishes, %d retried errors, slot %d moved from shard %d to %d and back", len(entries), p.errors.Load(), slot, home, next)
}

// TestSlotMigrateNamedRoom: with room and shard, that room's slot goes to
// that shard; asking for the shard it is on already is an error that
// moves nothing.
func TestSlotMigrateNamedRoom(t *testing.T) {
	l := startCluster(t)
	ctx := context.Background()
	sys := systemClient(t, l.Region("us-east").Cluster().Seeds())
	room := "tenant:named"
	key := broker.Clustered.HistoryKey(room)
	if err := sys.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: map[string]any{"o": "us-east"}}).Err(); err != nil {
		t.Fatal(err)
	}
	s, err := sys.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	slot := int(s)
	home := slotServer(t, l, slot)
	to := (home+1)%3 + 1 // the shard after next
	if _, err := l.Inject(ctx, fault.Spec{Kind: "slot-migrate", Regions: []string{"us-east"}, Room: room, Shard: home}); err == nil ||
		err.Error() != fmt.Sprintf("fault slot-migrate us-east/shard-%d: shard: the slot is on shard %d already", home, home) {
		t.Fatalf("slot-migrate to the shard the slot is on: %v", err)
	}
	if _, err := l.Inject(ctx, fault.Spec{Kind: "slot-migrate", Regions: []string{"us-east"}, Room: room, Shard: to}); err != nil {
		t.Fatal(err)
	}
	if got := slotServer(t, l, slot); got != to {
		t.Fatalf("slot %d of %s on shard %d, want %d", slot, room, got, to)
	}
	harness.WaitFor(t, 15*time.Second, "the stream read on its new owner", func() bool {
		n, err := sys.XLen(ctx, key).Result()
		if err != nil {
			sys.ReloadState(ctx)
		}
		return err == nil && n == 1
	})
}
