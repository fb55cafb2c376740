// Package provider runs the parts of a lab — Toxiproxy, one Redis per
// region, gateways and bridges — somewhere real: as local processes
// (process.go, the default), as containers (docker.go, one Docker network
// per region) or as Docker Swarm services (swarm.go, one overlay network per
// region, across machines). The lab decides what
// runs and how it is wired; a provider only starts things and hands back
// handles that kill, pause, drain and restart them for real.
package provider

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/geolab/geolab/internal/redisproc"
)

// Provider names, as lab.Options.Provider and Env give them.
const (
	ProcessName = "process" // local processes: the default
	DockerName  = "docker"  // containers, one Docker network per region
	SwarmName   = "swarm"   // Docker Swarm services, one overlay network per region
)

// Env is the environment variable that names the provider geolab's test
// suites run on ('make chaos PROVIDER=docker'); FromEnv is its reader.
const Env = "PROVIDER"

// FromEnv returns $PROVIDER and whether it is set (non-empty). What unset
// means is the suite's to say (one provider by default, or every one).
func FromEnv() (name string, set bool) {
	name = os.Getenv(Env)
	return name, name != ""
}

// Provider starts a lab's parts. Every handle it returns is stopped by Close.
type Provider interface {
	// Name is ProcessName or DockerName.
	Name() string
	// StartToxiproxy starts the Toxiproxy server and returns its API URL.
	StartToxiproxy(ctx context.Context) (Node, string, error)
	// ProxyListen is where a new proxy of the Toxiproxy server listens, for
	// a link dialled by the parts of region from ("" for the lab's own
	// clients): an address that they and the lab can both dial. "" means
	// Toxiproxy's loopback with a free port.
	ProxyListen(from string) string
	// ListenAddr picks the address a gateway node of region (or, with node
	// "bridge", the region's bridge) serves on: one that the lab and the
	// Toxiproxy server can both dial, fixed for the part's life so that a
	// restart comes back where its links point.
	ListenAddr(region, node string) (string, error)
	// StartRedis starts a region's Redis.
	StartRedis(ctx context.Context, s RedisSpec) (Redis, error)
	// StartRedisCluster starts a region's Redis Cluster and returns once
	// every slot is served (the docker provider refuses it:
	// ErrClusterNeedsProcess).
	StartRedisCluster(ctx context.Context, s RedisClusterSpec) (RedisCluster, error)
	// StartGateway starts one gateway node and waits until it is ready.
	StartGateway(ctx context.Context, s GatewaySpec) (Node, error)
	// StartBridge starts a region's federation bridge and waits until it is
	// ready.
	StartBridge(ctx context.Context, s BridgeSpec) (Node, error)
	// Close stops everything started, by pid, and waits for it to be gone.
	Close() error
}

// HostRouted is implemented by a provider whose parts the lab, on the host,
// reaches at other addresses than Toxiproxy and the other parts do (swarm:
// ports published on the host's 127.0.0.1, service names on the region
// networks). The lab dials Redis.Addr and ListenAddr's addresses itself and
// gives Toxiproxy Inside of them as a link's upstream; a client that must
// reach a part with nothing between (the slow-client fault) dials
// Direct(addr), asked again each time.
type HostRouted interface {
	Inside(addr string) string
	Direct(addr string) string
}

// AgentTasks is implemented by a provider that runs a run's workload agents
// as tasks of its own (swarm, when SwarmOptions.Agents made its agents
// network: docs/swarm.md, "Workload agents"). The agents' clients reach the
// gateways through the same client links as the lab's, at another address.
type AgentTasks interface {
	// ClientBind is where a client link's proxy binds, so that the lab and
	// the agents' tasks both reach it ("" : at ProxyListen("")).
	ClientBind() string
	// AgentDial is where an agent's task dials the client link the lab
	// dials at addr.
	AgentDial(addr string) string
	// AgentHost is an address of this host that the agents' tasks reach,
	// on a network the lab's engine set up: where the controller and the
	// agents' resolver listen unless told otherwise.
	AgentHost(ctx context.Context) (string, error)
	// StartAgents starts the agents' tasks, which join the controller.
	StartAgents(ctx context.Context, spec AgentsSpec) (AgentService, error)
}

// AgentsSpec says how to run a run's workload agents as tasks.
type AgentsSpec struct {
	// Agents is how many tasks: one agent each.
	Agents int
	// Controller is the controller's HOST:PORT as the tasks dial it.
	Controller string
	// Lost is called once for each task that ends before Close, with why
	// (its state, the engine's message and its log's last line).
	Lost func(error)
}

// AgentService is a run's agents as tasks.
type AgentService interface {
	// Name is the service's name.
	Name() string
	// Describe says where each task runs, one line each.
	Describe(ctx context.Context) []string
	// Close waits up to grace for the tasks to end by themselves, writes
	// each task's log into dir (NAME.log; "": none), removes the service
	// and waits until its tasks' containers are gone.
	Close(dir string, grace time.Duration) error
}

