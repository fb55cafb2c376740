// Package run plays a scenario against a real lab and judges it:
//
//	scenario ─▶ lab.Start ─▶ workload (seeded clients) + timeline (faults)
//	         ─▶ history.jsonl ─▶ check ─▶ expectations ─▶ report.json, report.html, junit.xml
//
// The same scenario and seed give the same clients, rooms, publish schedule
// and fault timeline (Plan.Digest shows it); what the system does with them
// is what the run measures.
package run

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/geolab/geolab/gateway"
	"github.com/geolab/geolab/gateway/broker"
	"github.com/geolab/geolab/gateway/client"
	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/lab"
	"github.com/geolab/geolab/lab/check"
	"github.com/geolab/geolab/lab/expect"
	"github.com/geolab/geolab/lab/fault"
	"github.com/geolab/geolab/lab/history"
	"github.com/geolab/geolab/lab/invariant"
	"github.com/geolab/geolab/lab/provider"
	"github.com/geolab/geolab/lab/report"
	"github.com/geolab/geolab/lab/scenario"
	"github.com/geolab/geolab/lab/topology"
	"github.com/geolab/geolab/lab/workload"
)

// Options configure a run.
type Options struct {
	// Seed overrides the scenario's seed when Seeded is true.
	Seed   int64
	Seeded bool
	// OutDir receives history.jsonl and the reports (default
	// reports/NAME-seedN).
	OutDir string
	// Progress receives a live progress line each second (nil: none).
	Progress io.Writer
	// Command is the command line, shown in the report.
	Command string
	// Lab options (binary, work dir, logger); GatewayArgs are appended to
	// the scenario's.
	Lab lab.Options
	// Inspect, when set, is called after the run quiesced and before the
	// lab goes down, to look at the lab itself (Redis keys, metrics); its
	// error is kept in Outcome.Errors and InspectErr.
	Inspect func(ctx context.Context, l *lab.Lab) error
	// Logger receives the run's own logs.
	Logger *slog.Logger
	// Agents, above 0, runs the plan's clients in that many workload
	// agents (docs/agents.md): client i in the (i mod Agents)-th to join.
	// The leak and fence probes stay in this process. 0: every client runs
	// here.
	Agents int
	// AgentListen is the address agents dial (default DefaultAgentListen;
	// with AgentsOn swarm, the address of this node's docker_gwbridge, port
	// 0: provider.AgentTasks.AgentHost).
	AgentListen string
	// AgentsElsewhere waits for Agents agents started by hand (geolab
	// agent --controller) instead of starting them as local processes.
	AgentsElsewhere bool
	// AgentsOn says where the run starts its agents: AgentsLocal
	// (processes of this machine) or AgentsSwarm (a swarm service of the
	// lab's swarm, docs/swarm.md "Workload agents"). Default: AgentsSwarm
	// when the lab is a swarm lab (Lab.Provider swarm), else AgentsLocal.
	AgentsOn string
	// Version is this geolab build: agents of another build are refused
	// (default "dev", the version of a geolab built without -ldflags).
	Version string
}

// Where a run starts its agents (Options.AgentsOn).
const (
	AgentsLocal = "local" // geolab agent processes of this machine
	AgentsSwarm = "swarm" // a service of the lab's swarm, one task an agent
)

// DefaultAgentListen is where the agents' controller listens by default:
// this machine only.
const DefaultAgentListen = "127.0.0.1:0"

