package provider

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/geolab/geolab/internal/freeport"
)

// Swarm runs every part as a Docker Swarm service of one task, on overlay
// networks that make the regions real: one attachable overlay network per
// region, and the Toxiproxy service the only one on all of them.
//
//	lab (host) ──127.0.0.1:published──▶ Toxiproxy's API, gateways, bridges, Redis
//	gateway R ──region R──▶ Toxiproxy (lan.R.gw-N) ──▶ Redis R
//	bridge X ──region X──▶ Toxiproxy (wan.X.Y) ──region Y──▶ Redis Y
//	client (host) ──docker_gwbridge──▶ Toxiproxy (client.H.R.gw-N) ──region R──▶ gateway R/gw-N
//
// Every service resolves by name on its network (--endpoint-mode dnsrr: the
// name is the task's own address, no virtual IP, which does not route when
// the engine runs with --iptables=false), runs one replica with restart
// condition none (a fault hits one known task, and nothing restarts it
// behind the lab's back), and is placed on nodes labelled
// geolab.region=REGION when some node carries that label.
//
// The lab on the host reaches a part at 127.0.0.1:PORT: the port is
// published in host mode on the node that runs the task, the same number
// inside and outside, so that the part's address for the lab
// (Redis.Addr, ListenAddr) and for Toxiproxy (Inside: SERVICE:PORT) differ
// only in the host. Toxiproxy's API is published the same way; its client
// links listen on its address on docker_gwbridge, which the host is on (a
// published port's proxy would accept a connection even for a disabled
// link). 'make deps-swarm' makes docker_gwbridge bind published ports
// on the host's loopback only (no task reaches another's port through the
// host), and the provider isolates the bridge's ports from one another (the
// engine's enable_icc=false, which without iptables nothing enforces).
//
// Process faults act on the task's container through the local engine
// (kill, pause, stop); a restart is a new task ('docker service update
// --force'), at the same name and published port. Redis keeps /data in a
// named volume, so that a persistent Redis comes back with its data; Wipe
// makes the next task use a new, empty volume.
type Swarm struct {
	opts SwarmOptions
	cli  *client.Client
	lab  string
	log  *slog.Logger

	mu      sync.Mutex
	nets    map[string]*swarmNet // by region
	tpAddr  map[string]netip.Addr
	tpHost  netip.Addr            // Toxiproxy's address on docker_gwbridge: where client links listen
	inside  map[string]string     // a part's address for the lab → for Toxiproxy
	byHost  map[string]*swarmNode // a part's address for the lab → the part
	nodes   []*swarmNode
	configs []string
	volumes []string
	placeBy map[string]bool   // regions some node is labelled for
	hostOf  map[string]string // a region's host for the lab, when not 127.0.0.1
	self    string            // the id of the node geolab runs on
	multi   bool              // the swarm has more than one node

	agentsNet *swarmNet  // the workload agents' network (SwarmOptions.Agents), nil without
	tpAgents  netip.Addr // Toxiproxy's address on it
	agentSvcs []string   // the agents' services (StartAgents) not yet removed
}

// SwarmOptions configure NewSwarm. Images default as DockerOptions' do.
type SwarmOptions struct {
	// Dir receives every task's log (NAME.log) when the lab closes.
	Dir string
	// Env is added to every geolab service's environment (the JWT secret).
	Env []string
	// Regions are every region of the lab: their networks must exist before
	// Toxiproxy starts (attaching a network to a service replaces its task).
	Regions                                 []string
	GeolabImage, ToxiproxyImage, RedisImage string
	Logger                                  *slog.Logger
	// Agents makes an overlay network for workload agents run as a
	// service (StartAgents), attached to Toxiproxy, on which the agents'
	// clients reach the client links (docs/swarm.md, "Workload agents").
	Agents bool
}

type swarmNet struct {
	name, id string
}

// swarmLabel marks every service, network, volume and config of a lab.
const swarmLabel = dockerLabel

// placementLabel is the node label that places a region's services.
const placementLabel = "geolab.region"

// gwbridge is the bridge a swarm node gives tasks with published ports.
const gwbridge = "docker_gwbridge"

// ErrNoSwarm is wrapped by the error of NewSwarm and SwarmEngine when the
// engine is not a swarm manager.
var ErrNoSwarm = errors.New("the Docker engine is not a swarm manager")

