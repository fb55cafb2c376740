package gateway_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/geolab/geolab/gateway"
	"github.com/geolab/geolab/gateway/broker"
	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/internal/redistest"
	"github.com/geolab/geolab/internal/wait"
	"github.com/geolab/geolab/internal/wsprobe"
)

// durabilityTimeout is the tests' --durability-timeout: short, so that a
// refused publish is refused quickly.
const durabilityTimeout = 200 * time.Millisecond

// lostAcks is what one "acked but lost" run saw: every ack the publisher
// got (in the order it got them), the ids refused while replication was
// cut, and the room's history on the promoted replica afterwards.
type lostAcks struct {
	acked   []*protocol.ServerFrame
	refused []string
	history []storedEvent
	gw      *gateway.Server
	// sub is a subscriber of the room on the same gateway from the start:
	// live through the cut, the kill and the takeover, and on until it
	// received the last publish.
	sub *wsprobe.Conn
}

// ackedButLost publishes into one room of a 3×1 cluster through a gateway
// of the given durability: 10 events with replication working; then the
// room's replica is frozen (SIGSTOP) and its primary drops the replication
// link (CLIENT KILL TYPE replica), so that nothing written from then on
// reaches the replica, and 10 more are published, one attempt each; then
// the primary is killed -9, the replica continues and takes the slot over
// (CLUSTER FAILOVER TAKEOVER: the cluster would not elect a replica that
// was unreachable), the refused publishes are retried with their ids, and
// 10 more are published. It returns what the publisher and the new
// primary's history hold.
func ackedButLost(t *testing.T, durability string) lostAcks {
	c := redistest.StartCluster(t, 3, 1)
	gw := startGateway(t, clusterAddr(c), "us-east", "gw-1", func(cfg *gateway.Config) {
		cfg.Durability, cfg.DurabilityTimeout = durability, durabilityTimeout
	})
	const room, n = "room:durability", 10
	key := broker.Clustered.HistoryKey(room)
	pc := newClient(t, gw.Addr(), "p")
	data := func(id string) map[string]string { return map[string]string{"id": id} }
	var run lostAcks
	run.gw = gw
	run.sub = newClient(t, gw.Addr(), "s")
	run.sub.Subscribe(room, nil, nil)
	for i := range n {
		run.acked = append(run.acked, pc.PublishAcked(room, msgID("a", i), data(msgID("a", i)), 30*time.Second))
	}

	primary, replica := c.CutReplicaOf(t, key)
	ctx := context.Background()
	for i := range n {
		id := msgID("b", i)
		switch f := pc.Publish(room, id, data(id)); {
		case f.Type == protocol.TypeAck:
			run.acked = append(run.acked, f)
		case f.Code == protocol.CodeUnavailable:
			run.refused = append(run.refused, id)
		default:
			t.Fatalf("publish %s while replication was cut: %+v", id, f)
		}
	}

	if err := primary.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := replica.Thaw(); err != nil {
		t.Fatal(err)
	}
	c.TakeOver(t, key, primary, replica)
	// The shard has no replica now; replicated durability refuses its
	// publishes until the old primary is back as the new one's replica.
	c.Restart(t, primary)
	for _, id := range run.refused {
		run.acked = append(run.acked, pc.PublishAcked(room, id, data(id), 60*time.Second))
	}
	for i := range n {
		run.acked = append(run.acked, pc.PublishAcked(room, msgID("c", i), data(msgID("c", i)), 60*time.Second))
	}

	last := run.acked[len(run.acked)-1].Event
	wait.For(t, 60*time.Second, "the subscriber received the last publish", func() bool {
		return slices.ContainsFunc(run.sub.Messages(), func(m *protocol.ServerFrame) bool { return m.ID == last })
	})

	msgs, err := replica.Client().XRange(ctx, key, "-", "+").Result()
	if err != nil {
		t.Fatalf("XRANGE %s on the new primary %s: %v", key, replica.Addr, err)
	}
	for _, m := range msgs {
		id, _ := m.Values["f"].(string)
		q, _ := m.Values["q"].(string)
		e, _ := m.Values["e"].(string)
		oseq, err := strconv.ParseUint(q, 10, 64)
		if err != nil {
			t.Fatalf("history entry %s: oseq %q: %v", m.ID, q, err)
		}
		run.history = append(run.history, storedEvent{id: eventIDOf(t, id), oseq: oseq, epoch: e})
	}
	return run
}

