package provider_test

// Tests of the swarm provider itself: what no other provider has (overlay
// networks and published ports that make regions real on a swarm, the
// one-line engine error). What every provider must do is the contract
// suite in lab (fault_test.go, lab_test.go), run on swarm by
// harness.RunWithProvider.

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"golang.org/x/sys/unix"

	"github.com/geolab/geolab/internal/harness"
	"github.com/geolab/geolab/lab"
	"github.com/geolab/geolab/lab/provider"
)

func TestSwarmEngineErrorIsOneLine(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
	err := provider.SwarmEngine(context.Background())
	if err == nil {
		t.Fatal("an engine answered on a socket that does not exist")
	}
	if msg := err.Error(); strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "provider swarm: ") || !strings.Contains(msg, "make deps-swarm") {
		t.Fatalf("want one line saying how to make a swarm, got %q", msg)
	}
}

// TestSwarmLabIsIsolatedAndFederates runs two-region.yaml on the swarm: a
// message published in us-west reaches a subscriber in us-east, and from
// inside us-east's gateway task (its network namespace, as root) us-east's
// Redis answers PING but us-west's does not, by any way the task could try:
// its address on us-west's network, its port published on the node (the
// host's address on docker_gwbridge), its task's own address on
// docker_gwbridge. Only the lab's Toxiproxy joins the regions.
func TestSwarmLabIsIsolatedAndFederates(t *testing.T) {
	harness.RequireProvider(t, provider.SwarmName)
	if os.Geteuid() != 0 {
		t.Skip("entering a task's network namespace needs root")
	}
	l := harness.StartLab(t, "two-region.yaml", lab.Options{Provider: provider.SwarmName})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sub := harness.Dial(t, l, "sub", l.Endpoints("us-east", "us-east"), "tenant:1")
	pub := harness.Dial(t, l, "pub", l.Endpoints("us-west", "us-west"))
	id := pub.Publish("tenant:1", "m-1")
	harness.WaitFor(t, 30*time.Second, "us-east receives us-west's message", func() bool { return sub.Has("tenant:1", id) })
	if ms := sub.Messages("tenant:1"); len(ms) != 1 || ms[0].Origin != "us-west" {
		t.Fatalf("got %+v, want one message of origin us-west", ms)
	}

	cli, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	east := serviceOf(t, ctx, cli, "redis us-east", l.Region("us-east").Redis().Addr())
	west := serviceOf(t, ctx, cli, "redis us-west", l.Region("us-west").Redis().Addr())
	gw := l.Region("us-east").Gateway(1).Pid()
	if err := pingFrom(gw, east.overlay); err != nil {
		t.Fatalf("us-east's gateway cannot reach us-east's Redis at %s: %v", east.overlay, err)
	}
	if west.gwbridge == "" {
		t.Fatal("us-west's Redis task has no address on docker_gwbridge: the test would not cover that way")
	}
	for _, w := range []struct{ way, addr string }{
		{"its address on us-west's network", west.overlay},
		{"its published port, through the node's address on docker_gwbridge", net.JoinHostPort(gwbridgeGateway(t, ctx, cli), west.port)},
		{"its task's address on docker_gwbridge", net.JoinHostPort(west.gwbridge, west.port)},
	} {
		err := pingFrom(gw, w.addr)
		t.Logf("us-east's gateway → us-west's Redis by %s (%s): %v", w.way, w.addr, err)
		if err == nil {
			t.Errorf("us-east's gateway reached us-west's Redis by %s (%s): the regions are not isolated", w.way, w.addr)
		}
	}
}

// swarmService is where a lab's service is reached from inside the swarm.
type swarmService struct {
	port     string
	overlay  string // its task's address on its region network, with the port
	gwbridge string // its task's address on docker_gwbridge ("" when none)
}

// serviceOf finds the lab service labelled part whose port is published at
// hostAddr, and its task's addresses.
func serviceOf(t *testing.T, ctx context.Context, cli *client.Client, part, hostAddr string) swarmService {
	t.Helper()
	_, port, _ := net.SplitHostPort(hostAddr)
	svcs, err := cli.ServiceList(ctx, client.ServiceListOptions{Filters: make(client.Filters).Add("label", "io.geolab.part="+part)})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range svcs.Items {
		ports := s.Spec.EndpointSpec.Ports
		if len(ports) != 1 || strconv.Itoa(int(ports[0].PublishedPort)) != port {
			continue
		}
		out := swarmService{port: port}
		network := s.Spec.TaskTemplate.Networks[0].Target
		tasks, err := cli.TaskList(ctx, client.TaskListOptions{Filters: make(client.Filters).Add("service", s.ID).Add("desired-state", "running")})
		if err != nil || len(tasks.Items) != 1 {
			t.Fatalf("tasks of %s: %v %v", s.Spec.Name, tasks.Items, err)
		}
		task := tasks.Items[0]
		for _, a := range task.NetworksAttachments {
			if a.Network.ID == network && len(a.Addresses) > 0 {
				out.overlay = net.JoinHostPort(a.Addresses[0].Addr().String(), port)
			}
		}
		if cs := task.Status.ContainerStatus; cs != nil {
			gw, err := cli.NetworkInspect(ctx, "docker_gwbridge", client.NetworkInspectOptions{})
			if e, ok := gw.Network.Containers[cs.ContainerID]; err == nil && ok && e.IPv4Address.IsValid() {
				out.gwbridge = e.IPv4Address.Addr().String()
			}
		}
		if out.overlay == "" {
			t.Fatalf("%s has no address on its network", s.Spec.Name)
		}
		return out
	}
	t.Fatalf("no service %q publishes %s", part, hostAddr)
	return swarmService{}
}

// gwbridgeGateway is the host's address on docker_gwbridge: a task's way to
// the node.
func gwbridgeGateway(t *testing.T, ctx context.Context, cli *client.Client) string {
	t.Helper()
	in, err := cli.NetworkInspect(ctx, "docker_gwbridge", client.NetworkInspectOptions{})
	if err != nil || len(in.Network.IPAM.Config) == 0 || !in.Network.IPAM.Config[0].Gateway.IsValid() {
		t.Fatalf("docker_gwbridge's gateway: %+v %v", in.Network.IPAM, err)
	}
	return in.Network.IPAM.Config[0].Gateway.String()
}

// pingFrom sends PING to the Redis at addr from inside the network
// namespace of process pid: nil only when it answers PONG.
func pingFrom(pid int, addr string) error {
	return fromNetns(pid, addr, func(c net.Conn) error {
		if _, err := c.Write([]byte("PING\r\n")); err != nil {
			return err
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err == nil && !strings.HasPrefix(line, "+PONG") {
			err = fmt.Errorf("PING: %q", strings.TrimSpace(line))
		}
		return err
	})
}

// fromNetns dials addr from inside the network namespace of process pid
// (within 3 s) and runs talk on the connection (3 s deadline).
func fromNetns(pid int, addr string, talk func(net.Conn) error) error {
	done := make(chan error, 1)
	go func() {
		// The thread enters the namespace and is never unlocked: it ends
		// with this goroutine instead of going back to the scheduler.
		runtime.LockOSThread()
		ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
		if err != nil {
			done <- err
			return
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("setns: %w", err)
			return
		}
		c, err := net.DialTimeout("tcp", addr, 3*time.Second)
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		done <- talk(c)
	}()
	return <-done
}