// SwarmEngine returns nil when a Docker engine answers and is a swarm
// manager, else one line that says what to do.
func SwarmEngine(ctx context.Context) error {
	if err := engine(ctx, SwarmName, "'make deps-swarm' (as root: dockerd --iptables=false --storage-driver=vfs, docker swarm init)"); err != nil {
		return err
	}
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return fmt.Errorf("provider swarm: %w", err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	in, err := cli.Info(ctx, client.InfoOptions{})
	if err != nil {
		return fmt.Errorf("provider swarm: %w", firstLine(err))
	}
	if st := in.Info.Swarm.LocalNodeState; st != swarm.LocalNodeStateActive || !in.Info.Swarm.ControlAvailable {
		return fmt.Errorf("provider swarm: %w (swarm state %q, manager %v): run 'make deps-swarm' (docker swarm init, docs/swarm.md) or use the docker provider", ErrNoSwarm, st, in.Info.Swarm.ControlAvailable)
	}
	return nil
}

// NewSwarm checks that the engine is a swarm manager and that every node of
// the swarm has geolab's images, and returns a swarm provider.
func NewSwarm(ctx context.Context, opts SwarmOptions) (*Swarm, error) {
	if err := SwarmEngine(ctx); err != nil {
		return nil, err
	}
	opts.GeolabImage = pick(opts.GeolabImage, os.Getenv("GEOLAB_IMAGE"), DefaultGeolabImage)
	opts.ToxiproxyImage = pick(opts.ToxiproxyImage, os.Getenv("TOXIPROXY_IMAGE"), DefaultToxiproxyImage)
	opts.RedisImage = pick(opts.RedisImage, os.Getenv("REDIS_IMAGE"), DefaultRedisImage)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Dir != "" {
		if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("provider swarm: work dir: %w", err)
		}
	}
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return nil, fmt.Errorf("provider swarm: %w", err)
	}
	id := make([]byte, 3)
	_, _ = rand.Read(id)
	s := &Swarm{opts: opts, cli: cli, lab: hex.EncodeToString(id), nets: map[string]*swarmNet{}, tpAddr: map[string]netip.Addr{},
		inside: map[string]string{}, byHost: map[string]*swarmNode{}, placeBy: map[string]bool{}, hostOf: map[string]string{}, log: opts.Logger.With("component", "provider", "provider", SwarmName)}
	if err := s.checkNodes(ctx); err != nil {
		_ = cli.Close()
		return nil, err
	}
	if in, err := cli.NetworkInspect(ctx, gwbridge, client.NetworkInspectOptions{}); err == nil &&
		in.Network.Options["com.docker.network.bridge.host_binding_ipv4"] != "127.0.0.1" {
		s.log.Warn("docker_gwbridge publishes ports on every interface of the node: a task can reach another region's published ports through the node's address; make the swarm with 'make deps-swarm' (docs/swarm.md)")
	}
	return s, nil
}

// checkNodes finds the region labels of the swarm's nodes and checks that
// every node that may run a task has geolab's images: the local engine's
// own, or, on a swarm of several nodes, a probe service of each image on
// every node (no registry: a node without the image cannot run its tasks).
func (s *Swarm) checkNodes(ctx context.Context) error {
	nodes, err := s.cli.NodeList(ctx, client.NodeListOptions{})
	if err != nil {
		return fmt.Errorf("provider swarm: list nodes: %w", err)
	}
	in, err := s.cli.Info(ctx, client.InfoOptions{})
	if err != nil {
		return fmt.Errorf("provider swarm: %w", err)
	}
	s.self, s.multi = in.Info.Swarm.NodeID, len(nodes.Items) > 1
	labelled := map[string][]swarm.Node{}
	for _, n := range nodes.Items {
		if r := n.Spec.Labels[placementLabel]; r != "" {
			s.placeBy[r] = true
			labelled[r] = append(labelled[r], n)
		}
	}
	// A region placed on one other node is reached at that node's address,
	// where its docker_gwbridge publishes (docs/swarm.md).
	for r, ns := range labelled {
		if len(ns) == 1 && ns[0].ID != s.self && ns[0].Status.Addr != "" {
			s.hostOf[r] = ns[0].Status.Addr
		}
	}
	images := []string{s.opts.GeolabImage, s.opts.ToxiproxyImage, s.opts.RedisImage}
	if len(nodes.Items) == 1 {
		for _, img := range images {
			if _, err := s.cli.ImageInspect(ctx, img); err != nil {
				return fmt.Errorf("provider swarm: node %s has no image %s: run 'make images' (or set GEOLAB_IMAGE, TOXIPROXY_IMAGE, REDIS_IMAGE)", nodes.Items[0].Description.Hostname, img)
			}
		}
		return nil
	}
	for _, img := range images {
		if err := s.probeImage(ctx, img, nodes.Items); err != nil {
			return err
		}
	}
	return nil
}

// probeImage runs img once on every node (a global service that exits at
// once) and fails naming the first node that could not.
func (s *Swarm) probeImage(ctx context.Context, img string, nodes []swarm.Node) error {
	name := "geolab-" + s.lab + "-probe-" + strings.NewReplacer("/", "-", ":", "-").Replace(img)
	res, err := s.cli.ServiceCreate(ctx, client.ServiceCreateOptions{Spec: swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: name, Labels: map[string]string{swarmLabel: s.lab}},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: img, Args: []string{"--help"}},
			RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionNone}},
		Mode: swarm.ServiceMode{Global: &swarm.GlobalService{}}}})
	if err != nil {
		return fmt.Errorf("provider swarm: probe image %s: %w", img, err)
	}
	defer func() { _, _ = s.cli.ServiceRemove(context.Background(), res.ID, client.ServiceRemoveOptions{}) }()
	host := map[string]string{}
	for _, n := range nodes {
		host[n.ID] = n.Description.Hostname
	}
	end := time.Now().Add(60 * time.Second)
	for time.Now().Before(end) {
		tasks, err := s.cli.TaskList(ctx, client.TaskListOptions{Filters: make(client.Filters).Add("service", res.ID)})
		if err != nil {
			return fmt.Errorf("provider swarm: probe image %s: %w", img, err)
		}
		done := map[string]bool{}
		for _, t := range tasks.Items {
			if strings.Contains(t.Status.Err, "No such image") || (t.Status.State == swarm.TaskStateRejected && strings.Contains(t.Status.Err, "image")) {
				return fmt.Errorf("provider swarm: node %s has no image %s (%s): copy it there, e.g. 'docker save %s | ssh NODE docker load' (docs/swarm.md)", host[t.NodeID], img, t.Status.Err, img)
			}
			if t.Status.State == swarm.TaskStateComplete || t.Status.State == swarm.TaskStateRunning || t.Status.State == swarm.TaskStateFailed {
				done[t.NodeID] = true
			}
		}
		if len(done) >= len(nodes) {
			return nil
		}
		time.Sleep(250 * time.Millisecond) // polling the swarm's task states
	}
	return fmt.Errorf("provider swarm: probe image %s: not every node ran it within 60s", img)
}

