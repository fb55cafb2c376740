// Package lab runs a topology for real and breaks it on purpose.
//
//	topology ─▶ provider (Redis, gateways, bridges, Toxiproxy) ─▶ links (proxies)
//	         ─▶ resolver ─▶ faults ─▶ clients' history ─▶ checker
//
// Start brings a topology up: one Redis per region, its gateways and its
// federation bridge, every client→gateway, gateway→Redis and bridge→remote
// Redis connection through its own Toxiproxy proxy carrying the topology's
// latency, and a resolver that plays GeoDNS. The verbs read like the faults
// they inject — Partition, Isolate, Heal, Region("us-east").Gateway(1).Kill()
// — and Close tears everything down by pid, healed or not.
package lab

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/geolab/geolab/federation"
	"github.com/geolab/geolab/gateway/auth"
	"github.com/geolab/geolab/internal/fielderr"
	"github.com/geolab/geolab/internal/redisaddr"
	"github.com/geolab/geolab/lab/fault"
	"github.com/geolab/geolab/lab/geolabbin"
	"github.com/geolab/geolab/lab/link"
	"github.com/geolab/geolab/lab/provider"
	"github.com/geolab/geolab/lab/resolver"
	"github.com/geolab/geolab/lab/topology"
)

// Options configure Start. Every field has a default.
type Options struct {
	// Provider names where parts run: "process" (default: local processes),
	// "docker" (containers, docs/docker.md) or "swarm" (Docker Swarm
	// services, docs/swarm.md).
	Provider string
	// Bin is the geolab binary children run as. Default: geolabbin.Default()
	// ($GEOLAB_BIN, else this executable when it is geolab, else bin/geolab).
	Bin string
	// WorkDir holds logs, configs and Redis data. Default: a new temporary
	// directory, removed by Close unless KeepWorkDir.
	WorkDir     string
	KeepWorkDir bool
	// Secret signs client tokens and is handed to every gateway. Default:
	// $GEOLAB_JWT_SECRET, else 32 random bytes.
	Secret []byte
	// GatewayArgs are extra flags for every gateway (docs/gateway.md), e.g.
	// {"--send-queue", "64"}.
	GatewayArgs []string
	// Lag sets the bridges' replication-lag thresholds (default
	// federation.DefaultLagWarn and DefaultLagAlert: 1s, 5s); Start refuses
	// thresholds the bridges would (federation.LagConfig.Validate).
	LagWarn, LagAlert time.Duration
	// ReadyTimeout bounds Start (default 60s; 120s when a region runs a
	// Redis Cluster).
	ReadyTimeout time.Duration
	// RedisOnly starts Toxiproxy and every region's Redis with its proxies,
	// and nothing else: no gateway, bridge or resolver. It is the Redis
	// layer alone, e.g. a Redis Cluster region before the gateway speaks
	// cluster; what needs a gateway, a bridge or the resolver (Endpoints,
	// ResolverURL, their faults) has nothing to act on.
	RedisOnly bool
	// Logger receives the lab's own logs (default: discarded).
	Logger *slog.Logger
	// AgentTasks readies the lab for workload agents run as tasks of its
	// provider (swarm only: an agents' network on which they reach the
	// client links, docs/swarm.md "Workload agents"); Lab.AgentTasks and
	// Lab.AgentsResolver then serve them.
	AgentTasks bool
}

// Lab is one running topology.
type Lab struct {
	topo    *topology.Topology
	opts    Options
	prov    provider.Provider
	net     *link.Net
	res     *resolver.Resolver
	auth    *auth.Authority
	log     *slog.Logger
	regions map[string]*Region
	faults  *fault.Book
	started time.Time

	closeOnce sync.Once
	closeErr  error
}

// Region is one running region.
type Region struct {
	Name     string
	lab      *Lab
	redis    provider.Redis        // nil when the region runs a cluster
	cluster  provider.RedisCluster // nil when the region runs one Redis
	auth     *redisAuth            // how its Redis is reached: TLS, users, passwords
	gateways []*Gateway
	bridge   *Bridge
}

