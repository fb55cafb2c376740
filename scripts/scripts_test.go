package scripts

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Every variable a script reads. The Makefile exports most of them, and a
// test run by `make test` must not inherit them: run sets only what it is given.
var scriptVars = strings.Fields(`GO GINKGO PROVIDER GEOLAB_BIN CHAOS_SMOKE DOCKER_SMOKE
	FUZZ_TARGETS FUZZTIME MUTANTS REPORT REPORT_WINDOW GEOLAB_IMAGE TOXIPROXY_IMAGE REDIS_IMAGE
	DOCKERD_FLAGS DOCKERD_LOG DOCKERD_PID DOCKERD_WAIT KEEP_ENGINE CHAOS_PROVIDER SWARM_MARK SWARM_ADVERTISE DOCKER_TESTS DOCKER_SMOKE_LABELS
	DOCKER_LABELS DOCKER DOCKERD DOCKER_COMPOSE COMPOSE COMPOSE_WAIT COMPOSE_PROJECT_NAME APT_GET
	CHROMIUM STATICCHECK STATICCHECK_VERSION GOFMT FAULTY_BIN REPORTS MAKE MAKEFLAGS MFLAGS MAKELEVEL
	GEOLAB_FAULTY GEOLAB_US_EAST_PORT GEOLAB_EU_WEST_PORT GEOLAB_TOXIPROXY_PORT CENTRIFUGO BENCH_PEERS_ARGS`)

// exercised names, for each script, what runs it for real: a make target that
// `make test` runs, or the test below that runs it in a cheap mode.
var exercised = map[string]string{
	"apt-install.sh":    "make test (deps), TestAptInstall",
	"ginkgo-install.sh": "make test (deps), TestGinkgoInstall",
	"test.sh":           "make test, TestTestRunsTheStepsInOrder",
	"fuzz.sh":           "make test, TestFuzz",
	"chaos-docker.sh":   "make test, TestChaosDocker",
	"docker-engine.sh":  "make test (chaos-docker), TestDockerEngine",
	"swarm.sh":          "make deps-swarm, make chaos-swarm, TestSwarm",
	"mutants.sh":        "TestMutants",
	"scenarios.sh":      "TestScenarios",
	"lint.sh":           "TestLint",
	"report-png.sh":     "TestReportPNG",
	"compose.sh":        "TestCompose",
	"bench-peers.sh":    "TestBenchPeers (make bench-peers runs the benchmark itself)",
}

// badArgs is, for each script, a call with wrong arguments and what its
// message must name.
var badArgs = map[string]struct {
	args []string
	want string
}{
	"apt-install.sh":    {[]string{"onlyone"}, "want 3 arguments CMD PKGS WHAT, got 1"},
	"ginkgo-install.sh": {[]string{"extra"}, "takes no arguments, got: extra"},
	"test.sh":           {[]string{"extra"}, "takes no arguments, got: extra"},
	"fuzz.sh":           {[]string{"./lab/link"}, "takes no arguments (set FUZZ_TARGETS), got: ./lab/link"},
	"chaos-docker.sh":   {[]string{"smoke"}, "takes no arguments (set DOCKER_TESTS, DOCKER_LABELS), got: smoke"},
	"docker-engine.sh":  {[]string{"restart"}, "want one of start, stop, status; got: restart"},
	"swarm.sh":          {[]string{"join"}, "want one of start, stop, status; got: join"},
	"mutants.sh":        {[]string{"echo:dedup"}, "takes no arguments (set MUTANTS), got: echo:dedup"},
	"scenarios.sh":      {[]string{"a", "b"}, "at most one argument DIR, got 2: a b"},
	"lint.sh":           {[]string{"a", "b"}, "at most one argument DIR, got 2: a b"},
	"report-png.sh":     {[]string{"x.html"}, "takes no arguments (set REPORT), got: x.html"},
	"compose.sh":        {[]string{"start"}, "want one of up, down, config; got: start"},
	"bench-peers.sh":    {[]string{"--rates"}, "takes no arguments (set BENCH_PEERS_ARGS), got: --rates"},
}

func here(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout:\n%s--- stderr:\n%s", r.code, r.stdout, r.stderr)
}

// run runs scripts/NAME with args in this directory, with the environment of
// the test minus every script variable, plus env.
func run(t *testing.T, env map[string]string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(here(t), name), args...)
	drop := map[string]bool{}
	for _, k := range scriptVars {
		drop[k] = true
	}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !drop[k] {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	default:
		t.Fatalf("%s %v: %v\n%s", name, args, err, r)
	}
	return r
}

// standIn writes an executable bash script NAME into dir that first appends
// its arguments, as one line, to NAME.log beside it, then runs body. It
// returns the script's path; log reads what it recorded.
func standIn(t *testing.T, dir, name, body string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	script := "#!/bin/bash\nprintf '%s\\n' \"$*\" >>'" + path + ".log'\n" + body + "\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// log returns the calls a stand-in recorded, one line each.
func log(t *testing.T, standIn string) []string {
	t.Helper()
	b, err := os.ReadFile(standIn + ".log")
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func expect(t *testing.T, r result, code int, wants ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("want exit %d, got:\n%s", code, r)
	}
	for _, w := range wants {
		if !strings.Contains(r.stdout+r.stderr, w) {
			t.Errorf("output does not say %q:\n%s", w, r)
		}
	}
}

func contains(lines []string, want string) bool {
	for _, l := range lines {
		if strings.Contains(l, want) {
			return true
		}
	}
	return false
}

func isRoot() bool { return os.Geteuid() == 0 }

// TestScriptsAreWellFormed: every script is an executable bash program with
// set -euo pipefail and a header comment (what it does, its environment, its
// exit codes) that --help prints; it parses (bash -n), and wrong arguments
// exit 2 naming what is wrong.
func TestScriptsAreWellFormed(t *testing.T) {
	scripts, err := filepath.Glob("*.sh")
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, name := range scripts {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			src := string(b)
			if !strings.HasPrefix(src, "#!/usr/bin/env bash\n# "+name+": ") {
				t.Errorf("want it to start with '#!/usr/bin/env bash' and '# %s: what it does'", name)
			}
			if !strings.Contains(src, "\nset -euo pipefail\n") {
				t.Error("no 'set -euo pipefail'")
			}
			if !strings.Contains(src, "\nset -euo pipefail\n. \"$(dirname \"$0\")/lib.bash\"\n") {
				t.Error("does not source lib.bash right after 'set -euo pipefail' (here, root, --help)")
			}
			if st, err := os.Stat(name); err != nil || st.Mode()&0o111 == 0 {
				t.Errorf("not executable: %v", err)
			}
			if out, err := exec.Command("bash", "-n", name).CombinedOutput(); err != nil {
				t.Errorf("bash -n: %v\n%s", err, out)
			}
			help := run(t, nil, name, "--help")
			expect(t, help, 0, name+": ", "usage: ", "exit codes: ")
			if !strings.Contains(help.stdout, "environment:") {
				t.Errorf("--help names no environment variables:\n%s", help)
			}
			bad, ok := badArgs[name]
			if !ok {
				t.Fatalf("no wrong-arguments case for %s in badArgs", name)
			}
			r := run(t, nil, name, bad.args...)
			expect(t, r, 2, bad.want, "usage: ")
			if _, ok := exercised[name]; !ok {
				t.Errorf("%s: nothing runs it for real (add it to exercised, with its test)", name)
			}
		})
	}
}

