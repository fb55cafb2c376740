package run_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/geolab/geolab/gateway/client"
	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/internal/harness"
	"github.com/geolab/geolab/lab"
	"github.com/geolab/geolab/lab/expect"
	"github.com/geolab/geolab/lab/history"
	"github.com/geolab/geolab/lab/run"
	"github.com/geolab/geolab/lab/scenario"
	"github.com/geolab/geolab/lab/workload"
)

func churnScenario(t *testing.T, wl workload.Spec) *scenario.Scenario {
	t.Helper()
	wl.Defaults()
	if err := wl.Validate(); err != nil {
		t.Fatal(err)
	}
	lost, err := expect.Parse("lost == 0")
	if err != nil {
		t.Fatal(err)
	}
	return &scenario.Scenario{Name: "churn", Topology: harness.Topology(t, "two-region"), Seed: 5, Workload: wl,
		Expect: []expect.Expectation{lost}}
}

// The digest covers the churn schedule and the leak probes: the same seed
// gives the same digest, a change of churn or probes another one.
func TestDigestCoversChurnAndProbes(t *testing.T) {
	base := workload.Spec{Clients: 8, FederatedRooms: 2, LocalRooms: 1, PublishRate: 5, Duration: 10 * time.Second}
	digest := func(wl workload.Spec) string {
		sc := churnScenario(t, wl)
		return run.Digest(workload.NewPlan(sc.Workload, sc.Topology, sc.Seed), sc)
	}
	churned := base
	churned.Churn = workload.Churn{Leaves: 1, Reconnects: 1}
	if a, b := digest(churned), digest(churned); a != b {
		t.Fatalf("the same scenario and seed gave two digests, %s and %s", a, b)
	}
	moreChurn := churned
	moreChurn.Churn.Reconnects = 2
	laterRejoin := churned
	laterRejoin.Churn.RejoinAfter = 2 * time.Second
	noProbes := churned
	noProbes.LeakProbes = new(bool)
	seen := map[string]string{}
	for name, wl := range map[string]workload.Spec{"no churn": base, "churn": churned, "more reconnects": moreChurn,
		"later rejoins": laterRejoin, "no probes": noProbes} {
		d := digest(wl)
		if other, dup := seen[d]; dup {
			t.Errorf("%s and %s have the same digest %s", name, other, d)
		}
		seen[d] = name
	}
}

