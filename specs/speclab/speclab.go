// Package speclab is the chaos suite's vocabulary, so that a spec reads
// like the guarantee it proves (docs/guarantees.md#writing-a-spec):
//
//   - a Spec is a scenario written in Go — a shipped topology, a seeded
//     Workload, a timeline of Steps (At and the fault constructors:
//     Partition, RedisBlip, GatewayKill, …) — and Play runs it against a
//     real lab (lab/run) and returns the checker's counts;
//   - ExpectClean and ExpectNothingSilent assert the counts every run must
//     show;
//   - StartLab brings a lab up for a spec that drives it itself;
//   - probes look at the lab itself: gateway metrics (Metric,
//     GatewayMetric), Redis keys (HistoryOnce, HistoriesOnce,
//     OutboxesHoldOnlyOwn).
//
// Play, StartLab and the Expect functions are for Ginkgo specs: they fail
// the running spec through Gomega (the suite's RegisterFailHandler), and
// Play records report entries, so call them only from inside a spec.
// Spec.Run and the probes return errors instead. The package imports Ginkgo,
// which registers its flags when imported: only test packages import it.
// Specs assert on what it returns, never on sleeps.
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

	"github.com/geolab/geolab/gateway/broker"
	"github.com/geolab/geolab/lab"
	"github.com/geolab/geolab/lab/invariant"
	"github.com/geolab/geolab/lab/provider"
	"github.com/geolab/geolab/lab/run"
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
	return fmt.Sprintf("published %d, delivered %d, lost %d, duplicated %d, reordered %d, gaps %d, region_order %d, leaked %d, announced %d, unwarranted %d, not_resumed %d, ended_disconnected %d, retried %d, failovers %d",
		c.Published, c.Delivered, c.Lost, c.Duplicated, c.Reordered, c.Gaps, c.RegionOrder, c.Leaked, c.UnrecoverableAnnounced,
		c.UnwarrantedRecoveredFalse, c.NotResumed, c.EndedDisconnected, c.Retried, c.Failovers)
}

// Faulty is the breakage the lab's binaries run with (GEOLAB_FAULTY, read
// only by a binary built with -tags faulty), "" normally.
func Faulty() string { return os.Getenv("GEOLAB_FAULTY") }

// HistoryOnce reads every room's history stream in every region of the lab
// and fails if any holds an event twice (the same origin, epoch and oseq:
// an apply that was not idempotent, G3/G7). It returns how many events each
// region holds of its own origin: the events its gateways created, which a
// spec compares with the acked publishes (a retry that became a second
// event, G4, makes more); the slow probe's own publishes are not counted. It is lab/invariant's reading, which every run
// also makes (the history_duplicates and extra_events counts).
func HistoryOnce(ctx context.Context, l *lab.Lab) (own int, err error) {
	var probeRooms []string // the slow probe's room, whichever region it ran in: its events are the lab's, not the clients'
	for _, r := range l.Topology().RegionNames() {
		probeRooms = append(probeRooms, workload.SlowRoom(r))
	}
	c, err := invariant.Check(ctx, l, invariant.Options{PatternMode: true, LabRooms: probeRooms})
	if err != nil {
		return 0, err
	}
	if c.HistoryDuplicates > 0 {
		return 0, fmt.Errorf("%d history entries repeat an event: %s", c.HistoryDuplicates, c.Examples["history_duplicates"][0])
	}
	return c.OwnEvents, nil
}

// HistoriesOnce is an Inspect that runs HistoryOnce and stores in *own how
// many events the regions created, for the spec to compare with the acked
// publishes (check.Counts.Published).
func HistoriesOnce(own *int) func(context.Context, *lab.Lab) error {
	return func(ctx context.Context, l *lab.Lab) (err error) {
		*own, err = HistoryOnce(ctx, l)
		return err
	}
}

// OutboxesHoldOnlyOwn reads every region's outbox and fails if one is empty
// (nothing was federated) or holds an event of another origin: a bridge
// that echoed what it applied (G7's loop prevention). On a Redis Cluster
// region the outbox is the broker's partitions (broker.Layout.Outboxes),
// each read where its slot lives. It is an Inspect.
func OutboxesHoldOnlyOwn(ctx context.Context, l *lab.Lab) error {
	for _, r := range l.Topology().RegionNames() {
		if err := outboxHoldsOnlyOwn(ctx, l, r); err != nil {
			return err
		}
	}
	return nil
}

func outboxHoldsOnlyOwn(ctx context.Context, l *lab.Lab, region string) error {
	rdb, err := l.Region(region).RedisUniversalClient()
	if err != nil {
		return err
	}
	defer rdb.Close()
	held := 0
	for _, o := range broker.LayoutOf(rdb).Outboxes(region) {
		entries, err := rdb.XRange(ctx, o.Stream, "-", "+").Result()
		if err != nil {
			return fmt.Errorf("outbox of %s: XRANGE %s: %w", region, o.Stream, err)
		}
		held += len(entries)
		for _, e := range entries {
			if origin := fmt.Sprint(e.Values["o"]); origin != region {
				return fmt.Errorf("outbox of %s holds an event of origin %s (%s, entry %s): a bridge echoed", region, origin, o.Stream, e.ID)
			}
		}
	}
	if held == 0 {
		return fmt.Errorf("outbox of %s is empty: nothing was federated", region)
	}
	return nil
}

// Provider is the provider the specs run on: $PROVIDER (provider.Env), or
// process when it is unset.
func Provider() string {
	if p, ok := provider.FromEnv(); ok {
		return p
	}
	return provider.ProcessName
}

// LabOptions are the lab options every spec uses: the provider (Provider)
// and extra gateway flags.
func LabOptions(gatewayArgs ...string) lab.Options {
	return lab.Options{Provider: Provider(), GatewayArgs: gatewayArgs}
}
