package provider

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// Workload agents as a swarm service (docs/swarm.md, "Workload agents"):
//
//	agent task ──agents network──▶ Toxiproxy (client.H.R.gw-N) ──region R──▶ gateway R/gw-N
//	agent task ──docker_gwbridge──▶ host: the run's controller and the agents' resolver
//
// The agents' network is an overlay of its own, geolab-ID_agents (a name no
// region's network can take), on which only Toxiproxy and the agents are:
// the agents reach no gateway, bridge or Redis but through a client link.
// The client links then bind every interface of Toxiproxy's task
// (ClientBind), so that the lab dials them at Toxiproxy's docker_gwbridge
// address as before and the agents at its address on their network
// (AgentDial). The run's controller and the resolver the agents ask are on
// the host, at the address of this node's docker_gwbridge (AgentHost): the
// one address of the host a task reaches, on a bridge the swarm (and 'make
// deps-swarm') made, never every interface.

// agentRoleLabel is the node label that places the agents' tasks.
const agentRoleLabel = "geolab.role"

// agentRole is its value.
const agentRole = "agent"

// AgentNameEnv names the environment variable that is the default of
// 'geolab agent --name': the swarm provider sets it to swarm-SLOT in each
// task.
const AgentNameEnv = "GEOLAB_AGENT_NAME"

// createAgentsNet creates the agents' overlay network (before Toxiproxy,
// which is attached to it at creation).
func (s *Swarm) createAgentsNet(ctx context.Context) (*swarmNet, error) {
	n := &swarmNet{name: "geolab-" + s.lab + "_agents"}
	res, err := s.cli.NetworkCreate(ctx, n.name, client.NetworkCreateOptions{Driver: "overlay", Attachable: true,
		Labels: map[string]string{swarmLabel: s.lab}})
	if err != nil {
		return nil, fmt.Errorf("provider swarm: network %s: %w", n.name, err)
	}
	n.id = res.ID
	s.mu.Lock()
	s.agentsNet = n
	s.mu.Unlock()
	return n, nil
}

// ClientBind is every interface of Toxiproxy's task when the lab has an
// agents' network (SwarmOptions.Agents): the lab reaches a client link at
// Toxiproxy's docker_gwbridge address, the agents at its address on their
// network. "" otherwise (ProxyListen's address).
func (s *Swarm) ClientBind() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.agentsNet == nil {
		return ""
	}
	return "0.0.0.0:0"
}

// AgentDial is where an agent's task dials the client link the lab dials at
// addr: Toxiproxy's address on the agents' network, the same port. Any
// other address is returned as it is.
func (s *Swarm) AgentDial(addr string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !s.tpAgents.IsValid() || ap.Addr() != s.tpHost {
		return addr
	}
	return netip.AddrPortFrom(s.tpAgents, ap.Port()).String()
}

// AgentHost is the address of this node's docker_gwbridge (its gateway):
// the host as its tasks reach it. On a swarm of several nodes a task on
// another node reaches its own node there, not this one: the caller must
// be given an address of this machine that those nodes reach.
func (s *Swarm) AgentHost(ctx context.Context) (string, error) {
	s.mu.Lock()
	multi := s.multi
	s.mu.Unlock()
	if multi {
		return "", errors.New("provider swarm: a swarm of several nodes: the agents' tasks on other nodes reach this machine at an address of the machines' network, not at docker_gwbridge's: give it (geolab run --listen ADDR:PORT, docs/swarm.md)")
	}
	gw, err := s.cli.NetworkInspect(ctx, gwbridge, client.NetworkInspectOptions{})
	if err != nil {
		return "", fmt.Errorf("provider swarm: %s: %w", gwbridge, err)
	}
	for _, c := range gw.Network.IPAM.Config {
		if c.Gateway.IsValid() && c.Gateway.Is4() {
			return c.Gateway.String(), nil
		}
	}
	return "", fmt.Errorf("provider swarm: %s has no IPv4 gateway address", gwbridge)
}

