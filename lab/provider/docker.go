package provider

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
)

// Docker runs every part as a container, through testcontainers-go, on
// networks that make the regions real: one Docker network per region and a
// WAN network, and the Toxiproxy container the only one on all of them.
//
//	lab (host) ──wan──▶ Toxiproxy ──region R──▶ Redis R, gateways R, bridge R
//	gateway R ──region R──▶ Toxiproxy (lan.R.gw-N) ──▶ Redis R
//	bridge X ──region X──▶ Toxiproxy (wan.X.Y) ──region Y──▶ Redis Y
//
// A container of region X has no route into region Y: the engine's own
// isolation between networks where it runs with iptables, and, where it
// does not (dockerd --iptables=false), the provider turns IP forwarding off
// on every bridge of the lab, so that the host routes nothing between them.
// Every part has a fixed address on its network, which the lab dials
// directly from the host, and a restart (docker start) keeps it.
//
// Process faults act on the container: kill -9 is docker kill, SIGSTOP is
// docker pause (the cgroup freezer), SIGTERM is docker stop with a grace,
// and a restart is docker start. Wipe makes the next restart a new
// container (an empty /data). Ryuk, testcontainers' reaper, needs an image
// from a registry, so it is off: Close removes every container and network
// by id, and 'make chaos-docker' removes what a killed lab left (everything
// labelled io.geolab.lab).
type Docker struct {
	opts DockerOptions
	cli  *testcontainers.DockerClient
	lab  string // the lab's id: names are geolab-ID-…
	log  *slog.Logger

	mu    sync.Mutex
	nets  map[string]*dockerNet // by region; "" is the WAN
	tp    *dockerNode
	nodes []*dockerNode
}

// DockerOptions configure NewDocker. Images default to $GEOLAB_IMAGE,
// $TOXIPROXY_IMAGE and $REDIS_IMAGE, else to the ones 'make images' builds.
type DockerOptions struct {
	// Dir receives every container's log (NAME.log) when the lab closes.
	Dir string
	// Env is added to every geolab container's environment (the JWT secret).
	Env []string
	// GeolabImage runs gateways and bridges: it must have geolab as its
	// entrypoint.
	GeolabImage string
	// ToxiproxyImage must serve the Toxiproxy v2 API on port 8474 of every
	// interface when started with its default command, as the official
	// ghcr.io/shopify/toxiproxy images do.
	ToxiproxyImage string
	// RedisImage must run 'redis-server ARGS…' given as its command, as the
	// official redis images do.
	RedisImage string
	Logger     *slog.Logger
}

// The images 'make images' builds (docker/build-images.sh).
const (
	DefaultGeolabImage    = "geolab/geolab:dev"
	DefaultToxiproxyImage = "geolab/toxiproxy:dev"
	DefaultRedisImage     = "geolab/redis:dev"
)

// Ports inside the containers.
const (
	dockerToxiproxyPort = 8474
	dockerRedisPort     = 6379
	dockerGatewayPort   = 8080
	dockerBridgePort    = 8081
)

// dockerLabel marks every container and network of a lab with its id.
const dockerLabel = "io.geolab.lab"

// ErrNoEngine is wrapped by the error of NewDocker and DockerEngine when no
// Docker engine answers.
var ErrNoEngine = errors.New("no Docker engine answers")

// DockerEngine returns nil when a Docker engine answers within a few
// seconds, else one line that says how to start one.
func DockerEngine(ctx context.Context) error {
	return engine(ctx, DockerName, "'make deps-docker' (as root: docker.io, dockerd --iptables=false --storage-driver=vfs)")
}

// engine pings the engine; its error names the provider and how to start
// one (start).
func engine(ctx context.Context, name, start string) error {
	host := os.Getenv("DOCKER_HOST")
	if host == "" {
		host = "unix:///var/run/docker.sock"
	}
	cli, err := client.New(client.FromEnv)
	if err == nil {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err = cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
		_ = cli.Close()
	}
	if err != nil {
		return fmt.Errorf("provider %s: %w at %s (%v): start one with %s or use the process provider", name, ErrNoEngine, host, firstLine(err), start)
	}
	return nil
}