// Gateway is one running gateway node; its Node methods act on the process.
type Gateway struct {
	provider.Node
	Region, ID string // ID is the node name, gw-1 …
	Listen     string // its own address (not proxied)
}

// Bridge is a region's running federation bridge.
type Bridge struct {
	provider.Node
	Region string
	Listen string // its /status address
}

// Start brings topo up and returns once every gateway and bridge is ready,
// or tears down what it started and returns the error.
func Start(ctx context.Context, topo *topology.Topology, opts Options) (l *Lab, err error) {
	if opts.Provider != "" && opts.Provider != provider.ProcessName {
		for _, r := range topo.Regions {
			if r.Redis.TLS || r.Redis.ACL {
				return nil, fmt.Errorf("lab: region %s: redis tls/acl on the %s provider: %w", r.Name, opts.Provider, provider.ErrNeedsProcess)
			}
			if r.Redis.Mode == topology.RedisCluster {
				return nil, fmt.Errorf("lab: region %s: redis mode cluster on the %s provider: %w", r.Name, opts.Provider, provider.ErrClusterNeedsProcess)
			}
		}
	}
	if opts.AgentTasks && opts.Provider != provider.SwarmName {
		return nil, fmt.Errorf("lab: workload agents as tasks need the swarm provider, not %q (run them as local processes)", providerOrDefault(opts.Provider))
	}
	if err := opts.defaults(topo); err != nil {
		return nil, err
	}
	l = &Lab{topo: topo, opts: opts, log: opts.Logger, regions: map[string]*Region{}, started: time.Now()}
	if l.auth, err = auth.NewAuthority(opts.Secret); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	env := []string{auth.SecretEnv + "=" + string(opts.Secret)}
	switch opts.Provider {
	case provider.ProcessName:
		l.prov, err = provider.NewProcess(opts.Bin, opts.WorkDir, env)
	case provider.DockerName:
		l.prov, err = provider.NewDocker(ctx, provider.DockerOptions{Dir: opts.WorkDir, Env: env, Logger: opts.Logger})
	case provider.SwarmName:
		l.prov, err = provider.NewSwarm(ctx, provider.SwarmOptions{Dir: opts.WorkDir, Env: env, Logger: opts.Logger,
			Regions: topo.RegionNames(), Agents: opts.AgentTasks})
	default:
		err = fmt.Errorf("lab: unknown provider %q (want process, docker or swarm)", opts.Provider)
	}
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = l.Close()
			l = nil
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, opts.ReadyTimeout)
	defer cancel()
	_, api, err := l.prov.StartToxiproxy(ctx)
	if err != nil {
		return l, err
	}
	if l.net, err = link.New(api, 10*time.Second); err != nil {
		return l, err
	}
	l.faults = fault.NewBook(l)
	if err := l.startRegions(ctx); err != nil {
		return l, err
	}
	if opts.RedisOnly {
		l.log.Info("lab up, redis only", "component", "lab", "topology", topo.Name, "took", time.Since(l.started).Round(time.Millisecond))
		return l, nil
	}
	if err := l.startResolver(); err != nil {
		return l, err
	}
	l.log.Info("lab up", "component", "lab", "topology", topo.Name, "took", time.Since(l.started).Round(time.Millisecond))
	return l, nil
}