// TestMakefileIsAnIndex: the Makefile stays short, every target has a help
// comment and a recipe of at most two lines, and every script it (or a
// script) calls exists and is run by a test or by make test.
func TestMakefileIsAnIndex(t *testing.T) {
	b, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) >= 120 {
		t.Errorf("the Makefile has %d lines: keep it under 120, move a long recipe into scripts/", len(lines))
	}
	target := regexp.MustCompile(`^([a-z][a-z-]*):`)
	var current string
	recipe := 0
	for i, l := range lines {
		if m := target.FindStringSubmatch(l); m != nil {
			current, recipe = m[1], 0
			if !strings.Contains(l, " ## ") {
				t.Errorf("Makefile:%d: target %s has no '## ' help comment", i+1, current)
			}
			continue
		}
		if strings.HasPrefix(l, "\t") && current != "" {
			if recipe++; recipe > 2 {
				t.Errorf("Makefile:%d: the recipe of %s is longer than two lines: make it a script", i+1, current)
			}
			continue
		}
		current = ""
	}
	called := map[string]bool{}
	callRe := regexp.MustCompile(`(?:scripts/|\$here/)([a-z-]+\.sh)`)
	for _, m := range callRe.FindAllStringSubmatch(string(b), -1) {
		called[m[1]] = true
	}
	scripts, _ := filepath.Glob("*.sh")
	for _, s := range scripts {
		src, _ := os.ReadFile(s)
		for _, m := range callRe.FindAllStringSubmatch(string(src), -1) {
			if m[1] != s {
				called[m[1]] = true
			}
		}
	}
	for s := range called {
		if _, err := os.Stat(s); err != nil {
			t.Errorf("the Makefile or a script calls scripts/%s, which does not exist", s)
		} else if exercised[s] == "" {
			t.Errorf("scripts/%s is called but nothing runs it for real", s)
		}
	}
	for _, s := range scripts {
		if !called[s] {
			t.Errorf("scripts/%s: neither the Makefile nor a script calls it", s)
		}
	}
}

func TestAptInstall(t *testing.T) {
	t.Run("present: quiet", func(t *testing.T) {
		r := run(t, nil, "apt-install.sh", "bash", "bash", "a shell")
		expect(t, r, 0)
		if r.stdout+r.stderr != "" {
			t.Errorf("want no output for a command that is there:\n%s", r)
		}
	})
	t.Run("missing, no apt-get", func(t *testing.T) {
		r := run(t, map[string]string{"APT_GET": "/nonexistent/apt-get"}, "apt-install.sh",
			"geolab-no-such-cmd", "pkg-a pkg-b", "testing")
		expect(t, r, 1, "geolab-no-such-cmd (testing) is not on PATH", "pkg-a pkg-b")
	})
	if !isRoot() {
		t.Skip("the install paths run as root only")
	}
	t.Run("missing: apt-get installs it", func(t *testing.T) {
		dir := t.TempDir()
		cmd := filepath.Join(dir, "tool")
		apt := standIn(t, dir, "apt-get", `if [[ $1 == install ]]; then printf '#!/bin/sh\n' >'`+cmd+`'; chmod +x '`+cmd+`'; fi`)
		r := run(t, map[string]string{"APT_GET": apt}, "apt-install.sh", cmd, "pkg-a pkg-b", "testing")
		expect(t, r, 0, "make deps: "+cmd+" not found: installing pkg-a pkg-b with apt-get")
		if calls := log(t, apt); len(calls) != 2 || calls[0] != "update -qq" || calls[1] != "install -y -qq pkg-a pkg-b" {
			t.Errorf("apt-get calls: %q", calls)
		}
	})
	t.Run("missing: apt-get does not provide it", func(t *testing.T) {
		dir := t.TempDir()
		apt := standIn(t, dir, "apt-get", "")
		r := run(t, map[string]string{"APT_GET": apt}, "apt-install.sh", filepath.Join(dir, "tool"), "pkg-a", "testing")
		expect(t, r, 1, "apt-get installed pkg-a but "+filepath.Join(dir, "tool")+" is still not on PATH")
	})
}

func TestGinkgoInstall(t *testing.T) {
	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`github.com/onsi/ginkgo/v2 (v\S+)`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("go.mod requires no github.com/onsi/ginkgo/v2")
	}
	want := string(m[1])
	t.Run("the version of go.mod is there: quiet (real go list)", func(t *testing.T) {
		dir := t.TempDir()
		ginkgo := standIn(t, dir, "ginkgo", `echo "Ginkgo Version `+strings.TrimPrefix(want, "v")+`"`)
		r := run(t, map[string]string{"GINKGO": ginkgo, "GOTOOLCHAIN": "local"}, "ginkgo-install.sh")
		expect(t, r, 0)
		if r.stdout+r.stderr != "" {
			t.Errorf("want no output:\n%s", r)
		}
	})
	t.Run("another version: installs go.mod's", func(t *testing.T) {
		dir := t.TempDir()
		ginkgo := standIn(t, dir, "ginkgo", `echo "Ginkgo Version 2.0.0"`)
		goCmd := standIn(t, dir, "go", `case $1 in list) echo `+want+`;; install) echo "GOBIN=$GOBIN" >>"$0.log";; esac`)
		r := run(t, map[string]string{"GINKGO": ginkgo, "GO": goCmd}, "ginkgo-install.sh")
		expect(t, r, 0, "make deps: installing the Ginkgo CLI "+want+" into "+dir+"/")
		calls := log(t, goCmd)
		if !contains(calls, "install github.com/onsi/ginkgo/v2/ginkgo@"+want) || !contains(calls, "GOBIN="+dir) {
			t.Errorf("go calls: %q", calls)
		}
	})
	t.Run("go.mod's version unreadable", func(t *testing.T) {
		dir := t.TempDir()
		goCmd := standIn(t, dir, "go", "exit 1")
		r := run(t, map[string]string{"GO": goCmd, "GINKGO": filepath.Join(dir, "ginkgo")}, "ginkgo-install.sh")
		expect(t, r, 1, "cannot read the ginkgo version from go.mod")
	})
}