// storedEvent is one entry of a room's history: its event id, oseq and epoch.
type storedEvent struct {
	id    string
	oseq  uint64
	epoch string
}

// eventIDOf is the "id" of a stored message frame.
func eventIDOf(t *testing.T, frame string) string {
	t.Helper()
	f, err := protocol.DecodeServerFrame([]byte(frame))
	if err != nil || f.ID == "" {
		t.Fatalf("history frame %q: %v", frame, err)
	}
	return f.ID
}

// TestDurabilityAsyncLosesAckedPublishes documents the hazard that
// --durability replicated closes: with async durability, publishes acked
// while the replica was cut off are gone from the promoted replica. They
// are not lost silently: the gateway had handed their oseqs out (its acks,
// its subscriber's deliveries), so the first publish after the failover
// finds the room's sequence behind them and starts a new epoch at 1
// (publish.lua's seen check), and the live subscriber is told, with an
// unasked recovered:false epoch_changed, before the new epoch's first event.
// Without the check the new events took the lost ones' oseqs under the same
// epoch, and the subscriber dropped them as duplicates.
func TestDurabilityAsyncLosesAckedPublishes(t *testing.T) {
	run := ackedButLost(t, broker.DurabilityAsync)
	if len(run.refused) != 0 {
		t.Fatalf("async durability refused %v: a publish is acked once its primary has it", run.refused)
	}
	stored := map[string]bool{} // event ids
	for _, e := range run.history {
		stored[e.id] = true
	}
	var lost []*protocol.ServerFrame
	for _, a := range run.acked {
		if !stored[a.Event] {
			lost = append(lost, a)
		}
	}
	if len(lost) != 10 || !strings.HasPrefix(lost[0].ID, "b-") {
		t.Fatalf("%d acked publishes gone from the new primary (%v), want the 10 acked while the replica was cut off", len(lost), ackIDs(lost))
	}
	oldEpoch, newEpoch := run.history[0].epoch, run.history[len(run.history)-1].epoch
	for i, a := range run.acked[20:] {
		if a.Oseq != uint64(i+1) {
			t.Fatalf("publish %s after the failover got oseq %d, want %d: the lost oseqs 11..20 must not be given again under their epoch", a.ID, a.Oseq, i+1)
		}
	}
	for i, e := range run.history {
		want := oldEpoch
		if i >= 10 {
			want = newEpoch
		}
		if e.epoch != want || oldEpoch == newEpoch {
			t.Fatalf("history entry %d (oseq %d) has epoch %s, want the first 10 under %s and the 10 after the failover under a new one (%s)", i, e.oseq, e.epoch, oldEpoch, newEpoch)
		}
	}
	expectNewEpochAnnounced(t, run, newEpoch, run.acked[20:])
	if got := counter(t, run.gw, "geolab_gateway_sequence_restarts_total"); got != 1 {
		t.Fatalf("geolab_gateway_sequence_restarts_total = %v, want 1", got)
	}
	t.Logf("async: %d acked publishes lost (%v); the next ones under a new epoch %s from oseq 1, announced", len(lost), ackIDs(lost), newEpoch)
}

// expectNewEpochAnnounced checks that the run's subscriber received every
// one of acks, and an unasked recovered:false epoch_changed naming us-east
// with newEpoch before the first message of that epoch.
func expectNewEpochAnnounced(t *testing.T, run lostAcks, newEpoch string, acks []*protocol.ServerFrame) {
	t.Helper()
	got := map[string]bool{}
	for _, m := range run.sub.Messages() {
		got[m.ID] = true
	}
	for _, a := range acks {
		if !got[a.Event] {
			t.Fatalf("the live subscriber never received %s (event %s, oseq %d): dropped as a duplicate of a lost event's oseq", a.ID, a.Event, a.Oseq)
		}
	}
	for {
		f, ok := run.sub.Next(time.Second, "subscribed", "message")
		if !ok {
			t.Fatalf("the live subscriber got no message of the new epoch %s", newEpoch)
		}
		if f.Type == protocol.TypeMessage && f.Epoch == newEpoch {
			t.Fatalf("the live subscriber got %s (oseq %d) of the new epoch %s with no recovered:false before it", f.ID, f.Oseq, newEpoch)
		}
		if f.Type == protocol.TypeSubscribed && !f.Recovered && f.Reason == protocol.ReasonEpochChanged && f.Epochs["us-east"] == newEpoch {
			return
		}
	}
}

