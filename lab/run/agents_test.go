package run_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/geolab/geolab/internal/harness"
	"github.com/geolab/geolab/lab"
	"github.com/geolab/geolab/lab/expect"
	"github.com/geolab/geolab/lab/history"
	"github.com/geolab/geolab/lab/report"
	"github.com/geolab/geolab/lab/run"
	"github.com/geolab/geolab/lab/workload"
)

// One scenario played in this process, in one agent and in three agent
// processes gives the same plan digest and the same verdict and counts;
// with agents, the merged history holds every client's records once, its
// meta and the report name every agent with its clock offset and bound,
// and the report states the bound of latencies across agents.
func TestAgentsGiveTheSameDigestAndVerdict(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a lab three times, and agent processes")
	}
	sc := churnScenario(t, workload.Spec{Clients: 9, FederatedRooms: 3, LocalRooms: 1, PublishRate: 20,
		Duration: 4 * time.Second, Quiesce: 15 * time.Second, Churn: workload.Churn{Leaves: 1, Reconnects: 1}})
	for _, e := range []string{"duplicated == 0", "reordered == 0", "gaps == 0", "region_order == 0", "leaked == 0"} {
		x, err := expect.Parse(e)
		if err != nil {
			t.Fatal(err)
		}
		sc.Expect = append(sc.Expect, x)
	}
	type result struct {
		out  *run.Outcome
		dir  string
		hist *history.History
	}
	results := map[int]result{}
	for _, n := range []int{0, 1, 3} {
		dir := filepath.Join(t.TempDir(), "out")
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		out, err := run.Scenario(ctx, sc, run.Options{OutDir: dir, Lab: harness.Options(t, lab.Options{}), Agents: n, Version: "dev"})
		cancel()
		if err != nil {
			t.Fatalf("--agents %d: %v", n, err)
		}
		h, err := history.Load(filepath.Join(dir, "history.jsonl"))
		if err != nil {
			t.Fatalf("--agents %d: %v", n, err)
		}
		results[n] = result{out, dir, h}
	}
	base := results[0].out
	if !base.Passed() {
		t.Fatalf("in process: %v", base.Failed())
	}
	for _, n := range []int{1, 3} {
		r := results[n]
		if r.out.Digest != base.Digest {
			t.Errorf("--agents %d: plan digest %s, in process %s", n, r.out.Digest, base.Digest)
		}
		if r.out.Passed() != base.Passed() {
			t.Errorf("--agents %d: verdict %v (%v), in process %v", n, r.out.Passed(), r.out.Failed(), base.Passed())
		}
		got, want := r.out.Result.Counts, base.Result.Counts
		if got.Published != want.Published || got.Published != len(workload.NewPlan(sc.Workload, sc.Topology, sc.Seed).Publishes) {
			t.Errorf("--agents %d: %d publishes acked, in process %d", n, got.Published, want.Published)
		}
		if got.Lost != 0 || got.Duplicated != 0 || got.Reordered != 0 {
			t.Errorf("--agents %d: lost %d, duplicated %d, reordered %d", n, got.Lost, got.Duplicated, got.Reordered)
		}
		// Every client of the plan is in the merged history, each in one
		// agent only.
		clients := map[string]bool{}
		for _, e := range r.hist.Events {
			if e.Kind == history.KindFrame {
				clients[e.Client] = true
			}
		}
		for _, c := range workload.NewPlan(sc.Workload, sc.Topology, sc.Seed).Clients {
			if !clients[c.Name] {
				t.Errorf("--agents %d: client %s has no frame in the merged history", n, c.Name)
			}
		}
		agents := r.hist.Meta.Agents
		if len(agents) != n {
			t.Fatalf("--agents %d: meta has %d agents: %+v", n, len(agents), agents)
		}
		total := 0
		for _, a := range agents {
			total += a.Clients
			if a.Samples < 2 || a.Bound <= 0 || time.Duration(a.Bound) > 100*time.Millisecond || a.RTT <= 0 {
				t.Errorf("--agents %d: %s's clock %+v: want samples, and a bound above 0 and under 100ms on one machine", n, a.Name, a)
			}
			// One machine, one clock: the true offset is 0.
			if off := time.Duration(a.Offset); off-time.Duration(a.Bound) > 0 || off+time.Duration(a.Bound) < 0 {
				t.Errorf("--agents %d: %s's offset %s ± %s does not hold 0, the offset of a clock to itself", n, a.Name, off, time.Duration(a.Bound))
			}
		}
		if total != sc.Workload.Clients {
			t.Errorf("--agents %d: the agents ran %d clients, the plan has %d", n, total, sc.Workload.Clients)
		}
		in, err := report.ReadJSON(filepath.Join(r.dir, report.JSONFile))
		if err != nil {
			t.Fatal(err)
		}
		if len(in.Agents) != n {
			t.Errorf("--agents %d: report.json has %d agents", n, len(in.Agents))
		}
		page, err := os.ReadFile(filepath.Join(r.dir, report.HTMLFile))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"Clock offset (ms)", "Bound (± ms)", ">agent-1<", "exact only within"} {
			if !strings.Contains(string(page), want) {
				t.Errorf("--agents %d: report.html does not show %q", n, want)
			}
		}
	}
	if len(results[0].hist.Meta.Agents) != 0 {
		t.Errorf("in process: meta names agents %+v", results[0].hist.Meta.Agents)
	}
}

// More clients than one process drives need agents, at most
// workload.MaxClients each: refused, naming how many agents would do,
// before any lab starts.
func TestMoreClientsThanOneProcessNeedAgents(t *testing.T) {
	sc := churnScenario(t, workload.Spec{Clients: 4500, FederatedRooms: 3, PublishRate: 1, Duration: time.Second})
	for _, n := range []int{0, 2} {
		_, err := run.Scenario(context.Background(), sc, run.Options{OutDir: t.TempDir(), Agents: n})
		if err == nil || !strings.Contains(err.Error(), "more than the 2000 one process drives: run them in 3 workload agents or more") {
			t.Errorf("--agents %d: got %v, want a refusal naming 3 agents", n, err)
		}
	}
	too := workload.Spec{Clients: workload.MaxPlanClients + 1, FederatedRooms: 1, PublishRate: 1, Duration: time.Second}
	too.Defaults()
	if err := too.Validate(); err == nil || !strings.Contains(err.Error(), "clients: want 1..100000 (more than 2000 need workload agents") {
		t.Errorf("a plan of %d clients: got %v", too.Clients, err)
	}
}