// StartAgents creates the agents' service, geolab-ID-agents: spec.Agents
// tasks of the geolab image running 'geolab agent --controller
// spec.Controller', restart condition none (an agent that dies is lost, as
// a process is), on the agents' network only, placed on nodes labelled
// geolab.role=agent when some node is, anywhere otherwise. Each task names
// itself swarm-SLOT ($GEOLAB_AGENT_NAME) and takes its node's hostname. It
// returns once the service exists; the agents join the controller as their
// tasks start, and spec.Lost hears of every task that ends before Close.
func (s *Swarm) StartAgents(ctx context.Context, spec AgentsSpec) (AgentService, error) {
	s.mu.Lock()
	an := s.agentsNet
	s.mu.Unlock()
	if an == nil {
		return nil, errors.New("provider swarm: this lab has no agents' network: start it with SwarmOptions.Agents (lab.Options.AgentTasks)")
	}
	if spec.Agents < 1 {
		return nil, fmt.Errorf("provider swarm: agents: want at least 1, got %d", spec.Agents)
	}
	nodes, err := s.cli.NodeList(ctx, client.NodeListOptions{})
	if err != nil {
		return nil, fmt.Errorf("provider swarm: list nodes: %w", err)
	}
	var placement *swarm.Placement
	for _, n := range nodes.Items {
		if n.Spec.Labels[agentRoleLabel] == agentRole {
			placement = &swarm.Placement{Constraints: []string{"node.labels." + agentRoleLabel + "==" + agentRole}}
			break
		}
	}
	name := s.serviceName("agents")
	labels := map[string]string{swarmLabel: s.lab, "io.geolab.part": "agents"}
	replicas := uint64(spec.Agents)
	grace := 5 * time.Second
	res, err := s.cli.ServiceCreate(ctx, client.ServiceCreateOptions{Spec: swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: name, Labels: labels},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{Image: s.opts.GeolabImage, Labels: labels, Hostname: "{{.Node.Hostname}}",
				Args: []string{"agent", "--controller", spec.Controller}, Env: []string{AgentNameEnv + "=swarm-{{.Task.Slot}}"},
				StopGracePeriod: &grace},
			Networks:      []swarm.NetworkAttachmentConfig{{Target: an.id}},
			RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionNone},
			Placement:     placement},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
		EndpointSpec: &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR}}})
	if err != nil {
		return nil, fmt.Errorf("provider swarm: create the agents' service %s (%s): %w", name, s.opts.GeolabImage, err)
	}
	s.mu.Lock()
	s.agentSvcs = append(s.agentSvcs, res.ID)
	s.mu.Unlock()
	a := &swarmAgents{s: s, id: res.ID, name: name, lost: spec.Lost, told: map[string]bool{}, stop: make(chan struct{}), done: make(chan struct{})}
	for _, n := range nodes.Items {
		a.hosts = append(a.hosts, [2]string{n.ID, n.Description.Hostname})
	}
	go a.watch()
	return a, nil
}

