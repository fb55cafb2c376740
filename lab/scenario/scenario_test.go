package scenario_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/geolab/geolab/lab/scenario"
	"github.com/geolab/geolab/lab/workload"
)

var topologies = filepath.Join("..", "..", "topologies")

func parse(topology, workloadYAML string) (*scenario.Scenario, error) {
	doc := "name: churn\ntopology: " + topology + "\nworkload:\n" + workloadYAML + "expect: [lost == 0]\n"
	return scenario.Parse([]byte(doc), topologies)
}

const base = "  clients: 4\n  federated_rooms: 2\n  local_rooms: 1\n  publish_rate: 5\n  duration: 10s\n"

// churn and leak_probes are read from the workload, with their defaults.
func TestParseChurnAndLeakProbes(t *testing.T) {
	sc, err := parse("two-region.yaml", base+"  churn: {leaves_per_second: 0.5, reconnects_per_second: 2}\n  leak_probes: false\n")
	if err != nil {
		t.Fatal(err)
	}
	want := workload.Churn{Leaves: 0.5, RejoinAfter: time.Second, Reconnects: 2}
	if sc.Workload.Churn != want {
		t.Errorf("churn = %+v, want %+v (rejoin_after defaulted)", sc.Workload.Churn, want)
	}
	if sc.Workload.LeakProbes == nil || *sc.Workload.LeakProbes || sc.Workload.LeakProbesOn(sc.Topology) {
		t.Errorf("leak_probes: false read as %v", sc.Workload.LeakProbes)
	}
}

// A wrong churn value, an unknown churn key or leak probes on one region
// are refused naming the field and its line.
func TestParseRefusesBadChurnNamingLineAndField(t *testing.T) {
	for _, c := range []struct {
		name, topology, yaml, want string
	}{
		{"rate", "two-region.yaml", "  churn: {leaves_per_second: 80}\n", "line 9: workload.churn.leaves_per_second: want 0..50, got 80"},
		{"rejoin_after", "two-region.yaml", "  churn:\n    leaves_per_second: 1\n    rejoin_after: 10s\n", "line 11: workload.churn.rejoin_after:"},
		{"unknown key", "two-region.yaml", "  churn: {leaves: 1}\n", "field leaves not found"},
		{"one region", "single-region.yaml", "  leak_probes: true\n", "line 9: workload.leak_probes: true needs a topology of two regions or more"},
	} {
		_, err := parse(c.topology, base+c.yaml)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", c.name, err, c.want)
		}
	}
}
