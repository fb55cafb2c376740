// Package speclab is the chaos suite's vocabulary: scenarios built in Go
// from the shipped topologies, played against a real lab by lab/run, and
// read back as checker counts; plus small probes of the lab itself (gateway
// metrics, Redis keys). Specs under specs/ assert on what it returns, never
// on sleeps.
package speclab

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/geolab/geolab/lab"
	"github.com/geolab/geolab/lab/expect"
	"github.com/geolab/geolab/lab/fault"
	"github.com/geolab/geolab/lab/run"
	"github.com/geolab/geolab/lab/scenario"
	"github.com/geolab/geolab/lab/topology"
	"github.com/geolab/geolab/lab/workload"
)

// Root is the repository's root directory.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Topology loads topologies/NAME.yaml.
func Topology(name string) (*topology.Topology, error) {
	return topology.Load(filepath.Join(Root(), "topologies", name+".yaml"))
}

// Workload is the suite's default workload: 24 clients, 6 federated rooms,
// one local room per region, 40 publishes/s for d, 240-byte payloads.
func Workload(d time.Duration) workload.Spec {
	return workload.Spec{Clients: 24, FederatedRooms: 6, LocalRooms: 1, PublishRate: 40, PayloadBytes: 240, Duration: d,
		Quiesce: 45 * time.Second}
}

// At is a timeline step: spec injected at offset at.
func At(at time.Duration, spec fault.Spec) scenario.Step { return scenario.Step{At: at, Fault: spec} }

// Scenario builds a scenario over topologies/TOPO.yaml.
func Scenario(name, topo string, wl workload.Spec, seed int64, steps ...scenario.Step) (*scenario.Scenario, error) {
	t, err := Topology(topo)
	if err != nil {
		return nil, err
	}
	wl.Defaults()
	if err := wl.Validate(); err != nil {
		return nil, err
	}
	for _, st := range steps {
		if err := fault.Validate(st.Fault, t); err != nil {
			return nil, err
		}
	}
	lost, _ := expect.Parse("lost == 0")
	return &scenario.Scenario{Name: name, TopologyPath: topo, Topology: t, Seed: seed, Workload: wl,
		Timeline: steps, Expect: []expect.Expectation{lost}}, nil
}

// Play runs sc, writing its history and reports under reports/specs/NAME.
func Play(sc *scenario.Scenario, gatewayArgs []string, inspect func(context.Context, *lab.Lab) error) (*run.Outcome, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	return run.Scenario(ctx, sc, run.Options{
		OutDir:  filepath.Join(Root(), "reports", "specs", sc.Name),
		Lab:     LabOptions(gatewayArgs...),
		Inspect: inspect,
		Command: "make chaos (spec " + sc.Name + ")",
	})
}

// Metric sums a Prometheus counter or gauge named name over every series a
// /metrics page at addr shows.
func Metric(addr, name string) (float64, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sum, found := 0.0, false
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("metric %s: %q: %w", name, line, err)
		}
		sum, found = sum+v, true
	}
	if !found {
		return 0, fmt.Errorf("metric %s not on %s/metrics", name, addr)
	}
	return sum, sc.Err()
}

// GatewayMetric sums a metric over every gateway of the lab.
func GatewayMetric(l *lab.Lab, name string) (float64, error) {
	total := 0.0
	for _, r := range l.Topology().RegionNames() {
		for _, g := range l.Region(r).Gateways() {
			v, err := Metric(g.Listen, name)
			if err != nil {
				return 0, err
			}
			total += v
		}
	}
	return total, nil
}

// Summary formats the counts a spec is judged on, for the suite's table.
func Summary(o *run.Outcome) string {
	c := o.Result.Counts
	return fmt.Sprintf("published %d, delivered %d, lost %d, duplicated %d, reordered %d, gaps %d, region_order %d, announced %d, retried %d, failovers %d",
		c.Published, c.Delivered, c.Lost, c.Duplicated, c.Reordered, c.Gaps, c.RegionOrder, c.UnrecoverableAnnounced, c.Retried, c.Failovers)
}

// Faulty is the breakage the lab's binaries run with (GEOLAB_FAULTY, read
// only by a binary built with -tags faulty), "" normally.
func Faulty() string { return os.Getenv("GEOLAB_FAULTY") }

// HistoryOnce reads every room's history stream in every region of the lab
// and fails if any holds an event twice (the same origin, epoch and oseq:
// an apply that was not idempotent, G3/G7). It returns how many events each
// region holds of its own origin: the events its gateways created, which a
// spec compares with the acked publishes (a retry that became a second
// event, G4, makes more).
func HistoryOnce(ctx context.Context, l *lab.Lab) (own int, err error) {
	for _, region := range l.Topology().RegionNames() {
		rc := redis.NewClient(&redis.Options{Addr: l.Region(region).Redis().Addr()})
		keys, err := rc.Keys(ctx, "geolab:h:{*}").Result()
		if err != nil {
			rc.Close()
			return 0, fmt.Errorf("history of %s: %w", region, err)
		}
		for _, k := range keys {
			entries, err := rc.XRange(ctx, k, "-", "+").Result()
			if err != nil {
				rc.Close()
				return 0, fmt.Errorf("history of %s %s: %w", region, k, err)
			}
			seen := map[string]bool{}
			for _, e := range entries {
				id := fmt.Sprint(e.Values["o"], "/", e.Values["e"], "/", e.Values["q"])
				if seen[id] {
					rc.Close()
					return 0, fmt.Errorf("region %s holds event %s of %s twice (stream entry %s)", region, id, k, e.ID)
				}
				seen[id] = true
				if fmt.Sprint(e.Values["o"]) == region {
					own++
				}
			}
		}
		rc.Close()
	}
	return own, nil
}

// Provider is the provider the specs run on: $PROVIDER, or process when it
// is unset.
func Provider() string {
	if p := os.Getenv("PROVIDER"); p != "" {
		return p
	}
	return "process"
}

// LabOptions are the lab options every spec uses: the provider (Provider)
// and extra gateway flags.
func LabOptions(gatewayArgs ...string) lab.Options {
	return lab.Options{Provider: Provider(), GatewayArgs: gatewayArgs}
}