// swarmAgents is a run's agents' service.
type swarmAgents struct {
	s        *Swarm
	id, name string
	hosts    [][2]string // node id, hostname
	lost     func(error)

	mu   sync.Mutex
	told map[string]bool // tasks whose end Lost heard of
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// Name is the service's name, geolab-ID-agents.
func (a *swarmAgents) Name() string { return a.name }

func (a *swarmAgents) host(node string) string {
	for _, h := range a.hosts {
		if h[0] == node {
			return h[1]
		}
	}
	return node
}

func (a *swarmAgents) tasks(ctx context.Context) ([]swarm.Task, error) {
	res, err := a.s.cli.TaskList(ctx, client.TaskListOptions{Filters: make(client.Filters).Add("service", a.id)})
	if err != nil {
		return nil, fmt.Errorf("provider swarm: tasks of %s: %w", a.name, err)
	}
	sort.Slice(res.Items, func(i, j int) bool { return res.Items[i].Slot < res.Items[j].Slot })
	return res.Items, nil
}

// Describe lists each task: its name, node, state and container, and for
// a task that does not run the engine's word on why (a pending task's
// "no suitable node").
func (a *swarmAgents) Describe(ctx context.Context) []string {
	ts, err := a.tasks(ctx)
	if err != nil {
		return []string{err.Error()}
	}
	var out []string
	for _, t := range ts {
		cid := ""
		if t.Status.ContainerStatus != nil {
			cid = t.Status.ContainerStatus.ContainerID
		}
		line := fmt.Sprintf("task swarm-%d (%s.%d) on node %s: %s, container %.12s", t.Slot, a.name, t.Slot, a.host(t.NodeID), t.Status.State, cid)
		if t.Status.State != swarm.TaskStateRunning {
			if why := strings.TrimSpace(t.Status.Message + " " + t.Status.Err); why != "" {
				line += " (" + why + ")"
			}
		}
		out = append(out, line)
	}
	return out
}

// watch polls the tasks every 250 ms until Close: it isolates the bridge
// ports of the tasks that run (as every task of the lab's) and tells Lost of
// every task that ended.
func (a *swarmAgents) watch() {
	defer close(a.done)
	t := time.NewTicker(250 * time.Millisecond) // polling the swarm's task states
	defer t.Stop()
	running := 0
	for {
		select {
		case <-a.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ts, err := a.tasks(ctx)
		if err != nil {
			cancel()
			continue
		}
		now := 0
		for _, task := range ts {
			switch task.Status.State {
			case swarm.TaskStateRunning:
				now++
			case swarm.TaskStateFailed, swarm.TaskStateRejected, swarm.TaskStateComplete, swarm.TaskStateShutdown, swarm.TaskStateOrphaned:
				a.mu.Lock()
				told := a.told[task.ID]
				a.told[task.ID] = true
				a.mu.Unlock()
				if !told && a.lost != nil {
					a.lost(a.ended(ctx, task))
				}
			}
		}
		cancel()
		if now > running {
			a.s.isolateGWBridge()
		}
		running = now
	}
}

// ended says how a task ended: its state, the engine's message and the
// last line of its log.
func (a *swarmAgents) ended(ctx context.Context, t swarm.Task) error {
	why := string(t.Status.State)
	if t.Status.ContainerStatus != nil && t.Status.State != swarm.TaskStateRejected {
		why += fmt.Sprintf(" (exit %d)", t.Status.ContainerStatus.ExitCode)
	}
	if m := strings.TrimSpace(t.Status.Message + " " + t.Status.Err); m != "" {
		why += ": " + m
	}
	last := "(nothing)"
	if lines := a.taskLog(ctx, t.ID); len(lines) > 0 {
		last = lines[len(lines)-1]
	}
	return fmt.Errorf("agent task swarm-%d of %s on node %s %s; its log ends: %s", t.Slot, a.name, a.host(t.NodeID), why, last)
}

// taskLog is a task's log, line by line, from whichever node ran it.
func (a *swarmAgents) taskLog(ctx context.Context, task string) []string {
	rc, err := a.s.cli.TaskLogs(ctx, task, client.TaskLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return nil
	}
	defer rc.Close()
	var b bytes.Buffer
	_, _ = stdcopy.StdCopy(&b, &b, rc)
	var lines []string
	sc := bufio.NewScanner(&b)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// Close stops watching, waits up to grace for the tasks to end by
// themselves, writes each task's log to dir/swarm-SLOT.log, removes the
// service (its running tasks get SIGTERM, SIGKILL after 5 s) and waits
// until its containers are gone.
func (a *swarmAgents) Close(dir string, grace time.Duration) error {
	a.once.Do(func() { close(a.stop) })
	<-a.done
	ctx, cancel := context.WithTimeout(context.Background(), grace+90*time.Second)
	defer cancel()
	for end := time.Now().Add(grace); time.Now().Before(end); {
		ts, err := a.tasks(ctx)
		if err != nil || !slices.ContainsFunc(ts, func(t swarm.Task) bool { return t.Status.State == swarm.TaskStateRunning }) {
			break
		}
		time.Sleep(100 * time.Millisecond) // polling the tasks' exits
	}
	var errs []error
	if ts, err := a.tasks(ctx); err == nil && dir != "" {
		for _, t := range ts {
			lines := a.taskLog(ctx, t.ID)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("swarm-%d.log", t.Slot)), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if _, err := a.s.cli.ServiceRemove(ctx, a.id, client.ServiceRemoveOptions{}); err != nil && !isNotFound(err) {
		return errors.Join(append(errs, fmt.Errorf("provider swarm: remove %s: %w", a.name, err))...)
	}
	a.s.mu.Lock()
	a.s.agentSvcs = slices.DeleteFunc(a.s.agentSvcs, func(id string) bool { return id == a.id })
	a.s.mu.Unlock()
	f := make(client.Filters).Add("label", swarmLabel+"="+a.s.lab).Add("label", "io.geolab.part=agents")
	for {
		cs, err := a.s.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
		if err != nil || len(cs.Items) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return errors.Join(append(errs, fmt.Errorf("provider swarm: %s removed, but %d of its containers are still there after 90s", a.name, len(cs.Items)))...)
		case <-time.After(100 * time.Millisecond): // polling the engine's cleanup
		}
	}
	return errors.Join(errs...)
}

var _ AgentTasks = (*Swarm)(nil)