// agentsOn fills in and checks opts.AgentsOn.
func (opts *Options) agentsOn() error {
	if opts.AgentsOn == "" {
		opts.AgentsOn = AgentsLocal
		if opts.Lab.Provider == provider.SwarmName && opts.Agents > 0 && !opts.AgentsElsewhere {
			opts.AgentsOn = AgentsSwarm
		}
	}
	switch opts.AgentsOn {
	case AgentsLocal:
		return nil
	case AgentsSwarm:
	default:
		return fmt.Errorf("--agents-on %q: want local or swarm", opts.AgentsOn)
	}
	switch {
	case opts.Agents < 1:
		return errors.New("--agents-on swarm needs --agents N (N > 0)")
	case opts.AgentsElsewhere:
		return errors.New("--agents-on swarm starts the agents itself: it does not go with --agents-elsewhere")
	case opts.Lab.Provider != provider.SwarmName:
		p := opts.Lab.Provider
		if p == "" {
			p = provider.ProcessName
		}
		return fmt.Errorf("--agents-on swarm needs a swarm lab (--provider swarm), not --provider %s", p)
	}
	if opts.AgentListen == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(opts.AgentListen)
	if err != nil {
		return fmt.Errorf("--listen %q: want HOST:PORT: %v", opts.AgentListen, err)
	}
	ip, err := netip.ParseAddr(host)
	switch {
	case err == nil && ip.IsLoopback():
		return fmt.Errorf("--listen %s: the agents' tasks cannot reach this machine's loopback: leave --listen out (this node's docker_gwbridge address) or give an address of this machine they reach (docs/swarm.md)", opts.AgentListen)
	case err == nil && ip.IsUnspecified():
		return fmt.Errorf("--listen %s: not every interface: give the one address of this machine the agents' tasks reach, or leave --listen out (this node's docker_gwbridge address; docs/swarm.md)", opts.AgentListen)
	}
	return nil
}

// Outcome is what a run produced.
type Outcome struct {
	Dir      string
	Seed     int64
	Digest   string // of the plan: the same seed gives the same digest
	Result   *check.Result
	Outcomes []expect.Outcome
	// Errors are faults that could not be injected or healed, and quiesce
	// failures: the run still judged what it recorded.
	Errors []string
	// InspectErr is what Options.Inspect returned.
	InspectErr error
	// Agents are the workload agents' clocks (none without agents).
	Agents []history.AgentClock
}

// Passed reports whether every expectation held.
func (o *Outcome) Passed() bool {
	for _, x := range o.Outcomes {
		if !x.Pass {
			return false
		}
	}
	return true
}

// Failed lists the failed expectations' messages.
func (o *Outcome) Failed() []string {
	var out []string
	for _, x := range o.Outcomes {
		if !x.Pass {
			out = append(out, x.Message)
		}
	}
	return out
}

