package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/geolab/geolab/lab/provider"
	"github.com/geolab/geolab/lab/report"
	"github.com/geolab/geolab/lab/run"
	"github.com/geolab/geolab/lab/scenario"
)

func newRunCmd(g *globalFlags) *cobra.Command {
	var opts run.Options
	var quiet bool
	cmd := &cobra.Command{
		Use:   "run SCENARIO",
		Short: "Run a scenario against a real lab, check it and write its reports",
		Long: `Run SCENARIO (docs/scenarios.md): bring its topology up, drive its seeded
workload, inject its timeline of faults, heal, quiesce, then check the history
against the guarantees and the scenario's expectations. Writes into --out
(default reports/NAME-seedN/): history.jsonl, report.json, report.html and
junit.xml. Exits 0 when every expectation holds, 1 when one fails (each failure
is named), 2 when the run could not be carried out. The same --seed gives the
same clients, rooms, publish schedule and fault timeline (the plan digest shows
it).

--provider says where the lab's parts run, as for 'geolab up': process (the
default), docker or swarm (docs/docker.md, docs/swarm.md).

With --agents N the clients run in N workload agents (docs/agents.md):
geolab run starts N local 'geolab agent' processes (stopped by pid at the
end), or on a swarm lab a swarm service of N tasks (--agents-on swarm, the
default with --provider swarm; removed at the end), or with
--agents-elsewhere waits for N agents started by hand with 'geolab agent
--controller ADDR'. It serves them on --listen, hands each its share of the
one seeded plan (the digest does not change with N), merges their histories
onto its clock and reports each agent's clock offset and bound. An agent
lost before its history is in fails the run (exit 2).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			sc, err := scenario.Load(args[0])
			if err != nil {
				return err
			}
			opts.Seeded = cmd.Flags().Changed("seed")
			opts.Logger, opts.Lab.Logger = log, log
			opts.Command = "geolab " + strings.Join(os.Args[1:], " ")
			opts.Version = version
			if opts.Agents < 0 {
				return fmt.Errorf("--agents %d: want 0 (every client in this process) or more", opts.Agents)
			}
			if opts.Agents == 0 && (cmd.Flags().Changed("listen") || opts.AgentsElsewhere) {
				return fmt.Errorf("--listen and --agents-elsewhere need --agents N (N > 0)")
			}
			if opts.AgentListen != "" {
				if _, _, err := net.SplitHostPort(opts.AgentListen); err != nil {
					return fmt.Errorf("--listen %q: want HOST:PORT (port 0: any free one): %v", opts.AgentListen, err)
				}
			}
			switch opts.Lab.Provider {
			case provider.ProcessName, provider.DockerName, provider.SwarmName:
			default:
				return fmt.Errorf("--provider %q: want process, docker or swarm", opts.Lab.Provider)
			}
			if cmd.Flags().Changed("agents-on") && opts.AgentsOn != run.AgentsLocal && opts.AgentsOn != run.AgentsSwarm {
				return fmt.Errorf("--agents-on %q: want local or swarm", opts.AgentsOn)
			}
			if opts.AgentsOn != "" && opts.Agents == 0 {
				return fmt.Errorf("--agents-on needs --agents N (N > 0)")
			}
			if opts.Agents > sc.Workload.Clients {
				return fmt.Errorf("--agents %d: more agents than the scenario's %d clients", opts.Agents, sc.Workload.Clients)
			}
			if !quiet {
				opts.Progress = cmd.OutOrStdout()
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			out, err := run.Scenario(ctx, sc, opts)
			if errors.Is(err, provider.ErrNoEngine) {
				return &exitError{code: 2, err: fmt.Errorf("%w (--provider %s)", err, provider.ProcessName)}
			}
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "\n%s seed %d (plan %s): reports in %s\n", sc.Name, out.Seed, out.Digest, out.Dir)
			for _, a := range out.Agents {
				fmt.Fprintf(w, "  %s: %d clients, clock offset %s ± %s\n", a.Name, a.Clients, time.Duration(a.Offset), time.Duration(a.Bound))
			}
			if len(out.Agents) > 0 {
				fmt.Fprintf(w, "  latencies between two agents' clients are exact within ± %s\n", report.Input{Agents: out.Agents}.CrossAgentBound())
			}
			for _, e := range out.Errors {
				fmt.Fprintf(w, "  note: %s\n", e)
			}
			for _, o := range out.Outcomes {
				mark := "PASS"
				if !o.Pass {
					mark = "FAIL"
				}
				fmt.Fprintf(w, "  %s  %s\n", mark, o.Message)
			}
			if !out.Passed() {
				return &exitError{code: 1, err: fmt.Errorf("%s: %d expectation(s) failed: %s", sc.Name, len(out.Failed()), strings.Join(out.Failed(), "; "))}
			}
			fmt.Fprintln(w, "PASS")
			return nil
		},
	}
	f := cmd.Flags()
	f.Int64Var(&opts.Seed, "seed", scenario.DefaultSeed, "seed of the workload (default: the scenario's seed)")
	f.StringVar(&opts.OutDir, "out", "", "directory for history.jsonl and the reports (default reports/NAME-seedN)")
	f.StringVar(&opts.Lab.WorkDir, "workdir", "", "directory for the lab's logs and Redis data (default: temporary, removed)")
	f.StringArrayVar(&opts.Lab.GatewayArgs, "gateway-arg", nil, "extra flag for every gateway, added to the scenario's (repeatable)")
	f.BoolVar(&quiet, "quiet", false, "no live progress lines")
	f.StringVar(&opts.Lab.Provider, "provider", provider.ProcessName, "where the lab's parts run: process, docker or swarm (as geolab up --provider)")
	f.IntVar(&opts.Agents, "agents", 0, "run the clients in N workload agents (0: in this process)")
	f.StringVar(&opts.AgentsOn, "agents-on", "", "where the run starts its agents: local (processes of this machine) or swarm (a service of the swarm lab, one task an agent; needs --provider swarm) (default: swarm with --provider swarm, else local)")
	f.StringVar(&opts.AgentListen, "listen", "", "address the agents' controller listens on, with --agents (default 127.0.0.1:0; with --agents-on swarm the address of this node's docker_gwbridge, port 0); another machine's agents need one they can reach")
	f.BoolVar(&opts.AgentsElsewhere, "agents-elsewhere", false, "wait for --agents agents started by hand (geolab agent --controller) instead of starting them here")
	return cmd
}

// exitError carries an exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }
