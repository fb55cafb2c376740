package fault

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/geolab/geolab/lab/link"
	"github.com/geolab/geolab/lab/provider"
	"github.com/geolab/geolab/lab/topology"
)

// world is two regions: a (gw-1, gw-2) and b (gw-1).
const world = `name: w
source: test
regions:
  - name: a
    gateways: 2
  - name: b
rtt:
  a:
    b: {ms: 10}
`

func topo(t *testing.T) *topology.Topology {
	t.Helper()
	tp, err := topology.Parse([]byte(world))
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

// TestValidateNamesTheField: every bad spec is refused, the error starting
// with the kind and naming the field that is wrong.
func TestValidateNamesTheField(t *testing.T) {
	tp := topo(t)
	ab := []string{"a", "b"}
	cases := []struct {
		name string
		spec Spec
		want string // a substring of the error
	}{
		{"unknown kind", Spec{Kind: "flood", Regions: ab}, `fault kind "flood" is unknown (want one of bandwidth, bridge-kill`},
		{"no kind", Spec{Regions: ab}, `fault kind "" is unknown`},
		{"negative for", Spec{Kind: "isolate", Regions: []string{"a"}, For: -time.Second}, "isolate: for must not be negative"},
		{"partition of one region", Spec{Kind: "partition", Regions: []string{"a"}}, "partition: regions: want 2 region(s), got 1"},
		{"partition of no region", Spec{Kind: "partition"}, "partition: regions: want 2 region(s), got 0"},
		{"isolate of two regions", Spec{Kind: "isolate", Regions: ab}, "isolate: regions: want 1 region(s), got 2"},
		{"region-down of none", Spec{Kind: "region-down"}, "region-down: regions: want 1"},
		{"unknown region", Spec{Kind: "latency", Regions: []string{"a", "mars"}, Latency: time.Millisecond}, `latency: regions[1]: no region "mars" in topology w (have a, b)`},
		{"unknown region of one", Spec{Kind: "redis-kill", Regions: []string{"mars"}}, `redis-kill: regions[0]: no region "mars"`},
		{"same region twice", Spec{Kind: "partition", Regions: []string{"a", "a"}}, "partition: regions: a twice"},
		{"unknown node", Spec{Kind: "gateway-kill", Regions: []string{"a"}, Node: "gw-3"}, `gateway-kill: node: a has no gateway "gw-3" (gw-1 … gw-2)`},
		{"node of a one-gateway region", Spec{Kind: "gateway-pause", Regions: []string{"b"}, Node: "gw-2"}, `gateway-pause: node: b has no gateway "gw-2"`},
		{"badly named node", Spec{Kind: "slow-client", Regions: []string{"a"}, Node: "1", Room: "r"}, `slow-client: node: a has no gateway "1"`},
		{"latency on a gateway kill", Spec{Kind: "gateway-kill", Regions: []string{"a"}, Latency: time.Second}, "gateway-kill: latency does not apply to this kind (it reads: regions, node)"},
		{"lose_data on a blip", Spec{Kind: "redis-blip", Regions: []string{"a"}, LoseData: true}, "redis-blip: lose_data does not apply"},
		{"node on a bridge", Spec{Kind: "bridge-kill", Regions: []string{"a"}, Node: "gw-1"}, "bridge-kill: node does not apply"},
		{"direction on isolate", Spec{Kind: "isolate", Regions: []string{"a"}, Direction: "one"}, "isolate: direction does not apply"},
		{"mode on latency", Spec{Kind: "latency", Regions: ab, Latency: time.Second, Mode: "reset"}, "latency: mode does not apply"},
		{"two stray fields", Spec{Kind: "bridge-pause", Regions: []string{"a"}, Room: "r", Clients: 2}, "bridge-pause: clients, room does not apply"},
		{"bad mode", Spec{Kind: "partition", Regions: ab, Mode: "drop"}, `partition: mode "drop": want reset or blackhole`},
		{"bad isolate mode", Spec{Kind: "isolate", Regions: []string{"a"}, Mode: "Reset"}, `isolate: mode "Reset": want reset or blackhole`},
		{"bad direction", Spec{Kind: "partition", Regions: ab, Direction: "sideways"}, `partition: direction "sideways": want both or one`},
		{"negative latency", Spec{Kind: "latency", Regions: ab, Latency: -time.Millisecond}, "latency: latency: must be positive, got -1ms"},
		{"no latency", Spec{Kind: "latency", Regions: ab}, "latency: latency: must be positive, got 0s"},
		{"jitter over latency", Spec{Kind: "latency", Regions: ab, Latency: 10 * time.Millisecond, Jitter: 20 * time.Millisecond}, "latency: jitter: must be in 0..latency (10ms), got 20ms"},
		{"negative jitter", Spec{Kind: "latency", Regions: ab, Latency: 10 * time.Millisecond, Jitter: -time.Millisecond}, "latency: jitter: must be in 0..latency"},
		{"regions and link", Spec{Kind: "latency", Regions: ab, Link: "wan.a.b", Latency: time.Second}, "latency: give regions or link, not both"},
		{"no rate", Spec{Kind: "bandwidth", Regions: ab}, "bandwidth: rate_kb: must be positive, got 0"},
		{"negative rate", Spec{Kind: "bandwidth", Link: "wan.a.b", RateKB: -5}, "bandwidth: rate_kb: must be positive, got -5"},
		{"slow client without room", Spec{Kind: "slow-client", Regions: []string{"a"}}, "slow-client: room: required"},
		{"too many slow clients", Spec{Kind: "slow-client", Regions: []string{"a"}, Room: "r", Clients: 101}, "slow-client: clients: want 1..100, got 101"},
		{"negative slow clients", Spec{Kind: "slow-client", Regions: []string{"a"}, Room: "r", Clients: -1}, "slow-client: clients: want 1..100, got -1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Validate(c.spec, tp)
			if err == nil {
				t.Fatalf("Validate(%+v) = nil, want an error with %q", c.spec, c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Validate(%+v) = %q\nwant it to contain %q", c.spec, err, c.want)
			}
		})
	}
}

// validSpecs holds one good spec per kind (the kinds' own examples).
var validSpecs = []Spec{
	{Kind: "latency", Regions: []string{"a", "b"}, Latency: 100 * time.Millisecond, Jitter: 10 * time.Millisecond},
	{Kind: "latency", Link: "client.a.b.gw-1", Latency: time.Millisecond},
	{Kind: "bandwidth", Regions: []string{"a", "b"}, RateKB: 64},
	{Kind: "partition", Regions: []string{"a", "b"}},
	{Kind: "partition", Regions: []string{"b", "a"}, Mode: "blackhole", Direction: "one", For: time.Minute},
	{Kind: "partition", Regions: []string{"a", "b"}, Mode: "reset", Direction: "both"},
	{Kind: "isolate", Regions: []string{"a"}, Mode: "blackhole"},
	{Kind: "redis-blip", Regions: []string{"a"}, For: 2 * time.Second},
	{Kind: "redis-kill", Regions: []string{"a"}, LoseData: true},
	{Kind: "redis-restart", Regions: []string{"b"}},
	{Kind: "gateway-kill", Regions: []string{"a"}, Node: "gw-2"},
	{Kind: "gateway-pause", Regions: []string{"b"}},
	{Kind: "gateway-drain", Regions: []string{"a"}, Node: "gw-1"},
	{Kind: "bridge-kill", Regions: []string{"a"}},
	{Kind: "bridge-pause", Regions: []string{"b"}},
	{Kind: "region-down", Regions: []string{"b"}, LoseData: true},
	{Kind: "slow-client", Regions: []string{"a"}, Node: "gw-2", Room: "tenant:1", Clients: 100},
	{Kind: "slow-client", Regions: []string{"a"}, Room: "tenant:1"},
	// On clusterWorld.
	{Kind: "shard-kill", Regions: []string{"a"}},
	{Kind: "shard-failover", Regions: []string{"a"}, Shard: 3, For: time.Minute},
	{Kind: "slot-migrate", Regions: []string{"a"}},
	{Kind: "slot-migrate", Regions: []string{"a"}, Room: "tenant:1", Shard: 2, For: time.Minute},
	{Kind: "replica-pause", Regions: []string{"a"}, Shard: 2, For: time.Minute},
}

// onCluster reports whether kind acts on a cluster region.
func onCluster(kind string) bool {
	return strings.HasPrefix(kind, "shard-") || kind == "slot-migrate" || kind == "replica-pause"
}

// clusterWorld is world with a's Redis a cluster of 3 shards × 1 replica,
// for the shard kinds.
func clusterWorld(t *testing.T) *topology.Topology {
	t.Helper()
	tp, err := topology.Parse([]byte(strings.Replace(world, "    gateways: 2\n", "    gateways: 2\n    redis: {mode: cluster}\n", 1)))
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

func TestValidateAcceptsEveryKind(t *testing.T) {
	tp, cluster := topo(t), clusterWorld(t)
	seen := map[string]bool{}
	for _, s := range validSpecs {
		on := tp
		if onCluster(s.Kind) {
			on = cluster
		}
		if err := Validate(s, on); err != nil {
			t.Errorf("Validate(%+v): %v", s, err)
		}
		seen[s.Kind] = true
	}
	for _, k := range Kinds() {
		if !seen[k.Name()] {
			t.Errorf("kind %s has no valid example here", k.Name())
		}
	}
}

// TestEveryKindIsDocumented: the kinds registered are the fourteen of
// docs/design.md and the four of a cluster region (shard-kill,
// shard-failover, slot-migrate, replica-pause), each with a one-line Doc and a section in docs/faults.md.
func TestEveryKindIsDocumented(t *testing.T) {
	want := []string{"bandwidth", "bridge-kill", "bridge-pause", "gateway-drain", "gateway-kill", "gateway-pause",
		"isolate", "latency", "partition", "redis-blip", "redis-kill", "redis-restart", "region-down",
		"replica-pause", "shard-failover", "shard-kill", "slot-migrate", "slow-client"}
	var got []string
	for _, k := range Kinds() {
		got = append(got, k.Name())
		if k.Doc() == "" || strings.Contains(k.Doc(), "\n") {
			t.Errorf("%s: Doc must be one line, got %q", k.Name(), k.Doc())
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("kinds %v, want %v", got, want)
	}
	doc, err := os.ReadFile("../../docs/faults.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range want {
		if !regexp.MustCompile("(?m)^### `" + regexp.QuoteMeta(k) + "`").Match(doc) {
			t.Errorf("docs/faults.md has no section \"### `%s`\"", k)
		}
	}
}

// TestDocumentedTimelineEntriesValidate: every scenario timeline entry in
// docs/faults.md decodes into a Spec that validates against the
// three-region topology (the shard kinds: three-region-cluster), and
// together they show every kind.
func TestDocumentedTimelineEntriesValidate(t *testing.T) {
	doc, err := os.ReadFile("../../docs/faults.md")
	if err != nil {
		t.Fatal(err)
	}
	tp, err := topology.Load("../../topologies/three-region.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cluster, err := topology.Load("../../topologies/three-region-cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	entry := regexp.MustCompile(`(?m)^\s*- (\{at: .*\})\s*$`)
	seen := map[string]bool{}
	for _, m := range entry.FindAllSubmatch(doc, -1) {
		var step struct {
			At    time.Duration `yaml:"at"`
			Fault string        `yaml:"fault"`
			Spec  `yaml:",inline"`
		}
		if err := yaml.Unmarshal(m[1], &step); err != nil {
			t.Errorf("%s: %v", m[1], err)
			continue
		}
		step.Spec.Kind = step.Fault
		on := tp
		if onCluster(step.Fault) {
			on = cluster
		}
		if err := Validate(step.Spec, on); err != nil {
			t.Errorf("%s: %v", m[1], err)
		}
		seen[step.Fault] = true
	}
	for _, k := range Kinds() {
		if !seen[k.Name()] {
			t.Errorf("docs/faults.md has no timeline entry for %s", k.Name())
		}
	}
}

// ---- the Book, over a world of fake processes -------------------------

// fakeNode is a process that records what was done to it in a shared log.
// Safe for concurrent use (the book heals from a timer's goroutine).
type fakeNode struct {
	name   string
	log    *events
	failOn string // an action that fails

	mu      sync.Mutex
	running bool
	paused  bool
	pid     int
}

type events struct {
	mu  sync.Mutex
	all []string
}

func (e *events) add(s string) { e.mu.Lock(); e.all = append(e.all, s); e.mu.Unlock() }
func (e *events) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.all)
}

// act records action and, unless it is the one that fails, applies change.
func (n *fakeNode) act(action string, change func() error) error {
	n.log.add(action + " " + n.name)
	if action == n.failOn {
		return fmt.Errorf("%s %s: refused", action, n.name)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return change()
}

func (n *fakeNode) Name() string  { return n.name }
func (n *fakeNode) Pid() int      { n.mu.Lock(); defer n.mu.Unlock(); return n.pid }
func (n *fakeNode) Running() bool { n.mu.Lock(); defer n.mu.Unlock(); return n.running }
func (n *fakeNode) Paused() bool  { n.mu.Lock(); defer n.mu.Unlock(); return n.paused && n.running }
func (n *fakeNode) Kill() error {
	return n.act("kill", func() error { n.running, n.paused = false, false; return nil })
}
func (n *fakeNode) Pause() error { return n.act("pause", func() error { n.paused = true; return nil }) }
func (n *fakeNode) Resume() error {
	return n.act("resume", func() error { n.paused = false; return nil })
}
func (n *fakeNode) Terminate(time.Duration) error {
	return n.act("terminate", func() error { n.running = false; return nil })
}
func (n *fakeNode) Restart(context.Context) error {
	return n.act("restart", func() error {
		if n.running {
			return errors.New("restart while running")
		}
		n.running = true
		n.pid++
		return nil
	})
}
func (n *fakeNode) Addr() string   { return "127.0.0.1:1" }
func (n *fakeNode) CAFile() string { return "" }
func (n *fakeNode) Wipe() error {
	return n.act("wipe", func() error {
		if n.running {
			return errors.New("wipe while running")
		}
		return nil
	})
}

// fakeWorld has the processes of topology world and no network (the kinds
// tested on it act on processes only).
type fakeWorld struct {
	t     *topology.Topology
	log   *events
	nodes map[string]*fakeNode // "redis a", "gateway a/gw-1", "bridge a"
}

func newFakeWorld(t *testing.T) *fakeWorld {
	w := &fakeWorld{t: topo(t), log: &events{}, nodes: map[string]*fakeNode{}}
	add := func(name string) { w.nodes[name] = &fakeNode{name: name, log: w.log, running: true, pid: 100} }
	add("redis a")
	add("redis b")
	add("gateway a/gw-1")
	add("gateway a/gw-2")
	add("gateway b/gw-1")
	add("bridge a")
	add("bridge b")
	return w
}

func (w *fakeWorld) Topology() *topology.Topology { return w.t }
func (w *fakeWorld) Net() *link.Net               { return nil }
func (w *fakeWorld) RedisOf(r string) (provider.Redis, error) {
	if n, ok := w.nodes["redis "+r]; ok {
		return n, nil
	}
	return nil, fmt.Errorf("no region %q", r)
}
func (w *fakeWorld) ClusterOf(r string) (provider.RedisCluster, error) {
	return nil, fmt.Errorf("region %s runs one Redis", r)
}
func (w *fakeWorld) GatewayOf(r, node string) (provider.Node, error) {
	if n, ok := w.nodes["gateway "+r+"/"+node]; ok {
		return n, nil
	}
	return nil, fmt.Errorf("no gateway %s/%s", r, node)
}
func (w *fakeWorld) BridgeOf(r string) (provider.Node, error) {
	if n, ok := w.nodes["bridge "+r]; ok {
		return n, nil
	}
	return nil, fmt.Errorf("no bridge in %s", r)
}
func (w *fakeWorld) GatewayAddr(r, node string) (string, error) { return "127.0.0.1:1", nil }
func (w *fakeWorld) Token(string, []string, []string, time.Duration) (string, error) {
	return "token", nil
}

// TestBookInjectsRecordsAndHeals: an injected fault is listed with its id,
// its target and its defaults filled in; healing runs its inverse once and
// forgets it; healing it again is an error naming it.
func TestBookInjectsRecordsAndHeals(t *testing.T) {
	w := newFakeWorld(t)
	b := NewBook(w)
	var seen []Event
	b.Observe(func(e Event) { seen = append(seen, e) })
	a, err := b.Inject(context.Background(), Spec{Kind: "gateway-kill", Regions: []string{"a"}})
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != "f1" || a.Target != "a/gw-1" || a.Spec.Node != "gw-1" || !a.Until.IsZero() {
		t.Fatalf("active: %+v; want f1 on a/gw-1 (the default node), no end", a)
	}
	if l := b.List(); len(l) != 1 || l[0].ID != "f1" {
		t.Fatalf("list: %+v", l)
	}
	if w.nodes["gateway a/gw-1"].Running() {
		t.Fatal("gateway-kill left the gateway running")
	}
	if err := b.Heal(context.Background(), "f1"); err != nil {
		t.Fatal(err)
	}
	if !w.nodes["gateway a/gw-1"].Running() || len(b.List()) != 0 {
		t.Fatalf("after heal: running %v, list %+v", w.nodes["gateway a/gw-1"].Running(), b.List())
	}
	if got := w.log.list(); !slices.Equal(got, []string{"kill gateway a/gw-1", "restart gateway a/gw-1"}) {
		t.Fatalf("actions: %v", got)
	}
	if err := b.Heal(context.Background(), "f1"); err == nil || !strings.Contains(err.Error(), "fault f1 is not active") {
		t.Fatalf("second heal: %v", err)
	}
	if len(seen) != 2 || seen[0].Action != "inject" || seen[1].Action != "heal" || seen[1].ID != "f1" || seen[1].Err != nil {
		t.Fatalf("events: %+v", seen)
	}
}

// TestBookRefusesWithoutRecording: a spec that does not validate, or whose
// injection fails, leaves nothing in the book.
func TestBookRefusesWithoutRecording(t *testing.T) {
	w := newFakeWorld(t)
	b := NewBook(w)
	if _, err := b.Inject(context.Background(), Spec{Kind: "gateway-kill", Regions: []string{"a"}, Node: "gw-7"}); err == nil {
		t.Fatal("a bad node was injected")
	}
	w.nodes["bridge b"].failOn = "kill"
	_, err := b.Inject(context.Background(), Spec{Kind: "bridge-kill", Regions: []string{"b"}})
	if err == nil || !strings.Contains(err.Error(), "fault bridge-kill b: kill bridge b: refused") {
		t.Fatalf("failed injection: %v", err)
	}
	if l := b.List(); len(l) != 0 {
		t.Fatalf("refused faults recorded: %+v", l)
	}
	if err := b.HealAll(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestBookForHealsByItself: a fault with For is healed by the book once
// that long has passed.
func TestBookForHealsByItself(t *testing.T) {
	w := newFakeWorld(t)
	b := NewBook(w)
	healed := make(chan Event, 1)
	b.Observe(func(e Event) {
		if e.Action == "heal" {
			healed <- e
		}
	})
	start := time.Now()
	a, err := b.Inject(context.Background(), Spec{Kind: "bridge-pause", Regions: []string{"a"}, For: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if a.Until.Sub(a.Injected) != 100*time.Millisecond {
		t.Errorf("until %s after injection, want 100ms", a.Until.Sub(a.Injected))
	}
	select {
	case e := <-healed:
		if e.ID != a.ID || e.Err != nil {
			t.Fatalf("heal event %+v", e)
		}
		if d := time.Since(start); d < 100*time.Millisecond {
			t.Fatalf("healed after %s, before its 100ms", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a fault with for: 100ms was not healed within 10s")
	}
	if len(b.List()) != 0 || w.nodes["bridge a"].Paused() {
		t.Fatalf("after the auto-heal: list %+v, paused %v", b.List(), w.nodes["bridge a"].Paused())
	}
	if err := b.Heal(context.Background(), a.ID); err == nil {
		t.Fatal("an auto-healed fault could be healed again")
	}
}

// TestBookHealAllNewestFirst: HealAll undoes faults in the reverse order of
// their injection, so that stacked faults unwind as they were built.
func TestBookHealAllNewestFirst(t *testing.T) {
	w := newFakeWorld(t)
	b := NewBook(w)
	for _, s := range []Spec{
		{Kind: "gateway-pause", Regions: []string{"a"}, Node: "gw-2"},
		{Kind: "bridge-kill", Regions: []string{"b"}},
		{Kind: "gateway-drain", Regions: []string{"b"}},
	} {
		if _, err := b.Inject(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
	var order []string
	b.Observe(func(e Event) { order = append(order, e.ID) })
	if err := b.HealAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(order, []string{"f3", "f2", "f1"}) {
		t.Fatalf("healed in order %v, want f3 f2 f1", order)
	}
	for _, n := range w.nodes {
		if !n.Running() || n.Paused() {
			t.Errorf("%s after HealAll: running %v, paused %v", n.name, n.Running(), n.Paused())
		}
	}
}

// TestProcessFaultsAndTheirInverses: what each process kind does, in order,
// and what its heal does.
func TestProcessFaultsAndTheirInverses(t *testing.T) {
	cases := []struct {
		spec          Spec
		inject, after []string // actions at injection, then at heal
	}{
		{Spec{Kind: "gateway-pause", Regions: []string{"a"}, Node: "gw-2"},
			[]string{"pause gateway a/gw-2"}, []string{"resume gateway a/gw-2"}},
		{Spec{Kind: "gateway-drain", Regions: []string{"a"}},
			[]string{"terminate gateway a/gw-1"}, []string{"restart gateway a/gw-1"}},
		{Spec{Kind: "bridge-kill", Regions: []string{"b"}},
			[]string{"kill bridge b"}, []string{"restart bridge b"}},
		{Spec{Kind: "bridge-pause", Regions: []string{"b"}},
			[]string{"pause bridge b"}, []string{"resume bridge b"}},
		{Spec{Kind: "redis-kill", Regions: []string{"a"}},
			[]string{"kill redis a"}, []string{"restart redis a"}},
		{Spec{Kind: "redis-kill", Regions: []string{"a"}, LoseData: true},
			[]string{"kill redis a"}, []string{"wipe redis a", "restart redis a"}},
		{Spec{Kind: "redis-restart", Regions: []string{"b"}},
			[]string{"kill redis b", "restart redis b"}, nil},
		{Spec{Kind: "redis-restart", Regions: []string{"b"}, LoseData: true},
			[]string{"kill redis b", "wipe redis b", "restart redis b"}, nil},
		{Spec{Kind: "region-down", Regions: []string{"a"}},
			[]string{"kill gateway a/gw-1", "kill gateway a/gw-2", "kill bridge a", "kill redis a"},
			[]string{"restart redis a", "restart gateway a/gw-1", "restart gateway a/gw-2", "restart bridge a"}},
		{Spec{Kind: "region-down", Regions: []string{"b"}, LoseData: true},
			[]string{"kill gateway b/gw-1", "kill bridge b", "kill redis b"},
			[]string{"wipe redis b", "restart redis b", "restart gateway b/gw-1", "restart bridge b"}},
	}
	for _, c := range cases {
		t.Run(c.spec.Kind+"/"+c.spec.Target()+fmt.Sprintf("/lose_data=%v", c.spec.LoseData), func(t *testing.T) {
			w := newFakeWorld(t)
			b := NewBook(w)
			a, err := b.Inject(context.Background(), c.spec)
			if err != nil {
				t.Fatal(err)
			}
			got, want := w.log.list(), c.inject
			if c.spec.Kind == "region-down" { // every part at once: in any order
				got, want = slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))
			}
			if !slices.Equal(got, want) {
				t.Fatalf("inject did %v, want %v", got, want)
			}
			if err := b.Heal(context.Background(), a.ID); err != nil {
				t.Fatal(err)
			}
			if got := w.log.list()[len(c.inject):]; !slices.Equal(got, c.after) {
				t.Fatalf("heal did %v, want %v", got, c.after)
			}
			for _, n := range w.nodes {
				if !n.Running() || n.Paused() {
					t.Errorf("%s after heal: running %v, paused %v", n.name, n.Running(), n.Paused())
				}
			}
		})
	}
}

// TestHealLeavesARestartedProcessAlone: a heal finds the lab changed (the
// process was restarted by someone else) and does nothing to it.
func TestHealLeavesARestartedProcessAlone(t *testing.T) {
	w := newFakeWorld(t)
	b := NewBook(w)
	a, err := b.Inject(context.Background(), Spec{Kind: "gateway-kill", Regions: []string{"b"}})
	if err != nil {
		t.Fatal(err)
	}
	n := w.nodes["gateway b/gw-1"]
	if err := n.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	pid := n.Pid()
	if err := b.Heal(context.Background(), a.ID); err != nil {
		t.Fatalf("heal after an outside restart: %v", err)
	}
	if n.Pid() != pid || !n.Running() {
		t.Fatalf("heal restarted a running gateway (pid %d, was %d)", n.Pid(), pid)
	}
}

// TestBookForShorterThanInjection: a For so short that it is up before
// Inject has recorded the fault still heals it, and the observer sees the
// injection before the heal.
func TestBookForShorterThanInjection(t *testing.T) {
	for i := range 200 {
		w := newFakeWorld(t)
		b := NewBook(w)
		var mu sync.Mutex
		var actions []string
		b.Observe(func(e Event) { mu.Lock(); actions = append(actions, e.Action); mu.Unlock() })
		if _, err := b.Inject(context.Background(), Spec{Kind: "bridge-pause", Regions: []string{"a"}, For: time.Nanosecond}); err != nil {
			t.Fatal(err)
		}
		end := time.Now().Add(10 * time.Second)
		for len(b.List()) != 0 {
			if time.Now().After(end) {
				t.Fatalf("run %d: a fault with for: 1ns still active after 10s: %+v", i, b.List())
			}
			time.Sleep(time.Millisecond) // polling a condition
		}
		end = time.Now().Add(10 * time.Second)
		for {
			mu.Lock()
			got := slices.Clone(actions)
			mu.Unlock()
			if len(got) == 2 {
				if got[0] != "inject" || got[1] != "heal" {
					t.Fatalf("run %d: events %v, want inject then heal", i, got)
				}
				break
			}
			if time.Now().After(end) {
				t.Fatalf("run %d: events %v", i, got)
			}
			time.Sleep(time.Millisecond) // polling a condition
		}
		if w.nodes["bridge a"].Paused() {
			t.Fatalf("run %d: bridge still paused", i)
		}
	}
}

// TestShardKindsValidate: the shard kinds take a cluster region and a shard
// in range; the kinds that kill "the region's Redis" refuse a cluster
// region before anything is killed.
func TestShardKindsValidate(t *testing.T) {
	top, err := topology.Parse([]byte(`name: t
source: test
regions:
  - {name: a, redis: {mode: cluster, shards: 4, replicas: 1}}
  - {name: b, redis: {mode: cluster, replicas: 0}}
  - {name: c}
rtt: {a: {b: {ms: 1}, c: {ms: 1}}, b: {c: {ms: 1}}}
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		s    Spec
		want string // "" : valid
	}{
		{Spec{Kind: "shard-kill", Regions: []string{"a"}}, ""},
		{Spec{Kind: "shard-kill", Regions: []string{"a"}, Shard: 4}, ""},
		{Spec{Kind: "shard-kill", Regions: []string{"b"}, Shard: 3}, ""},
		{Spec{Kind: "shard-failover", Regions: []string{"a"}, Shard: 2}, ""},
		{Spec{Kind: "shard-kill", Regions: []string{"a"}, Shard: 5}, "shard-kill: shard: a has shards 1..4 (numbered by their lowest slot), got 5"},
		{Spec{Kind: "shard-kill", Regions: []string{"a"}, Shard: -1}, "shard: a has shards 1..4"},
		{Spec{Kind: "shard-kill", Regions: []string{"c"}}, "shard-kill: regions[0]: c runs one Redis (redis.mode standalone): shard-kill acts on a cluster region"},
		{Spec{Kind: "shard-failover", Regions: []string{"b"}}, "shard-failover: regions[0]: b runs its shards without replicas (redis.replicas 0): nothing to fail over to"},
		{Spec{Kind: "replica-pause", Regions: []string{"a"}, Shard: 3}, ""},
		{Spec{Kind: "replica-pause", Regions: []string{"b"}}, "replica-pause: regions[0]: b runs its shards without replicas (redis.replicas 0)"},
		{Spec{Kind: "replica-pause", Regions: []string{"c"}}, "replica-pause: regions[0]: c runs one Redis (redis.mode standalone): replica-pause acts on a cluster region"},
		{Spec{Kind: "replica-pause", Regions: []string{"a"}, LoseData: true}, "lose_data does not apply to this kind"},
		{Spec{Kind: "shard-kill", Regions: []string{"a"}, Node: "gw-1"}, "node does not apply to this kind (it reads: regions, shard)"},
		{Spec{Kind: "shard-kill", Regions: []string{"a", "b"}}, "regions: want 1 region(s), got 2"},
		{Spec{Kind: "redis-kill", Regions: []string{"a"}, Shard: 1}, "shard does not apply to this kind"},
		{Spec{Kind: "redis-kill", Regions: []string{"a"}}, "redis-kill: regions[0]: a runs a Redis Cluster, not one Redis: redis-kill needs one"},
		{Spec{Kind: "redis-restart", Regions: []string{"b"}}, "redis-restart: regions[0]: b runs a Redis Cluster"},
		{Spec{Kind: "region-down", Regions: []string{"a"}}, "region-down: regions[0]: a runs a Redis Cluster"},
		{Spec{Kind: "redis-kill", Regions: []string{"c"}}, ""},
		{Spec{Kind: "slot-migrate", Regions: []string{"b"}, Room: "tenant:1", Shard: 3}, ""},
		{Spec{Kind: "slot-migrate", Regions: []string{"c"}}, "slot-migrate: regions[0]: c runs one Redis (redis.mode standalone): slot-migrate moves a slot between the shards of a cluster region"},
		{Spec{Kind: "slot-migrate", Regions: []string{"a"}, Shard: 5}, "slot-migrate: shard: a has shards 1..4 (numbered by their lowest slot), got 5"},
		{Spec{Kind: "slot-migrate", Regions: []string{"a"}, Room: "{p1-3}x"}, `slot-migrate: room: "{p1-3}x" is no room name`},
		{Spec{Kind: "slot-migrate", Regions: []string{"a"}, Node: "gw-1"}, "node does not apply to this kind (it reads: regions, room, shard)"},
		{Spec{Kind: "shard-isolate", Regions: []string{"a"}}, "shard-isolate: the lab cannot cut one primary from its replicas and the other primaries"},
	} {
		err := Validate(tc.s, top)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v, want valid", tc.s, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: %v, want %q", tc.s, err, tc.want)
		}
	}
	if got := (Spec{Kind: "shard-kill", Regions: []string{"a"}, Shard: 2}).Target(); got != "a/shard-2" {
		t.Errorf("target %q, want a/shard-2", got)
	}
}