// Scenario runs sc and writes its reports. An error means the run could not
// be carried out (the lab did not start, the history could not be written);
// failed expectations are in the Outcome, not an error.
func Scenario(ctx context.Context, sc *scenario.Scenario, opts Options) (*Outcome, error) {
	seed := sc.Seed
	if opts.Seeded {
		seed = opts.Seed
	}
	if opts.OutDir == "" {
		opts.OutDir = filepath.Join("reports", fmt.Sprintf("%s-seed%d", sc.Name, seed))
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	if err := opts.agentsOn(); err != nil {
		return nil, fmt.Errorf("run %s: %w", sc.Name, err)
	}
	if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	if procs := max(1, opts.Agents); (sc.Workload.Clients+procs-1)/procs > workload.MaxClients {
		return nil, fmt.Errorf("run %s: %d clients in %d process(es) is more than the %d one process drives: run them in %d workload agents or more (docs/agents.md)",
			sc.Name, sc.Workload.Clients, procs, workload.MaxClients, (sc.Workload.Clients+workload.MaxClients-1)/workload.MaxClients)
	}
	plan := workload.NewPlan(sc.Workload, sc.Topology, seed)
	out := &Outcome{Dir: opts.OutDir, Seed: seed, Digest: Digest(plan, sc)}
	started := time.Now()

	lopts := opts.Lab
	lopts.GatewayArgs = append(append([]string{}, sc.GatewayArgs...), lopts.GatewayArgs...)
	lopts.AgentTasks = opts.AgentsOn == AgentsSwarm
	l, err := lab.Start(ctx, sc.Topology, lopts)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", sc.Name, err)
	}
	defer l.Close()

	histPath := filepath.Join(opts.OutDir, "history.jsonl")
	ownPath := histPath // the controller's own records (with agents: merged into histPath at the end)
	if opts.Agents > 0 {
		if err := os.MkdirAll(filepath.Join(opts.OutDir, "agents"), 0o755); err != nil {
			return nil, fmt.Errorf("run: %w", err)
		}
		ownPath = filepath.Join(opts.OutDir, "agents", "controller.history.jsonl")
	}
	hf, err := os.Create(ownPath)
	if err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	defer hf.Close()
	meta := history.Meta{Run: filepath.Base(opts.OutDir), Seed: seed, Topology: sc.Topology.Name,
		Regions: sc.Topology.RegionNames(), Federate: map[string][]string{}, Start: l.Started().UTC(),
		LagWarn: history.Duration(l.Lag().Warn), LagAlert: history.Duration(l.Lag().Alert)}
	for _, r := range sc.Topology.Regions {
		meta.Federate[r.Name] = r.Federate
	}
	gwArgs := append(slices.Clone(sc.GatewayArgs), opts.Lab.GatewayArgs...)
	maxLen, maxAge := historyBounds(gwArgs)
	meta.HistoryMaxLen, meta.HistoryMaxAge = maxLen, history.Duration(maxAge)
	hist, err := history.NewWriter(hf, l.Started(), meta)
	if err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	var errMu sync.Mutex
	note := func(format string, args ...any) {
		errMu.Lock()
		out.Errors = append(out.Errors, fmt.Sprintf(format, args...))
		errMu.Unlock()
	}
	l.Faults().Observe(func(e fault.Event) {
		hist.Fault(e.ID, e.Action, e.Kind, e.Target, specArgs(e.Spec), e.At)
		if e.Err != nil {
			note("%v", e.Err)
		}
	})

	share := workload.Whole(plan)
	var ag *agents
	if opts.Agents > 0 {
		if ag, err = startAgents(ctx, sc, opts, plan, l, meta, seed, out.Digest); err != nil {
			return nil, fmt.Errorf("run %s: %w", sc.Name, err)
		}
		defer ag.kill()
		share = workload.Share{Probes: true, Fence: true}
	}
	wl, err := workload.StartShare(ctx, sc.Workload, plan, l, hist, seed, share)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", sc.Name, err)
	}
	progress := wl.Progress
	var agentsFailed <-chan struct{}
	if ag != nil {
		defer wl.Close()
		if err := ag.join(ctx, opts); err != nil {
			return nil, fmt.Errorf("run %s: %w", sc.Name, err)
		}
		agentsFailed = ag.ctrl.Failed()
		progress = func() workload.Progress {
			p := ag.ctrl.Progress()
			p.Probes = len(plan.Probes)
			return p
		}
	}
	// The slow probe goes first, before the timeline starts: no fault can
	// take it, and it holds nothing of the workload up (it publishes into a
	// room of its own).
	slow := wl.SlowProbe(ctx, gatewayLimits(gwArgs))
	if slow.Outcome == workload.SlowUnjudged {
		note("slow probe not judged: %s", slow.Detail)
	}
	if opts.Progress != nil && slow.Outcome != workload.SlowNotPlanned {
		fmt.Fprintf(opts.Progress, "slow probe: %s in %s: %s\n", slow.Outcome, slow.Took.Round(time.Millisecond), slow.Detail)
	}
	sampleCtx, stopSampling := context.WithCancel(ctx)
	var bg sync.WaitGroup
	bg.Add(1)
	go func() { defer bg.Done(); sampleLag(sampleCtx, l, hist) }()
	if opts.Progress != nil {
		bg.Add(1)
		go func() { defer bg.Done(); showProgress(sampleCtx, opts.Progress, progress, l, sc.Workload.Duration) }()
	}

	start := time.Now()
	if ag != nil {
		// Half a second ahead, so that every agent has the start before it
		// comes, however far away.
		start = start.Add(agentStartLead)
		if err := ag.ctrl.Start(start); err != nil {
			stopSampling()
			bg.Wait()
			return nil, fmt.Errorf("run %s: %w", sc.Name, err)
		}
	}
	wl.StartChurn(ctx, start)
	wl.StartFence(ctx, start)
	bg.Add(1)
	go func() { defer bg.Done(); playTimeline(sampleCtx, l, sc.Timeline, start, note) }()
	wl.Publish(ctx, start)
	if d := time.Until(start.Add(sc.Workload.Duration)); d > 0 {
		select {
		case <-time.After(d): // the end of the scenario's publishing window
		case <-ctx.Done():
		case <-agentsFailed:
		}
	}
	if ag != nil && ag.ctrl.Err() != nil {
		stopSampling()
		bg.Wait()
		return nil, fmt.Errorf("run %s: %w", sc.Name, ag.ctrl.Err())
	}
	if err := l.Heal(); err != nil {
		note("heal at the end of publishing: %v", err)
	}
	if err := wl.Quiesce(ctx, time.Second); err != nil {
		note("%v", err)
	}
	if ag != nil {
		notes, err := ag.ctrl.Quiesce(ctx, sc.Workload.Quiesce+time.Minute)
		if err != nil {
			stopSampling()
			bg.Wait()
			return nil, fmt.Errorf("run %s: %w", sc.Name, err)
		}
		for _, n := range notes {
			note("%s", n)
		}
	}
	for _, n := range wl.ChurnNotes() {
		note("churn: %s", n)
	}
	if err := wl.SweepProbes(ctx); err != nil {
		note("%v", err)
	}
	fence := wl.Fence(ctx)
	if fence.Outcome == workload.FenceUnjudged {
		note("fence probe not judged: %s", fence.Detail)
	}
	if opts.Inspect != nil {
		if out.InspectErr = opts.Inspect(ctx, l); out.InspectErr != nil {
			note("inspect: %v", out.InspectErr)
		}
	}
	// The lab itself, for what no client sees (docs/checker.md, "Lab counts").
	iopts := invariant.Options{PatternMode: patternMode(gwArgs)}
	if plan.Slow != nil {
		iopts.LabRooms = []string{plan.Slow.Room}
	}
	inv, invErr := invariant.Check(ctx, l, iopts)
	if invErr != nil {
		note("lab counts: %v", invErr)
	}
	stopSampling()
	bg.Wait()
	// The end record comes before the clients are closed: a client still
	// disconnected or failing over at the end is judged so, not excused by
	// the close that follows.
	hist.End(time.Now())
	wl.Close()
	if err := hist.Close(); err != nil {
		return nil, fmt.Errorf("run: history: %w", err)
	}
	if err := hf.Close(); err != nil {
		return nil, fmt.Errorf("run: history: %w", err)
	}
	if ag != nil {
		if err := ag.merge(ctx, histPath, ownPath, meta, l.Started(), sc.Workload.Quiesce); err != nil {
			return nil, fmt.Errorf("run %s: %w", sc.Name, err)
		}
		ag.close()
	}
	_ = l.Close()
	if opts.Progress != nil {
		fmt.Fprintf(opts.Progress, "\nchecking %s …\n", histPath)
	}

	h, err := history.Load(histPath)
	if err != nil {
		return nil, fmt.Errorf("run: read back history: %w", err)
	}
	out.Result = check.Check(h, check.Options{})
	addLabCounts(out.Result, inv)
	if invErr == nil {
		addReplicatedAcks(out.Result, h, inv, sc.Topology, iopts.LabRooms)
	}
	addFence(out.Result, fence)
	addSlow(out.Result, slow)
	in := report.Input{Scenario: sc.Name, Description: sc.Description, Topology: sc.Topology.Name, Seed: seed,
		Started: started, Command: opts.Command, Result: out.Result, Agents: h.Meta.Agents}
	out.Agents = h.Meta.Agents
	for _, e := range sc.Expect {
		o := expect.Evaluate(e, out.Result)
		out.Outcomes = append(out.Outcomes, o)
		in.Outcomes = append(in.Outcomes, report.Outcome{Expr: o.Expr, Value: o.Value, Pass: o.Pass, Message: o.Message})
	}
	in.Description += "\n\nPlan digest " + out.Digest + " (the same seed gives the same digest)."
	for _, e := range out.Errors {
		in.Description += "\nNote: " + e
	}
	if err := report.WriteAll(opts.OutDir, in); err != nil {
		return out, fmt.Errorf("run: reports: %w", err)
	}
	return out, nil
}

