package run

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/geolab/geolab/lab"
	"github.com/geolab/geolab/lab/agent"
	"github.com/geolab/geolab/lab/geolabbin"
	"github.com/geolab/geolab/lab/history"
	"github.com/geolab/geolab/lab/provider"
	"github.com/geolab/geolab/lab/scenario"
	"github.com/geolab/geolab/lab/workload"
)

// agentStartLead is how far ahead of now the run's start is set when its
// clients run in agents.
const agentStartLead = 500 * time.Millisecond

// agents is the controller side of a run whose clients run in workload
// agents (docs/agents.md): the controller and the agent processes this
// run started itself.
type agents struct {
	ctrl  *agent.Controller
	procs []*agentProc
	svc   provider.AgentService // the agents as the provider's tasks (--agents-on swarm)
	dir   string
	log   *slog.Logger
}

// agentProc is one local agent process, stopped by its pid.
type agentProc struct {
	label string
	cmd   *exec.Cmd
	log   string
	done  chan struct{} // closed when it has exited
	err   error         // its exit, once done
}

// startAgents serves the run's agents and, unless they run elsewhere,
// starts opts.Agents local agent processes of the geolab binary, or with
// --agents-on swarm the provider's agents' service.
func startAgents(ctx context.Context, sc *scenario.Scenario, opts Options, plan *workload.Plan, l *lab.Lab, meta history.Meta, seed int64, digest string) (*agents, error) {
	a := &agents{dir: filepath.Join(opts.OutDir, "agents"), log: opts.Logger}
	listen := opts.AgentListen
	var agentsResolver http.Handler
	at, tasks := l.AgentTasks()
	if tasks {
		// The controller, which serves the agents' view of the resolver
		// too, listens on an address of this host the tasks reach
		// (docker_gwbridge's), never on every interface.
		if listen == "" {
			h, err := at.AgentHost(ctx)
			if err != nil {
				return nil, err
			}
			listen = net.JoinHostPort(h, "0")
		}
		var err error
		if agentsResolver, err = l.AgentsResolver(); err != nil {
			return nil, err
		}
	}
	if listen == "" {
		listen = DefaultAgentListen
	}
	as := agent.Assignment{Run: meta.Run, Seed: seed, Digest: digest, Spec: sc.Workload, Plan: plan,
		Tokens: map[string]string{}, Resolver: l.ResolverURL(), Meta: meta}
	for _, c := range plan.Clients {
		tok, err := l.Token(c.Name, []string{"*"}, []string{"*"}, 24*time.Hour)
		if err != nil {
			return nil, err
		}
		as.Tokens[c.Name] = tok
	}
	ctrl, err := agent.Listen(agent.Config{Listen: listen, Agents: opts.Agents, Version: opts.Version,
		Assign: as, Dir: a.dir, Logger: opts.Logger, Resolver: agentsResolver})
	if err != nil {
		return nil, err
	}
	a.ctrl = ctrl
	if opts.Progress != nil {
		fmt.Fprintf(opts.Progress, "agent controller on %s (agent protocol v%d), waiting for %d agents\n", ctrl.Addr(), agent.Protocol, opts.Agents)
	}
	if opts.AgentsElsewhere {
		return a, nil
	}
	if tasks {
		svc, err := at.StartAgents(ctx, provider.AgentsSpec{Agents: opts.Agents, Controller: ctrl.Addr(), Lost: func(err error) {
			ctrl.Fail(fmt.Errorf("%w: the history of its clients is lost, so the run is not judged", err))
		}})
		if err != nil {
			a.close()
			return nil, err
		}
		a.svc = svc
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, "agents: swarm service %s, %d tasks, which ask the resolver at http://%s too (logs %s/swarm-K.log at the end)\n", svc.Name(), opts.Agents, ctrl.Addr(), a.dir)
		}
		return a, nil
	}
	bin := opts.Lab.Bin
	if bin == "" {
		bin = geolabbin.Default()
	}
	for k := range opts.Agents {
		label := fmt.Sprintf("local-%d", k+1)
		p := &agentProc{label: label, log: filepath.Join(a.dir, label+".log"), done: make(chan struct{})}
		lf, err := os.Create(p.log)
		if err != nil {
			a.close()
			return nil, err
		}
		p.cmd = exec.Command(bin, "agent", "--controller", ctrl.Addr(), "--name", label)
		p.cmd.Stdout, p.cmd.Stderr = lf, lf
		if err := p.cmd.Start(); err != nil {
			lf.Close()
			a.close()
			return nil, fmt.Errorf("start agent %s: %w", label, err)
		}
		a.procs = append(a.procs, p)
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, "agent %s started (pid %d, log %s)\n", label, p.cmd.Process.Pid, p.log)
		}
		go func() {
			p.err = p.cmd.Wait()
			lf.Close()
			close(p.done)
			why := "exited"
			if p.err != nil {
				why = "exited (" + p.err.Error() + ")"
			}
			ctrl.Fail(fmt.Errorf("agent process %s (pid %d) %s before the run ended: the history of its clients is lost, so the run is not judged; its log %s ends: %s",
				label, p.cmd.Process.Pid, why, p.log, tail(p.log)))
		}()
	}
	return a, nil
}