func TestFuzz(t *testing.T) {
	dir := t.TempDir()
	// go test -list prints the fuzz targets package ./p has: FuzzA.
	goCmd := standIn(t, dir, "go", `if [[ $2 == -list ]]; then [[ ${*: -1} == ./p ]] && echo FuzzA; echo "ok  	${*: -1}	0.01s"; fi`)
	t.Run("a listed target that does not exist fails, naming it, before any fuzzing", func(t *testing.T) {
		r := run(t, map[string]string{"GO": goCmd, "FUZZ_TARGETS": "./p:FuzzA ./q:FuzzGone"}, "fuzz.sh")
		expect(t, r, 1, "make fuzz: no fuzz target FuzzGone in ./q (listed in FUZZ_TARGETS)")
		if contains(log(t, goCmd), "-fuzz") {
			t.Errorf("it fuzzed before checking every target: %q", log(t, goCmd))
		}
	})
	t.Run("runs each target for FUZZTIME", func(t *testing.T) {
		r := run(t, map[string]string{"GO": goCmd, "FUZZ_TARGETS": "./p:FuzzA", "FUZZTIME": "1s"}, "fuzz.sh")
		expect(t, r, 0, "go test -run '^$' -fuzz '^FuzzA$' -fuzztime 1s -fuzzminimizetime 3s ./p")
		if !contains(log(t, goCmd), "test -run ^$ -fuzz ^FuzzA$ -fuzztime 1s -fuzzminimizetime 3s ./p") {
			t.Errorf("go calls: %q", log(t, goCmd))
		}
	})
	// Go 1.26's fuzz coordinator can fail a run that found nothing with a bare
	// "context deadline exceeded" (golang/go#75804): tried once more. A run
	// that wrote a failing input is a finding: never tried again.
	fuzzCalls := func(calls []string) int {
		n := 0
		for _, c := range calls {
			if strings.Contains(c, "-fuzz ^FuzzA$") {
				n++
			}
		}
		return n
	}
	t.Run("a bare deadline failure is run once more", func(t *testing.T) {
		d := t.TempDir()
		g := standIn(t, d, "go", `if [[ $2 == -list ]]; then echo FuzzA; exit 0; fi
if [[ ! -e $0.once ]]; then touch "$0.once"; echo '--- FAIL: FuzzA (5.01s)'; echo '    context deadline exceeded'; exit 1; fi`)
		r := run(t, map[string]string{"GO": g, "FUZZ_TARGETS": "./p:FuzzA"}, "fuzz.sh")
		expect(t, r, 0, "golang/go#75804")
		if n := fuzzCalls(log(t, g)); n != 2 {
			t.Errorf("fuzzed %d times, want 2: %q", n, log(t, g))
		}
	})
	t.Run("a failing input is a failure, not tried again", func(t *testing.T) {
		d := t.TempDir()
		g := standIn(t, d, "go", `if [[ $2 == -list ]]; then echo FuzzA; exit 0; fi
echo 'Failing input written to testdata/fuzz/FuzzA/abc'; echo '    context deadline exceeded'; exit 1`)
		r := run(t, map[string]string{"GO": g, "FUZZ_TARGETS": "./p:FuzzA"}, "fuzz.sh")
		expect(t, r, 1, "make fuzz: FuzzA failed")
		if n := fuzzCalls(log(t, g)); n != 1 {
			t.Errorf("fuzzed %d times, want 1: %q", n, log(t, g))
		}
	})
	t.Run("FUZZ_TARGETS empty", func(t *testing.T) {
		expect(t, run(t, map[string]string{"GO": goCmd}, "fuzz.sh"), 2, "FUZZ_TARGETS is empty")
	})
	t.Run("an entry that is not package:FuzzName", func(t *testing.T) {
		expect(t, run(t, map[string]string{"GO": goCmd, "FUZZ_TARGETS": "./p"}, "fuzz.sh"), 2, "entry './p' is not package:FuzzName")
	})
	t.Run("real go: a target that does not exist", func(t *testing.T) {
		if testing.Short() {
			t.Skip("compiles ./lab/link's tests")
		}
		r := run(t, map[string]string{"FUZZ_TARGETS": "./lab/link:FuzzNoSuchTarget", "GOTOOLCHAIN": "local"}, "fuzz.sh")
		expect(t, r, 1, "make fuzz: no fuzz target FuzzNoSuchTarget in ./lab/link")
	})
}

func TestMutants(t *testing.T) {
	dir := t.TempDir()
	goCmd := standIn(t, dir, "go", `touch "${@: -2:1}"`) // go build -tags faulty -o FILE ./cmd/geolab
	// The chaos group fails against mutant "caught", and passes against any other.
	ginkgo := standIn(t, dir, "ginkgo", `echo "GEOLAB_BIN=$GEOLAB_BIN GEOLAB_FAULTY=$GEOLAB_FAULTY" >>"$0.log"
if [[ $GEOLAB_FAULTY == caught ]]; then printf '\e[31m[FAIL] [resubscribe] a client resubscribes\e[0m\n'; exit 1; fi`)
	faulty := filepath.Join(dir, "geolab-faulty")
	env := func(mutants string) map[string]string {
		return map[string]string{"GO": goCmd, "GINKGO": ginkgo, "FAULTY_BIN": faulty,
			"REPORTS": filepath.Join(dir, "reports"), "MUTANTS": mutants}
	}
	t.Run("caught", func(t *testing.T) {
		r := run(t, env("caught:resubscribe"), "mutants.sh")
		expect(t, r, 0, "== mutant caught: chaos group resubscribe must fail",
			"caught: [FAIL] [resubscribe] a client resubscribes", "make chaos-mutants: every mutant was caught")
		if !contains(log(t, goCmd), "build -tags faulty -o "+faulty+" ./cmd/geolab") {
			t.Errorf("go calls: %q", log(t, goCmd))
		}
		calls := log(t, ginkgo)
		if !contains(calls, "--label-filter=resubscribe --fail-fast --timeout 15m ./specs/chaos") ||
			!contains(calls, "GEOLAB_BIN="+faulty+" GEOLAB_FAULTY=caught") {
			t.Errorf("ginkgo calls: %q", calls)
		}
		if _, err := os.Stat(filepath.Join(dir, "reports/mutants/caught.log")); err != nil {
			t.Error(err)
		}
	})
	t.Run("survived", func(t *testing.T) {
		r := run(t, env("caught:resubscribe lives:dedup"), "mutants.sh")
		expect(t, r, 1, "SURVIVED: the dedup specs passed against lives", "make chaos-mutants: survived: lives")
		if strings.Contains(r.stderr, "caught") {
			t.Errorf("a caught mutant is named as survived:\n%s", r)
		}
	})
	t.Run("MUTANTS empty", func(t *testing.T) {
		expect(t, run(t, env(""), "mutants.sh"), 2, "MUTANTS is empty")
	})
	t.Run("an entry that is not mutant:group", func(t *testing.T) {
		expect(t, run(t, env("echo"), "mutants.sh"), 2, "MUTANTS entry 'echo' is not mutant:group")
	})
	t.Run("FAULTY_BIN relative", func(t *testing.T) {
		e := env("echo:dedup")
		e["FAULTY_BIN"] = "bin/geolab-faulty"
		expect(t, run(t, e, "mutants.sh"), 2, "FAULTY_BIN=bin/geolab-faulty must be an absolute path")
	})
}