// Name is SwarmName.
func (s *Swarm) Name() string { return SwarmName }

// Lab is the lab's id: its services and networks are named geolab-ID-….
func (s *Swarm) Lab() string { return s.lab }

// network returns the overlay network of region, creating it on first use.
func (s *Swarm) network(ctx context.Context, region string) (*swarmNet, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n, ok := s.nets[region]; ok {
		return n, nil
	}
	n := &swarmNet{name: "geolab-" + s.lab + "-" + region}
	res, err := s.cli.NetworkCreate(ctx, n.name, client.NetworkCreateOptions{Driver: "overlay", Attachable: true,
		Labels: map[string]string{swarmLabel: s.lab}})
	if err != nil {
		return nil, fmt.Errorf("provider swarm: network %s: %w", n.name, err)
	}
	n.id = res.ID
	s.nets[region] = n
	return n, nil
}

// hostPort picks a free port of the host's loopback for a published port.
func hostPort() (int, error) {
	addr, err := freeport.Loopback()
	if err != nil {
		return 0, fmt.Errorf("provider swarm: %w", err)
	}
	_, p, _ := net.SplitHostPort(addr)
	return strconv.Atoi(p)
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// reach is where the lab reaches port published by a service of region:
// 127.0.0.1 on the node geolab runs on, or the address of the one other
// node the region is placed on.
func (s *Swarm) reach(region string, port int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h, ok := s.hostOf[region]; ok {
		return net.JoinHostPort(h, strconv.Itoa(port))
	}
	return loopback(port)
}

// StartToxiproxy creates every region's network, then the Toxiproxy
// service on all of them, with its API published on the host's loopback.
func (s *Swarm) StartToxiproxy(ctx context.Context) (Node, string, error) {
	var nets []*swarmNet
	for _, r := range s.opts.Regions {
		n, err := s.network(ctx, r)
		if err != nil {
			return nil, "", err
		}
		nets = append(nets, n)
	}
	if s.opts.Agents {
		n, err := s.createAgentsNet(ctx)
		if err != nil {
			return nil, "", err
		}
		nets = append(nets, n)
	}
	api, err := hostPort()
	if err != nil {
		return nil, "", err
	}
	ports := []swarm.PortConfig{published(dockerToxiproxyPort, api)}
	url := "http://" + loopback(api)
	// The lab reaches its API and client links on this node's loopback.
	n, err := s.run(ctx, swarmPart{name: "toxiproxy", service: "toxiproxy", image: s.opts.ToxiproxyImage, nets: nets,
		ports: ports, here: true, ready: httpReady(url + "/version")})
	if err != nil {
		return nil, "", err
	}
	// Its address on each region's network: where that region's links
	// listen; and on docker_gwbridge, which the host is on: where the client
	// links listen, dialled by the lab directly (no docker-proxy between, so
	// that a disabled link refuses a connection as with the other providers).
	t, err := n.task(ctx)
	if err != nil {
		return nil, "", err
	}
	gw, err := s.cli.NetworkInspect(ctx, gwbridge, client.NetworkInspectOptions{})
	if err != nil {
		return nil, "", fmt.Errorf("provider swarm: %s: %w", gwbridge, err)
	}
	var tpHost netip.Addr
	if t.Status.ContainerStatus != nil {
		if e, ok := gw.Network.Containers[t.Status.ContainerStatus.ContainerID]; ok && e.IPv4Address.IsValid() {
			tpHost = e.IPv4Address.Addr()
		}
	}
	if !tpHost.IsValid() {
		return nil, "", fmt.Errorf("provider swarm: Toxiproxy's task has no address on this node's %s: the lab must run on the node that runs Toxiproxy", gwbridge)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tpHost = tpHost
	for _, a := range t.NetworksAttachments {
		for r, rn := range s.nets {
			if a.Network.ID == rn.id && len(a.Addresses) > 0 {
				s.tpAddr[r] = a.Addresses[0].Addr()
			}
		}
		if s.agentsNet != nil && a.Network.ID == s.agentsNet.id && len(a.Addresses) > 0 {
			s.tpAgents = a.Addresses[0].Addr()
		}
	}
	if s.agentsNet != nil && !s.tpAgents.IsValid() {
		return nil, "", fmt.Errorf("provider swarm: Toxiproxy has no address on the agents' network %s", s.agentsNet.name)
	}
	for _, r := range s.opts.Regions {
		if _, ok := s.tpAddr[r]; !ok {
			return nil, "", fmt.Errorf("provider swarm: Toxiproxy has no address on %s's network", r)
		}
	}
	return n, url, nil
}

func published(target, host int) swarm.PortConfig {
	return swarm.PortConfig{Protocol: network.TCP, TargetPort: uint32(target), PublishedPort: uint32(host),
		PublishMode: swarm.PortConfigPublishModeHost}
}

// ProxyListen is Toxiproxy's address on the region's network, or for the
// lab's own clients ("") on docker_gwbridge (which the host is on and the
// tasks, their bridge ports isolated, are not), with a free port.
func (s *Swarm) ProxyListen(from string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.tpAddr[from]
	if from == "" {
		a, ok = s.tpHost, s.tpHost.IsValid()
	}
	if !ok {
		return ""
	}
	return netip.AddrPortFrom(a, 0).String()
}

// Inside is where Toxiproxy and the other parts dial the part the lab
// reaches at addr (a Redis.Addr or a ListenAddr): SERVICE:PORT on the
// part's region network. An address the provider did not hand out is
// returned as it is.
func (s *Swarm) Inside(addr string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if in, ok := s.inside[addr]; ok {
		return in
	}
	return addr
}

// Direct is where the host reaches the part it reaches at addr (a Redis.Addr
// or a ListenAddr) without the engine's userland proxy in between: its
// task's address on this node's docker_gwbridge, now. The proxy of a
// published port buffers a connection's data a second time, which a client
// that stops reading must not have (the slow-client fault); the address
// changes when the part restarts, so it is asked for each time. addr itself
// when the task is not on this node.
func (s *Swarm) Direct(addr string) string {
	s.mu.Lock()
	n, ok := s.byHost[addr]
	s.mu.Unlock()
	_, port, err := net.SplitHostPort(addr)
	if !ok || err != nil {
		return addr
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id := n.container(ctx)
	gw, err := s.cli.NetworkInspect(ctx, gwbridge, client.NetworkInspectOptions{})
	if err != nil || id == "" {
		return addr
	}
	if e, ok := gw.Network.Containers[id]; ok && e.IPv4Address.IsValid() {
		return net.JoinHostPort(e.IPv4Address.Addr().String(), port)
	}
	return addr
}

func (s *Swarm) serviceName(part string) string { return "geolab-" + s.lab + "-" + part }

// ListenAddr is 127.0.0.1 and a free port of the host, which the part's
// service publishes (the same port inside).
func (s *Swarm) ListenAddr(region, node string) (string, error) {
	p, err := hostPort()
	if err != nil {
		return "", err
	}
	part := region + "-" + node
	if node == "bridge" {
		part = "bridge-" + region
	}
	addr := s.reach(region, p)
	s.mu.Lock()
	s.inside[addr] = net.JoinHostPort(s.serviceName(part), strconv.Itoa(p))
	s.mu.Unlock()
	return addr, nil
}

// StartRedisCluster is refused: the swarm provider does not run Redis
// Cluster (ErrClusterNeedsProcess).
func (s *Swarm) StartRedisCluster(_ context.Context, spec RedisClusterSpec) (RedisCluster, error) {
	return nil, fmt.Errorf("provider swarm: redis of %s: %w", spec.Region, ErrClusterNeedsProcess)
}

// StartRedis runs the Redis image as a service on the region's network,
// its /data in a named volume.
func (s *Swarm) StartRedis(ctx context.Context, spec RedisSpec) (Redis, error) {
	if spec.TLS || len(spec.Users) > 0 {
		return nil, fmt.Errorf("provider swarm: redis of %s: %w", spec.Region, ErrNeedsProcess)
	}
	n, err := s.network(ctx, spec.Region)
	if err != nil {
		return nil, err
	}
	p, err := hostPort()
	if err != nil {
		return nil, err
	}
	addr := s.reach(spec.Region, p)
	svc := "redis-" + spec.Region
	s.mu.Lock()
	s.inside[addr] = net.JoinHostPort(s.serviceName(svc), strconv.Itoa(p))
	s.mu.Unlock()
	node, err := s.run(ctx, swarmPart{name: "redis " + spec.Region, service: svc, image: s.opts.RedisImage, region: spec.Region,
		args: redisArgs(p, spec.Persistent), nets: []*swarmNet{n}, ports: []swarm.PortConfig{published(p, p)},
		volume: s.serviceName(svc), host: addr, ready: redisReady(addr)})
	if err != nil {
		return nil, err
	}
	return &swarmRedis{swarmNode: node, addr: addr}, nil
}

// StartGateway runs `geolab gateway` as a service on the region's network,
// listening on every interface of its task at the port of s.Listen.
func (s *Swarm) StartGateway(ctx context.Context, spec GatewaySpec) (Node, error) {
	n, err := s.network(ctx, spec.Region)
	if err != nil {
		return nil, err
	}
	p, err := s.listenPort(spec.Listen)
	if err != nil {
		return nil, err
	}
	return s.run(ctx, swarmPart{name: "gateway " + spec.Region + "/" + spec.Node, service: spec.Region + "-" + spec.Node,
		image: s.opts.GeolabImage, region: spec.Region, args: gatewayArgs(spec, net.JoinHostPort("0.0.0.0", strconv.Itoa(p))),
		env: append(slices.Clone(s.opts.Env), spec.Env...), nets: []*swarmNet{n}, ports: []swarm.PortConfig{published(p, p)},
		host: spec.Listen, ready: httpReady("http://" + spec.Listen + "/readyz")})
}

// StartBridge stores the config as a swarm config and runs `geolab
// federation` as a service on the region's network.
func (s *Swarm) StartBridge(ctx context.Context, spec BridgeSpec) (Node, error) {
	n, err := s.network(ctx, spec.Region)
	if err != nil {
		return nil, err
	}
	p, err := s.listenPort(spec.Listen)
	if err != nil {
		return nil, err
	}
	cfgName := s.serviceName("bridge-" + spec.Region)
	res, err := s.cli.ConfigCreate(ctx, client.ConfigCreateOptions{Spec: swarm.ConfigSpec{
		Annotations: swarm.Annotations{Name: cfgName, Labels: map[string]string{swarmLabel: s.lab}}, Data: spec.Config}})
	if err != nil {
		return nil, fmt.Errorf("provider swarm: config of the bridge of %s: %w", spec.Region, err)
	}
	s.mu.Lock()
	s.configs = append(s.configs, res.ID)
	s.mu.Unlock()
	const cfg = "/etc/geolab/federation.yaml"
	return s.run(ctx, swarmPart{name: "bridge " + spec.Region, service: "bridge-" + spec.Region, image: s.opts.GeolabImage, region: spec.Region,
		args: []string{"federation", "--region", spec.Region, "--config", cfg, "--listen", net.JoinHostPort("0.0.0.0", strconv.Itoa(p)), "--log-format", "json"},
		env:  append(slices.Clone(s.opts.Env), spec.Env...), nets: []*swarmNet{n}, ports: []swarm.PortConfig{published(p, p)},
		configs: []*swarm.ConfigReference{{ConfigID: res.ID, ConfigName: cfgName,
			File: &swarm.ConfigReferenceFileTarget{Name: cfg, UID: "65534", GID: "65534", Mode: 0o444}}},
		host: spec.Listen, ready: httpReady("http://" + spec.Listen + "/readyz")})
}

// listenPort is the port of an address ListenAddr handed out.
func (s *Swarm) listenPort(listen string) (int, error) {
	s.mu.Lock()
	_, ok := s.inside[listen]
	s.mu.Unlock()
	ap, err := netip.ParseAddrPort(listen)
	if err != nil || !ok {
		return 0, fmt.Errorf("provider swarm: %q is not an address ListenAddr handed out", listen)
	}
	return int(ap.Port()), nil
}

// swarmPart is what run needs to create one service.
type swarmPart struct {
	name, service, image, region string
	args, env                    []string
	nets                         []*swarmNet
	ports                        []swarm.PortConfig
	configs                      []*swarm.ConfigReference
	volume                       string // mounted at /data when set
	here                         bool   // placed on the node geolab runs on
	host                         string // where the lab reaches it (its published port), if anywhere
	ready                        func() error
}

// spec is the service's spec: one replica, restart condition none, dnsrr,
// placed on the region's labelled nodes when there are any.
func (s *Swarm) spec(p swarmPart, volume string) swarm.ServiceSpec {
	labels := map[string]string{swarmLabel: s.lab, "io.geolab.part": p.name}
	cs := &swarm.ContainerSpec{Image: p.image, Args: p.args, Env: p.env, Labels: labels, Configs: p.configs}
	if volume != "" {
		cs.Mounts = []mount.Mount{{Type: mount.TypeVolume, Source: volume, Target: "/data",
			VolumeOptions: &mount.VolumeOptions{Labels: map[string]string{swarmLabel: s.lab}}}}
	}
	var nets []swarm.NetworkAttachmentConfig
	for _, n := range p.nets {
		nets = append(nets, swarm.NetworkAttachmentConfig{Target: n.id, Aliases: []string{p.service}})
	}
	one := uint64(1)
	spec := swarm.ServiceSpec{Annotations: swarm.Annotations{Name: s.serviceName(p.service), Labels: labels},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: cs, Networks: nets,
			RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionNone}},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &one}},
		EndpointSpec: &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR, Ports: p.ports}}
	s.mu.Lock()
	placed, multi := s.placeBy[p.region], s.multi
	s.mu.Unlock()
	switch {
	case p.here && multi:
		spec.TaskTemplate.Placement = &swarm.Placement{Constraints: []string{"node.id==" + s.self}}
	case placed:
		spec.TaskTemplate.Placement = &swarm.Placement{Constraints: []string{"node.labels." + placementLabel + "==" + p.region}}
	}
	return spec
}

