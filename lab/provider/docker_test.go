package provider_test

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2/client"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"

	gwclient "github.com/geolab/geolab/gateway/client"
	"github.com/geolab/geolab/lab"
	"github.com/geolab/geolab/lab/fault"
	"github.com/geolab/geolab/lab/provider"
	"github.com/geolab/geolab/lab/topology"
)

// needDocker skips unless the docker tests are asked for (PROVIDER=docker,
// as 'make chaos-docker' sets it) and an engine answers.
func needDocker(t *testing.T) {
	t.Helper()
	if os.Getenv("PROVIDER") != "docker" {
		t.Skip("docker tests run with PROVIDER=docker (make chaos-docker)")
	}
	if err := provider.DockerEngine(context.Background()); err != nil {
		t.Skip(err)
	}
}

func TestDockerEngineErrorIsOneLine(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
	err := provider.DockerEngine(context.Background())
	if err == nil {
		t.Fatal("an engine answered on a socket that does not exist")
	}
	if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, "make deps-docker") || !strings.Contains(msg, "--provider process") {
		t.Fatalf("want one line saying how to start an engine, got %q", msg)
	}
}

func startDockerLab(t *testing.T) *lab.Lab {
	t.Helper()
	topo, err := topology.Load("../../topologies/two-region.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l, err := lab.Start(ctx, topo, lab.Options{Provider: "docker"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return l
}

// receiver is a client that records the rooms' messages.
type receiver struct {
	c   *gwclient.Client
	mu  sync.Mutex
	got []gwclient.Message
}

func (r *receiver) count() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.got) }

func dialLab(t *testing.T, l *lab.Lab, name string, endpoints []string) *receiver {
	t.Helper()
	tok, err := l.Token(name, []string{"*"}, []string{"*"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{}
	r.c, err = gwclient.Dial(context.Background(), gwclient.Options{Endpoints: endpoints,
		Token: func(context.Context) (string, error) { return tok, nil }, MaxBackoff: 500 * time.Millisecond,
		OnMessage: func(m gwclient.Message) { r.mu.Lock(); r.got = append(r.got, m); r.mu.Unlock() }})
	if err != nil {
		t.Fatalf("%s: dial: %v", name, err)
	}
	t.Cleanup(func() { _ = r.c.Close() })
	return r
}

func eventually(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("%s: not within %s", what, bound)
		}
		time.Sleep(50 * time.Millisecond) // polling a condition
	}
}

// TestDockerLabIsIsolatedAndFederates runs two-region.yaml on containers:
// a message published in us-west reaches a subscriber in us-east, and a
// container on us-east's network cannot reach us-west's Redis except
// through the lab's Toxiproxy.
func TestDockerLabIsIsolatedAndFederates(t *testing.T) {
	needDocker(t)
	l := startDockerLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sub := dialLab(t, l, "sub", l.Endpoints("us-east", "us-east"))
	pub := dialLab(t, l, "pub", l.Endpoints("us-west", "us-west"))
	if _, err := sub.c.Subscribe(ctx, "tenant:1"); err != nil {
		t.Fatal(err)
	}
	if _, err := pub.c.Publish(ctx, "tenant:1", "m-1", "hello"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "us-east receives us-west's message", func() bool { return sub.count() == 1 })
	if m := sub.got[0]; m.Origin != "us-west" {
		t.Fatalf("got %+v, want origin us-west", m)
	}

	// A Toxiproxy of our own on us-east's network only: it reaches us-east's
	// Redis, not us-west's.
	east, west := l.Region("us-east").Redis().Addr(), l.Region("us-west").Redis().Addr()
	probe := probeOn(t, ctx, networkOf(t, ctx, east))
	if err := pingThrough(t, probe, "east", east); err != nil {
		t.Fatalf("a container on us-east's network cannot reach us-east's Redis: %v", err)
	}
	if err := pingThrough(t, probe, "west", west); err == nil {
		t.Fatal("a container on us-east's network reached us-west's Redis directly: the regions are not isolated")
	}
}

// networkOf returns the name of the lab network whose subnet holds addr.
func networkOf(t *testing.T, ctx context.Context, addr string) string {
	t.Helper()
	ap := netip.MustParseAddrPort(addr)
	cli, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	nets, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: make(client.Filters).Add("label", "io.geolab.lab")})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nets.Items {
		for _, c := range n.IPAM.Config {
			if c.Subnet.Contains(ap.Addr()) {
				return n.Name
			}
		}
	}
	t.Fatalf("no lab network holds %s", addr)
	return ""
}

