package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/geolab/geolab/internal/fielderr"
	"github.com/geolab/geolab/lab/explore"
	"github.com/geolab/geolab/lab/geolabbin"
	"github.com/geolab/geolab/lab/topology"
)

// exploreFlags names each explore option and bound as the flag that sets it.
var exploreFlags = map[string]string{
	"Runs": "--runs", "Budget": "--budget", "ShrinkBudget": "--shrink-budget", "Tries": "--tries", "OutDir": "--out",
	"MinDuration": "--min-duration", "MaxDuration": "--max-duration", "Quiesce": "--quiesce",
	"MaxClients": "--max-clients", "MaxRate": "--max-rate", "MaxFaults": "--max-faults", "MaxOverlap": "--max-overlap",
	"MaxFaultFor": "--max-fault-duration", "MaxLeaves": "--max-leaves", "MaxReconnects": "--max-reconnects", "MinFaultFor": "the shortest fault duration", "Kinds": "--kinds",
}

func newExploreCmd(g *globalFlags) *cobra.Command {
	opts := explore.Options{Bounds: explore.DefaultBounds()}
	var quiet bool
	cmd := &cobra.Command{
		Use:   "explore TOPOLOGY",
		Short: "Randomized chaos: draw runs from a seed, play them, shrink a failing one to a replayable scenario",
		Long: `Explore TOPOLOGY with randomized chaos (docs/explore.md). Run i is drawn from
(--seed, i) with a PCG: a workload within the bounds below (clients, federated and
local rooms, publish rate, bursts, churn) and 1 to --max-faults faults from the
whole fault book the topology can take, on random regions, links and nodes, at
random offsets for random durations, at most --max-overlap at once. Each run is
played against a real lab as 'geolab run' plays a scenario, and judged by the
checker's violations (lost, duplicated, gaps, ...). A failing run is shrunk
greedily: drop a fault, halve its duration, move it later, halve the clients,
rooms, publish rate, bursts and churn; a candidate still fails when it shows the
same violation in any of --tries attempts. Stops after --runs (default 10) or
--budget, whichever comes first. Writes into --out, for each failing run,
original/ and minimal/ (the reports of the run and of the last failing attempt of
the minimal scenario), minimal.yaml, replay.txt (the 'geolab run' command that
replays it) and summary.json; and summary.json of the whole exploration. Exits 0
when no run showed a violation, 1 when one did, 2 on a usage or lab error.`,
		Example: `  geolab explore topologies/two-region.yaml --seed 1 --runs 2
  geolab explore topologies/two-region.yaml --seed 1 --budget 10m      # make explore
  geolab explore topologies/three-region.yaml --seed 7 --budget 168h   # a week`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return &exitError{code: 2, err: fmt.Errorf("explore: want one TOPOLOGY file, got %d argument(s)", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			usage := func(err error) error { return &exitError{code: 2, err: err} }
			log, err := g.logger()
			if err != nil {
				return usage(err)
			}
			f := cmd.Flags()
			// A bound left at its default follows the one given.
			if !f.Changed("max-overlap") {
				opts.Bounds.MaxOverlap = min(opts.Bounds.MaxOverlap, max(opts.Bounds.MaxFaults, 1))
			}
			if !f.Changed("min-duration") && f.Changed("max-duration") {
				opts.Bounds.MinDuration = min(opts.Bounds.MinDuration, opts.Bounds.MaxDuration)
			}
			if f.Changed("runs") && opts.Runs == 0 {
				return usage(fmt.Errorf("--runs 0 must be in 1..%d (leave it out for the default)", explore.MaxRuns))
			}
			if f.Changed("tries") && opts.Tries == 0 {
				return usage(fmt.Errorf("--tries 0 must be in 1..%d", explore.MaxTries))
			}
			topo, err := topology.Load(args[0])
			if err != nil {
				return usage(err)
			}
			if opts.TopologyPath, err = filepath.Abs(args[0]); err != nil {
				return usage(err)
			}
			opts.Topology = topo
			if opts.OutDir == "" {
				opts.OutDir = filepath.Join("reports", "explore", fmt.Sprintf("%s-seed%d", topo.Name, opts.Seed))
			}
			opts.Logger, opts.Lab.Logger = log, log
			opts.Command = "geolab " + strings.Join(os.Args[1:], " ")
			opts.Replay = replayCommand
			if !quiet {
				opts.Progress = cmd.ErrOrStderr()
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			sum, err := explore.Explore(ctx, opts)
			if sum == nil {
				return usage(fielderr.Rename(err, exploreFlags))
			}
			sum.Print(cmd.OutOrStdout())
			switch {
			case sum.Failing > 0:
				var names []string
				for _, fl := range sum.Failures {
					names = append(names, fmt.Sprintf("%s in run %d (%s)", fl.Violation.Name, fl.Run, fl.MinimalYAML))
				}
				return &exitError{code: 1, err: fmt.Errorf("explore: %d failing run(s): %s", sum.Failing, strings.Join(names, "; "))}
			case err != nil:
				return &exitError{code: 2, err: err}
			case sum.Stopped == explore.StoppedInterrupted:
				return &exitError{code: 2, err: errors.New("explore: interrupted before a violation was found")}
			}
			return nil
		},
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitError{code: 2, err: err} })
	f := cmd.Flags()
	b := &opts.Bounds
	f.Int64Var(&opts.Seed, "seed", 1, "seed of the exploration: run i is drawn from (seed, i)")
	f.IntVar(&opts.Runs, "runs", 0, "runs to play at most (default: 10 without --budget; with --budget alone, as many as it allows)")
	f.DurationVar(&opts.Budget, "budget", 0, "time the exploration may take, shrinks included, e.g. 10m or 168h (default: none); a run started before it ends is played to its end")
	f.DurationVar(&opts.ShrinkBudget, "shrink-budget", 0, "time one shrink may take (default: what is left of --budget, else 10m)")
	f.IntVar(&opts.Tries, "tries", explore.DefaultTries, "attempts at most per shrink candidate: it fails when any attempt shows the violation")
	f.IntVar(&b.MaxFaults, "max-faults", b.MaxFaults, "faults per run at most (each run has 1..max; 0: none)")
	f.IntVar(&b.MaxOverlap, "max-overlap", b.MaxOverlap, "faults active at once at most")
	f.DurationVar(&b.MaxFaultFor, "max-fault-duration", b.MaxFaultFor, "longest fault (each lasts 1s..this, inside the workload's duration)")
	f.StringSliceVar(&b.Kinds, "kinds", nil, "fault kinds to draw from, e.g. partition,redis-blip (default: every kind the topology can take)")
	f.DurationVar(&b.MinDuration, "min-duration", b.MinDuration, "shortest workload (publishing time)")
	f.DurationVar(&b.MaxDuration, "max-duration", b.MaxDuration, "longest workload (publishing time)")
	f.DurationVar(&b.Quiesce, "quiesce", b.Quiesce, "each run's bound on the wait for acks and deliveries after publishing")
	f.IntVar(&b.MaxClients, "max-clients", b.MaxClients, "clients per run at most (each run has 2..max)")
	f.Float64Var(&b.MaxRate, "max-rate", b.MaxRate, "publishes per second at most (each run has 1..max, plus up to 2 bursts)")
	f.Float64Var(&b.MaxLeaves, "max-leaves", b.MaxLeaves, "churn: leaves per second at most, each rejoined 0.5-3s later (half the runs churn; 0: no leaves)")
	f.Float64Var(&b.MaxReconnects, "max-reconnects", b.MaxReconnects, "churn: reconnects per second at most (0: none)")
	f.StringVar(&opts.OutDir, "out", "", "directory for the failing runs and summary.json (default reports/explore/TOPOLOGY-seedN)")
	f.StringVar(&opts.WorkDir, "workdir", "", "directory for the labs' logs and Redis data, one directory per run, kept (default: temporary, removed)")
	f.StringArrayVar(&opts.GatewayArgs, "gateway-arg", nil, "extra flag for every gateway, written into each scenario's gateway_args (repeatable)")
	f.BoolVar(&quiet, "quiet", false, "no live progress lines on stderr")
	return cmd
}

// replayCommand is the command line that replays a minimal scenario: this
// binary's `run`, with the environment that chose the binary and its
// mutants (GEOLAB_BIN, GEOLAB_FAULTY) when they are set.
func replayCommand(path string, seed int64) string {
	var env []string
	for _, k := range []string{"GEOLAB_FAULTY", geolabbin.Env} {
		if v := os.Getenv(k); v != "" {
			env = append(env, k+"="+shellQuote(v))
		}
	}
	bin := "geolab"
	if exe, err := os.Executable(); err == nil && !strings.Contains(exe, string(filepath.Separator)+"go-build") {
		bin = exe // not a 'go run' binary, which is gone by then
	}
	return strings.Join(append(env, shellQuote(bin), "run", shellQuote(path), "--seed", fmt.Sprint(seed)), " ")
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