// run creates the service for p and waits until its task is ready.
func (s *Swarm) run(ctx context.Context, p swarmPart) (*swarmNode, error) {
	n := &swarmNode{s: s, name: p.name, part: p, volume: p.volume}
	if p.volume != "" {
		s.mu.Lock()
		s.volumes = append(s.volumes, p.volume)
		s.mu.Unlock()
	}
	res, err := s.cli.ServiceCreate(ctx, client.ServiceCreateOptions{Spec: s.spec(p, p.volume)})
	if err != nil {
		return nil, fmt.Errorf("provider swarm: create service %s (%s): %w", s.serviceName(p.service), p.image, err)
	}
	n.id = res.ID
	s.mu.Lock()
	s.nodes = append(s.nodes, n)
	if p.host != "" {
		s.byHost[p.host] = n
	}
	s.mu.Unlock()
	if err := n.awaitReady(ctx, ""); err != nil {
		return nil, err
	}
	return n, nil
}

// isolateGWBridge turns on port isolation on every port of this host's
// docker_gwbridge: tasks then reach the host (their published ports) but
// not one another through it, as the bridge's enable_icc=false means and,
// without iptables, nothing else enforces.
func (s *Swarm) isolateGWBridge() {
	ports, err := filepath.Glob(filepath.Join("/sys/class/net", gwbridge, "brif", "*", "isolated"))
	if err != nil || len(ports) == 0 {
		s.log.Info("docker_gwbridge not on this host: isolation is the engine's")
		return
	}
	for _, f := range ports {
		if err := os.WriteFile(f, []byte("1"), 0o644); err != nil {
			s.log.Warn("cannot isolate a port of docker_gwbridge: tasks may reach one another through it", "port", f, "err", err)
		}
	}
}

