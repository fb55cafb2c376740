package federation_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/geolab/geolab/gateway"
	"github.com/geolab/geolab/gateway/protocol"
)

var threeRegions = []string{"us-east", "eu-west", "ap-southeast"}

// publishEverywhere publishes n events into room from every region, one
// publisher per region, and returns the set of acked event ids.
func publishEverywhere(t *testing.T, w *world, room string, n int, during func(i int)) map[string]bool {
	t.Helper()
	acked := map[string]bool{}
	var mu sync.Mutex
	pubs := map[string]*wsClient{}
	for _, name := range w.names {
		pubs[name] = dial(t, w.regions[name].gw.Addr(), "pub-"+name)
	}
	for i := 0; i < n; i++ {
		if during != nil {
			during(i)
		}
		var wg sync.WaitGroup
		for _, name := range w.names {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a := pubs[name].publish(t, room, fmt.Sprintf("%s-%d", name, i), i)
				mu.Lock()
				acked[a.Event] = true
				mu.Unlock()
			}()
		}
		wg.Wait()
	}
	return acked
}

// TestFederatedRoomReachesEveryRegionOnceLocalRoomStaysHome: G7's data path.
func TestFederatedRoomReachesEveryRegionOnceLocalRoomStaysHome(t *testing.T) {
	w := newWorld(t, threeRegions...)
	w.startBridges()
	subs := map[string]*wsClient{}
	locals := map[string]*wsClient{}
	for _, name := range w.names {
		subs[name] = dial(t, w.regions[name].gw.Addr(), "sub-"+name)
		subs[name].subscribe(t, "tenant:fed", nil, nil)
		locals[name] = dial(t, w.regions[name].gw.Addr(), "local-"+name)
		locals[name].subscribe(t, "room:local", nil, nil)
	}
	const n = 40
	acked := publishEverywhere(t, w, "tenant:fed", n, nil)
	// A local room's message in us-east.
	lp := dial(t, w.regions["us-east"].gw.Addr(), "local-pub")
	lp.publish(t, "room:local", "l-1", 1)

	for _, name := range w.names {
		waitFor(t, 30*time.Second, name+" receives every region's events", func() bool { return subs[name].count() >= len(acked) })
		checkExactlyOnce(t, name, subs[name].messages(), acked)
	}
	waitFor(t, 5*time.Second, "us-east's local subscriber gets the local message", func() bool { return locals["us-east"].count() == 1 })
	// Wait until every bridge has read past the local message's outbox time.
	for _, name := range []string{"eu-west", "ap-southeast"} {
		waitFor(t, 10*time.Second, name+" bridge caught up", func() bool {
			for _, l := range w.regions[name].bridge.b.Status().Links {
				if !l.Up || l.LagEvents > 0 {
					return false
				}
			}
			return true
		})
		if c := locals[name].count(); c != 0 {
			t.Fatalf("a region-local room's message reached %s", name)
		}
		n, err := w.regions[name].redis.Client().XLen(context.Background(), "geolab:h:{room:local}").Result()
		if err != nil || n != 0 {
			t.Fatalf("%s holds %d events of us-east's local room (%v)", name, n, err)
		}
	}
}

// TestPartitionHealsWithNothingLostAndLagCrossesThresholds: A↔B cut for 10 s
// while both publish; the lag crosses warn and alert during the cut and falls
// back after; every event arrives everywhere exactly once, in order.
func TestPartitionHealsWithNothingLostAndLagCrossesThresholds(t *testing.T) {
	for _, kind := range []string{"reset", "blackhole"} {
		t.Run(kind, func(t *testing.T) {
			w := newWorld(t, threeRegions...)
			w.startBridges()
			subs := map[string]*wsClient{}
			for _, name := range w.names {
				subs[name] = dial(t, w.regions[name].gw.Addr(), "sub-"+name)
				subs[name].subscribe(t, "tenant:part", nil, nil)
			}
			a, b := "us-east", "eu-west"
			states := map[string]bool{}
			var smu sync.Mutex
			watchCtx, stopWatch := context.WithCancel(context.Background())
			defer stopWatch()
			go func() { // record every lag state eu-west's link from us-east goes through
				for watchCtx.Err() == nil {
					for _, l := range w.regions[b].bridge.b.Status().Links {
						if l.Origin == a {
							smu.Lock()
							states[l.State] = true
							smu.Unlock()
						}
					}
					time.Sleep(50 * time.Millisecond)
				}
			}()
			var cutAt time.Time
			acked := publishEverywhere(t, w, "tenant:part", 10, nil)
			w.partition(a, b, kind)
			cutAt = time.Now()
			// Publish through the partition for 10 s, in every region.
			more := 0
			for time.Since(cutAt) < 10*time.Second {
				for id := range publishEverywhere(t, w, "tenant:part", 1, nil) {
					acked[id] = true
				}
				more++
			}
			smu.Lock()
			sawWarn, sawAlert := states["warn"], states["alert"]
			smu.Unlock()
			if !sawWarn || !sawAlert {
				t.Fatalf("during a 10 s partition the lag states were %v, want warn and alert", states)
			}
			w.heal()
			for _, name := range w.names {
				waitFor(t, 60*time.Second, name+" catches up after the heal", func() bool { return subs[name].count() >= len(acked) })
				checkExactlyOnce(t, name, subs[name].messages(), acked)
			}
			waitFor(t, 30*time.Second, "lag back to ok on every link", func() bool {
				for _, name := range w.names {
					for _, l := range w.regions[name].bridge.b.Status().Links {
						if l.State != "ok" || !l.Up {
							return false
						}
					}
				}
				return true
			})
		})
	}
}

// TestBridgeKill9MidStreamLosesAndDuplicatesNothing: a real bridge process
// killed with SIGKILL while events flow, then restarted from its checkpoint.
func TestBridgeKill9MidStreamLosesAndDuplicatesNothing(t *testing.T) {
	w := newWorld(t, "us-east", "eu-west")
	w.startBridge("us-east")
	pb := w.startProcessBridge("eu-west")
	sub := dial(t, w.regions["eu-west"].gw.Addr(), "sub")
	sub.subscribe(t, "tenant:k9", nil, nil)
	pub := dial(t, w.regions["us-east"].gw.Addr(), "pub")
	acked := map[string]bool{}
	for i := 0; i < 400; i++ {
		a := pub.publish(t, "tenant:k9", fmt.Sprintf("k-%d", i), i)
		acked[a.Event] = true
		if i == 150 {
			waitFor(t, 20*time.Second, "the bridge carried some events", func() bool { return sub.count() > 20 })
			pb.kill()
		}
		if i == 250 {
			pb = w.startProcessBridge("eu-west")
		}
	}
	waitFor(t, 60*time.Second, "every event reached eu-west", func() bool { return sub.count() >= len(acked) })
	checkExactlyOnce(t, "eu-west", sub.messages(), acked)
}