func TestScenarios(t *testing.T) {
	dir := t.TempDir()
	geolab := standIn(t, dir, "geolab", `[[ $2 != *bad.yaml ]]`)
	scen := filepath.Join(dir, "scenarios")
	if err := os.Mkdir(scen, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"a.yaml", "bad.yaml", "c.yaml", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(scen, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("runs every scenario, then fails naming the ones that failed", func(t *testing.T) {
		r := run(t, map[string]string{"GEOLAB_BIN": geolab}, "scenarios.sh", scen)
		expect(t, r, 1, "== geolab run "+scen+"/a.yaml", "== geolab run "+scen+"/c.yaml", "make scenarios: failed: "+scen+"/bad.yaml")
		calls := log(t, geolab)
		if len(calls) != 3 || calls[0] != "run "+scen+"/a.yaml --quiet" {
			t.Errorf("geolab calls: %q", calls)
		}
	})
	t.Run("all pass", func(t *testing.T) {
		if err := os.Remove(filepath.Join(scen, "bad.yaml")); err != nil {
			t.Fatal(err)
		}
		expect(t, run(t, map[string]string{"GEOLAB_BIN": geolab}, "scenarios.sh", scen), 0)
	})
	t.Run("no scenario files", func(t *testing.T) {
		expect(t, run(t, map[string]string{"GEOLAB_BIN": geolab}, "scenarios.sh", t.TempDir()), 2, "no scenario files (*.yaml) in")
	})
	t.Run("no such directory", func(t *testing.T) {
		expect(t, run(t, map[string]string{"GEOLAB_BIN": geolab}, "scenarios.sh", "/nonexistent"), 2, "no such directory: /nonexistent")
	})
	t.Run("no geolab binary", func(t *testing.T) {
		expect(t, run(t, map[string]string{"GEOLAB_BIN": filepath.Join(dir, "none")}, "scenarios.sh", scen), 2, "is not an executable: run 'make build'")
	})
}

func TestLint(t *testing.T) {
	module := func(t *testing.T, src string) string {
		dir := t.TempDir()
		for name, body := range map[string]string{"go.mod": "module example.com/lintme\n\ngo 1.22\n", "a.go": src} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	const clean = "package lintme\n\n// A is a.\nfunc A() int { return 1 }\n"
	bin := t.TempDir()
	staticcheck := standIn(t, bin, "staticcheck", `[[ $1 == -version ]] && echo "staticcheck 2026.2.2 (0.8.2)"; exit 0`)
	t.Run("an unformatted file is listed", func(t *testing.T) {
		r := run(t, map[string]string{"STATICCHECK": staticcheck}, "lint.sh", module(t, "package lintme\nfunc  A( ) {}\n"))
		expect(t, r, 1, "gofmt: these files are not formatted (run gofmt -w):", "./a.go")
	})
	t.Run("clean: go vet (real) and staticcheck", func(t *testing.T) {
		before := len(log(t, staticcheck))
		r := run(t, map[string]string{"STATICCHECK": staticcheck, "GOTOOLCHAIN": "local"}, "lint.sh", module(t, clean))
		expect(t, r, 0, "go vet ./...", "staticcheck ./...")
		if calls := log(t, staticcheck)[before:]; len(calls) != 2 || calls[1] != "./..." {
			t.Errorf("staticcheck calls: %q", calls)
		}
	})
	t.Run("another staticcheck version: installs the pinned one", func(t *testing.T) {
		dir := t.TempDir()
		old := standIn(t, dir, "staticcheck", `[[ $1 == -version ]] && echo "staticcheck 2025.1 (0.6.0)"; exit 0`)
		goCmd := standIn(t, dir, "go", `[[ $1 == install ]] && echo "GOBIN=$GOBIN" >>"$0.log"; exit 0`)
		r := run(t, map[string]string{"STATICCHECK": old, "GO": goCmd}, "lint.sh", module(t, clean))
		expect(t, r, 0, "make lint: installing staticcheck v0.8.2 into "+dir+"/")
		if calls := log(t, goCmd); !contains(calls, "install honnef.co/go/tools/cmd/staticcheck@v0.8.2") || !contains(calls, "GOBIN="+dir) {
			t.Errorf("go calls: %q", calls)
		}
	})
	t.Run("staticcheck finds something", func(t *testing.T) {
		dir := t.TempDir()
		bad := standIn(t, dir, "staticcheck", `[[ $1 == -version ]] && { echo "staticcheck 2026.2.2 (0.8.2)"; exit 0; }; echo "a.go:1:1: SA9999"; exit 1`)
		goCmd := standIn(t, dir, "go", "")
		expect(t, run(t, map[string]string{"STATICCHECK": bad, "GO": goCmd}, "lint.sh", module(t, clean)), 1, "SA9999")
	})
	t.Run("not a module", func(t *testing.T) {
		expect(t, run(t, nil, "lint.sh", t.TempDir()), 2, "is not a Go module (no go.mod)")
	})
}

func TestReportPNG(t *testing.T) {
	t.Run("REPORT unset", func(t *testing.T) {
		expect(t, run(t, nil, "report-png.sh"), 2, "make report-png: REPORT is not set", "usage: make report-png REPORT=reports/<run>/report.html")
	})
	t.Run("no such file", func(t *testing.T) {
		expect(t, run(t, map[string]string{"REPORT": "/nonexistent/report.html"}, "report-png.sh"), 2, "make report-png: no such file: /nonexistent/report.html")
	})
	dir := t.TempDir()
	report := filepath.Join(dir, "run", "report.html")
	if err := os.MkdirAll(filepath.Dir(report), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(report, []byte("<html></html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Run("renders beside the report", func(t *testing.T) {
		chromium := standIn(t, dir, "chromium", `for a; do [[ $a == --screenshot=* ]] && printf 'PNG' >"${a#--screenshot=}"; done; echo "chromium chatter"`)
		r := run(t, map[string]string{"REPORT": report, "CHROMIUM": chromium, "REPORT_WINDOW": "800,600"}, "report-png.sh")
		png := filepath.Join(dir, "run", "report.png")
		expect(t, r, 0, "make report-png: wrote "+png)
		if b, err := os.ReadFile(png); err != nil || string(b) != "PNG" {
			t.Errorf("report.png: %q %v", b, err)
		}
		call := log(t, chromium)[0]
		for _, want := range []string{"--headless", "--window-size=800,600", "--screenshot=" + png, "file://" + report} {
			if !strings.Contains(call, want) {
				t.Errorf("chromium was called without %s: %s", want, call)
			}
		}
	})
	t.Run("chromium writes nothing", func(t *testing.T) {
		chromium := standIn(t, dir, "broken-chromium", `echo "chromium: cannot open display" >&2`)
		r := run(t, map[string]string{"REPORT": report, "CHROMIUM": chromium}, "report-png.sh")
		expect(t, r, 1, "chromium: cannot open display", "make report-png: chromium wrote no "+filepath.Join(dir, "run", "report.png"))
	})
}

// engineStandIns writes a docker CLI that answers 'info' when the file
// MARK exists, and a dockerd that creates MARK while it runs (after DELAY
// seconds) and removes it on SIGTERM. It is named dockerd, as
// docker-engine.sh checks the process it stops by name.
func engineStandIns(t *testing.T, dir string) (docker, dockerd, mark string) {
	mark = filepath.Join(dir, "engine-up")
	docker = standIn(t, dir, "docker", `[[ $1 == info && -f '`+mark+`' ]]`)
	dockerd = standIn(t, dir, "dockerd", `echo "dockerd stand-in $*"
trap 'rm -f '"'`+mark+`'"'; exit 0' TERM
for ((i = 0; i < ${DELAY:-0} * 10; i++)); do sleep 0.1; done; touch '`+mark+`'
while :; do sleep 0.1; done`)
	return docker, dockerd, mark
}

func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	return !strings.HasPrefix(s[strings.LastIndex(s, ")")+2:], "Z")
}

func TestDockerEngine(t *testing.T) {
	t.Run("an engine answers: start does nothing, status says it is not ours", func(t *testing.T) {
		dir := t.TempDir()
		docker := standIn(t, dir, "docker", "exit 0")
		env := map[string]string{"DOCKER": docker, "DOCKERD": filepath.Join(dir, "no-dockerd"), "DOCKERD_PID": filepath.Join(dir, "dockerd.pid")}
		r := run(t, env, "docker-engine.sh", "start")
		expect(t, r, 0)
		if r.stdout+r.stderr != "" {
			t.Errorf("want no output:\n%s", r)
		}
		expect(t, run(t, env, "docker-engine.sh", "status"), 0, "a Docker engine answers (not one this script started)")
	})
	t.Run("no engine: status fails; stop without a pid file does nothing", func(t *testing.T) {
		dir := t.TempDir()
		docker := standIn(t, dir, "docker", "exit 1")
		env := map[string]string{"DOCKER": docker, "DOCKERD_PID": filepath.Join(dir, "dockerd.pid")}
		expect(t, run(t, env, "docker-engine.sh", "status"), 1, "no Docker engine answers")
		r := run(t, env, "docker-engine.sh", "stop")
		expect(t, r, 0)
		if r.stdout+r.stderr != "" {
			t.Errorf("want no output:\n%s", r)
		}
	})
	t.Run("stop: a pid file naming another process is stale: nothing is killed", func(t *testing.T) {
		dir := t.TempDir()
		other := exec.Command("sleep", "60")
		if err := other.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = other.Process.Kill(); _ = other.Wait() }()
		pidFile := filepath.Join(dir, "dockerd.pid")
		if err := os.WriteFile(pidFile, []byte(strconv.Itoa(other.Process.Pid)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		r := run(t, map[string]string{"DOCKERD_PID": pidFile}, "docker-engine.sh", "stop")
		expect(t, r, 0, "names no running dockerd (stale): removed, nothing stopped")
		if !alive(other.Process.Pid) {
			t.Error("it killed a process that is not the dockerd it started")
		}
		if _, err := os.Stat(pidFile); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the stale pid file is still there: %v", err)
		}
	})
	if !isRoot() {
		t.Skip("starting an engine runs as root only")
	}
	t.Run("start, status, stop", func(t *testing.T) {
		dir := t.TempDir()
		docker, dockerd, mark := engineStandIns(t, dir)
		pidFile, logFile := filepath.Join(dir, "dockerd.pid"), filepath.Join(dir, "dockerd.log")
		env := map[string]string{"DOCKER": docker, "DOCKERD": dockerd, "DOCKERD_PID": pidFile, "DOCKERD_LOG": logFile,
			"DOCKERD_FLAGS": "--iptables=false --flag-two", "DOCKERD_WAIT": "20"}
		t.Cleanup(func() { killPidFile(pidFile) })
		r := run(t, env, "docker-engine.sh", "start")
		expect(t, r, 0, "make deps-docker: no Docker engine answers: starting dockerd --iptables=false --flag-two (log "+logFile+")")
		b, _ := os.ReadFile(pidFile)
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || !alive(pid) {
			t.Fatalf("pid file %q: %v", b, err)
		}
		if l, _ := os.ReadFile(logFile); !strings.Contains(string(l), "dockerd stand-in --iptables=false --flag-two") {
			t.Errorf("dockerd log: %q", l)
		}
		expect(t, run(t, env, "docker-engine.sh", "start"), 0) // it answers now: nothing more starts
		if calls := log(t, dockerd); len(calls) != 1 {
			t.Errorf("dockerd was started %d times", len(calls))
		}
		expect(t, run(t, env, "docker-engine.sh", "status"), 0, fmt.Sprintf("the Docker engine is dockerd pid %d, which 'scripts/docker-engine.sh start' started", pid))
		expect(t, run(t, env, "docker-engine.sh", "stop"), 0, fmt.Sprintf("stopping the engine it started (dockerd, pid %d)", pid))
		if alive(pid) {
			t.Error("dockerd still runs after stop")
		}
		if _, err := os.Stat(pidFile); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("pid file after stop: %v", err)
		}
		if _, err := os.Stat(mark); !errors.Is(err, os.ErrNotExist) {
			t.Error("dockerd was not stopped with SIGTERM")
		}
	})
	t.Run("start: an engine that never answers", func(t *testing.T) {
		dir := t.TempDir()
		docker, dockerd, _ := engineStandIns(t, dir)
		pidFile := filepath.Join(dir, "dockerd.pid")
		env := map[string]string{"DOCKER": docker, "DOCKERD": dockerd, "DOCKERD_PID": pidFile,
			"DOCKERD_LOG": filepath.Join(dir, "dockerd.log"), "DOCKERD_WAIT": "1", "DELAY": "600"}
		t.Cleanup(func() { killPidFile(pidFile) })
		r := run(t, env, "docker-engine.sh", "start")
		expect(t, r, 1, "dockerd stand-in", "make deps-docker: dockerd did not answer within 1s (log above)")
		expect(t, run(t, env, "docker-engine.sh", "stop"), 0, "stopping the engine it started")
	})
}

func killPidFile(path string) {
	if b, err := os.ReadFile(path); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func TestChaosDocker(t *testing.T) {
	setup := func(t *testing.T, engineUp bool) (map[string]string, string) {
		dir := t.TempDir()
		info := "exit 1"
		if engineUp {
			info = "exit 0"
		}
		docker := standIn(t, dir, "docker", `case $1 in info) `+info+`;; ps) echo c1; echo c2;; network) [[ $2 == ls ]] && echo n1;; esac; exit 0`)
		env := map[string]string{
			"DOCKER":       docker,
			"MAKE":         standIn(t, dir, "make", ""),
			"GO":           standIn(t, dir, "go", `echo "PROVIDER=$PROVIDER" >>"$0.log"; printf '=== RUN   TestDocker\nnoise\n--- PASS: TestDocker (1.00s)\nok  	x/docker	1s\n'; [[ -z $GO_FAILS ]]`),
			"GINKGO":       standIn(t, dir, "ginkgo", `echo "PROVIDER=$PROVIDER" >>"$0.log"`),
			"REPORTS":      filepath.Join(dir, "reports"),
			"DOCKER_TESTS": "./lab/provider ./docker",
			"DOCKERD_PID":  filepath.Join(dir, "dockerd.pid"),
		}
		// The pid file names a process that is gone: 'docker-engine.sh stop'
		// says so, which shows whether it ran.
		p := exec.Command("true")
		if err := p.Run(); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(env["DOCKERD_PID"], []byte(strconv.Itoa(p.Process.Pid)), 0o644); err != nil {
			t.Fatal(err)
		}
		return env, dir
	}
	t.Run("an engine that was up: images, clean-up, go tests, specs; the engine is left alone", func(t *testing.T) {
		env, dir := setup(t, true)
		env["DOCKER_LABELS"] = "resubscribe || failover"
		r := run(t, env, "chaos-docker.sh")
		expect(t, r, 0, "make chaos-docker: removing containers earlier labs left", "--- PASS: TestDocker", "make chaos-docker: passed in")
		if strings.Contains(r.stdout, "noise") || strings.Contains(r.stdout, "stale") {
			t.Errorf("unfiltered go test output, or the engine was touched:\n%s", r)
		}
		if calls := log(t, env["MAKE"]); len(calls) != 1 || calls[0] != "--no-print-directory images" {
			t.Errorf("make calls: %q", calls)
		}
		docker := log(t, env["DOCKER"])
		if !contains(docker, "rm -f c1 c2") || !contains(docker, "network rm n1") {
			t.Errorf("docker calls: %q", docker)
		}
		if goCalls := log(t, env["GO"]); len(goCalls) != 2 || goCalls[0] != "test -count=1 -timeout 15m -v ./lab/provider ./docker" || goCalls[1] != "PROVIDER=docker" {
			t.Errorf("go calls: %q", goCalls)
		}
		want := "--label-filter=resubscribe || failover --junit-report=junit-docker.xml --output-dir=" + filepath.Join(dir, "reports") + " --keep-going --timeout 20m ./specs/chaos"
		if g := log(t, env["GINKGO"]); len(g) != 2 || g[0] != want || g[1] != "PROVIDER=docker" {
			t.Errorf("ginkgo calls: %q\nwant %q", g, want)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "reports", "docker-tests.log")); err != nil || !strings.Contains(string(b), "noise") {
			t.Errorf("docker-tests.log: %q %v", b, err)
		}
	})
	t.Run("CHAOS_PROVIDER=swarm: makes the swarm, removes left services, runs on swarm, leaves the swarm it made", func(t *testing.T) {
		env, dir := setup(t, true)
		mark := filepath.Join(dir, "swarm-active")
		env["DOCKER"] = standIn(t, dir, "swarm-docker", `case "$1 $2" in
"info --format") if [[ -f '`+mark+`' ]]; then echo active; else echo inactive; fi ;;
"swarm init") touch '`+mark+`' ;;
"swarm leave") rm -f '`+mark+`' ;;
"network inspect") exit 1 ;;
"service ls") echo s1 ;;
esac; exit 0`)
		env["CHAOS_PROVIDER"], env["SWARM_MARK"] = "swarm", filepath.Join(dir, "swarm.created")
		r := run(t, env, "chaos-docker.sh")
		expect(t, r, 0, "docker swarm init", "make chaos-swarm: removing services earlier labs left", "make chaos-swarm: passed in", "leaving the swarm it made")
		docker := log(t, env["DOCKER"])
		if !contains(docker, "service rm s1") {
			t.Errorf("docker calls: %q", docker)
		}
		if goCalls := log(t, env["GO"]); len(goCalls) != 2 || !strings.Contains(goCalls[0], "-timeout 25m") || goCalls[1] != "PROVIDER=swarm" {
			t.Errorf("go calls: %q", goCalls)
		}
		if g := log(t, env["GINKGO"]); len(g) != 2 || !strings.Contains(g[0], "--junit-report=junit-swarm.xml") || g[1] != "PROVIDER=swarm" {
			t.Errorf("ginkgo calls: %q", g)
		}
		if _, err := os.Stat(mark); !errors.Is(err, os.ErrNotExist) {
			t.Error("the swarm it made is still there")
		}
	})
	t.Run("no engine before: it stops the one it started", func(t *testing.T) {
		env, _ := setup(t, false)
		expect(t, run(t, env, "chaos-docker.sh"), 0, "names no running dockerd (stale)")
	})
	t.Run("no engine before, KEEP_ENGINE=1: it stays up", func(t *testing.T) {
		env, _ := setup(t, false)
		env["KEEP_ENGINE"] = "1"
		r := run(t, env, "chaos-docker.sh")
		expect(t, r, 0, "KEEP_ENGINE=1: the engine it started stays up")
		if strings.Contains(r.stdout, "stale") {
			t.Errorf("it ran docker-engine.sh stop:\n%s", r)
		}
	})
	t.Run("a failing go test stops it before the specs", func(t *testing.T) {
		env, _ := setup(t, true)
		env["GO_FAILS"] = "1"
		r := run(t, env, "chaos-docker.sh")
		if r.code == 0 || log(t, env["GINKGO"]) != nil {
			t.Errorf("want a failure and no specs run:\n%s", r)
		}
	})
	t.Run("DOCKER_TESTS empty", func(t *testing.T) {
		env, _ := setup(t, true)
		delete(env, "DOCKER_TESTS")
		expect(t, run(t, env, "chaos-docker.sh"), 2, "DOCKER_TESTS is empty")
	})
}

func TestTestRunsTheStepsInOrder(t *testing.T) {
	setup := func(t *testing.T) map[string]string {
		dir := t.TempDir()
		return map[string]string{
			"GO": standIn(t, dir, "go", `case $1 in
list) printf 'x/a\nx/specs/chaos\nx/b\n';;
test) [[ $2 == -list ]] && echo FuzzA; [[ $2 == -count=1 ]] && printf -- '--- PASS: TestDocker\n';;
esac; exit 0`),
			"GINKGO":       standIn(t, dir, "ginkgo", `[[ -z $GINKGO_FAILS ]]`),
			"CHAOS_SMOKE":  "amplification || resubscribe",
			"FUZZ_TARGETS": "./p:FuzzA",
			"FUZZTIME":     "1s",
			"DOCKER":       standIn(t, dir, "docker", "exit 0"),
			"MAKE":         standIn(t, dir, "make", ""),
			"REPORTS":      filepath.Join(dir, "reports"),
			"DOCKER_TESTS": "./docker",
		}
	}
	t.Run("DOCKER_SMOKE=0", func(t *testing.T) {
		env := setup(t)
		env["DOCKER_SMOKE"] = "0"
		r := run(t, env, "test.sh")
		expect(t, r, 0, "make test: DOCKER_SMOKE=0: the docker smoke subset (make chaos-docker) was NOT run")
		want := []string{
			"list ./...",
			"test -race -count=1 -timeout 15m x/a x/b",
			"test -list ^FuzzA$ ./p",
			"test -run ^$ -fuzz ^FuzzA$ -fuzztime 1s -fuzzminimizetime 3s ./p",
		}
		if got := log(t, env["GO"]); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("go calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if g := log(t, env["GINKGO"]); len(g) != 1 || g[0] != "-r --label-filter=amplification || resubscribe --junit-report=junit.xml --json-report=report.json --output-dir=reports --keep-going --timeout 25m ./specs" {
			t.Errorf("ginkgo calls: %q", g)
		}
	})
	t.Run("the docker smoke subset at DOCKER_SMOKE_LABELS", func(t *testing.T) {
		env := setup(t)
		env["DOCKER_SMOKE_LABELS"] = "resubscribe || failover"
		env["DOCKER_LABELS"] = "something else"
		expect(t, run(t, env, "test.sh"), 0, "make chaos-docker: passed in")
		if g := log(t, env["GINKGO"]); len(g) != 2 || !strings.HasPrefix(g[1], "--label-filter=resubscribe || failover --junit-report=junit-docker.xml") {
			t.Errorf("ginkgo calls: %q", g)
		}
	})
	t.Run("a failing step stops it", func(t *testing.T) {
		env := setup(t)
		env["DOCKER_SMOKE"] = "0"
		env["GINKGO_FAILS"] = "1"
		r := run(t, env, "test.sh")
		if r.code == 0 || contains(log(t, env["GO"]), "-fuzz") {
			t.Errorf("want a failure before fuzzing:\n%s", r)
		}
	})
	t.Run("CHAOS_SMOKE empty: the whole chaos suite, as make chaos", func(t *testing.T) {
		env := setup(t)
		env["DOCKER_SMOKE"] = "0"
		delete(env, "CHAOS_SMOKE")
		expect(t, run(t, env, "test.sh"), 0, "")
		if g := log(t, env["GINKGO"]); len(g) != 1 || !strings.HasPrefix(g[0], "-r --label-filter= --junit-report=junit.xml") {
			t.Errorf("ginkgo calls: %q", g)
		}
	})
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// readyz serves GET /readyz with 200 on 127.0.0.1, as a gateway behind its
// client link does, and returns its port.
func readyz(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
		}
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return l.Addr().(*net.TCPAddr).Port
}

func TestCompose(t *testing.T) {
	file, err := filepath.Abs("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("without the v2 plugin: docker-compose", func(t *testing.T) {
		dir := t.TempDir()
		docker := standIn(t, dir, "docker", "exit 1") // 'docker compose version' fails
		compose := standIn(t, dir, "docker-compose", "")
		env := map[string]string{"DOCKER": docker, "DOCKER_COMPOSE": compose, "COMPOSE_WAIT": "0"}
		expect(t, run(t, env, "compose.sh", "up"), 0, "compose.sh: the stack is up: ws://127.0.0.1:20001/ws (us-east)")
		expect(t, run(t, env, "compose.sh", "down"), 0)
		if calls := log(t, compose); len(calls) != 2 || calls[0] != "-f "+file+" up -d" || calls[1] != "-f "+file+" down -v" {
			t.Errorf("docker-compose calls: %q", calls)
		}
	})
	t.Run("with the v2 plugin: docker compose", func(t *testing.T) {
		dir := t.TempDir()
		docker := standIn(t, dir, "docker", "exit 0")
		env := map[string]string{"DOCKER": docker, "DOCKER_COMPOSE": standIn(t, dir, "docker-compose", "")}
		expect(t, run(t, env, "compose.sh", "down"), 0)
		if calls := log(t, docker); len(calls) != 2 || calls[0] != "compose version" || calls[1] != "compose -f "+file+" down -v" {
			t.Errorf("docker calls: %q", calls)
		}
		if log(t, env["DOCKER_COMPOSE"]) != nil {
			t.Error("docker-compose ran although the plugin answers")
		}
	})
	t.Run("neither", func(t *testing.T) {
		dir := t.TempDir()
		env := map[string]string{"DOCKER": standIn(t, dir, "docker", "exit 1"), "DOCKER_COMPOSE": filepath.Join(dir, "none")}
		expect(t, run(t, env, "compose.sh", "down"), 2, "neither 'docker compose' nor docker-compose is installed")
	})
	t.Run("up waits for both gateways", func(t *testing.T) {
		dir := t.TempDir()
		us, eu := readyz(t), readyz(t)
		env := map[string]string{"COMPOSE": standIn(t, dir, "compose", ""), "COMPOSE_WAIT": "10",
			"GEOLAB_US_EAST_PORT": strconv.Itoa(us), "GEOLAB_EU_WEST_PORT": strconv.Itoa(eu)}
		expect(t, run(t, env, "compose.sh", "up"), 0, fmt.Sprintf("ws://127.0.0.1:%d/ws (us-east), ws://127.0.0.1:%d/ws (eu-west)", us, eu))
	})
	t.Run("up: a gateway that never answers", func(t *testing.T) {
		dir := t.TempDir()
		compose := standIn(t, dir, "compose", "")
		us, eu := readyz(t), freePort(t)
		env := map[string]string{"COMPOSE": compose, "COMPOSE_WAIT": "1",
			"GEOLAB_US_EAST_PORT": strconv.Itoa(us), "GEOLAB_EU_WEST_PORT": strconv.Itoa(eu)}
		expect(t, run(t, env, "compose.sh", "up"), 1, fmt.Sprintf("the gateways did not answer /readyz on 127.0.0.1:%d and 127.0.0.1:%d within 1s", us, eu))
		if calls := log(t, compose); !contains(calls, "ps") || !contains(calls, "logs --tail 20") {
			t.Errorf("compose calls: %q", calls)
		}
	})
	t.Run("config: the real file, with the real Compose", func(t *testing.T) {
		if exec.Command("docker", "compose", "version").Run() != nil {
			if _, err := exec.LookPath("docker-compose"); err != nil {
				t.Skip("no Compose installed (make deps-docker installs docker-compose)")
			}
		}
		expect(t, run(t, nil, "compose.sh", "config"), 0, "docker-compose.yml is valid")
	})
}

// TestHelpListsEveryTarget: make help, the index, lists every target of the
// Makefile once.
func TestHelpListsEveryTarget(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	cmd := exec.Command("make", "--no-print-directory", "-C", "..", "help")
	cmd.Env = append(os.Environ(), "MAKEFLAGS=", "MAKELEVEL=")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("make help: %v\n%s", err, out)
	}
	listed := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 1 && strings.HasPrefix(sc.Text(), "  ") {
			listed[f[0]]++
		}
	}
	for _, target := range strings.Fields(`help deps deps-redis deps-cc deps-ginkgo build test vet fuzz chaos
		chaos-mutants scenarios bench bench-peers lint clean report-png images deps-docker chaos-docker compose-up compose-down`) {
		if listed[target] != 1 {
			t.Errorf("make help lists %s %d times:\n%s", target, listed[target], out)
		}
	}
}