// Close writes every task's log under Dir, removes every service, waits
// until their containers are gone, then removes the networks, volumes and
// configs, by id or name.
func (s *Swarm) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s.mu.Lock()
	nodes, nets, volumes, configs := s.nodes, s.nets, s.volumes, s.configs
	s.nodes, s.nets, s.volumes, s.configs = nil, map[string]*swarmNet{}, nil, nil
	agentSvcs, agentsNet := s.agentSvcs, s.agentsNet
	s.agentSvcs, s.agentsNet = nil, nil
	s.mu.Unlock()
	if agentsNet != nil {
		nets = maps.Clone(nets)
		nets["\x00agents"] = agentsNet // no region's name
	}
	var errs []error
	for _, id := range agentSvcs {
		if _, err := s.cli.ServiceRemove(ctx, id, client.ServiceRemoveOptions{}); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("provider swarm: remove the agents' service %s: %w", id, err))
		}
	}
	for i := len(nodes) - 1; i >= 0; i-- {
		n := nodes[i]
		n.saveLog(ctx)
		if _, err := s.cli.ServiceRemove(ctx, n.id, client.ServiceRemoveOptions{}); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("provider swarm: remove service %s: %w", n.name, err))
		}
	}
	// The engine removes a removed service's containers in the background:
	// the networks and volumes are in use until they are gone.
	f := make(client.Filters).Add("label", swarmLabel+"="+s.lab)
	for end := time.Now().Add(90 * time.Second); time.Now().Before(end); {
		cs, err := s.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
		if err != nil || len(cs.Items) == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond) // polling the engine's cleanup
	}
	for _, n := range nets {
		if err := s.removeNetwork(ctx, n); err != nil {
			errs = append(errs, err)
		}
	}
	for _, v := range volumes {
		if _, err := s.cli.VolumeRemove(ctx, v, client.VolumeRemoveOptions{Force: true}); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("provider swarm: remove volume %s: %w", v, err))
		}
	}
	for _, c := range configs {
		if _, err := s.cli.ConfigRemove(ctx, c, client.ConfigRemoveOptions{}); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("provider swarm: remove config %s: %w", c, err))
		}
	}
	errs = append(errs, s.cli.Close())
	return errors.Join(errs...)
}