// TestChurnAndLeakProbesOnARealLab plays a short two-region scenario with
// leaves and reconnects and reads its history back: each leave is an
// unsubscribe followed later by a live subscribe of that room; each
// reconnect is a disconnected state (dropped by Reconnect) followed by a
// new connection whose resubscribes carry since; every resubscribe of a
// room in the client's set carries since; each probe's last subscribe of
// each room it watches asks from "since":{} and is answered.
func TestChurnAndLeakProbesOnARealLab(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a lab")
	}
	sc := churnScenario(t, workload.Spec{Clients: 6, FederatedRooms: 2, LocalRooms: 1, RoomsPerClient: 2,
		PublishRate: 20, Duration: 6 * time.Second, Quiesce: 15 * time.Second,
		Churn: workload.Churn{Leaves: 1, RejoinAfter: time.Second, Reconnects: 1}})
	plan := workload.NewPlan(sc.Workload, sc.Topology, sc.Seed)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := run.Scenario(ctx, sc, run.Options{OutDir: t.TempDir(), Lab: harness.Options(t, lab.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Errors) > 0 {
		t.Errorf("run notes: %q", out.Errors)
	}
	t.Logf("plan %s: %d churn events, %d probes; counts %+v", out.Digest, len(plan.Churn), len(plan.Probes), out.Result.Counts)
	h, err := history.Load(filepath.Join(out.Dir, "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	byClient := map[string][]history.Event{}
	for _, e := range h.Events {
		if e.Client != "" {
			byClient[e.Client] = append(byClient[e.Client], e)
		}
	}

	leaves, reconnects := map[string]map[string]int{}, map[string]int{}
	for _, e := range plan.Churn {
		name := plan.Clients[e.Client].Name
		switch e.Kind {
		case workload.ChurnLeave:
			if leaves[name] == nil {
				leaves[name] = map[string]int{}
			}
			leaves[name][e.Room]++
		case workload.ChurnReconnect:
			reconnects[name]++
		}
	}
	if len(leaves) == 0 || len(reconnects) == 0 {
		t.Fatalf("plan has leaves %v and reconnects %v: want some of each", leaves, reconnects)
	}
	for _, c := range plan.Clients {
		evs := byClient[c.Name]
		last := map[string]string{} // room → type of the client's last subscribe or unsubscribe
		unsubs, dropped := map[string]int{}, 0
		for i, e := range evs {
			switch {
			case e.Kind == history.KindState && e.State.State == history.StateDisconnected &&
				strings.Contains(e.State.Err, client.ErrDropped.Error()):
				dropped++
				if !resumedAfter(evs[i+1:], e.Conn) {
					t.Errorf("%s: connection %d dropped by Reconnect, and no later connection resubscribes with since", c.Name, e.Conn)
				}
			case e.Kind != history.KindFrame || e.Dir != client.Out:
			case e.Type == protocol.TypeUnsubscribe:
				unsubs[e.Room]++
				last[e.Room] = e.Type
			case e.Type == protocol.TypeSubscribe:
				switch last[e.Room] {
				case protocol.TypeSubscribe: // a resubscribe after a reconnect
					if !e.Since {
						t.Errorf("%s: resubscribe of %s on connection %d without since: %s", c.Name, e.Room, e.Conn, e.Raw)
					}
				case protocol.TypeUnsubscribe: // a rejoin
					if e.Since {
						t.Errorf("%s: rejoin of %s is not live: %s", c.Name, e.Room, e.Raw)
					}
				}
				last[e.Room] = e.Type
			}
		}
		for room, n := range leaves[c.Name] {
			if unsubs[room] != n {
				t.Errorf("%s: %d unsubscribes of %s, want %d leaves", c.Name, unsubs[room], room, n)
			}
			if last[room] != protocol.TypeSubscribe {
				t.Errorf("%s: %s left and not joined again", c.Name, room)
			}
		}
		if dropped != reconnects[c.Name] {
			t.Errorf("%s: %d connections dropped by Reconnect, want %d", c.Name, dropped, reconnects[c.Name])
		}
	}

	if len(plan.Probes) != 2 {
		t.Fatalf("%d probes, want p-us-east and p-us-west", len(plan.Probes))
	}
	for _, p := range plan.Probes {
		for _, room := range p.Rooms {
			var final *history.Event
			answered := false
			for _, e := range byClient[p.Name] {
				if e.Kind == history.KindFrame && e.Room == room && e.Type == protocol.TypeSubscribe && e.Dir == client.Out {
					final, answered = &e, false
				} else if final != nil && e.Kind == history.KindFrame && e.Room == room && e.Type == protocol.TypeSubscribed {
					answered = true
				}
			}
			if final == nil || !bytes.Contains(final.Raw, []byte(`"since":{}`)) || !answered {
				t.Errorf("%s: last subscribe of %s = %v (answered %t), want one from \"since\":{}, answered", p.Name, room, final, answered)
			}
		}
	}
}

// resumedAfter reports whether, in a client's events after the drop of
// connection conn, a later connection came up and sent a subscribe with
// since.
func resumedAfter(evs []history.Event, conn int64) bool {
	for _, e := range evs {
		if e.Kind == history.KindFrame && e.Dir == client.Out && e.Conn > conn && e.Type == protocol.TypeSubscribe && e.Since {
			return true
		}
	}
	return false
}

// TestSlowProbeOnARealLab: on real gateways with their default send queue,
// the slow probe's connection is cut with 4001 (slow_consumers_cut 1), and
// the lab's own flood into the probe's room is no client's publish: the
// run has no extra_events and no note.
func TestSlowProbeOnARealLab(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a lab")
	}
	wl := workload.Spec{Clients: 2, FederatedRooms: 1, PublishRate: 5, Duration: 2 * time.Second, Quiesce: 10 * time.Second}
	wl.Defaults()
	if err := wl.Validate(); err != nil {
		t.Fatal(err)
	}
	lost, err := expect.Parse("lost == 0")
	if err != nil {
		t.Fatal(err)
	}
	sc := &scenario.Scenario{Name: "slow-probe", Topology: harness.Topology(t, "single-region"), Seed: 3, Workload: wl,
		Expect: []expect.Expectation{lost}}
	if p := workload.NewPlan(sc.Workload, sc.Topology, sc.Seed); p.Slow == nil {
		t.Fatal("no slow probe planned on single-region")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := run.Scenario(ctx, sc, run.Options{OutDir: t.TempDir(), Lab: harness.Options(t, lab.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Errors) > 0 {
		t.Errorf("run notes: %q", out.Errors)
	}
	c := out.Result.Counts
	if c.SlowConsumersCut != 1 || c.SlowConsumersNotCut != 0 {
		t.Errorf("slow_consumers_cut %d, slow_consumers_not_cut %d; want 1 and 0", c.SlowConsumersCut, c.SlowConsumersNotCut)
	}
	if c.ExtraEvents != 0 || c.Published == 0 {
		t.Errorf("extra_events %d with %d published: the probe's flood counted as the clients' events", c.ExtraEvents, c.Published)
	}
	if v := out.Result.Violations(); len(v) != 0 {
		t.Errorf("violations %+v, want none", v)
	}
}