// probeOn starts a Toxiproxy container on network only and returns its
// address on it.
func probeOn(t *testing.T, ctx context.Context, network string) string {
	t.Helper()
	img := os.Getenv("TOXIPROXY_IMAGE")
	if img == "" {
		img = provider.DefaultToxiproxyImage
	}
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{Started: true,
		ContainerRequest: testcontainers.ContainerRequest{Image: img, Networks: []string{network},
			Labels: map[string]string{"io.geolab.lab": "probe"}}})
	if c != nil {
		t.Cleanup(func() { _ = c.Terminate(context.Background()) })
	}
	if err != nil {
		t.Fatal(err)
	}
	ips, err := c.ContainerIPs(ctx)
	if err != nil || len(ips) == 0 {
		t.Fatalf("probe address: %v %v", ips, err)
	}
	api := "http://" + net.JoinHostPort(ips[0], "8474")
	eventually(t, 30*time.Second, "probe Toxiproxy answers", func() bool {
		resp, err := http.Get(api + "/version")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	return ips[0]
}

// pingThrough makes a proxy on the probe to upstream and sends PING
// through it.
func pingThrough(t *testing.T, probe, name, upstream string) error {
	t.Helper()
	listen := net.JoinHostPort(probe, map[string]string{"east": "20001", "west": "20002"}[name])
	if _, err := toxiproxy.NewClient("http://"+net.JoinHostPort(probe, "8474")).CreateProxy(name, "0.0.0.0"+listen[strings.LastIndex(listen, ":"):], upstream); err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", listen, 3*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	_, err = bufio.NewReader(c).ReadString('\n')
	return err
}

// TestDockerProcessFaults maps the process faults onto containers: kill,
// pause, drain, a Redis restart that loses its data, and a region down;
// every heal brings the part back where its links point.
func TestDockerProcessFaults(t *testing.T) {
	needDocker(t)
	l := startDockerLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	gw := l.Region("us-east").Gateway(1)
	ready := func() bool {
		c := http.Client{Timeout: 500 * time.Millisecond}
		resp, err := c.Get("http://" + gw.Listen + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	inject := func(s fault.Spec) fault.Active {
		t.Helper()
		a, err := l.Inject(ctx, s)
		if err != nil {
			t.Fatalf("%s: %v", s.Kind, err)
		}
		return a
	}
	heal := func(what string) {
		t.Helper()
		if err := l.Heal(); err != nil {
			t.Fatalf("heal %s: %v", what, err)
		}
	}

	pid := gw.Pid()
	inject(fault.Spec{Kind: "gateway-kill", Regions: []string{"us-east"}, Node: "gw-1"})
	if gw.Running() || ready() {
		t.Fatalf("after gateway-kill: running %v, ready %v", gw.Running(), ready())
	}
	heal("gateway-kill")
	if !gw.Running() || gw.Pid() == pid || !ready() {
		t.Fatalf("after heal: running %v, pid %d (was %d), ready %v", gw.Running(), gw.Pid(), pid, ready())
	}

	inject(fault.Spec{Kind: "gateway-pause", Regions: []string{"us-east"}, Node: "gw-1"})
	if !gw.Paused() || ready() {
		t.Fatalf("after gateway-pause: paused %v, ready %v", gw.Paused(), ready())
	}
	heal("gateway-pause")
	eventually(t, 10*time.Second, "gw-1 ready after unpause", ready)

	inject(fault.Spec{Kind: "gateway-drain", Regions: []string{"us-east"}, Node: "gw-1"})
	if gw.Running() {
		t.Fatal("after gateway-drain the container still runs")
	}
	heal("gateway-drain")
	eventually(t, 10*time.Second, "gw-1 ready after drain heal", ready)

	red := l.Region("us-west").Redis()
	redPid := red.Pid()
	inject(fault.Spec{Kind: "redis-restart", Regions: []string{"us-west"}, LoseData: true})
	if !red.Running() || red.Pid() == redPid {
		t.Fatalf("after redis-restart: running %v, pid %d (was %d)", red.Running(), red.Pid(), redPid)
	}

	inject(fault.Spec{Kind: "region-down", Regions: []string{"us-west"}})
	for _, g := range l.Region("us-west").Gateways() {
		if g.Running() {
			t.Fatalf("after region-down %s still runs", g.ID)
		}
	}
	if red.Running() || l.Region("us-west").Bridge().Running() {
		t.Fatal("after region-down Redis or the bridge still runs")
	}
	heal("region-down")
	for _, g := range l.Region("us-west").Gateways() {
		if !g.Running() {
			t.Fatalf("after heal %s is down", g.ID)
		}
	}

	// Federation still works after all that.
	sub := dialLab(t, l, "sub", l.Endpoints("us-east", "us-east"))
	pub := dialLab(t, l, "pub", l.Endpoints("us-west", "us-west"))
	if _, err := sub.c.Subscribe(ctx, "tenant:after"); err != nil {
		t.Fatal(err)
	}
	if _, err := pub.c.Publish(ctx, "tenant:after", "m-1", "again"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "us-east receives us-west's message after the faults", func() bool { return sub.count() == 1 })
}
