package provider

// The service spec the swarm provider asks the engine for, without an
// engine: what makes a fault hit one known task, the names resolve to the
// task, the ports reach the host, and a region land on its nodes.

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"
)

func TestSwarmServiceSpec(t *testing.T) {
	s := &Swarm{lab: "abc123", placeBy: map[string]bool{"eu-west": true}, self: "NODE1",
		log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	net := &swarmNet{name: "geolab-abc123-us-east", id: "NET1"}
	part := swarmPart{name: "redis us-east", service: "redis-us-east", image: DefaultRedisImage, region: "us-east",
		args: redisArgs(16379, true), nets: []*swarmNet{net}, ports: []swarm.PortConfig{published(16379, 16379)}}

	spec := s.spec(part, "geolab-abc123-redis-us-east")
	if spec.Name != "geolab-abc123-redis-us-east" || spec.Labels[swarmLabel] != "abc123" {
		t.Errorf("name %q, labels %v", spec.Name, spec.Labels)
	}
	if r := spec.Mode.Replicated; r == nil || r.Replicas == nil || *r.Replicas != 1 {
		t.Errorf("want one replica: %+v", spec.Mode)
	}
	if rp := spec.TaskTemplate.RestartPolicy; rp == nil || rp.Condition != swarm.RestartPolicyConditionNone {
		t.Errorf("want restart condition none (nothing restarts a killed part): %+v", rp)
	}
	if e := spec.EndpointSpec; e == nil || e.Mode != swarm.ResolutionModeDNSRR {
		t.Errorf("want dnsrr endpoints (no VIP): %+v", e)
	} else if len(e.Ports) != 1 || e.Ports[0].PublishMode != swarm.PortConfigPublishModeHost || e.Ports[0].TargetPort != 16379 || e.Ports[0].PublishedPort != 16379 {
		t.Errorf("want port 16379 published in host mode as 16379: %+v", e.Ports)
	}
	if n := spec.TaskTemplate.Networks; len(n) != 1 || n[0].Target != "NET1" || !slices.Contains(n[0].Aliases, "redis-us-east") {
		t.Errorf("networks %+v", n)
	}
	cs := spec.TaskTemplate.ContainerSpec
	if len(cs.Mounts) != 1 || cs.Mounts[0].Source != "geolab-abc123-redis-us-east" || cs.Mounts[0].Target != "/data" {
		t.Errorf("want /data on the named volume: %+v", cs.Mounts)
	}
	if cs.Labels[swarmLabel] != "abc123" {
		t.Errorf("the task's containers are not labelled with the lab: %v", cs.Labels)
	}
	if spec.TaskTemplate.Placement != nil {
		t.Errorf("us-east has no labelled node: placed anywhere, got %+v", spec.TaskTemplate.Placement)
	}

	part.region = "eu-west"
	if p := s.spec(part, "").TaskTemplate.Placement; p == nil || !slices.Equal(p.Constraints, []string{"node.labels.geolab.region==eu-west"}) {
		t.Errorf("eu-west has a labelled node: want its constraint, got %+v", p)
	}
	if m := s.spec(part, "").TaskTemplate.ContainerSpec.Mounts; len(m) != 0 {
		t.Errorf("no volume asked for, got %+v", m)
	}

	tp := swarmPart{name: "toxiproxy", service: "toxiproxy", image: DefaultToxiproxyImage, here: true}
	if p := s.spec(tp, "").TaskTemplate.Placement; p != nil {
		t.Errorf("one node: Toxiproxy needs no constraint, got %+v", p)
	}
	s.multi = true
	if p := s.spec(tp, "").TaskTemplate.Placement; p == nil || !slices.Equal(p.Constraints, []string{"node.id==NODE1"}) {
		t.Errorf("several nodes: Toxiproxy runs on geolab's node, got %+v", p)
	}
}

func TestSwarmAddresses(t *testing.T) {
	s := &Swarm{lab: "abc123", inside: map[string]string{}, hostOf: map[string]string{"ap-southeast": "10.1.2.3"},
		tpAddr: map[string]netip.Addr{"us-east": netip.MustParseAddr("10.0.1.2")}}
	addr, err := s.ListenAddr("us-east", "gw-1")
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.MustParseAddrPort(addr)
	if !ap.Addr().IsLoopback() {
		t.Errorf("a gateway of this node is reached on the loopback, got %s", addr)
	}
	if in := s.Inside(addr); in != net.JoinHostPort("geolab-abc123-us-east-gw-1", strconv.Itoa(int(ap.Port()))) {
		t.Errorf("Toxiproxy dials %s at %q", addr, in)
	}
	if p, err := s.listenPort(addr); err != nil || p != int(ap.Port()) {
		t.Errorf("listen port of %s: %d %v", addr, p, err)
	}
	if _, err := s.listenPort("127.0.0.1:1"); err == nil {
		t.Error("an address ListenAddr did not hand out was taken")
	}
	bridge, _ := s.ListenAddr("ap-southeast", "bridge")
	if h, _, _ := net.SplitHostPort(bridge); h != "10.1.2.3" {
		t.Errorf("a region placed on one other node is reached at its address, got %s", bridge)
	}
	if in := s.Inside(bridge); !strings.HasPrefix(in, "geolab-abc123-bridge-ap-southeast:") {
		t.Errorf("the bridge's inside address %q", in)
	}
	if l := s.ProxyListen("us-east"); l != "10.0.1.2:0" {
		t.Errorf("us-east's links listen at %q, want Toxiproxy's address on its network", l)
	}
	if l := s.ProxyListen(""); l != "" {
		t.Errorf("before Toxiproxy runs, no client-link address: %q", l)
	}
	if in := s.Inside("10.9.9.9:80"); in != "10.9.9.9:80" {
		t.Errorf("an address the provider did not hand out is kept: %q", in)
	}
}