// firstLine is the gist of an engine error: the system call's complaint
// when there is one, else the error's first line.
func firstLine(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	s, _, _ := strings.Cut(err.Error(), "\n")
	return errors.New(s)
}

// NewDocker checks that an engine answers and that geolab's own images are
// built, and returns a docker provider.
func NewDocker(ctx context.Context, opts DockerOptions) (*Docker, error) {
	if err := DockerEngine(ctx); err != nil {
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
			return nil, fmt.Errorf("provider docker: work dir: %w", err)
		}
	}
	// Ryuk (the reaper) is an image from Docker Hub: off unless asked for.
	if os.Getenv("TESTCONTAINERS_RYUK_DISABLED") == "" {
		_ = os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	}
	tcLogOnce.Do(func() { tclog.SetDefault(tcLogger{opts.Logger}) })
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return nil, fmt.Errorf("provider docker: %w: %w", ErrNoEngine, firstLine(err))
	}
	for _, img := range []string{opts.GeolabImage, opts.ToxiproxyImage, opts.RedisImage} {
		if !strings.HasPrefix(img, "geolab/") {
			continue // an official image: testcontainers pulls it
		}
		if _, err := cli.ImageInspect(ctx, img); err != nil {
			_ = cli.Close()
			return nil, fmt.Errorf("provider docker: image %s is not built: run 'make images' (or set GEOLAB_IMAGE, TOXIPROXY_IMAGE, REDIS_IMAGE)", img)
		}
	}
	id := make([]byte, 3)
	_, _ = rand.Read(id)
	d := &Docker{opts: opts, cli: cli, lab: hex.EncodeToString(id), nets: map[string]*dockerNet{},
		log: opts.Logger.With("component", "provider", "provider", DockerName)}
	return d, nil
}