// removeNetwork removes an overlay network, again while the engine still
// holds an endpoint of a removed task on it.
func (s *Swarm) removeNetwork(ctx context.Context, n *swarmNet) error {
	var err error
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); {
		if _, err = s.cli.NetworkRemove(ctx, n.id, client.NetworkRemoveOptions{}); err == nil || isNotFound(err) {
			return nil
		}
		time.Sleep(200 * time.Millisecond) // the engine releases endpoints in the background
	}
	return fmt.Errorf("provider swarm: remove network %s: %w", n.name, err)
}

// swarmNode is one service of the lab; its lifecycle calls act on its
// task's container through the engine.
type swarmNode struct {
	s    *Swarm
	name string
	id   string // the service's
	part swarmPart

	mu     sync.Mutex
	cid    string // the container of its newest ready task ("" before)
	volume string // the Redis volume its next task mounts
	fresh  bool   // Wipe asked for a new volume at the next Restart
}

// task is the service's newest task.
func (n *swarmNode) task(ctx context.Context) (swarm.Task, error) {
	tasks, err := n.s.cli.TaskList(ctx, client.TaskListOptions{Filters: make(client.Filters).Add("service", n.id)})
	if err != nil {
		return swarm.Task{}, fmt.Errorf("provider swarm: tasks of %s: %w", n.name, err)
	}
	if len(tasks.Items) == 0 {
		return swarm.Task{}, fmt.Errorf("provider swarm: %s has no task", n.name)
	}
	sort.Slice(tasks.Items, func(i, j int) bool { return tasks.Items[i].CreatedAt.After(tasks.Items[j].CreatedAt) })
	return tasks.Items[0], nil
}