func (o *Options) defaults(topo *topology.Topology) error {
	lag := federation.LagConfig{Warn: o.LagWarn, Alert: o.LagAlert}.WithDefaults()
	if err := lag.Validate(); err != nil {
		return fmt.Errorf("lab: %w", fielderr.Rename(err, map[string]string{"lag.warn": "LagWarn", "lag.alert": "LagAlert"}))
	}
	o.LagWarn, o.LagAlert = lag.Warn, lag.Alert
	if o.Provider == "" {
		o.Provider = provider.ProcessName
	}
	if o.Bin == "" {
		o.Bin = geolabbin.Default()
	}
	if o.WorkDir == "" {
		dir, err := os.MkdirTemp("", "geolab-lab-")
		if err != nil {
			return fmt.Errorf("lab: work dir: %w", err)
		}
		o.WorkDir = dir
	} else {
		o.KeepWorkDir = true
	}
	if len(o.Secret) == 0 {
		if s := os.Getenv(auth.SecretEnv); s != "" {
			o.Secret = []byte(s)
		} else {
			b := make([]byte, 32)
			_, _ = rand.Read(b)
			o.Secret = []byte(base64.RawStdEncoding.EncodeToString(b))
		}
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 60 * time.Second
		if slices.ContainsFunc(topo.Regions, func(r topology.Region) bool { return r.Redis.Mode == topology.RedisCluster }) {
			o.ReadyTimeout = 120 * time.Second // creating a cluster and waiting for its replicas to sync
		}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return nil
}

// startRegions starts every Redis, then every gateway behind its LAN links,
// then every bridge behind its WAN links, each phase in parallel.
func (l *Lab) startRegions(ctx context.Context) error {
	for _, r := range l.topo.Regions {
		l.regions[r.Name] = &Region{Name: r.Name, lab: l, auth: newRedisAuth(r.Redis)}
	}
	if err := l.parallel(func(r topology.Region) error {
		if r.Redis.Mode == topology.RedisCluster {
			return l.startCluster(ctx, r)
		}
		red, err := l.prov.StartRedis(ctx, l.regions[r.Name].auth.spec(r.Name, r.Redis))
		l.regions[r.Name].redis = red
		return err
	}); err != nil {
		return err
	}
	if l.opts.RedisOnly {
		return nil
	}
	if err := l.parallel(func(r topology.Region) error { return l.startGateways(ctx, r) }); err != nil {
		return err
	}
	if len(l.topo.Regions) < 2 {
		return nil
	}
	return l.parallel(func(r topology.Region) error { return l.startBridge(ctx, r) })
}

func (l *Lab) parallel(f func(topology.Region) error) error {
	errs := make([]error, len(l.topo.Regions))
	var wg sync.WaitGroup
	for i, r := range l.topo.Regions {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = f(r) }()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (l *Lab) startGateways(ctx context.Context, r topology.Region) error {
	reg := l.regions[r.Name]
	reg.gateways = make([]*Gateway, r.Gateways)
	// A TLS region's gateways trust the lab's CA; an ACL region's log in
	// as RedisGatewayUser, the password in their environment.
	args, env := slices.Clone(l.opts.GatewayArgs), []string(nil)
	if d := r.Redis.Durability; d != "" {
		// First, so that a spec's own GatewayArgs may say otherwise.
		args = append([]string{"--durability", d}, args...)
	}
	if reg.auth.tls {
		args = append(args, "--redis-ca-file", reg.redis.CAFile())
	}
	if pw, ok := reg.auth.passwords[RedisGatewayUser]; ok {
		env = append(env, redisaddr.PasswordEnv+"="+string(pw))
	}
	for i := range r.Gateways {
		node := fmt.Sprintf("gw-%d", i+1)
		// A standalone Redis is reached through the gateway's own LAN link;
		// a cluster through the proxies its nodes announce, shared by every
		// client of the node (clusterSeeds).
		redisAddr := clusterSeeds(reg)
		if reg.cluster == nil {
			lan, err := l.net.Create(link.Link{Name: link.Name(link.LAN, r.Name, r.Name, node), Kind: link.LAN,
				From: r.Name, To: r.Name, Node: node, Listen: l.prov.ProxyListen(r.Name), Upstream: l.inside(reg.redis.Addr()), Base: l.topo.LAN})
			if err != nil {
				return err
			}
			redisAddr = reg.auth.url(RedisGatewayUser, lan.Listen)
		}
		var listen string
		var n provider.Node
		err := retryPortRace(func() (err error) {
			if listen, err = l.prov.ListenAddr(r.Name, node); err != nil {
				return err
			}
			n, err = l.prov.StartGateway(ctx, provider.GatewaySpec{Region: r.Name, Node: node, Listen: listen,
				Redis: redisAddr, Federate: r.Federate, Args: args, Env: env})
			return err
		})
		if err != nil {
			return err
		}
		for _, home := range l.topo.RegionNames() {
			if _, err := l.net.Create(link.Link{Name: link.Name(link.Client, home, r.Name, node), Kind: link.Client,
				From: home, To: r.Name, Node: node, Listen: l.prov.ProxyListen(""), Bind: l.clientBind(), Upstream: l.inside(listen), Base: l.topo.Link(home, r.Name)}); err != nil {
				return err
			}
		}
		reg.gateways[i] = &Gateway{Node: n, Region: r.Name, ID: node, Listen: listen}
	}
	return nil
}

// startCluster starts a cluster region's nodes, each behind a LAN link
// lan.REGION.redis-K of its own, which the node announces: every client of
// the node, gateway, bridge or replica, comes through that link.
func (l *Lab) startCluster(ctx context.Context, r topology.Region) error {
	reg := l.regions[r.Name]
	c, err := l.prov.StartRedisCluster(ctx, provider.RedisClusterSpec{Region: r.Name, Shards: r.Redis.Shards, Replicas: r.Redis.Replicas,
		Persistent: r.Redis.Persistence, Announce: func(node, addr string) (string, error) {
			ln, err := l.net.Create(link.Link{Name: link.Name(link.LAN, r.Name, r.Name, node), Kind: link.LAN,
				From: r.Name, To: r.Name, Node: node, Listen: l.prov.ProxyListen(r.Name), Upstream: addr, Base: l.topo.LAN})
			return ln.Listen, err
		}})
	reg.cluster = c
	return err
}

// clusterSeeds is how a gateway's --redis and a bridge's redis name a
// cluster: every node's announced address, comma-separated ("" for a
// standalone region).
func clusterSeeds(reg *Region) string {
	if reg.cluster == nil {
		return ""
	}
	return strings.Join(reg.cluster.Seeds(), ",")
}

// bridgeConfig is the YAML a bridge reads (docs/federation.md).
type bridgeConfig struct {
	Regions  map[string]map[string]string `yaml:"regions"`
	Federate []string                     `yaml:"federate"`
	Lag      map[string]string            `yaml:"lag"`
	// Durability is the region's redis.durability ("" leaves the
	// bridge's default, async).
	Durability string `yaml:"durability,omitempty"`
}

func (l *Lab) startBridge(ctx context.Context, r topology.Region) error {
	if len(r.Federate) == 0 {
		return nil // nothing crosses into or out of this region
	}
	cfg := bridgeConfig{Regions: map[string]map[string]string{}, Federate: r.Federate,
		Lag:        map[string]string{"warn": l.opts.LagWarn.String(), "alert": l.opts.LagAlert.String()},
		Durability: r.Redis.Durability}
	var env []string // every ACL region's bridge password, by region
	for _, other := range l.topo.Regions {
		oreg := l.regions[other.Name]
		if oreg.cluster != nil {
			// Every client of a cluster reaches its nodes through the
			// proxies they announce (LAN links): no WAN link of this
			// bridge's own, so partition and isolate do not cut it yet.
			cfg.Regions[other.Name] = map[string]string{"redis": clusterSeeds(oreg)}
			continue
		}
		addr := l.inside(oreg.redis.Addr())
		if other.Name != r.Name {
			wan, err := l.net.Create(link.Link{Name: link.Name(link.WAN, r.Name, other.Name, ""), Kind: link.WAN,
				From: r.Name, To: other.Name, Listen: l.prov.ProxyListen(r.Name), Upstream: addr, Base: l.topo.Link(r.Name, other.Name)})
			if err != nil {
				return err
			}
			addr = wan.Listen
		}
		rc := map[string]string{"redis": oreg.auth.url(RedisBridgeUser, addr)}
		if oreg.auth.tls {
			rc["ca_file"] = oreg.redis.CAFile()
		}
		if pw, ok := oreg.auth.passwords[RedisBridgeUser]; ok {
			env = append(env, redisaddr.RegionPasswordEnv(other.Name)+"="+string(pw))
		}
		cfg.Regions[other.Name] = rc
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("lab: bridge config of %s: %w", r.Name, err)
	}
	var listen string
	var n provider.Node
	err = retryPortRace(func() (err error) {
		if listen, err = l.prov.ListenAddr(r.Name, "bridge"); err != nil {
			return err
		}
		n, err = l.prov.StartBridge(ctx, provider.BridgeSpec{Region: r.Name, Config: b, Listen: listen, Env: env})
		return err
	})
	if err != nil {
		return err
	}
	l.regions[r.Name].bridge = &Bridge{Node: n, Region: r.Name, Listen: listen}
	return nil
}

func (l *Lab) startResolver() error {
	var gws []resolver.Gateway
	for _, r := range l.topo.Regions {
		for _, g := range l.regions[r.Name].gateways {
			rg := resolver.Gateway{Region: r.Name, Node: g.ID, Endpoints: map[string]string{}}
			for _, home := range l.topo.RegionNames() {
				ln, _ := l.net.Get(link.Name(link.Client, home, r.Name, g.ID))
				rg.Endpoints[home] = "ws://" + ln.Listen + "/ws"
				if home == r.Name {
					rg.Health = "http://" + ln.Listen + "/readyz"
				}
			}
			gws = append(gws, rg)
		}
	}
	l.res = resolver.New(l.topo, gws)
	return l.res.Start("127.0.0.1:0")
}

// Close heals every fault it can, then stops every process by pid and
// removes the work directory (unless kept). Safe to call more than once.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() {
		var errs []error
		if l.faults != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if err := l.faults.HealAll(ctx); err != nil {
				l.log.Warn("heal at close", "component", "lab", "err", err)
			}
			cancel()
		}
		if l.res != nil {
			errs = append(errs, l.res.Close())
		}
		if l.prov != nil {
			errs = append(errs, l.prov.Close())
		}
		if !l.opts.KeepWorkDir {
			_ = os.RemoveAll(l.opts.WorkDir)
		}
		l.closeErr = errors.Join(errs...)
	})
	return l.closeErr
}