// TestResumeInAnotherRegion: a client of us-east resumes in eu-west with its
// since/epochs and gets exactly what it missed of the federated room.
func TestResumeInAnotherRegion(t *testing.T) {
	w := newWorld(t, "us-east", "eu-west")
	w.startBridges()
	room := "tenant:move"
	c := dial(t, w.regions["us-east"].gw.Addr(), "traveller")
	c.subscribe(t, room, nil, nil)
	pub := dial(t, w.regions["us-east"].gw.Addr(), "pub")
	for i := 0; i < 5; i++ {
		pub.publish(t, room, fmt.Sprintf("a-%d", i), i)
	}
	waitFor(t, 10*time.Second, "5 messages in us-east", func() bool { return c.count() == 5 })
	last := c.messages()[4]
	c.ws.Close()
	var missed []string
	for i := 5; i < 12; i++ {
		missed = append(missed, pub.publish(t, room, fmt.Sprintf("a-%d", i), i).Event)
	}
	watcher := dial(t, w.regions["eu-west"].gw.Addr(), "watcher")
	watcher.subscribe(t, room, protocol.Positions{}, nil)
	waitFor(t, 20*time.Second, "eu-west has all 12", func() bool { return watcher.count() == 12 })

	c2 := dial(t, w.regions["eu-west"].gw.Addr(), "traveller")
	s := c2.subscribe(t, room, protocol.Positions{"us-east": last.Oseq}, protocol.Epochs{"us-east": last.Epoch})
	if !s.Recovered || s.Missed != len(missed) {
		t.Fatalf("resume in eu-west: %+v, want recovered with %d missed", s, len(missed))
	}
	// A live event after the resume marks the end: anything doubled would
	// arrive before it.
	live := pub.publish(t, room, "a-live", 99).Event
	missed = append(missed, live)
	waitFor(t, 20*time.Second, "the missed messages and the live one", func() bool { return c2.count() >= len(missed) })
	got := c2.messages()
	if len(got) != len(missed) {
		t.Fatalf("got %d messages after the resume, want %d", len(got), len(missed))
	}
	for i, m := range got {
		if m.ID != missed[i] || m.Origin != "us-east" || m.Oseq != last.Oseq+uint64(i)+1 {
			t.Fatalf("message %d: %s %s/%d, want %s us-east/%d", i, m.ID, m.Origin, m.Oseq, missed[i], last.Oseq+uint64(i)+1)
		}
	}
}

// TestSessionTakeoverDuringPartition: G11. A session owned by us-east is
// taken over in eu-west while the two are cut off; after the heal us-east
// learns the newer epoch and closes its connection of that session with 4003.
func TestSessionTakeoverDuringPartition(t *testing.T) {
	w := newWorld(t, "us-east", "eu-west")
	w.startBridges()
	a := dialSession(t, w.regions["us-east"].gw.Addr(), "s-1")
	waitFor(t, 20*time.Second, "eu-west learns us-east owns s-1", func() bool {
		h, _ := w.regions["eu-west"].redis.Client().HGetAll(context.Background(), "geolab:session:{s-1}").Result()
		return h["region"] == "us-east" && h["epoch"] == "1"
	})
	w.partition("us-east", "eu-west", "reset")
	b := dialSession(t, w.regions["eu-west"].gw.Addr(), "s-1")
	h, _ := w.regions["eu-west"].redis.Client().HGetAll(context.Background(), "geolab:session:{s-1}").Result()
	if h["region"] != "eu-west" || h["epoch"] != "2" {
		t.Fatalf("eu-west's takeover record: %v, want eu-west epoch 2", h)
	}
	// While cut off, us-east still believes it owns the session.
	a.send(map[string]any{"type": "ping"})
	w.heal()
	select {
	case <-a.closed:
	case <-time.After(30 * time.Second):
		t.Fatal("us-east kept the session after the heal")
	}
	if a.closeCode != protocol.CloseSessionTakenOver || !protocol.Reconnectable(a.closeCode) {
		t.Fatalf("us-east closed the session with %d, want %d session_taken_over", a.closeCode, protocol.CloseSessionTakenOver)
	}
	hA, _ := w.regions["us-east"].redis.Client().HGetAll(context.Background(), "geolab:session:{s-1}").Result()
	if hA["region"] != "eu-west" || hA["epoch"] != "2" {
		t.Fatalf("us-east's record after the heal: %v", hA)
	}
	// The new owner's connection is untouched.
	select {
	case <-b.closed:
		t.Fatalf("eu-west closed the session it owns (code %d)", b.closeCode)
	default:
	}
}

// sessionConn is a connection that names a session and records its close.
type sessionConn struct {
	*wsClient
	closed    chan struct{}
	closeCode int
}

