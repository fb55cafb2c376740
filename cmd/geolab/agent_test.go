package main

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/geolab/geolab/internal/testbin"
	"github.com/geolab/geolab/lab/geolabbin"
)

// An agent killed mid-run fails the run (exit 2) with an error naming the
// agent, its pid and that its clients' history is lost, and writes no
// verdict; every agent process the run started is gone when it exits.
func TestRunFailsNamingAnAgentKilledMidRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a lab and agent processes")
	}
	bin, err := testbin.Path()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	topo, _ := filepath.Abs("../../topologies/two-region.yaml")
	sc := filepath.Join(dir, "agents.yaml")
	if err := os.WriteFile(sc, []byte(`name: agents
topology: `+topo+`
workload: {clients: 9, federated_rooms: 3, local_rooms: 1, publish_rate: 20, duration: 30s, quiesce: 10s}
expect:
  - lost == 0
`), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	cmd := exec.Command(bin, "run", sc, "--agents", "3", "--out", out)
	cmd.Env = append(os.Environ(), geolabbin.Env+"="+bin)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	started := regexp.MustCompile(`^agent (local-\d) started \(pid (\d+),`)
	progressAt := regexp.MustCompile(`^t=\s*(\d+)s/\S+ publishing`)
	pids := map[string]int{}
	var seen strings.Builder
	lines := bufio.NewScanner(stdout)
	killed := 0
	// The output is bounded: the run ends by itself within its 30 s.
	for lines.Scan() {
		line := lines.Text()
		seen.WriteString(line + "\n")
		if m := started.FindStringSubmatch(line); m != nil {
			pids[m[1]], _ = strconv.Atoi(m[2])
		}
		// Publishing has gone on for 2 s or more: kill one agent.
		if m := progressAt.FindStringSubmatch(line); killed == 0 && m != nil && m[1] != "0" && m[1] != "1" {
			killed = pids["local-2"]
			if killed == 0 {
				t.Fatalf("no pid for local-2 in:\n%s", seen.String())
			}
			if err := syscall.Kill(killed, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("want exit 2 (the run could not be judged), got %v:\n%s%s", err, seen.String(), stderr.String())
	}
	if killed == 0 {
		t.Fatalf("the run ended before publishing began:\n%s%s", seen.String(), stderr.String())
	}
	msg := stderr.String()
	for _, want := range []string{"pid " + strconv.Itoa(killed), "local-2", "lost", "is lost, so the run is not judged"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error does not say %q:\n%s", want, msg)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "report.json")); err == nil {
		t.Errorf("a report was written for a run that lost an agent")
	}
	for name, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("agent %s (pid %d) still runs after geolab run exited", name, pid)
		}
	}
}

// Bad agent flags are refused before anything starts, each named.
func TestRunRefusesBadAgentFlags(t *testing.T) {
	dir := t.TempDir()
	topo, _ := filepath.Abs("../../topologies/two-region.yaml")
	sc := filepath.Join(dir, "agents.yaml")
	if err := os.WriteFile(sc, []byte("name: agents\ntopology: "+topo+"\nworkload: {clients: 4, federated_rooms: 1, publish_rate: 1, duration: 1s}\nexpect: [lost == 0]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for want, args := range map[string][]string{
		"--agents -1: want 0": {"--agents", "-1"},
		"--agents 5: more agents than the scenario's 4 clients":                              {"--agents", "5"},
		`--listen "nope": want HOST:PORT`:                                                    {"--agents", "2", "--listen", "nope"},
		"--listen and --agents-elsewhere need --agents N":                                    {"--agents-elsewhere"},
		`--agents-on "elsewhere": want local or swarm`:                                       {"--agents", "2", "--agents-on", "elsewhere"},
		"--agents-on needs --agents N":                                                       {"--agents-on", "swarm"},
		"--agents-on swarm needs a swarm lab (--provider swarm), not --provider process":     {"--agents", "2", "--agents-on", "swarm"},
		"--agents-on swarm starts the agents itself: it does not go with --agents-elsewhere": {"--agents", "2", "--provider", "swarm", "--agents-on", "swarm", "--agents-elsewhere"},
		`--provider "k8s": want process, docker or swarm`:                                    {"--provider", "k8s"},
	} {
		root := newRoot()
		root.SetArgs(append([]string{"run", sc, "--quiet", "--out", filepath.Join(dir, "out")}, args...))
		root.SetOut(&strings.Builder{})
		err := root.Execute()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: got %v, want %q", args, err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); err == nil {
		t.Errorf("a refused run wrote its output directory")
	}
	root := newRoot()
	root.SetArgs([]string{"agent"})
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), `"controller" not set`) {
		t.Errorf("geolab agent without --controller: got %v", err)
	}
}