// historyBounds returns the room-history bounds gateways started with args
// keep (the last --history-maxlen and --history-max-age, as the flag package
// takes them, else the gateway's defaults); 0 length when a value does not
// parse (the gateway would refuse it: unknown).
func historyBounds(args []string) (maxLen int64, maxAge time.Duration) {
	d := broker.DefaultHistory()
	maxLen, maxAge = d.MaxLen, d.MaxAge
	for i := 0; i < len(args); i++ {
		name, val, hasVal := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		if name != "history-maxlen" && name != "history-max-age" {
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				return 0, 0
			}
			i++
			val = args[i]
		}
		var err error
		if name == "history-maxlen" {
			maxLen, err = strconv.ParseInt(val, 10, 64)
		} else {
			maxAge, err = time.ParseDuration(val)
		}
		if err != nil {
			return 0, 0
		}
	}
	return maxLen, maxAge
}

// patternMode reports whether gateway flags put the gateways in pattern
// subscription mode on purpose.
func patternMode(args []string) bool {
	for i, a := range args {
		if a == "--subscribe-mode=pattern" || a == "--subscribe-mode" && i+1 < len(args) && args[i+1] == "pattern" {
			return true
		}
	}
	return false
}

// addReplicatedAcks counts, for every region of topo whose gateways run
// --durability replicated, the events its clients were acked there (the
// ack's origin, else the connection's region: the welcome's) that its own
// histories no longer hold (inv.HoldsOwn): replicated_acks_lost. Rooms of
// labRooms (the lab's own probes) are left out.
func addReplicatedAcks(r *check.Result, h *history.History, inv invariant.Counts, topo *topology.Topology, labRooms []string) {
	replicated := map[string]bool{}
	for _, reg := range topo.Regions {
		replicated[reg.Name] = reg.Redis.Durability == topology.DurabilityReplicated
	}
	type conn struct {
		client string
		n      int64
	}
	regionOf := map[conn]string{}
	judged := map[string]bool{}
	for i := range h.Events {
		e := &h.Events[i]
		if e.Kind != history.KindFrame || e.Dir != client.In {
			continue
		}
		switch e.Type {
		case protocol.TypeWelcome:
			regionOf[conn{e.Client, e.Conn}] = e.Region
		case protocol.TypeAck:
			origin := e.Origin
			if origin == "" {
				origin = regionOf[conn{e.Client, e.Conn}]
			}
			if e.EventID == "" || judged[e.EventID] || !replicated[origin] || slices.Contains(labRooms, e.Room) {
				continue
			}
			judged[e.EventID] = true
			if inv.HoldsOwn(origin, e.EventID) {
				continue
			}
			r.Counts.ReplicatedAcksLost++
			if len(r.Examples["replicated_acks_lost"]) < 5 {
				r.Examples["replicated_acks_lost"] = append(r.Examples["replicated_acks_lost"], check.Example{Client: e.Client, Room: e.Room, Event: e.EventID,
					T: history.Seconds(e.T), Text: fmt.Sprintf("%s was acked %s's publish %s in %s as event %s (oseq %d) by %s, whose gateways run --durability replicated, and %s's history no longer holds it: acked before a replica had it",
						e.Client, e.Client, e.ID, e.Room, e.EventID, e.Oseq, origin, origin)})
			}
		}
	}
}

