package provider_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/geolab/geolab/internal/harness"
	"github.com/geolab/geolab/lab"
	"github.com/geolab/geolab/lab/expect"
	"github.com/geolab/geolab/lab/history"
	"github.com/geolab/geolab/lab/link"
	"github.com/geolab/geolab/lab/provider"
	"github.com/geolab/geolab/lab/report"
	"github.com/geolab/geolab/lab/run"
	"github.com/geolab/geolab/lab/scenario"
	"github.com/geolab/geolab/lab/workload"
)

// swarmAgentsScenario is a short two-region scenario for the agents tests.
func swarmAgentsScenario(t *testing.T) *scenario.Scenario {
	t.Helper()
	wl := workload.Spec{Clients: 9, FederatedRooms: 3, LocalRooms: 1, PublishRate: 20, Duration: 5 * time.Second, Quiesce: 15 * time.Second}
	wl.Defaults()
	if err := wl.Validate(); err != nil {
		t.Fatal(err)
	}
	sc := &scenario.Scenario{Name: "swarm-agents", Topology: harness.Topology(t, "two-region.yaml"), Seed: 3, Workload: wl}
	for _, e := range []string{"lost == 0", "duplicated == 0", "reordered == 0", "gaps == 0", "region_order == 0", "leaked == 0"} {
		x, err := expect.Parse(e)
		if err != nil {
			t.Fatal(err)
		}
		sc.Expect = append(sc.Expect, x)
	}
	return sc
}

