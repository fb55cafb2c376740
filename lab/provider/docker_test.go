package provider_test

// Tests of the docker provider itself: what no other provider has (networks
// that make regions real, the one-line engine error). What every provider
// must do — every fault kind, observed and healed — is the contract suite in
// lab (fault_test.go, lab_test.go), run on docker by harness.RunWithProvider.

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2/client"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"

	"github.com/geolab/geolab/internal/harness"
	"github.com/geolab/geolab/lab"
	"github.com/geolab/geolab/lab/provider"
)

func TestDockerEngineErrorIsOneLine(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
	err := provider.DockerEngine(context.Background())
	if err == nil {
		t.Fatal("an engine answered on a socket that does not exist")
	}
	if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, "make deps-docker") || !strings.Contains(msg, "process provider") {
		t.Fatalf("want one line saying how to start an engine, got %q", msg)
	}
}

// TestDockerLabIsIsolatedAndFederates runs two-region.yaml on containers:
// a message published in us-west reaches a subscriber in us-east, and a
// container on us-east's network cannot reach us-west's Redis except
// through the lab's Toxiproxy.
func TestDockerLabIsIsolatedAndFederates(t *testing.T) {
	harness.RequireProvider(t, provider.DockerName)
	l := harness.StartLab(t, "two-region.yaml", lab.Options{Provider: provider.DockerName})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sub := harness.Dial(t, l, "sub", l.Endpoints("us-east", "us-east"), "tenant:1")
	pub := harness.Dial(t, l, "pub", l.Endpoints("us-west", "us-west"))
	id := pub.Publish("tenant:1", "m-1")
	harness.WaitFor(t, 30*time.Second, "us-east receives us-west's message", func() bool { return sub.Has("tenant:1", id) })
	if ms := sub.Messages("tenant:1"); len(ms) != 1 || ms[0].Origin != "us-west" {
		t.Fatalf("got %+v, want one message of origin us-west", ms)
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
	harness.WaitFor(t, 30*time.Second, "probe Toxiproxy answers", func() bool {
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