// container is the id of the newest task's container ("" before it has
// one): the one its last readiness check saw, without asking the swarm
// again (a fault's kill polls the container's state many times).
func (n *swarmNode) container(ctx context.Context) string {
	n.mu.Lock()
	cid := n.cid
	n.mu.Unlock()
	if cid != "" {
		return cid
	}
	t, err := n.task(ctx)
	if err != nil || t.Status.ContainerStatus == nil {
		return ""
	}
	return t.Status.ContainerStatus.ContainerID
}

// awaitReady waits until the service's newest task, other than the task
// before (a Restart's old one), runs and passes its readiness check; a task
// that failed ends the wait at once with the engine's reason.
func (n *swarmNode) awaitReady(ctx context.Context, before string) error {
	const bound = 90 * time.Second
	end := time.Now().Add(bound)
	for {
		err := n.ready(ctx, before)
		var failed taskFailed
		if err == nil {
			return nil
		}
		if errors.As(err, &failed) {
			return fmt.Errorf("provider swarm: %s (%s): %w", n.name, n.part.image, err)
		}
		if time.Now().After(end) {
			return fmt.Errorf("provider swarm: %s not ready after %s: %w", n.name, bound, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("provider swarm: %s: %w", n.name, ctx.Err())
		case <-time.After(50 * time.Millisecond): // readiness polling interval
		}
	}
}

func (n *swarmNode) ready(ctx context.Context, before string) error {
	t, err := n.task(ctx)
	if err != nil {
		return err
	}
	if t.ID == before {
		return errors.New("no new task yet")
	}
	switch t.Status.State {
	case swarm.TaskStateFailed, swarm.TaskStateRejected, swarm.TaskStateComplete, swarm.TaskStateShutdown, swarm.TaskStateOrphaned:
		return taskFailed(fmt.Sprintf("task %s: %s %s", t.Status.State, t.Status.Message, t.Status.Err))
	case swarm.TaskStateRunning:
	default:
		return fmt.Errorf("task %s", t.Status.State)
	}
	n.s.isolateGWBridge()
	if t.Status.ContainerStatus != nil {
		n.mu.Lock()
		n.cid = t.Status.ContainerStatus.ContainerID
		n.mu.Unlock()
	}
	if n.part.ready == nil {
		return nil
	}
	return n.part.ready()
}

// taskFailed is a readiness error that waiting will not cure.
type taskFailed string

func (f taskFailed) Error() string { return string(f) }

func (n *swarmNode) Name() string { return n.name }

// state is the task's container's state on the local engine.
func (n *swarmNode) state() (pid int, running, paused bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id := n.container(ctx)
	if id == "" {
		return 0, false, false
	}
	in, err := n.s.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if isNotFound(err) {
		// A task on another node: its state as the swarm reports it (the
		// pid is that node's).
		t, err := n.task(ctx)
		if err != nil || t.Status.State != swarm.TaskStateRunning || t.Status.ContainerStatus == nil {
			return 0, false, false
		}
		return t.Status.ContainerStatus.PID, true, false
	}
	if err != nil || in.Container.State == nil {
		return 0, false, false
	}
	st := in.Container.State
	return st.Pid, st.Running, st.Paused
}

// Pid is the host pid of the task's process (0 when stopped).
func (n *swarmNode) Pid() int { p, _, _ := n.state(); return p }

// Running reports whether the task's container runs (paused or not).
func (n *swarmNode) Running() bool { _, r, _ := n.state(); return r }

// Paused reports whether the task's container is frozen.
func (n *swarmNode) Paused() bool { _, _, p := n.state(); return p }

// local is the task's container id, or an error saying that the task runs
// on another node (process faults act through the local engine).
func (n *swarmNode) local(ctx context.Context) (string, error) {
	id := n.container(ctx)
	if id == "" {
		return "", fmt.Errorf("provider swarm: %s has no container", n.name)
	}
	if _, err := n.s.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{}); err != nil {
		return "", fmt.Errorf("provider swarm: %s: its task's container %.12s is not on this node's engine: process faults act on tasks of the node geolab runs on (docs/swarm.md): %w", n.name, id, err)
	}
	return id, nil
}

// Kill is docker kill (SIGKILL) of the task's container, unpausing it
// first; it returns once the container has stopped. Nothing restarts the
// task (restart condition none).
func (n *swarmNode) Kill() error {
	_, running, paused := n.state()
	if !running {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id, err := n.local(ctx)
	if err != nil {
		return err
	}
	if paused {
		_, _ = n.s.cli.ContainerUnpause(ctx, id, client.ContainerUnpauseOptions{})
	}
	if _, err := n.s.cli.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: "KILL"}); err != nil && n.Running() {
		return fmt.Errorf("provider swarm: kill %s: %w", n.name, err)
	}
	return n.await(ctx, "stopped", func() bool { return !n.Running() })
}