// addLabCounts puts what the lab itself showed into r: its counts, and
// examples in words.
func addLabCounts(r *check.Result, inv invariant.Counts) {
	r.Counts.HistoryDuplicates = inv.HistoryDuplicates
	r.Counts.OutboxEchoes = inv.OutboxEchoes
	r.Counts.PatternSubscriptions = inv.PatternSubscriptions
	r.Counts.RetriesOvertaken = inv.RetriesOvertaken
	unmatched := max(0, inv.OwnEvents-inv.RetriesOvertaken-r.Counts.Published-r.Counts.Unacked)
	r.Counts.ExtraEvents = max(inv.Recreated, unmatched)
	if unmatched > inv.Recreated {
		if inv.Examples == nil {
			inv.Examples = map[string][]string{}
		}
		inv.Examples["extra_events"] = append(inv.Examples["extra_events"], fmt.Sprintf(
			"the regions' histories hold %d events of their own origin (%d of them retries that overtook their first attempt's event), but the clients made %d publishes (%d acked, %d never acked): %d more events than publishes",
			inv.OwnEvents, inv.RetriesOvertaken, r.Counts.Published+r.Counts.Unacked, r.Counts.Published, r.Counts.Unacked, unmatched))
	}
	if ex := inv.Examples["recreated"]; len(ex) > 0 {
		inv.Examples["extra_events"] = append(inv.Examples["extra_events"], ex...)
		delete(inv.Examples, "recreated")
	}
	for name, texts := range inv.Examples {
		for _, t := range texts {
			r.Examples[name] = append(r.Examples[name], check.Example{Text: t})
		}
	}
}

// addFence puts the fence probe's verdict into r (G11).
func addFence(r *check.Result, f workload.FenceResult) {
	if f.Outcome == workload.FenceFenced {
		r.Counts.SessionsFenced = 1
	}
	if f.Outcome == workload.FenceNotFenced {
		r.Counts.SessionsNotFenced = 1
		r.Examples["sessions_not_fenced"] = append(r.Examples["sessions_not_fenced"], check.Example{Text: f.Detail})
	}
}

// addSlow puts the slow probe's verdict into r (G10).
func addSlow(r *check.Result, s workload.SlowResult) {
	if s.Outcome == workload.SlowCut {
		r.Counts.SlowConsumersCut = 1
	}
	if s.Outcome == workload.SlowNotCut {
		r.Counts.SlowConsumersNotCut = 1
		if r.Examples == nil {
			r.Examples = map[string][]check.Example{}
		}
		r.Examples["slow_consumers_not_cut"] = append(r.Examples["slow_consumers_not_cut"], check.Example{Room: s.Plan.Room, Text: s.Detail})
	}
}

// gatewayLimits are the send queue and send buffer gateways started with
// args have (the last --send-queue and --send-buffer, as the flag package
// takes them, else the gateway's defaults), which size the slow probe's
// flood. A value that does not parse leaves the default: the gateway would
// refuse it and not start.
func gatewayLimits(args []string) workload.GatewayLimits {
	d := gateway.DefaultConfig()
	l := workload.GatewayLimits{SendQueue: d.SendQueue, SendBuffer: d.SendBuffer}
	for i := 0; i < len(args); i++ {
		name, val, hasVal := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		if name != "send-queue" && name != "send-buffer" {
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				break
			}
			i++
			val = args[i]
		}
		n, err := strconv.Atoi(val)
		if err != nil {
			continue
		}
		if name == "send-queue" {
			l.SendQueue = n
		} else {
			l.SendBuffer = n
		}
	}
	return l
}