// TestSwarmAgentsGiveTheSameDigestAndVerdict plays one scenario on a swarm
// lab twice: every client in the run's process, then in three workload
// agents run as a swarm service (--agents 3, the default --agents-on swarm
// of a swarm lab). The plan digest, the verdict and the counts are the
// same; the merged history and the report hold the three agents' clock
// offsets and bounds; every agent client dialled a client link at
// Toxiproxy's address on the agents' network (never the lab's own address
// of the link, which a task cannot reach, nor a gateway), and from inside an
// agent's task a gateway and a Redis answer only through a client link;
// each task's log is kept; and the service and its network are gone
// afterwards.
func TestSwarmAgentsGiveTheSameDigestAndVerdict(t *testing.T) {
	harness.RequireProvider(t, provider.SwarmName)
	sc := swarmAgentsScenario(t)
	type result struct {
		out      *run.Outcome
		dir      string
		hist     *history.History
		dialFrom map[string]bool // agent side address of every client link
		hostSide map[string]bool // the lab's own address of every client link
	}
	results := map[int]*result{}
	for _, n := range []int{0, 3} {
		r := &result{dir: filepath.Join(t.TempDir(), "out"), dialFrom: map[string]bool{}, hostSide: map[string]bool{}}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		out, err := run.Scenario(ctx, sc, run.Options{OutDir: r.dir, Lab: lab.Options{Provider: provider.SwarmName}, Agents: n, Version: "dev",
			Inspect: func(ctx context.Context, l *lab.Lab) error {
				at, ok := l.AgentTasks()
				for _, ln := range l.Net().Select(func(ln link.Link) bool { return ln.Kind == link.Client }) {
					r.hostSide[ln.Listen] = true
					if ok {
						r.dialFrom[at.AgentDial(ln.Listen)] = true
					}
				}
				if ok {
					requireAgentsOnlyThroughToxiproxy(t, ctx, l)
				}
				return nil
			}})
		cancel()
		if err != nil {
			t.Fatalf("--agents %d on swarm: %v", n, err)
		}
		r.out = out
		if r.hist, err = history.Load(filepath.Join(r.dir, "history.jsonl")); err != nil {
			t.Fatal(err)
		}
		results[n] = r
	}
	base, sw := results[0], results[3]
	if !base.out.Passed() {
		t.Fatalf("in process on swarm: %v", base.out.Failed())
	}
	if sw.out.Digest != base.out.Digest {
		t.Errorf("--agents 3 on swarm: plan digest %s, in process %s", sw.out.Digest, base.out.Digest)
	}
	if sw.out.Passed() != base.out.Passed() {
		t.Errorf("--agents 3 on swarm: verdict %v (%v), in process %v", sw.out.Passed(), sw.out.Failed(), base.out.Passed())
	}
	plan := workload.NewPlan(sc.Workload, sc.Topology, sc.Seed)
	got, want := sw.out.Result.Counts, base.out.Result.Counts
	if got.Published != want.Published || got.Published != len(plan.Publishes) {
		t.Errorf("--agents 3 on swarm: %d publishes acked, in process %d, planned %d", got.Published, want.Published, len(plan.Publishes))
	}

	// The agents' clocks: three, each holding the true offset 0 (one node).
	agents := sw.hist.Meta.Agents
	if len(agents) != 3 || len(sw.out.Agents) != 3 {
		t.Fatalf("--agents 3 on swarm: history meta names %d agents, the outcome %d", len(agents), len(sw.out.Agents))
	}
	total := 0
	for _, a := range agents {
		total += a.Clients
		off, bound := time.Duration(a.Offset), time.Duration(a.Bound)
		if a.Samples < 2 || bound <= 0 || bound > 100*time.Millisecond || a.RTT <= 0 {
			t.Errorf("%s's clock %+v: want samples, a bound above 0 and under 100ms on one node", a.Name, a)
		}
		if off-bound > 0 || off+bound < 0 {
			t.Errorf("%s's offset %s ± %s does not hold 0, the offset of a clock to itself", a.Name, off, bound)
		}
	}
	if total != sc.Workload.Clients {
		t.Errorf("the agents ran %d clients, the plan has %d", total, sc.Workload.Clients)
	}
	in, err := report.ReadJSON(filepath.Join(sw.dir, report.JSONFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Agents) != 3 {
		t.Errorf("report.json has %d agents, want 3", len(in.Agents))
	}
	page, err := os.ReadFile(filepath.Join(sw.dir, report.HTMLFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Clock offset (ms)", "Bound (± ms)", ">agent-1<", ">agent-3<", "exact only within"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("report.html does not show %q", want)
		}
	}

	// Every plan client ran in a task and dialled a client link on the
	// agents' network.
	if len(sw.dialFrom) == 0 || len(sw.dialFrom) != len(sw.hostSide) {
		t.Fatalf("client links: %d as the lab dials them, %d as the agents do", len(sw.hostSide), len(sw.dialFrom))
	}
	clients := map[string]bool{}
	for _, c := range plan.Clients {
		clients[c.Name] = true
	}
	dialled := map[string]bool{}
	for _, e := range sw.hist.Events {
		if e.Kind != history.KindState || e.State == nil || e.State.Endpoint == "" || !clients[e.Client] {
			continue
		}
		u, err := url.Parse(e.State.Endpoint)
		if err != nil {
			t.Fatalf("%s dialled %q: %v", e.Client, e.State.Endpoint, err)
		}
		if !sw.dialFrom[u.Host] || sw.hostSide[u.Host] {
			t.Errorf("%s dialled %s: not a client link at Toxiproxy's address on the agents' network (%v)", e.Client, u.Host, keys(sw.dialFrom))
		}
		dialled[e.Client] = true
	}
	if len(dialled) != len(clients) {
		t.Errorf("%d of the %d plan clients dialled a gateway from the agents", len(dialled), len(clients))
	}
	for k := 1; k <= 3; k++ {
		if b, err := os.ReadFile(filepath.Join(sw.dir, "agents", fmt.Sprintf("swarm-%d.log", k))); err != nil || !strings.Contains(string(b), "clients connected") {
			t.Errorf("task swarm-%d's log: %v, %q: want its agent's log", k, err, b)
		}
	}
	requireNoAgentsLeft(t)
}

// requireAgentsOnlyThroughToxiproxy checks from inside the network
// namespace of a running agent task (as root) that us-east's gw-1 answers
// /readyz through its client link at the agents' address, and that neither
// it nor us-east's Redis answers by any other way a task could try: the
// part's address on its region network, its task's address on
// docker_gwbridge, its published port through the node's address on
// docker_gwbridge.
func requireAgentsOnlyThroughToxiproxy(t *testing.T, ctx context.Context, l *lab.Lab) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Log("not root: the ways out of an agent's task are not tried (entering its network namespace needs root)")
		return
	}
	cli, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{Filters: make(client.Filters).Add("label", "io.geolab.part=agents")})
	if err != nil || len(cs.Items) == 0 {
		t.Fatalf("no running agent task's container: %v", err)
	}
	in, err := cli.ContainerInspect(ctx, cs.Items[0].ID, client.ContainerInspectOptions{})
	if err != nil || in.Container.State == nil || in.Container.State.Pid == 0 {
		t.Fatalf("agent container %.12s: %v", cs.Items[0].ID, err)
	}
	pid := in.Container.State.Pid
	at, _ := l.AgentTasks()
	viaLink := at.AgentDial(harness.Link(t, l, link.Client, "us-east", "us-east", "gw-1").Listen)
	if err := readyzFrom(pid, viaLink); err != nil {
		t.Fatalf("an agent's task cannot reach us-east/gw-1 through its client link at %s: %v", viaLink, err)
	}
	gw := serviceOf(t, ctx, cli, "gateway us-east/gw-1", l.Region("us-east").Gateway(1).Listen)
	red := serviceOf(t, ctx, cli, "redis us-east", l.Region("us-east").Redis().Addr())
	node := gwbridgeGateway(t, ctx, cli)
	for _, w := range []struct {
		way, addr string
		try       func(int, string) error
	}{
		{"the gateway's address on us-east's network", gw.overlay, readyzFrom},
		{"the gateway task's address on docker_gwbridge", net.JoinHostPort(gw.gwbridge, gw.port), readyzFrom},
		{"the gateway's published port through the node's address on docker_gwbridge", net.JoinHostPort(node, gw.port), readyzFrom},
		{"Redis's address on us-east's network", red.overlay, pingFrom},
		{"Redis's task's address on docker_gwbridge", net.JoinHostPort(red.gwbridge, red.port), pingFrom},
		{"Redis's published port through the node's address on docker_gwbridge", net.JoinHostPort(node, red.port), pingFrom},
	} {
		if w.addr == "" || strings.HasPrefix(w.addr, ":") {
			t.Errorf("%s: no address to try", w.way)
			continue
		}
		err := w.try(pid, w.addr)
		t.Logf("agent task → %s (%s): %v", w.way, w.addr, err)
		if err == nil {
			t.Errorf("an agent's task reached %s (%s): around Toxiproxy", w.way, w.addr)
		}
	}
}