// TestDurabilityReplicatedLosesNoAckedPublish: with --durability
// replicated, the same run acks nothing while the replica is cut off
// (each publish is refused with unavailable after the durability timeout),
// and after the failover the new primary holds every acked publish, once
// and in ack order. The refused ones had been stored and delivered live
// before the kill took them: retried with their ids, they are new events,
// and the first of them finds the sequence behind what was handed out and
// starts a new epoch at 1. So the history holds the 10 acked before the cut
// as 1..10 of the first epoch and the 20 acked after the failover as 1..20
// of a new one, and the live subscriber, told of the new epoch, receives
// every one of them.
func TestDurabilityReplicatedLosesNoAckedPublish(t *testing.T) {
	run := ackedButLost(t, broker.DurabilityReplicated)
	if len(run.refused) != 10 {
		t.Fatalf("replicated durability refused %v while no replica could confirm, want all 10 (acked: %v)", run.refused, ackIDs(run.acked))
	}
	if got := counter(t, run.gw, "geolab_gateway_publish_not_replicated_total"); got != 10 {
		t.Fatalf("geolab_gateway_publish_not_replicated_total = %v, want 10", got)
	}
	if len(run.acked) != 30 {
		t.Fatalf("%d acks, want 30", len(run.acked))
	}
	var want, got []string
	for _, a := range run.acked {
		want = append(want, a.Event)
	}
	epochs := map[string]bool{}
	oldEpoch, newEpoch := run.history[0].epoch, run.history[len(run.history)-1].epoch
	for i, e := range run.history {
		got = append(got, e.id)
		epochs[e.epoch] = true
		wantOseq, wantEpoch := uint64(i+1), oldEpoch
		if i >= 10 {
			wantOseq, wantEpoch = uint64(i-9), newEpoch
		}
		if e.oseq != wantOseq || e.epoch != wantEpoch {
			t.Fatalf("history entry %d has oseq %d epoch %s, want oseq %d epoch %s", i, e.oseq, e.epoch, wantOseq, wantEpoch)
		}
	}
	if !slices.Equal(got, want) || len(epochs) != 2 {
		t.Fatalf("the new primary holds %d events (epochs %v), want the %d acked ones once, in ack order, under two epochs:\n got %v\nwant %v",
			len(got), epochs, len(want), got, want)
	}
	for i, a := range run.acked {
		wantOseq := uint64(i + 1)
		if i >= 10 {
			wantOseq = uint64(i - 9)
		}
		if a.Oseq != wantOseq || a.Duplicate {
			t.Fatalf("ack %d (%s): oseq %d duplicate %v, want oseq %d and a new event", i, a.ID, a.Oseq, a.Duplicate, wantOseq)
		}
	}
	expectNewEpochAnnounced(t, run, newEpoch, run.acked)
}

func ackIDs(acks []*protocol.ServerFrame) []string {
	out := make([]string, len(acks))
	for i, a := range acks {
		out[i] = a.ID
	}
	return out
}

// startErr builds and starts a gateway on redisAddr with replicated
// durability and returns Start's error (closing a node that started).
func startErr(t *testing.T, redisAddr string) error {
	cfg := gateway.DefaultConfig()
	cfg.Region, cfg.Node, cfg.Listen, cfg.Redis, cfg.Authority = "us-east", "gw-1", "127.0.0.1:0", redisAddr, authority
	cfg.Durability = broker.DurabilityReplicated
	srv, err := gateway.New(cfg)
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	err = srv.Start()
	if err == nil {
		_ = srv.Close()
	}
	return err
}