// Node is one running part. Lifecycle calls act on the real process.
type Node interface {
	Name() string
	Pid() int
	Running() bool
	Paused() bool
	// Kill is kill -9; Pause is SIGSTOP; Resume SIGCONT; Terminate SIGTERM
	// then SIGKILL after grace; Restart starts it again with the same
	// arguments and address once it has exited.
	Kill() error
	Pause() error
	Resume() error
	Terminate(grace time.Duration) error
	Restart(ctx context.Context) error
}

// Redis is a region's Redis server.
type Redis interface {
	Node
	// Addr is where the lab's proxies (and the region's own bridge) reach
	// it.
	Addr() string
	// Wipe deletes its data on disk (it must not be running): the next
	// Restart comes back empty, as a Redis without persistence does.
	Wipe() error
	// CAFile is the PEM file of the CA that signed its certificate, when it
	// speaks TLS (RedisSpec.TLS); "" otherwise.
	CAFile() string
}

// RedisSpec says how to run a region's Redis.
type RedisSpec struct {
	Region     string
	Persistent bool
	// TLS makes it speak TLS only, with a certificate for the address its
	// clients dial, signed by a throwaway CA (Redis.CAFile). Only the
	// process provider runs it (ErrNeedsProcess).
	TLS bool
	// Users, when set, are its only ACL users (the default user off),
	// passwords never on a command line (redisproc.Options.Users). Users[0]
	// is the one the provider checks readiness as. Only the process
	// provider runs them (ErrNeedsProcess).
	Users []redisproc.User
}

// RedisClusterSpec says how to run a region's Redis Cluster: Shards
// primaries with Replicas replicas each, Shards × (1 + Replicas) nodes.
type RedisClusterSpec struct {
	Region           string
	Shards, Replicas int
	// Persistent runs every node with an append-only file.
	Persistent bool
	// Announce is called once for each node (redis-1 … redis-N), before it
	// starts, with the node's own address, and returns the address the node
	// announces to clients (cluster-announce-ip and -port): the proxy in
	// front of it. CLUSTER SLOTS, CLUSTER SHARDS and every MOVED or ASK then
	// name that address only, so a cluster client reaches every node through
	// it. The host must be an IP address.
	Announce func(node, addr string) (announced string, err error)
}

// RedisCluster is a region's running Redis Cluster.
type RedisCluster interface {
	// Nodes lists every node, redis-1 … redis-N, in start order.
	Nodes() []ClusterNode
	// Seeds lists the announced address of every node: a cluster client's
	// seed addresses.
	Seeds() []string
	// Shards asks a running node how the slots are served now: one Shard
	// per primary that holds slots, ordered by their lowest slot and
	// numbered from 1.
	Shards(ctx context.Context) ([]Shard, error)
}

// ClusterNode is one node of a cluster. Its Addr is its own address (the
// lab's direct way in); clients reach it at Announced.
type ClusterNode interface {
	Redis
	// ID is the node's name in its region: redis-1 … redis-N.
	ID() string
	// Announced is the address the node announces to clients.
	Announced() string
}

// Shard is one primary of a cluster, its replicas and its slots, as the
// cluster reports them at one moment.
type Shard struct {
	// Index numbers the shard from 1, by its lowest slot.
	Index int
	// Slots are the slot ranges it serves, inclusive ([0 5460]).
	Slots [][2]int
	// Primary serves the slots; nil when the shard has none that is up (a
	// killed primary before its replica takes over).
	Primary ClusterNode
	// Replicas follow the primary.
	Replicas []ClusterNode
	// Failed are nodes of the shard the cluster marks failed.
	Failed []ClusterNode
}

// ErrNeedsProcess is the docker and swarm providers' refusal of a Redis with TLS or
// ACL users.
var ErrNeedsProcess = errors.New("tls/acl regions need the process provider: the docker provider runs Redis without TLS or ACL users")

// ErrClusterNeedsProcess is the docker and swarm providers' refusal of a
// region whose Redis is a cluster (topology redis.mode cluster).
var ErrClusterNeedsProcess = errors.New("redis cluster regions need the process provider: the docker and swarm providers do not run Redis Cluster yet (one container per node, announced addresses on the region's network: not built)")

// GatewaySpec says how to run one gateway node.
type GatewaySpec struct {
	Region, Node string
	// Listen is the node's HTTP address (fixed, so that a restart comes back
	// where the proxies point).
	Listen string
	// Redis is the Redis address as the gateway dials it (its LAN link).
	Redis    string
	Federate []string
	// Args are extra gateway flags (e.g. --send-queue 64).
	Args []string
	// Env is added to the node's environment (its Redis password: never a
	// flag, which the process list shows).
	Env []string
}

// BridgeSpec says how to run a region's bridge.
type BridgeSpec struct {
	Region string
	// Config is the bridge's YAML config (docs/federation.md) as bytes; the
	// provider writes it where the bridge can read it.
	Config []byte
	// Listen is the bridge's status address.
	Listen string
	// Env is added to the bridge's environment (the Redis passwords).
	Env []string
}

// Ready waits until check returns nil, polling every 25 ms, for at most bound.
func Ready(ctx context.Context, bound time.Duration, what string, check func() error) error {
	end := time.Now().Add(bound)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(end) {
			return fmt.Errorf("%s not ready after %s: %w", what, bound, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, ctx.Err())
		case <-time.After(25 * time.Millisecond): // readiness polling interval
		}
	}
}