// tail is the last line of a log, for an error.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if last := lines[len(lines)-1]; last != "" {
		return last
	}
	return "(nothing)"
}

// close stops the controller and every agent process still running, by
// its pid: SIGTERM, then SIGKILL after 5 s.
func (a *agents) close() {
	if a.ctrl != nil {
		a.ctrl.Close()
	}
	a.removeService(5 * time.Second) // its bye came: let each task exit on its own first
	var wg sync.WaitGroup
	for _, p := range a.procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-p.done:
				return
			case <-time.After(5 * time.Second): // its bye came: let it exit on its own first
			}
			_ = syscall.Kill(p.cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(5 * time.Second):
				_ = syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL)
				<-p.done
			}
		}()
	}
	wg.Wait()
}

// kill stops every agent process at once (the run failed or was
// interrupted).
func (a *agents) kill() {
	if a.ctrl != nil {
		a.ctrl.Close()
	}
	a.removeService(0)
	for _, p := range a.procs {
		select {
		case <-p.done:
		default:
			_ = syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	}
}

// removeService removes the agents' service, once, keeping each task's log
// in the run's agents directory; a failure to is logged (the lab's Close
// removes it again).
func (a *agents) removeService(grace time.Duration) {
	if a.svc == nil {
		return
	}
	svc := a.svc
	a.svc = nil
	if err := svc.Close(a.dir, grace); err != nil {
		a.log.Warn("remove the agents' service", "service", svc.Name(), "err", err)
	}
}

// join waits until every agent is ready, printing each.
func (a *agents) join(ctx context.Context, opts Options) error {
	err := a.ctrl.Join(ctx, 2*time.Minute, func(name, who string, clients int, c history.AgentClock) {
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, "agent %s ready: %d clients, clock offset %s ± %s (rtt %s)\n",
				who, clients, time.Duration(c.Offset), time.Duration(c.Bound), time.Duration(c.RTT))
		}
	})
	if a.svc == nil {
		return err
	}
	tasks := a.svc.Describe(ctx)
	if opts.Progress != nil {
		for _, line := range tasks {
			fmt.Fprintf(opts.Progress, "agents: %s\n", line)
		}
	}
	if err != nil {
		return fmt.Errorf("%w; the agents' service %s: %s", err, a.svc.Name(), strings.Join(tasks, "; "))
	}
	return nil
}

// merge writes the run's one history into path from the controller's own
// (ownPath) and every agent's.
func (a *agents) merge(ctx context.Context, path, ownPath string, meta history.Meta, start time.Time, quiesce time.Duration) error {
	shipped, err := a.ctrl.Finish(ctx, quiesce+2*time.Minute)
	if err != nil {
		return err
	}
	own, err := os.ReadFile(ownPath)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := agent.Merge(f, meta, bytes.NewReader(own), start, shipped); err != nil {
		f.Close()
		return fmt.Errorf("merge the agents' histories: %w", err)
	}
	return f.Close()
}
