package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/geolab/geolab/lab"
	"github.com/geolab/geolab/lab/fault"
	"github.com/geolab/geolab/lab/provider"
)

func TestTopologyPathIsFoundFromTheModuleRoot(t *testing.T) {
	for _, name := range []string{"two-region.yaml", "two-region"} {
		p := TopologyPath(name)
		if !filepath.IsAbs(p) || filepath.Base(filepath.Dir(p)) != "topologies" {
			t.Errorf("TopologyPath(%q) = %s, want an absolute path under topologies/", name, p)
		}
		if _, err := os.Stat(p); err != nil {
			t.Errorf("TopologyPath(%q): %v", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(Root(), "go.mod")); err != nil {
		t.Errorf("Root() = %s holds no go.mod: %v", Root(), err)
	}
	if got := TopologyPath("./mine.yaml"); got != "./mine.yaml" {
		t.Errorf("a path relative to the test's directory is kept: got %s", got)
	}
	if topo := Topology(t, "three-region"); len(topo.Regions) != 3 {
		t.Errorf("three-region has %d regions", len(topo.Regions))
	}
}

func TestProvidersFollowsTheEnvironment(t *testing.T) {
	t.Setenv(provider.Env, "")
	if got := Providers(); !slices.Equal(got, []string{"process", "docker", "swarm"}) {
		t.Errorf("PROVIDER unset: %v, want every provider", got)
	}
	t.Setenv(provider.Env, "docker")
	if got := Providers(); !slices.Equal(got, []string{"docker"}) {
		t.Errorf("PROVIDER=docker: %v", got)
	}
	if err := ProviderReady("podman"); err == nil || !strings.Contains(err.Error(), "process, docker, swarm") {
		t.Errorf("unknown provider: %v, want an error naming the known ones", err)
	}
	if err := ProviderReady("process"); err != nil {
		t.Errorf("process not ready: %v", err)
	}
}

// forgetReadiness makes ProviderReady ask again for the rest of t (after a
// change of DOCKER_HOST) and restores what it knew when t ends.
func forgetReadiness(t *testing.T) {
	readyMu.Lock()
	saved := readyCache
	readyCache = map[string]error{}
	readyMu.Unlock()
	t.Cleanup(func() { readyMu.Lock(); readyCache = saved; readyMu.Unlock() })
}

// RunWithProvider runs the body once per provider that can run; one that
// cannot is skipped, not run and not failed.
func TestRunWithProviderSkipsAProviderThatCannotRun(t *testing.T) {
	t.Setenv(provider.Env, "")
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
	forgetReadiness(t)

	var ran []string
	RunWithProvider(t, func(t *testing.T, opts lab.Options) { ran = append(ran, opts.Provider) })
	if !slices.Equal(ran, []string{"process"}) {
		t.Errorf("ran on %v, want process only (no engine answers at DOCKER_HOST)", ran)
	}
	if err := ProviderReady("docker"); err == nil || !strings.Contains(err.Error(), "no Docker engine answers") {
		t.Errorf("docker without an engine: %v", err)
	}
	if err := ProviderReady("swarm"); err == nil || !strings.Contains(err.Error(), "provider swarm: no Docker engine answers") || !strings.Contains(err.Error(), "make deps-swarm") {
		t.Errorf("swarm without an engine: %v", err)
	}
}

// outcome is a testing.TB that records a Skipf or Fatalf instead of
// ending the test.
type outcome struct {
	testing.TB
	skipped, failed string
}

func (o *outcome) Helper()                      {}
func (o *outcome) Skipf(f string, args ...any)  { o.skipped = fmt.Sprintf(f, args...) }
func (o *outcome) Fatalf(f string, args ...any) { o.failed = fmt.Sprintf(f, args...) }

// A provider that cannot run is skipped when the run did not ask for it, and
// fails the test when $PROVIDER named it: make chaos-docker without an engine
// or images must not pass with nothing run.
func TestAProviderAskedForByNameFailsWhenItCannotRun(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
	forgetReadiness(t)

	t.Setenv(provider.Env, "")
	o := &outcome{TB: t}
	requireReady(o, provider.DockerName)
	if o.failed != "" || !strings.Contains(o.skipped, "no Docker engine answers") {
		t.Errorf("PROVIDER unset: skipped %q, failed %q; want a skip naming why", o.skipped, o.failed)
	}

	t.Setenv(provider.Env, provider.DockerName)
	o = &outcome{TB: t}
	requireReady(o, provider.DockerName)
	if o.skipped != "" || !strings.Contains(o.failed, "PROVIDER=docker") || !strings.Contains(o.failed, "no Docker engine answers") {
		t.Errorf("PROVIDER=docker: skipped %q, failed %q; want a failure naming the variable and why", o.skipped, o.failed)
	}
}

func TestAliveAndStoppedReadTheKernel(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if !Alive(pid) || Stopped(pid) {
		t.Fatalf("a running sleep: alive %v, stopped %v (state %q)", Alive(pid), Stopped(pid), State(pid))
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, 5*time.Second, "SIGSTOP leaves the process in state T", func() bool { return Stopped(pid) && State(pid) == 'T' })
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, 5*time.Second, "SIGCONT lets it run", func() bool { return !Stopped(pid) })
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if Alive(pid) || Stopped(pid) || State(pid) != 0 {
		t.Errorf("a killed and reaped process: alive %v, stopped %v, state %q", Alive(pid), Stopped(pid), State(pid))
	}
	if Alive(0) || Alive(-1) {
		t.Error("pid 0 or -1 counted alive")
	}
}

// StartLab stops the lab when the test that started it ends; the verbs
// drive it in between.
func TestStartLabStopsTheLabAtCleanup(t *testing.T) {
	var pids []int
	t.Run("lab", func(t *testing.T) {
		l := StartLab(t, "single-region", lab.Options{})
		const room = "local:h"
		sub := Dial(t, l, "sub", []string{Direct(l, "us-east", 1)}, room)
		pub := Dial(t, l, "pub", []string{Direct(l, "us-east", 2)})
		ids := pub.PublishN(room, "m", 3)
		WaitFor(t, 10*time.Second, "three messages delivered", func() bool { return sub.HasAll(room, ids) })
		ExactlyOnceInOrder(t, sub, room, ids)
		if ms := sub.Messages(room); len(ms) != 3 || ms[0].Origin != "us-east" || ms[0].Data != nil {
			t.Errorf("messages: %+v; want three of origin us-east, without their data", ms)
		}
		g := l.Region("us-east").Gateway(2)
		old := g.Pid()
		Inject(t, l, fault.Spec{Kind: "gateway-kill", Regions: []string{"us-east"}, Node: "gw-2"})
		if Alive(old) {
			t.Errorf("gw-2 pid %d alive after gateway-kill", old)
		}
		Heal(t, l)
		if !g.Running() || g.Pid() == old || !Ready(g.Listen) {
			t.Errorf("gw-2 after heal: running %v, pid %d (was %d)", g.Running(), g.Pid(), old)
		}
		st := l.Status(context.Background())
		for _, r := range st.Regions {
			pids = append(pids, r.Redis.Pid)
			for _, g := range r.Gateways {
				pids = append(pids, g.Pid)
			}
		}
	})
	if len(pids) == 0 {
		t.Fatal("no pids recorded")
	}
	for _, pid := range pids {
		if Alive(pid) {
			t.Errorf("pid %d alive after the test that started its lab ended", pid)
		}
	}
}