func pick(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// Name is DockerName.
func (d *Docker) Name() string { return DockerName }

// Lab is the lab's id: its containers and networks are named geolab-ID-…
// and labelled io.geolab.lab=ID.
func (d *Docker) Lab() string { return d.lab }

// dockerNet is one network of the lab, with a fixed subnet so that every
// part keeps its address across restarts.
type dockerNet struct {
	name, id, bridge string
	subnet           netip.Prefix
	next             int                   // next host number for a gateway
	addrs            map[string]netip.Addr // by part: toxiproxy, redis, bridge, gw-N
}

// host numbers on a network: .1 is the engine's gateway (the host).
const (
	hostToxiproxy = 2
	hostRedis     = 3
	hostBridge    = 4
	hostGateways  = 10
)

func (n *dockerNet) addr(part string) netip.Addr {
	if a, ok := n.addrs[part]; ok {
		return a
	}
	var h int
	switch part {
	case "toxiproxy":
		h = hostToxiproxy
	case "redis":
		h = hostRedis
	case "bridge":
		h = hostBridge
	default:
		h = hostGateways + n.next
		n.next++
	}
	a := n.subnet.Addr().As4()
	a[2] += byte(h / 256)
	a[3] += byte(h % 256)
	n.addrs[part] = netip.AddrFrom4(a)
	return n.addrs[part]
}

// network returns the network of region ("" for the WAN), creating it on
// first use and attaching the Toxiproxy container to it.
func (d *Docker) network(ctx context.Context, region string) (*dockerNet, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if n, ok := d.nets[region]; ok {
		return n, nil
	}
	suffix := region
	if region == "" {
		suffix = "wan"
	}
	n := &dockerNet{name: "geolab-" + d.lab + "-" + suffix, addrs: map[string]netip.Addr{},
		bridge: fmt.Sprintf("gl%s-%d", d.lab, len(d.nets))}
	var err error
	for range 3 { // another engine user may take the subnet between probe and create
		if err = d.createNetwork(ctx, n); err == nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("provider docker: network %s: %w", n.name, err)
	}
	d.nets[region] = n
	d.isolate(n)
	if d.tp != nil && region != "" {
		if err := d.connectToxiproxy(ctx, n); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// createNetwork lets the engine choose a free subnet (on a probe network),
// then creates the network with that subnet pinned: only a pinned subnet
// allows fixed addresses.
func (d *Docker) createNetwork(ctx context.Context, n *dockerNet) error {
	labels := map[string]string{dockerLabel: d.lab}
	probe, err := d.cli.NetworkCreate(ctx, n.name+"-probe", client.NetworkCreateOptions{Driver: "bridge", Labels: labels})
	if err != nil {
		return err
	}
	in, err := d.cli.NetworkInspect(ctx, probe.ID, client.NetworkInspectOptions{})
	_, _ = d.cli.NetworkRemove(ctx, probe.ID, client.NetworkRemoveOptions{})
	if err != nil {
		return err
	}
	if len(in.Network.IPAM.Config) == 0 || !in.Network.IPAM.Config[0].Subnet.Addr().Is4() {
		return fmt.Errorf("the engine gave the probe network no IPv4 subnet")
	}
	cfg := in.Network.IPAM.Config[0]
	n.subnet = cfg.Subnet.Masked()
	gw := cfg.Gateway
	if !gw.IsValid() {
		gw = n.subnet.Addr().Next()
	}
	res, err := d.cli.NetworkCreate(ctx, n.name, client.NetworkCreateOptions{
		Driver: "bridge", Labels: labels,
		IPAM:    &network.IPAM{Config: []network.IPAMConfig{{Subnet: n.subnet, Gateway: gw}}},
		Options: map[string]string{"com.docker.network.bridge.name": n.bridge},
	})
	if err != nil {
		return err
	}
	n.id = res.ID
	return nil
}

// isolate turns IP forwarding off on the network's bridge when the bridge
// is on this host: the host then routes nothing from it to another network,
// whatever the engine's iptables do. The host itself still reaches every
// container (that is delivery, not forwarding).
func (d *Docker) isolate(n *dockerNet) {
	path := filepath.Join("/proc/sys/net/ipv4/conf", n.bridge, "forwarding")
	if _, err := os.Stat(path); err != nil {
		d.log.Info("bridge not on this host: isolation is the engine's", "network", n.name)
		return
	}
	if err := os.WriteFile(path, []byte("0"), 0o644); err != nil {
		d.log.Warn("cannot turn forwarding off: regions are isolated only if the engine runs with iptables",
			"network", n.name, "bridge", n.bridge, "err", err)
	}
}

func (d *Docker) connectToxiproxy(ctx context.Context, n *dockerNet) error {
	_, err := d.cli.NetworkConnect(ctx, n.id, client.NetworkConnectOptions{Container: d.tp.id(),
		EndpointConfig: &network.EndpointSettings{IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: n.addr("toxiproxy")},
			Aliases: []string{"toxiproxy"}}})
	if err != nil {
		return fmt.Errorf("provider docker: attach Toxiproxy to %s: %w", n.name, err)
	}
	return nil
}

// ProxyListen is the Toxiproxy container's address on the network of the
// parts that dial the link (the WAN for the lab's own clients), with a
// free port.
func (d *Docker) ProxyListen(from string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	n, ok := d.nets[from]
	if !ok {
		return ""
	}
	return netip.AddrPortFrom(n.addr("toxiproxy"), 0).String()
}

// ListenAddr is the part's fixed address on its region's network.
func (d *Docker) ListenAddr(region, node string) (string, error) {
	n, err := d.network(context.Background(), region)
	if err != nil {
		return "", err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	port := dockerGatewayPort
	if node == "bridge" {
		port = dockerBridgePort
	}
	return netip.AddrPortFrom(n.addr(node), uint16(port)).String(), nil
}

// StartToxiproxy runs the Toxiproxy image on the WAN network and attaches
// it to every region's network.
func (d *Docker) StartToxiproxy(ctx context.Context) (Node, string, error) {
	wan, err := d.network(ctx, "")
	if err != nil {
		return nil, "", err
	}
	d.mu.Lock()
	ip := wan.addr("toxiproxy")
	d.mu.Unlock()
	api := "http://" + netip.AddrPortFrom(ip, dockerToxiproxyPort).String()
	n, err := d.run(ctx, dockerPart{name: "toxiproxy", container: "toxiproxy", image: d.opts.ToxiproxyImage,
		net: wan, ip: ip, aliases: []string{"toxiproxy"}, ready: httpReady(api + "/version")})
	if err != nil {
		return nil, "", err
	}
	d.mu.Lock()
	d.tp = n
	var regions []*dockerNet
	for r, rn := range d.nets {
		if r != "" {
			regions = append(regions, rn)
		}
	}
	d.mu.Unlock()
	for _, rn := range regions {
		if err := d.connectToxiproxy(ctx, rn); err != nil {
			return nil, "", err
		}
	}
	return n, api, nil
}

// StartRedisCluster is refused: the docker provider does not run Redis
// Cluster yet (ErrClusterNeedsProcess).
func (d *Docker) StartRedisCluster(_ context.Context, s RedisClusterSpec) (RedisCluster, error) {
	return nil, fmt.Errorf("provider docker: redis of %s: %w", s.Region, ErrClusterNeedsProcess)
}

// StartRedis runs the Redis image on the region's network (append-only
// file on when persistent, as the process provider does).
func (d *Docker) StartRedis(ctx context.Context, s RedisSpec) (Redis, error) {
	if s.TLS || len(s.Users) > 0 {
		return nil, fmt.Errorf("provider docker: redis of %s: %w", s.Region, ErrNeedsProcess)
	}
	n, err := d.network(ctx, s.Region)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	ip := n.addr("redis")
	d.mu.Unlock()
	addr := netip.AddrPortFrom(ip, dockerRedisPort).String()
	node, err := d.run(ctx, dockerPart{name: "redis " + s.Region, container: "redis-" + s.Region, image: d.opts.RedisImage,
		cmd: redisArgs(dockerRedisPort, s.Persistent), net: n, ip: ip, aliases: []string{"redis"}, ready: redisReady(addr)})
	if err != nil {
		return nil, err
	}
	return &dockerRedis{dockerNode: node, addr: addr}, nil
}

// StartGateway runs `geolab gateway` on the region's network.
func (d *Docker) StartGateway(ctx context.Context, s GatewaySpec) (Node, error) {
	n, ip, err := d.placed(ctx, s.Region, s.Listen)
	if err != nil {
		return nil, err
	}
	return d.run(ctx, dockerPart{name: "gateway " + s.Region + "/" + s.Node, container: s.Region + "-" + s.Node,
		image: d.opts.GeolabImage, cmd: gatewayArgs(s, s.Listen), env: append(slices.Clone(d.opts.Env), s.Env...), net: n, ip: ip, aliases: []string{s.Node},
		ready: httpReady("http://" + s.Listen + "/readyz")})
}

// StartBridge copies the config into the container and runs `geolab
// federation` on the region's network.
func (d *Docker) StartBridge(ctx context.Context, s BridgeSpec) (Node, error) {
	n, ip, err := d.placed(ctx, s.Region, s.Listen)
	if err != nil {
		return nil, err
	}
	const cfg = "/etc/geolab/federation.yaml"
	return d.run(ctx, dockerPart{name: "bridge " + s.Region, container: "bridge-" + s.Region, image: d.opts.GeolabImage,
		cmd: []string{"federation", "--region", s.Region, "--config", cfg, "--listen", s.Listen, "--log-format", "json"},
		env: append(slices.Clone(d.opts.Env), s.Env...), net: n, ip: ip, aliases: []string{"bridge"},
		files: []testcontainers.ContainerFile{{Reader: bytes.NewReader(s.Config), ContainerFilePath: cfg, FileMode: 0o644}},
		ready: httpReady("http://" + s.Listen + "/readyz")})
}

// redisArgs is the command of a Redis container or task listening on port
// of every interface, its files in /data, with an append-only file when
// persistent (as the process provider runs it).
func redisArgs(port int, persistent bool) []string {
	cmd := []string{"redis-server", "--port", fmt.Sprint(port), "--bind", "0.0.0.0", "--protected-mode", "no",
		"--dir", "/data", "--save", ""}
	if persistent {
		return append(cmd, "--appendonly", "yes", "--appendfsync", "always")
	}
	return append(cmd, "--appendonly", "no")
}

// gatewayArgs is the command of a gateway container or task of s, serving
// on listen.
func gatewayArgs(s GatewaySpec, listen string) []string {
	cmd := []string{"gateway", "--region", s.Region, "--node", s.Node, "--listen", listen, "--redis", s.Redis, "--log-format", "json"}
	for _, f := range s.Federate {
		cmd = append(cmd, "--federate", f)
	}
	return append(cmd, s.Args...)
}

// placed returns the region's network and the address listen (from
// ListenAddr) names on it.
func (d *Docker) placed(ctx context.Context, region, listen string) (*dockerNet, netip.Addr, error) {
	n, err := d.network(ctx, region)
	if err != nil {
		return nil, netip.Addr{}, err
	}
	ap, err := netip.ParseAddrPort(listen)
	if err != nil || !n.subnet.Contains(ap.Addr()) {
		return nil, netip.Addr{}, fmt.Errorf("provider docker: %q is not an address on %s (want one from ListenAddr)", listen, n.name)
	}
	return n, ap.Addr(), nil
}

// dockerPart is what run needs to create one container.
type dockerPart struct {
	name, container, image string
	cmd, env, aliases      []string
	files                  []testcontainers.ContainerFile
	net                    *dockerNet
	ip                     netip.Addr
	ready                  func() error
}

// run creates and starts a container for p and waits until it is ready.
func (d *Docker) run(ctx context.Context, p dockerPart) (*dockerNode, error) {
	env := map[string]string{}
	for _, kv := range p.env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	netName := p.net.name
	req := testcontainers.GenericContainerRequest{Started: true, Logger: tcLogger{d.log},
		ContainerRequest: testcontainers.ContainerRequest{
			Name: "geolab-" + d.lab + "-" + p.container, Image: p.image, Cmd: p.cmd, Env: env, Files: p.files,
			Labels:   map[string]string{dockerLabel: d.lab, "io.geolab.part": p.name},
			Networks: []string{netName}, NetworkAliases: map[string][]string{netName: p.aliases},
			EndpointSettingsModifier: func(m map[string]*network.EndpointSettings) {
				if e := m[netName]; e != nil {
					e.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: p.ip}
				}
			},
		}}
	n := &dockerNode{d: d, name: p.name, req: req, ready: p.ready}
	if err := n.create(ctx); err != nil {
		if n.c != nil {
			d.keep(n) // Close removes it and keeps its log
		}
		return nil, err
	}
	d.keep(n)
	return n, nil
}

func (d *Docker) keep(n *dockerNode) {
	d.mu.Lock()
	d.nodes = append(d.nodes, n)
	d.mu.Unlock()
}

// Close writes every container's log under Dir, removes every container
// (bridges and gateways first, Toxiproxy last) and every network, by id.
func (d *Docker) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d.mu.Lock()
	nodes, nets := d.nodes, d.nets
	d.nodes, d.nets = nil, map[string]*dockerNet{}
	d.mu.Unlock()
	var errs []error
	for i := len(nodes) - 1; i >= 0; i-- {
		n := nodes[i]
		n.saveLog(ctx)
		if id := n.id(); id != "" {
			if _, err := d.cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !isNotFound(err) {
				errs = append(errs, fmt.Errorf("provider docker: remove %s: %w", n.name, err))
			}
		}
	}
	for _, n := range nets {
		if _, err := d.cli.NetworkRemove(ctx, n.id, client.NetworkRemoveOptions{}); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("provider docker: remove network %s: %w", n.name, err))
		}
	}
	errs = append(errs, d.cli.Close())
	return errors.Join(errs...)
}

