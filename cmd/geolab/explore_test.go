package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/geolab/geolab/internal/testbin"
	"github.com/geolab/geolab/lab/explore"
	"github.com/geolab/geolab/lab/geolabbin"
)

// Every bad invocation of explore is a usage error (exit 2) naming the
// flag, before any lab starts.
func TestExploreBadFlagsNameTheFlag(t *testing.T) {
	topo := "../../topologies/two-region.yaml"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{}, "want one TOPOLOGY file, got 0"},
		{[]string{"nope.yaml"}, "nope.yaml"},
		{[]string{topo, "--runs", "0"}, "--runs 0 must be in 1..100000"},
		{[]string{topo, "--runs", "100001"}, "--runs 100001 must be in 1..100000"},
		{[]string{topo, "--budget", "-1s"}, "--budget -1s must be in"},
		{[]string{topo, "--budget", "ten"}, `invalid argument "ten" for "--budget"`},
		{[]string{topo, "--shrink-budget", "800h"}, "--shrink-budget 800h0m0s must be in"},
		{[]string{topo, "--tries", "0"}, "--tries 0 must be in 1..20"},
		{[]string{topo, "--tries", "21"}, "--tries 21 must be in 1..20"},
		{[]string{topo, "--max-faults", "17"}, "--max-faults 17 must be in 0..16"},
		{[]string{topo, "--max-overlap", "5"}, "--max-overlap 5 must not be above --max-faults 4"},
		{[]string{topo, "--max-overlap", "0"}, "--max-overlap 0 must be at least 1"},
		{[]string{topo, "--min-duration", "1s"}, "--min-duration 1s must be at least 2s"},
		{[]string{topo, "--min-duration", "20s", "--max-duration", "10s"}, "--max-duration 10s must not be below --min-duration 20s"},
		{[]string{topo, "--quiesce", "0s"}, "--quiesce 0s must be in 1s..10m"},
		{[]string{topo, "--max-clients", "0"}, "--max-clients 0 must be in 1..2000"},
		{[]string{topo, "--max-rate", "0"}, "--max-rate 0 must be in 1..1000"},
		{[]string{topo, "--max-fault-duration", "500ms"}, "--max-fault-duration 500ms must not be below the shortest fault duration 1s"},
		{[]string{topo, "--max-leaves", "51"}, "--max-leaves 51 must be in 0..50"},
		{[]string{topo, "--max-reconnects", "-1"}, "--max-reconnects -1 must be in 0..50"},
		{[]string{topo, "--kinds", "partition,nope"}, `--kinds "nope": no such fault kind`},
	} {
		_, err := runCmd(t, append([]string{"explore"}, c.args...)...)
		var ee *exitError
		if err == nil || !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), c.want) {
			t.Errorf("explore %v: want exit 2 naming %q, got %v", c.args, c.want, err)
		}
	}
}

// A bound left at its default follows one the user gave.
func TestExploreDefaultBoundsFollowTheGivenOnes(t *testing.T) {
	// --max-faults 1 alone: --max-overlap follows it down; --max-duration
	// 5s alone: --min-duration follows it down. Both are usage-valid, so
	// the command gets as far as the topology, which does not exist.
	_, err := runCmd(t, "explore", "nope.yaml", "--max-faults", "1", "--max-duration", "5s")
	if err == nil || strings.Contains(err.Error(), "--max-overlap") || strings.Contains(err.Error(), "--min-duration") || !strings.Contains(err.Error(), "nope.yaml") {
		t.Fatalf("got %v", err)
	}
}

// One short run on a real lab (real redis-server, Toxiproxy, gateway
// processes): explore exits 0 (no violation) or 1 (a violation, shrunk)
// and writes its summary either way; a failing run has its minimal.yaml,
// which `geolab run` can load, and its replay command.
func TestExploreRunsARealLab(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a lab")
	}
	bin, err := testbin.Path()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	cmd := exec.Command(bin, "explore", "../../topologies/single-region.yaml", "--seed", "3", "--runs", "1",
		"--min-duration", "3s", "--max-duration", "3s", "--quiesce", "5s", "--max-faults", "1", "--max-fault-duration", "2s",
		"--max-clients", "4", "--shrink-budget", "1s", "--tries", "1", "--out", out, "--quiet")
	cmd.Env = append(os.Environ(), geolabbin.Env+"="+bin)
	b, err := cmd.CombinedOutput()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if code != 0 && code != 1 {
		t.Fatalf("want exit 0 or 1, got %d:\n%s", code, b)
	}
	if !strings.Contains(string(b), "geolab explore single-region seed 3: 1 run(s)") {
		t.Fatalf("no summary printed:\n%s", b)
	}
	var sum explore.Summary
	sb, err := os.ReadFile(filepath.Join(out, "summary.json"))
	if err != nil || json.Unmarshal(sb, &sum) != nil {
		t.Fatalf("summary.json: %v\n%s", err, sb)
	}
	if sum.Runs != 1 || len(sum.RunLog) != 1 || len(sum.RunLog[0].Faults) != 1 || (sum.Failing > 0) != (code == 1) {
		t.Fatalf("summary: %d runs, failing %d, exit %d, log %+v", sum.Runs, sum.Failing, code, sum.RunLog)
	}
	for _, f := range sum.Failures {
		for _, p := range []string{"original/report.json", "minimal/history.jsonl", "minimal.yaml", "replay.txt", "summary.json"} {
			if _, err := os.Stat(filepath.Join(f.Dir, p)); err != nil {
				t.Errorf("%s: %v", p, err)
			}
		}
		v := exec.Command(bin, "validate", f.MinimalYAML)
		if vb, err := v.CombinedOutput(); err != nil {
			t.Errorf("geolab validate minimal.yaml: %v\n%s", err, vb)
		}
		if !strings.Contains(f.Replay, bin+" run ") || !strings.HasSuffix(f.Replay, " --seed "+itoa(f.Seed)) {
			t.Errorf("replay %q", f.Replay)
		}
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }
