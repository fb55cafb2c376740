// Package harness is the one way geolab's tests drive a real lab, as
// hashicorp/raft's testing.go is raft's: start a topology for a test and
// stop it when the test ends, inject and heal faults that fail the test
// when they fail, probe the lab with real clients that are closed when the
// test ends, and wait on conditions (WaitFor, Never: internal/wait, the one
// way to wait).
//
//	harness.RunWithProvider(t, func(t *testing.T, opts lab.Options) {
//		l := harness.StartLab(t, "two-region.yaml", opts)
//		east := harness.Dial(t, l, "east", []string{harness.Direct(l, "us-east", 1)}, room)
//		west := harness.Dial(t, l, "west", []string{harness.Direct(l, "us-west", 1)}, room)
//		harness.Partition(t, l, "us-east", "us-west")
//		id := east.Publish(room, "m-1")
//		harness.Never(t, time.Second, "m-1 crossed the partition", func() bool { return west.Has(room, id) })
//		harness.Heal(t, l)
//		harness.WaitFor(t, 30*time.Second, "m-1 crosses after the heal", func() bool { return west.Has(room, id) })
//	})
//
// RunWithProvider runs a test once per provider that can run here (the
// provider contract, provider.go); topology files are found under the
// repository's topologies/ from any package's tests.
package harness

import (
	"context"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/geolab/geolab/internal/testbin"
	"github.com/geolab/geolab/internal/wait"
	"github.com/geolab/geolab/lab"
	"github.com/geolab/geolab/lab/fault"
	"github.com/geolab/geolab/lab/provider"
	"github.com/geolab/geolab/lab/topology"
)

// TB is what the harness needs of a test: *testing.T, testing.TB and
// Ginkgo's GinkgoT() all satisfy it.
type TB interface {
	wait.TB
	Cleanup(func())
	Errorf(format string, args ...any)
	Logf(format string, args ...any)
}

// WaitFor polls cond until it holds and fails t, naming what it waited
// for, when bound passes first (wait.For).
var WaitFor = wait.For

// Until polls cond until it holds or bound passes and reports whether it
// held, for a test that must decide rather than fail (wait.Until).
var Until = wait.Until

// Never fails t if cond holds at any poll within window: the absence of an
// effect, watched for a window many times longer than the path the effect
// would take (wait.Never).
var Never = wait.Never

// StartTimeout bounds StartLab: a lab on containers on a loaded 2-core
// machine takes far longer than one of processes.
const StartTimeout = 3 * time.Minute

// Root is the repository's root directory, found from this file's path so
// that it does not depend on the directory a test runs in.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// TopologyPath is the path of a topology file: file itself when it is
// absolute or a path relative to the test's directory ("./x.yaml",
// "../y.yaml"), else topologies/FILE under the repository's root (".yaml"
// may be left out).
func TopologyPath(file string) string {
	if filepath.IsAbs(file) || strings.HasPrefix(file, "./") || strings.HasPrefix(file, "../") {
		return file
	}
	if filepath.Ext(file) == "" {
		file += ".yaml"
	}
	return filepath.Join(Root(), "topologies", file)
}

// Topology loads a topology file (see TopologyPath) or fails t.
func Topology(t TB, file string) *topology.Topology {
	t.Helper()
	topo, err := topology.Load(TopologyPath(file))
	if err != nil {
		t.Fatalf("topology %s: %v", file, err)
	}
	return topo
}

// Options completes opts for a test: with the process provider (the
// default) and no Bin, the geolab binary of internal/testbin ($GEOLAB_BIN,
// else a fresh build), so that any package's tests can start a lab without
// a TestMain of their own.
func Options(t TB, opts lab.Options) lab.Options {
	t.Helper()
	if opts.Bin == "" && (opts.Provider == "" || opts.Provider == provider.ProcessName) {
		bin, err := testbin.Path()
		if err != nil {
			t.Fatalf("geolab binary: %v", err)
		}
		opts.Bin = bin
	}
	return opts
}

// StartLab brings up the topology in file (see TopologyPath) with opts (see
// Options) within StartTimeout and stops it when the test ends, failing
// the test if either goes wrong. Lab.Close may be called sooner: the
// cleanup's call is then a no-op.
func StartLab(t TB, file string, opts lab.Options) *lab.Lab {
	t.Helper()
	topo := Topology(t, file)
	opts = Options(t, opts)
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	start := time.Now()
	l, err := lab.Start(ctx, topo, opts)
	if err != nil {
		t.Fatalf("start %s on %s: %v", file, providerName(opts), err)
	}
	t.Logf("lab %s up on %s in %s", topo.Name, providerName(opts), time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("close lab %s: %v", topo.Name, err)
		}
	})
	return l
}

func providerName(opts lab.Options) string {
	if opts.Provider == "" {
		return provider.ProcessName
	}
	return opts.Provider
}

// InjectTimeout bounds Inject: a process fault waits for its effect (a
// drained gateway's exit, a restarted Redis's readiness).
const InjectTimeout = 60 * time.Second

// Inject applies s to the lab or fails t.
func Inject(t TB, l *lab.Lab, s fault.Spec) fault.Active {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), InjectTimeout)
	defer cancel()
	a, err := l.Inject(ctx, s)
	if err != nil {
		t.Fatalf("inject %s: %v", s.Kind, err)
	}
	return a
}

// Partition cuts regions a and b apart, both ways, by reset, or fails t.
func Partition(t TB, l *lab.Lab, a, b string) fault.Active {
	t.Helper()
	return Inject(t, l, fault.Spec{Kind: "partition", Regions: []string{a, b}})
}

// Heal heals every active fault, newest first, and fails t unless the lab
// is then healed (RequireHealed).
func Heal(t TB, l *lab.Lab) {
	t.Helper()
	if err := l.Heal(); err != nil {
		t.Fatalf("heal: %v", err)
	}
	RequireHealed(t, l)
}

// RequireHealed fails t unless the book of faults is empty and every link
// is enabled and carries only its base latency toxics.
func RequireHealed(t TB, l *lab.Lab) {
	t.Helper()
	if fs := l.Faults().List(); len(fs) != 0 {
		t.Fatalf("faults still active after heal: %+v", fs)
	}
	for _, ln := range l.Net().Select(nil) {
		if !ln.Enabled {
			t.Errorf("link %s still disabled after heal", ln.Name)
		}
		ts, err := l.Net().Toxics(ln.Name)
		if err != nil {
			t.Fatalf("toxics of %s: %v", ln.Name, err)
		}
		for _, x := range ts {
			if !strings.HasPrefix(x, "base_latency_") {
				t.Errorf("link %s still carries toxic %s after heal", ln.Name, x)
			}
		}
	}
}