func isNotFound(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "No such") || strings.Contains(err.Error(), "not found"))
}

// dockerNode is one container of the lab; its lifecycle calls act on the
// container through the engine.
type dockerNode struct {
	d     *Docker
	name  string
	req   testcontainers.GenericContainerRequest
	ready func() error

	mu    sync.Mutex
	c     testcontainers.Container
	fresh bool // Wipe asked for a new container at the next Restart
}

// create makes a new container from the request and waits until it is
// ready.
func (n *dockerNode) create(ctx context.Context) error {
	c, err := testcontainers.GenericContainer(ctx, n.req)
	n.mu.Lock()
	if c != nil {
		n.c = c
	}
	n.mu.Unlock()
	if err != nil {
		return fmt.Errorf("provider docker: start %s (%s): %w", n.name, n.req.Image, err)
	}
	return n.awaitReady(ctx)
}

func (n *dockerNode) awaitReady(ctx context.Context) error {
	if n.ready == nil {
		return nil
	}
	return Ready(ctx, 60*time.Second, "provider docker: "+n.name, n.ready)
}

func (n *dockerNode) id() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.c == nil {
		return ""
	}
	return n.c.GetContainerID()
}

func (n *dockerNode) Name() string { return n.name }

// state is the container's state; a container that is gone is not running.
func (n *dockerNode) state() (pid int, running, paused bool) {
	id := n.id()
	if id == "" {
		return 0, false, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	in, err := n.d.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil || in.Container.State == nil {
		return 0, false, false
	}
	st := in.Container.State
	return st.Pid, st.Running, st.Paused
}

// Pid is the host pid of the container's process (0 when stopped).
func (n *dockerNode) Pid() int { p, _, _ := n.state(); return p }

// Running reports whether the container runs (paused or not).
func (n *dockerNode) Running() bool { _, r, _ := n.state(); return r }

// Paused reports whether the container is frozen.
func (n *dockerNode) Paused() bool { _, _, p := n.state(); return p }

// Kill is docker kill (SIGKILL), unpausing a frozen container first; it
// returns once the container has stopped.
func (n *dockerNode) Kill() error {
	_, running, paused := n.state()
	if !running {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if paused {
		_, _ = n.d.cli.ContainerUnpause(ctx, n.id(), client.ContainerUnpauseOptions{})
	}
	if _, err := n.d.cli.ContainerKill(ctx, n.id(), client.ContainerKillOptions{Signal: "KILL"}); err != nil && n.Running() {
		return fmt.Errorf("provider docker: kill %s: %w", n.name, err)
	}
	return n.await(ctx, "stopped", func() bool { return !n.Running() })
}

// Pause is docker pause: the cgroup freezer stops every process of the
// container, its sockets stay open.
func (n *dockerNode) Pause() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := n.d.cli.ContainerPause(ctx, n.id(), client.ContainerPauseOptions{}); err != nil {
		return fmt.Errorf("provider docker: pause %s: %w", n.name, err)
	}
	return n.await(ctx, "paused", n.Paused)
}

// Resume is docker unpause.
func (n *dockerNode) Resume() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := n.d.cli.ContainerUnpause(ctx, n.id(), client.ContainerUnpauseOptions{}); err != nil {
		return fmt.Errorf("provider docker: unpause %s: %w", n.name, err)
	}
	return nil
}