// playTimeline injects each step at its offset from start.
func playTimeline(ctx context.Context, l *lab.Lab, steps []scenario.Step, start time.Time, note func(string, ...any)) {
	for _, st := range steps {
		select {
		case <-time.After(time.Until(start.Add(st.At))): // the timeline's clock
		case <-ctx.Done():
			return
		}
		if _, err := l.Inject(ctx, st.Fault); err != nil {
			note("timeline line %d: %v", st.Line, err)
		}
	}
}

// sampleLag records every bridge link's lag every 250 ms; a bridge that does
// not answer records its links as down.
func sampleLag(ctx context.Context, l *lab.Lab, hist *history.Writer) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	regions := l.Topology().RegionNames()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, r := range regions {
			if l.Region(r).Bridge() == nil {
				continue
			}
			st, err := l.BridgeStatus(ctx, r)
			now := time.Now()
			if err != nil {
				for _, from := range regions {
					if from != r {
						hist.Lag(r, from, math.NaN(), 0, history.LagDown, now)
					}
				}
				continue
			}
			for _, ln := range st.Feeds {
				state := ln.State
				if !ln.Up && state == history.LagOK {
					state = history.LagDown
				}
				hist.Lag(r, ln.Origin, ln.LagSeconds, ln.LagEvents, state, now)
			}
		}
	}
}

// specArgs flattens a fault spec's set fields for the history.
func specArgs(s fault.Spec) map[string]string {
	m := map[string]string{}
	set := func(k, v string) {
		if v != "" && v != "0" && v != "0s" && v != "false" {
			m[k] = v
		}
	}
	set("mode", s.Mode)
	set("direction", s.Direction)
	set("node", s.Node)
	set("link", s.Link)
	set("latency", s.Latency.String())
	set("jitter", s.Jitter.String())
	set("rate_kb", strconv.Itoa(s.RateKB))
	set("lose_data", strconv.FormatBool(s.LoseData))
	set("room", s.Room)
	set("clients", strconv.Itoa(s.Clients))
	set("for", s.For.String())
	return m
}

// Digest fingerprints what a seed decides: clients, rooms, the publish
// schedule, the churn schedule, the leak probes and the fault timeline.
func Digest(p *workload.Plan, sc *scenario.Scenario) string {
	h := sha256.New()
	for _, c := range p.Clients {
		fmt.Fprintln(h, c.Name, c.Home, c.Rooms)
	}
	for _, x := range p.Publishes {
		fmt.Fprintln(h, x.At, x.Client, x.Room, x.ID)
	}
	for _, x := range p.Churn {
		fmt.Fprintln(h, "churn", x.At, x.Client, x.Kind, x.Room)
	}
	for _, c := range p.Probes {
		fmt.Fprintln(h, "probe", c.Name, c.Home, c.Rooms)
	}
	for _, st := range sc.Timeline {
		fmt.Fprintf(h, "%s %+v\n", st.At, st.Fault)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// showProgress prints one line a second: time, connections, publishes,
// deliveries and active faults.
func showProgress(ctx context.Context, w io.Writer, progress func() workload.Progress, l *lab.Lab, total time.Duration) {
	start := time.Now()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p := progress()
		faults := ""
		for _, f := range l.Faults().List() {
			faults += " [" + f.ID + " " + f.Spec.Kind + " " + f.Target + "]"
		}
		phase := "publishing"
		if p.PublishingDone {
			phase = "quiescing"
		}
		fmt.Fprintf(w, "t=%3.0fs/%s %s: clients %d/%d up, sent %d/%d, acked %d, failed %d, delivered %d, reconnects %d%s\n",
			time.Since(start).Seconds(), total, phase, p.Connected, p.Clients, p.Sent, p.Scheduled, p.Acked, p.Failed,
			p.Delivered, p.Reconnects, faults)
	}
}