func dialSession(t testing.TB, addr, session string) *sessionConn {
	t.Helper()
	tok, _ := authority.Issue("owner", []string{"*"}, []string{"*"}, time.Hour, time.Now())
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws?session="+session, http.Header{"Authorization": {"Bearer " + tok}})
	if err != nil {
		t.Fatalf("dial %s with session %s: %v", addr, session, err)
	}
	t.Cleanup(func() { ws.Close() })
	sc := &sessionConn{wsClient: &wsClient{ws: ws}, closed: make(chan struct{})}
	_, b, err := ws.ReadMessage()
	if err != nil || !strings.Contains(string(b), `"session":"`+session+`"`) {
		t.Fatalf("welcome %s: %v, want the session echoed", b, err)
	}
	go func() {
		defer close(sc.closed)
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					sc.closeCode = ce.Code
				}
				return
			}
		}
	}()
	return sc
}

// TestTrimmedOutboxIsAGapNeverSilent: us-east's outbox is trimmed past
// eu-west's checkpoint during a partition. After the heal the bridge counts
// and marks the gap and goes on; a live subscriber is told (recovered:false
// before the jump) and a resume that needed the lost events is refused with
// gap_marked.
func TestTrimmedOutboxIsAGapNeverSilent(t *testing.T) {
	w := newWorldWith(t, func(c *gateway.Config) { c.History.OutboxMaxLen = 20 }, "us-east", "eu-west")
	w.startBridges()
	room := "tenant:trim"
	live := dial(t, w.regions["eu-west"].gw.Addr(), "live")
	live.subscribe(t, room, nil, nil)
	pub := dial(t, w.regions["us-east"].gw.Addr(), "pub")
	for i := 0; i < 5; i++ {
		pub.publish(t, room, fmt.Sprintf("t-%d", i), i)
	}
	waitFor(t, 20*time.Second, "eu-west has the first 5", func() bool { return live.count() == 5 })
	w.partition("us-east", "eu-west", "reset")
	for i := 5; i < 600; i++ {
		pub.publish(t, room, fmt.Sprintf("t-%d", i), i)
	}
	outboxLen, _ := w.regions["us-east"].redis.Client().XLen(context.Background(), "geolab:outbox:us-east").Result()
	if outboxLen >= 595 {
		t.Fatalf("the outbox was not trimmed (%d entries): the test cannot make a gap", outboxLen)
	}
	w.heal()
	last := uint64(599 + 1)
	waitFor(t, 30*time.Second, "eu-west applies up to the newest event", func() bool {
		msgs := live.messages()
		return len(msgs) > 0 && msgs[len(msgs)-1].Oseq == last
	})
	st := w.regions["eu-west"].bridge.b.Status().Links[0]
	if st.Gaps < 1 {
		t.Fatalf("the bridge did not count the gap: %+v", st)
	}
	g, err := w.regions["eu-west"].redis.Client().HGet(context.Background(), "geolab:s:{"+room+"}", "g:us-east").Uint64()
	if err != nil || g <= 5 || g >= last {
		t.Fatalf("gap marker g:us-east = %d (%v), want between 5 and %d", g, err, last)
	}
	// The live subscriber was told before the jump.
	var notice *protocol.ServerFrame
	select {
	case notice = <-live.subs:
	default:
	}
	if notice == nil || notice.Recovered || notice.Reason != protocol.ReasonHistoryTrimmed || notice.Position["us-east"] != g {
		t.Fatalf("live subscriber's gap notice: %+v, want recovered:false history_trimmed at %d", notice, g)
	}
	// A resume from before the gap cannot be served in eu-west.
	c := dial(t, w.regions["eu-west"].gw.Addr(), "late")
	first := live.messages()[4]
	s := c.subscribe(t, room, protocol.Positions{"us-east": first.Oseq}, protocol.Epochs{"us-east": first.Epoch})
	if s.Recovered || s.Reason != protocol.ReasonGapMarked {
		t.Fatalf("resume across the gap: %+v, want recovered:false gap_marked", s)
	}
}