// TestBenchPeers runs bench-peers.sh with stand-ins for go and geolab: it
// installs Centrifugo only when it is missing, says so when the install
// fails, and hands BENCH_PEERS_ARGS to geolab bench peers.
func TestBenchPeers(t *testing.T) {
	t.Run("missing: go install, then geolab bench peers", func(t *testing.T) {
		dir := t.TempDir()
		cf := filepath.Join(dir, "centrifugo")
		goCmd := standIn(t, dir, "go", `echo "GOBIN=$GOBIN" >>"$0.log"; printf '#!/bin/sh\n' >"$GOBIN/centrifugo"; chmod +x "$GOBIN/centrifugo"`)
		geolab := standIn(t, dir, "geolab", "echo table")
		r := run(t, map[string]string{"GO": goCmd, "GEOLAB_BIN": geolab, "CENTRIFUGO": cf, "BENCH_PEERS_ARGS": "--rates 20,40 --duration 5s"}, "bench-peers.sh")
		expect(t, r, 0, "installing Centrifugo v6.9.1 into "+dir+"/", "table")
		if calls := log(t, goCmd); !contains(calls, "install github.com/centrifugal/centrifugo/v6@v6.9.1") || !contains(calls, "GOBIN="+dir) {
			t.Errorf("go calls: %q", calls)
		}
		if calls := log(t, geolab); len(calls) != 1 || calls[0] != "bench peers --centrifugo "+cf+" --rates 20,40 --duration 5s" {
			t.Errorf("geolab calls: %q", calls)
		}
	})
	t.Run("present: no install", func(t *testing.T) {
		dir := t.TempDir()
		cf := standIn(t, dir, "centrifugo", "")
		goCmd := standIn(t, dir, "go", "exit 1")
		geolab := standIn(t, dir, "geolab", "echo table")
		r := run(t, map[string]string{"GO": goCmd, "GEOLAB_BIN": geolab, "CENTRIFUGO": cf}, "bench-peers.sh")
		expect(t, r, 0, "table")
		if calls := log(t, goCmd); len(calls) != 0 {
			t.Errorf("go was called: %q", calls)
		}
	})
	t.Run("the install fails: exit 1 saying so, no benchmark", func(t *testing.T) {
		dir := t.TempDir()
		goCmd := standIn(t, dir, "go", "echo 'build failed: no network' >&2; exit 1")
		geolab := standIn(t, dir, "geolab", "echo table")
		r := run(t, map[string]string{"GO": goCmd, "GEOLAB_BIN": geolab, "CENTRIFUGO": filepath.Join(dir, "centrifugo")}, "bench-peers.sh")
		expect(t, r, 1, "build failed: no network", "go install github.com/centrifugal/centrifugo/v6@v6.9.1' failed")
		if calls := log(t, geolab); len(calls) != 0 {
			t.Errorf("geolab ran: %q", calls)
		}
	})
}