// Pause is docker pause of the task's container (the cgroup freezer).
func (n *swarmNode) Pause() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id, err := n.local(ctx)
	if err != nil {
		return err
	}
	if _, err := n.s.cli.ContainerPause(ctx, id, client.ContainerPauseOptions{}); err != nil {
		return fmt.Errorf("provider swarm: pause %s: %w", n.name, err)
	}
	return n.await(ctx, "paused", n.Paused)
}

// Resume is docker unpause of the task's container.
func (n *swarmNode) Resume() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id, err := n.local(ctx)
	if err != nil {
		return err
	}
	if _, err := n.s.cli.ContainerUnpause(ctx, id, client.ContainerUnpauseOptions{}); err != nil {
		return fmt.Errorf("provider swarm: unpause %s: %w", n.name, err)
	}
	return nil
}

// Terminate is docker stop of the task's container: SIGTERM, then SIGKILL
// after grace.
func (n *swarmNode) Terminate(grace time.Duration) error {
	_, running, paused := n.state()
	if !running {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), grace+30*time.Second)
	defer cancel()
	id, err := n.local(ctx)
	if err != nil {
		return err
	}
	if paused {
		_, _ = n.s.cli.ContainerUnpause(ctx, id, client.ContainerUnpauseOptions{})
	}
	secs := int((grace + time.Second - 1) / time.Second)
	if _, err := n.s.cli.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &secs}); err != nil {
		return fmt.Errorf("provider swarm: stop %s: %w", n.name, err)
	}
	return n.await(ctx, "stopped", func() bool { return !n.Running() })
}

// Restart starts a new task of the stopped service ('docker service update
// --force'; after Wipe, with a new volume) and waits until it is ready at
// the same name and published port.
func (n *swarmNode) Restart(ctx context.Context) error {
	if n.Running() {
		return fmt.Errorf("provider swarm: restart %s: still running", n.name)
	}
	n.mu.Lock()
	if n.fresh {
		n.volume = fmt.Sprintf("%s-%d", n.part.volume, time.Now().UnixNano())
		n.s.mu.Lock()
		n.s.volumes = append(n.s.volumes, n.volume)
		n.s.mu.Unlock()
	}
	n.fresh = false
	volume := n.volume
	n.mu.Unlock()
	old, err := n.task(ctx)
	if err != nil {
		return fmt.Errorf("provider swarm: restart %s: %w", n.name, err)
	}
	in, err := n.s.cli.ServiceInspect(ctx, n.id, client.ServiceInspectOptions{})
	if err != nil {
		return fmt.Errorf("provider swarm: restart %s: %w", n.name, err)
	}
	spec := n.s.spec(n.part, volume)
	spec.TaskTemplate.ForceUpdate = in.Service.Spec.TaskTemplate.ForceUpdate + 1
	if _, err := n.s.cli.ServiceUpdate(ctx, n.id, client.ServiceUpdateOptions{Version: in.Service.Version, Spec: spec}); err != nil {
		return fmt.Errorf("provider swarm: restart %s: %w", n.name, err)
	}
	return n.awaitReady(ctx, old.ID)
}

func (n *swarmNode) await(ctx context.Context, what string, cond func() bool) error {
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("provider swarm: %s not %s: %w", n.name, what, ctx.Err())
		case <-time.After(25 * time.Millisecond): // polling the engine
		}
	}
	return nil
}

// saveLog writes the logs of the service's containers on this node to
// Dir/NAME.log, oldest task first.
func (n *swarmNode) saveLog(ctx context.Context) {
	if n.s.opts.Dir == "" {
		return
	}
	tasks, err := n.s.cli.TaskList(ctx, client.TaskListOptions{Filters: make(client.Filters).Add("service", n.id)})
	if err != nil {
		return
	}
	sort.Slice(tasks.Items, func(i, j int) bool { return tasks.Items[i].CreatedAt.Before(tasks.Items[j].CreatedAt) })
	name := strings.NewReplacer(" ", "-", "/", "-").Replace(n.name) + ".log"
	f, err := os.Create(filepath.Join(n.s.opts.Dir, name))
	if err != nil {
		return
	}
	defer f.Close()
	for _, t := range tasks.Items {
		if t.Status.ContainerStatus == nil || t.Status.ContainerStatus.ContainerID == "" {
			continue
		}
		rc, err := n.s.cli.ContainerLogs(ctx, t.Status.ContainerStatus.ContainerID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
		if err != nil {
			continue
		}
		_, _ = stdcopy.StdCopy(f, f, rc)
		rc.Close()
	}
}

// swarmRedis is a region's Redis service.
type swarmRedis struct {
	*swarmNode
	addr string
}

// Addr is where the lab reaches it: its published port on 127.0.0.1
// (Toxiproxy reaches it at Swarm.Inside(Addr)).
func (r *swarmRedis) Addr() string { return r.addr }

// CAFile is "": the swarm provider runs no TLS Redis (ErrNeedsProcess).
func (r *swarmRedis) CAFile() string { return "" }

// Wipe makes the next Restart mount a new, empty volume at /data, as after
// a Redis without persistence restarts.
func (r *swarmRedis) Wipe() error {
	if r.Running() {
		return fmt.Errorf("provider swarm: wipe %s: still running", r.name)
	}
	r.mu.Lock()
	r.fresh = true
	r.mu.Unlock()
	return nil
}