// inside is where Toxiproxy and the parts dial the part the lab reaches at
// addr (provider.HostRouted; the same address with most providers).
func (l *Lab) inside(addr string) string {
	if hr, ok := l.prov.(provider.HostRouted); ok {
		return hr.Inside(addr)
	}
	return addr
}

// clientBind is where client links bind when agents in the provider's
// tasks dial them too (provider.AgentTasks), else "".
func (l *Lab) clientBind() string {
	if at, ok := l.AgentTasks(); ok {
		return at.ClientBind()
	}
	return ""
}

// AgentTasks is the provider's way to run workload agents as its tasks,
// when the lab was started with Options.AgentTasks.
func (l *Lab) AgentTasks() (provider.AgentTasks, bool) {
	at, ok := l.prov.(provider.AgentTasks)
	return at, ok && l.opts.AgentTasks
}

// AgentsResolver is the resolver as workload agents run as the provider's
// tasks ask it: the same health and answers, every endpoint the client
// link's address on the agents' network (provider.AgentTasks.AgentDial).
// The run's agent controller serves it (agent.Config.Resolver).
func (l *Lab) AgentsResolver() (http.Handler, error) {
	at, ok := l.AgentTasks()
	if !ok {
		return nil, errors.New("lab: started without Options.AgentTasks: no agents' network to serve")
	}
	if l.res == nil {
		return nil, errors.New("lab: no resolver (RedisOnly)")
	}
	return l.res.View(func(ep string) string {
		u, err := url.Parse(ep)
		if err != nil {
			return ep
		}
		u.Host = at.AgentDial(u.Host)
		return u.String()
	}), nil
}

func providerOrDefault(name string) string {
	if name == "" {
		return provider.ProcessName
	}
	return name
}

// retryPortRace runs start up to three times while it fails because the
// address it picked was taken between being found free and being bound
// (another test or process got there first).
func retryPortRace(start func() error) error {
	var err error
	for range 3 {
		if err = start(); err == nil || !strings.Contains(err.Error(), "address already in use") {
			return err
		}
	}
	return err
}