// swarmStandIn writes a docker CLI whose engine always answers and is in a
// swarm while the file MARK exists: 'swarm init' creates it, 'swarm leave'
// removes it.
func swarmStandIn(t *testing.T, dir string) (docker, mark string) {
	mark = filepath.Join(dir, "swarm-active")
	docker = standIn(t, dir, "docker", `case "$1 $2" in
"info --format") if [[ -f '`+mark+`' ]]; then echo active; else echo inactive; fi ;;
"swarm init") touch '`+mark+`' ;;
"swarm leave") rm -f '`+mark+`' ;;
"network inspect") exit 1 ;;
esac`)
	return docker, mark
}

func TestSwarm(t *testing.T) {
	t.Run("not in a swarm: start makes one and says so, stop leaves it", func(t *testing.T) {
		dir := t.TempDir()
		docker, active := swarmStandIn(t, dir)
		mark := filepath.Join(dir, "swarm.created")
		env := map[string]string{"DOCKER": docker, "SWARM_MARK": mark, "DOCKERD_PID": filepath.Join(dir, "dockerd.pid")}
		expect(t, run(t, env, "swarm.sh", "status"), 1, "the engine is not in a swarm (inactive)")
		expect(t, run(t, env, "swarm.sh", "start"), 0, "docker swarm init --advertise-addr 127.0.0.1")
		calls := log(t, docker)
		if !contains(calls, "host_binding_ipv4=127.0.0.1 docker_gwbridge") || !contains(calls, "swarm init --advertise-addr 127.0.0.1") {
			t.Errorf("want docker_gwbridge on the loopback, then swarm init; calls:\n%s", strings.Join(calls, "\n"))
		}
		expect(t, run(t, env, "swarm.sh", "status"), 0, "a swarm that 'scripts/swarm.sh start' made")
		expect(t, run(t, env, "swarm.sh", "stop"), 0, "leaving the swarm it made")
		if _, err := os.Stat(active); !errors.Is(err, os.ErrNotExist) {
			t.Error("still in the swarm after stop")
		}
		if !contains(log(t, docker), "network rm docker_gwbridge") {
			t.Error("stop left the docker_gwbridge it made")
		}
		if _, err := os.Stat(mark); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("mark after stop: %v", err)
		}
	})
	t.Run("a swarm it did not make: start does nothing, stop leaves it alone", func(t *testing.T) {
		dir := t.TempDir()
		docker, active := swarmStandIn(t, dir)
		if err := os.WriteFile(active, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		env := map[string]string{"DOCKER": docker, "SWARM_MARK": filepath.Join(dir, "swarm.created"), "DOCKERD_PID": filepath.Join(dir, "dockerd.pid")}
		r := run(t, env, "swarm.sh", "start")
		expect(t, r, 0)
		if r.stdout+r.stderr != "" {
			t.Errorf("want no output:\n%s", r)
		}
		expect(t, run(t, env, "swarm.sh", "status"), 0, "in a swarm (not one this script made)")
		expect(t, run(t, env, "swarm.sh", "stop"), 0)
		if _, err := os.Stat(active); err != nil || contains(log(t, docker), "swarm leave") {
			t.Errorf("stop left a swarm it did not make: %v", err)
		}
	})
}