// TestDurabilityReplicatedRefusesARedisWithoutReplica: a gateway told to
// ack only replicated publishes does not start on a Redis, or a cluster,
// where a primary has no replica (every publish would wait and be
// refused); the error names the flag and the primaries.
func TestDurabilityReplicatedRefusesARedisWithoutReplica(t *testing.T) {
	rs := redistest.Start(t)
	err := startErr(t, rs.Addr())
	if err == nil || !strings.Contains(err.Error(), "--durability replicated") || !strings.Contains(err.Error(), "connected_slaves:0") {
		t.Fatalf("one Redis without a replica: %v, want an error naming --durability replicated and connected_slaves:0", err)
	}
	c := redistest.StartCluster(t, 3, 0)
	err = startErr(t, clusterAddr(c))
	if err == nil || !strings.Contains(err.Error(), "--durability replicated") {
		t.Fatalf("a cluster without replicas: %v, want an error naming --durability replicated", err)
	}
	t.Logf("a cluster without replicas: %v", err)
	for _, p := range c.Seeds() {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("a cluster without replicas: %v does not name the primary %s", err, p)
		}
	}
}

// TestDurabilityReplicatedOnOneRedis: on one Redis with a replica, a
// replicated publish is acked; with the replica cut off it is refused
// (unavailable); retried with its id once the replica is back, it is
// answered as the same event (the first attempt was stored), now that the
// replica has it.
func TestDurabilityReplicatedOnOneRedis(t *testing.T) {
	primary, replica := redistest.Start(t), redistest.Start(t)
	ctx := context.Background()
	host, port, _ := strings.Cut(primary.Addr(), ":")
	if err := replica.Client().Do(ctx, "REPLICAOF", host, port).Err(); err != nil {
		t.Fatalf("REPLICAOF: %v", err)
	}
	linked := func() bool {
		info, err := primary.Client().Info(ctx, "replication").Result()
		return err == nil && strings.Contains(info, "connected_slaves:1\r\n") && strings.Contains(info, ",state=online,")
	}
	wait.For(t, 30*time.Second, "the replica is online", linked)
	// Online is not yet streaming: a replica that has just synced gets the
	// primary's writes only from its first REPLCONF ACK, up to a second
	// later. A write WAITed for on its own connection says it does.
	streaming := func() bool {
		pipe := primary.Client().Pipeline()
		pipe.Set(ctx, "durability:probe", "1", 0)
		w := pipe.Do(ctx, "WAIT", 1, 1000)
		_, err := pipe.Exec(ctx)
		n, _ := w.Int()
		return err == nil && n == 1
	}
	wait.For(t, 30*time.Second, "the replica acknowledges the primary's writes", streaming)
	gw := startGateway(t, primary.Addr(), "us-east", "gw-1", func(cfg *gateway.Config) {
		cfg.Durability, cfg.DurabilityTimeout = broker.DurabilityReplicated, durabilityTimeout
	})
	pc := newClient(t, gw.Addr(), "p")
	if a := pc.Publish("room:one", "m-1", 1); a.Type != protocol.TypeAck || a.Oseq != 1 {
		t.Fatalf("publish with a replica: %+v, want an ack", a)
	}

	if err := replica.Pause(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if replica.Paused() {
			_ = replica.Resume()
		}
	})
	if err := primary.Client().Do(ctx, "CLIENT", "KILL", "TYPE", "replica").Err(); err != nil {
		t.Fatalf("CLIENT KILL TYPE replica: %v", err)
	}
	f := pc.Publish("room:one", "m-2", 2)
	if f.Type != protocol.TypeError || f.Code != protocol.CodeUnavailable || f.Ref != "m-2" {
		t.Fatalf("publish with the replica cut off: %+v, want error unavailable for m-2", f)
	}
	if err := replica.Resume(); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 30*time.Second, "the replica is online again", linked)
	a := pc.PublishAcked("room:one", "m-2", 2, 30*time.Second)
	if !a.Duplicate || a.Oseq != 2 {
		t.Fatalf("retry of m-2: %+v, want the first attempt's event (oseq 2) as a duplicate", a)
	}
	if got := counter(t, gw, "geolab_gateway_publish_not_replicated_total"); got != 1 {
		t.Fatalf("geolab_gateway_publish_not_replicated_total = %v, want 1", got)
	}
}