// readyzFrom asks the gateway at addr for /readyz from inside the network
// namespace of process pid: nil only when it answers 200.
func readyzFrom(pid int, addr string) error {
	return fromNetns(pid, addr, func(c net.Conn) error {
		if _, err := c.Write([]byte("GET /readyz HTTP/1.0\r\nHost: gw\r\n\r\n")); err != nil {
			return err
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err == nil && !strings.HasPrefix(line, "HTTP/1.0 200") && !strings.HasPrefix(line, "HTTP/1.1 200") {
			err = fmt.Errorf("/readyz: %q", strings.TrimSpace(line))
		}
		return err
	})
}

// requireNoAgentsLeft fails t when an agents' service, its containers or
// its network are still on the engine.
func requireNoAgentsLeft(t *testing.T) {
	t.Helper()
	cli, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	part := make(client.Filters).Add("label", "io.geolab.part=agents")
	svcs, err := cli.ServiceList(ctx, client.ServiceListOptions{Filters: part})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: part})
	if err != nil {
		t.Fatal(err)
	}
	nets, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: make(client.Filters).Add("label", "io.geolab.lab")})
	if err != nil {
		t.Fatal(err)
	}
	var agentNets []string
	for _, n := range nets.Items {
		if strings.HasSuffix(n.Name, "_agents") {
			agentNets = append(agentNets, n.Name)
		}
	}
	if len(svcs.Items) != 0 || len(cs.Items) != 0 || len(agentNets) != 0 {
		t.Errorf("left behind: %d agents' services, %d of their containers, networks %v", len(svcs.Items), len(cs.Items), agentNets)
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// killFirstAgent is a run's progress writer that kills the container of the
// first agent task the run lists once every agent is ready.
type killFirstAgent struct {
	t      *testing.T
	cli    *client.Client
	killed chan string // the task killed
	buf    strings.Builder
}

func (k *killFirstAgent) Write(p []byte) (int, error) {
	k.buf.Write(p)
	for _, line := range strings.Split(string(p), "\n") {
		m := agentTaskLine.FindStringSubmatch(line)
		if m == nil || len(k.killed) > 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := k.cli.ContainerKill(ctx, m[2], client.ContainerKillOptions{Signal: "KILL"})
		cancel()
		if err != nil {
			k.t.Errorf("kill task %s's container %s: %v", m[1], m[2], err)
		}
		k.killed <- m[1]
	}
	return len(p), nil
}

var agentTaskLine = regexp.MustCompile(`^agents: task (swarm-\d+) .*: running, container ([0-9a-f]{12})$`)

// An agent task killed during the run (its container SIGKILLed) fails the
// run, naming the agent and what is lost, with no verdict; and the run
// removes the agents' service, its containers and network all the same.
func TestASwarmAgentKilledFailsTheRunAndLeavesNothing(t *testing.T) {
	harness.RequireProvider(t, provider.SwarmName)
	cli, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	sc := swarmAgentsScenario(t)
	sc.Workload.Duration = 20 * time.Second
	k := &killFirstAgent{t: t, cli: cli, killed: make(chan string, 1)}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := run.Scenario(ctx, sc, run.Options{OutDir: filepath.Join(t.TempDir(), "out"), Lab: lab.Options{Provider: provider.SwarmName},
		Agents: 3, Version: "dev", Progress: k})
	if len(k.killed) == 0 {
		t.Fatalf("no agent task was listed running, nothing killed; run: %v\n%s", err, k.buf.String())
	}
	task := <-k.killed
	if err == nil {
		t.Fatalf("the run went on after task %s was killed: %+v", task, out.Outcomes)
	}
	if msg := err.Error(); !strings.Contains(msg, "so the run is not judged") || !strings.Contains(msg, "agent") {
		t.Errorf("the run failed with %q: want the lost agent named and that the run is not judged", msg)
	}
	t.Logf("killed %s; the run: %v", task, err)
	requireNoAgentsLeft(t)
}
