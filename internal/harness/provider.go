package harness

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/geolab/geolab/lab"
	"github.com/geolab/geolab/lab/provider"
)

// The provider contract: one suite of tests, each run once per provider, as
// litestream runs one suite against every replica client. A test written
// with RunWithProvider proves the same fault, observed the same way, on
// every provider that can run here; a new provider is one entry in
// providers below and no test code. $PROVIDER (provider.Env) narrows the
// run to one provider.

// providerSpec is one provider the lab knows and what it needs to run here
// (ready nil: it always can).
type providerSpec struct {
	name  string
	ready func(ctx context.Context) error
}

// providers are the providers the lab knows, in the order a test runs on
// them.
var providers = []providerSpec{
	{provider.ProcessName, nil},
	{provider.DockerName, dockerReady},
	{provider.SwarmName, swarmReady},
}

// Providers lists the providers the contract tests run on: $PROVIDER alone
// when it is set (provider.FromEnv, its one reader), else every provider
// the lab knows. Whether one can run here is ProviderReady's question.
func Providers() []string {
	if p, ok := provider.FromEnv(); ok {
		return []string{p}
	}
	return known()
}

var (
	readyMu    sync.Mutex
	readyCache = map[string]error{}
)

// ProviderReady returns nil when the named provider can run a lab here, else
// why not, in one line: for docker, an engine must answer
// (provider.DockerEngine) and geolab's images must be built ('make
// images'); for swarm, the engine must be a swarm manager as well
// (provider.SwarmEngine, 'make deps-swarm'). The answer is found once per test binary.
func ProviderReady(name string) error {
	i := slices.IndexFunc(providers, func(p providerSpec) bool { return p.name == name })
	if i < 0 {
		return fmt.Errorf("unknown provider %q: the harness knows %s", name, strings.Join(known(), ", "))
	}
	if providers[i].ready == nil {
		return nil
	}
	readyMu.Lock()
	defer readyMu.Unlock()
	err, ok := readyCache[name]
	if !ok {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = providers[i].ready(ctx)
		cancel()
		readyCache[name] = err
	}
	return err
}

func known() []string {
	var out []string
	for _, p := range providers {
		out = append(out, p.name)
	}
	return out
}

// dockerReady: an engine answers and the images exist (NewDocker checks
// both and creates nothing).
func dockerReady(ctx context.Context) error {
	if err := provider.DockerEngine(ctx); err != nil {
		return err
	}
	d, err := provider.NewDocker(ctx, provider.DockerOptions{})
	if err != nil {
		return err
	}
	return d.Close()
}

// swarmReady: the engine is a swarm manager and every node has the images
// (NewSwarm checks both and creates nothing).
func swarmReady(ctx context.Context) error {
	s, err := provider.NewSwarm(ctx, provider.SwarmOptions{})
	if err != nil {
		return err
	}
	return s.Close()
}

// RunWithProvider runs body as a subtest named after each provider of
// Providers, with lab.Options naming that provider: every provider when
// $PROVIDER is unset, only that one when it is set. A provider that cannot
// run here (ProviderReady) is skipped with the reason, unless $PROVIDER
// names it: a run that asked for a provider fails when it cannot have it,
// rather than passing with nothing run. An unknown $PROVIDER fails too. body starts its labs with StartLab(t, file, opts),
// adding to opts what it needs (gateway flags).
func RunWithProvider(t *testing.T, body func(t *testing.T, opts lab.Options)) {
	t.Helper()
	for _, name := range Providers() {
		t.Run(name, func(t *testing.T) {
			t.Helper()
			requireReady(t, name)
			body(t, lab.Options{Provider: name})
		})
	}
}

// RequireProvider skips t, saying why, unless the named provider is one the
// contract tests run on here: $PROVIDER unset or naming it, and
// ProviderReady. It is for a test about one provider itself (the docker
// provider's network isolation), which RunWithProvider's would not fit.
func RequireProvider(t testing.TB, name string) {
	t.Helper()
	if !slices.Contains(Providers(), name) {
		p, _ := provider.FromEnv()
		t.Skipf("a test of the %s provider; %s=%s", name, provider.Env, p)
	}
	requireReady(t, name)
}

// requireReady skips t when the named provider cannot run here, or fails it
// when $PROVIDER asked for that provider by name.
func requireReady(t testing.TB, name string) {
	t.Helper()
	err := ProviderReady(name)
	if err == nil {
		return
	}
	if asked, ok := provider.FromEnv(); ok && asked == name {
		t.Fatalf("%s=%s, but that provider cannot run here: %v", provider.Env, name, err)
		return // for a TB whose Fatalf returns
	}
	t.Skipf("provider %s cannot run here: %v", name, err)
}