// Terminate is docker stop: SIGTERM, then SIGKILL after grace.
func (n *dockerNode) Terminate(grace time.Duration) error {
	_, running, paused := n.state()
	if !running {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), grace+30*time.Second)
	defer cancel()
	if paused {
		_, _ = n.d.cli.ContainerUnpause(ctx, n.id(), client.ContainerUnpauseOptions{})
	}
	secs := int((grace + time.Second - 1) / time.Second)
	if _, err := n.d.cli.ContainerStop(ctx, n.id(), client.ContainerStopOptions{Timeout: &secs}); err != nil {
		return fmt.Errorf("provider docker: stop %s: %w", n.name, err)
	}
	return nil
}

// Restart starts the stopped container again (a new one after Wipe), at
// the same address, and waits until it is ready.
func (n *dockerNode) Restart(ctx context.Context) error {
	if n.Running() {
		return fmt.Errorf("provider docker: restart %s: still running", n.name)
	}
	n.mu.Lock()
	fresh, c := n.fresh, n.c
	n.fresh = false
	n.mu.Unlock()
	if fresh {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := n.d.cli.ContainerRemove(rctx, c.GetContainerID(), client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		cancel()
		if err != nil && !isNotFound(err) {
			return fmt.Errorf("provider docker: remove %s for a fresh start: %w", n.name, err)
		}
		return n.create(ctx)
	}
	if err := c.Start(ctx); err != nil {
		return fmt.Errorf("provider docker: start %s: %w", n.name, err)
	}
	return n.awaitReady(ctx)
}

func (n *dockerNode) await(ctx context.Context, what string, cond func() bool) error {
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("provider docker: %s not %s: %w", n.name, what, ctx.Err())
		case <-time.After(25 * time.Millisecond): // polling the engine
		}
	}
	return nil
}

// saveLog writes the container's log to Dir/NAME.log.
func (n *dockerNode) saveLog(ctx context.Context) {
	n.mu.Lock()
	c := n.c
	n.mu.Unlock()
	if c == nil || n.d.opts.Dir == "" {
		return
	}
	rc, err := c.Logs(ctx)
	if err != nil {
		return
	}
	defer rc.Close()
	name := strings.NewReplacer(" ", "-", "/", "-").Replace(n.name) + ".log"
	f, err := os.Create(filepath.Join(n.d.opts.Dir, name))
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = io.Copy(f, rc)
}

// dockerRedis is a region's Redis container.
type dockerRedis struct {
	*dockerNode
	addr string
}

// Addr is the container's address on its region's network.
func (r *dockerRedis) Addr() string { return r.addr }

// CAFile is "": the docker provider runs no TLS Redis (ErrNeedsProcess).
func (r *dockerRedis) CAFile() string { return "" }

// Wipe makes the next Restart start a new container: /data is empty, as
// after a Redis without persistence restarts.
func (r *dockerRedis) Wipe() error {
	if r.Running() {
		return fmt.Errorf("provider docker: wipe %s: still running", r.name)
	}
	r.mu.Lock()
	r.fresh = true
	r.mu.Unlock()
	return nil
}

// httpReady checks that url answers 200.
func httpReady(url string) func() error {
	c := &http.Client{Timeout: time.Second}
	return func() error {
		resp, err := c.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
}

// redisReady checks that Redis at addr answers PING.
func redisReady(addr string) func() error {
	return func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(time.Second))
		if _, err := c.Write([]byte("PING\r\n")); err != nil {
			return err
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return err
		}
		if !strings.HasPrefix(line, "+PONG") {
			return fmt.Errorf("PING: %q", strings.TrimSpace(line))
		}
		return nil
	}
}

// tcLogger sends testcontainers' own messages to the lab's log, at debug.
type tcLogger struct{ log *slog.Logger }

func (l tcLogger) Printf(format string, v ...any) {
	l.log.Debug(strings.TrimSpace(fmt.Sprintf(format, v...)), "component", "testcontainers")
}

var tcLogOnce sync.Once
