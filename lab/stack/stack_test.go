package stack_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2/client"
	"github.com/redis/go-redis/v9"

	"github.com/geolab/geolab/internal/redistest"
	"github.com/geolab/geolab/internal/toxitest"
	"github.com/geolab/geolab/lab/fault"
	"github.com/geolab/geolab/lab/link"
	"github.com/geolab/geolab/lab/stack"
)

// quietRedis drops go-redis's own log lines (the pings through cut links
// fail on purpose).
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	redis.SetLogger(quietRedis{})
	os.Exit(m.Run())
}

// composeLike starts a real Toxiproxy (toxitest) and, on
// it, the proxies docker-compose.yml has, named as the lab names links,
// with real Redis servers behind the lan and wan ones, plus one proxy that
// is not a link. It returns the API URL and the wan.us-east.eu-west proxy.
func composeLike(t *testing.T) (string, *toxiproxy.Proxy) {
	t.Helper()
	url := toxitest.Start(t)
	usEast, euWest := redistest.Start(t), redistest.Start(t)
	api := toxiproxy.NewClient(url)
	var wan *toxiproxy.Proxy
	for _, pr := range []struct{ name, upstream string }{
		{"client.us-east.us-east.gw-1", "127.0.0.1:9"},
		{"client.eu-west.eu-west.gw-1", "127.0.0.1:9"},
		{"client.us-east.eu-west.gw-1", "127.0.0.1:9"},
		{"client.eu-west.us-east.gw-1", "127.0.0.1:9"},
		{"lan.us-east.gw-1", usEast.Addr()},
		{"lan.eu-west.gw-1", euWest.Addr()},
		{"wan.us-east.eu-west", euWest.Addr()},
		{"wan.eu-west.us-east", usEast.Addr()},
		{"metrics", "127.0.0.1:9"},
	} {
		listen, err := link.FreeListen() // a cut proxy must bind its port again at the heal
		if err != nil {
			t.Fatal(err)
		}
		x, err := api.CreateProxy(pr.name, listen, pr.upstream)
		if err != nil {
			t.Fatalf("create %s: %v", pr.name, err)
		}
		if pr.name == "wan.us-east.eu-west" {
			wan = x
		}
	}
	return url, wan
}

// pings reports whether a Redis PING through the proxy listening on addr
// is answered.
func pings(addr string) bool {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: time.Second, DisableIdentity: true})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return c.Ping(ctx).Err() == nil
}

func attach(t *testing.T, url string) *stack.Stack {
	t.Helper()
	s, err := stack.Attach(url)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func holders(t *testing.T, s *stack.Stack, name string) []string {
	t.Helper()
	ls, err := s.Links()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if l.Name == name {
			return l.Holders
		}
	}
	t.Fatalf("no link %s", name)
	return nil
}

// TestFaultsAndHealsAcrossAttaches plays what separate geolab commands do
// on a compose stack: each attaches afresh, and what one injects the next
// sees, numbers after, and heals, with real traffic through the proxies.
func TestFaultsAndHealsAcrossAttaches(t *testing.T) {
	url, wan := composeLike(t)
	ctx := context.Background()

	s := attach(t, url)
	if got := strings.Join(s.Topology().RegionNames(), ","); got != "eu-west,us-east" {
		t.Fatalf("regions = %s, want eu-west,us-east", got)
	}
	for _, r := range s.Topology().Regions {
		if r.Gateways != 1 {
			t.Errorf("region %s: %d gateways, want 1", r.Name, r.Gateways)
		}
	}
	if got := strings.Join(s.Ignored, ","); got != "metrics" {
		t.Errorf("ignored = %q, want metrics", got)
	}
	if !pings(wan.Listen) {
		t.Fatal("no PING through wan.us-east.eu-west before any fault")
	}

	a, err := s.Inject(ctx, fault.Spec{Kind: "partition", Regions: []string{"us-east", "eu-west"}})
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != "f1" {
		t.Fatalf("first fault id = %s, want f1", a.ID)
	}
	if pings(wan.Listen) {
		t.Fatal("PING passed through wan.us-east.eu-west during the partition")
	}

	// A second command: it sees f1 and numbers after it.
	s2 := attach(t, url)
	if got := holders(t, s2, "wan.us-east.eu-west"); strings.Join(got, ",") != "f1" {
		t.Fatalf("holders of wan.us-east.eu-west = %v, want [f1]", got)
	}
	b, err := s2.Inject(ctx, fault.Spec{Kind: "isolate", Regions: []string{"eu-west"}})
	if err != nil {
		t.Fatal(err)
	}
	if b.ID != "f2" {
		t.Fatalf("second fault id = %s, want f2", b.ID)
	}
	c, err := s2.Inject(ctx, fault.Spec{Kind: "latency", Regions: []string{"us-east", "eu-west"}, Latency: 80 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	traces, err := attach(t, url).Faults()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, tr := range traces {
		ids = append(ids, tr.ID)
		if tr.ID == c.ID && len(tr.Toxics["wan.us-east.eu-west"]) != 2 {
			t.Errorf("latency %s: toxics on wan.us-east.eu-west = %v, want one each way", c.ID, tr.Toxics["wan.us-east.eu-west"])
		}
	}
	if strings.Join(ids, ",") != "f1,f2,f3" {
		t.Fatalf("faults = %v, want f1,f2,f3", ids)
	}

	// Healing f1 leaves the wan link closed: f2 (isolate eu-west) still holds it.
	if healed, err := attach(t, url).Heal(ctx, "f1"); err != nil || strings.Join(healed, ",") != "f1" {
		t.Fatalf("heal f1 = %v, %v", healed, err)
	}
	if pings(wan.Listen) {
		t.Fatal("PING passed through wan.us-east.eu-west while isolate f2 still holds it")
	}
	if _, err := attach(t, url).Heal(ctx, "f9"); err == nil || !strings.Contains(err.Error(), "no fault f9") || !strings.Contains(err.Error(), "f2, f3") {
		t.Fatalf("heal of an unknown id: err = %v, want one naming f9 and the active f2, f3", err)
	}

	// Heal all: every link opens, every fault toxic goes, the base stays.
	healed, err := attach(t, url).Heal(ctx, "")
	if err != nil || strings.Join(healed, ",") != "f2,f3" {
		t.Fatalf("heal all = %v, %v; want f2,f3", healed, err)
	}
	if !pings(wan.Listen) {
		t.Fatal("no PING through wan.us-east.eu-west after heal all")
	}
	s3 := attach(t, url)
	ls, err := s3.Links()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if !l.Enabled || len(l.Holders) > 0 || len(l.Toxics) > 0 {
			t.Errorf("after heal all: %s enabled=%v holders=%v toxics=%v", l.Name, l.Enabled, l.Holders, l.Toxics)
		}
	}
	if _, err := s3.Heal(ctx, ""); err != nil {
		t.Fatalf("heal all with nothing active: %v", err)
	}
}

// TestAProxyDisabledByHandStaysDisabled: a fault on a link someone disabled
// through the API must not re-open it when healed.
func TestAProxyDisabledByHandStaysDisabled(t *testing.T) {
	url, wan := composeLike(t)
	ctx := context.Background()
	if err := wan.Disable(); err != nil {
		t.Fatal(err)
	}
	s := attach(t, url)
	if got := holders(t, s, "wan.us-east.eu-west"); strings.Join(got, ",") != link.ByHand {
		t.Fatalf("holders = %v, want [%s]", got, link.ByHand)
	}
	if _, err := s.Inject(ctx, fault.Spec{Kind: "partition", Regions: []string{"eu-west", "us-east"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := attach(t, url).Heal(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if pings(wan.Listen) {
		t.Fatal("healing the partition re-opened a link disabled by hand")
	}
	if got := holders(t, attach(t, url), "wan.us-east.eu-west"); strings.Join(got, ",") != link.ByHand {
		t.Fatalf("holders after heal = %v, want [%s]", got, link.ByHand)
	}
}

// TestProcessFaultsAndBadSpecsAreRefusedByName: a stack's processes are not
// geolab's; the error says what to use.
func TestProcessFaultsAndBadSpecsAreRefusedByName(t *testing.T) {
	url, _ := composeLike(t)
	s := attach(t, url)
	ctx := context.Background()
	for _, tc := range []struct {
		spec fault.Spec
		want string
	}{
		{fault.Spec{Kind: "gateway-kill", Regions: []string{"us-east"}}, "docker compose kill"},
		{fault.Spec{Kind: "region-down", Regions: []string{"eu-west"}}, "acts on a process"},
		{fault.Spec{Kind: "partition", Regions: []string{"us-east", "ap-south"}}, `no region "ap-south"`},
		{fault.Spec{Kind: "latency", Regions: []string{"us-east", "eu-west"}}, "latency: must be positive"},
		{fault.Spec{Kind: "typo"}, `fault kind "typo" is unknown`},
	} {
		if _, err := s.Inject(ctx, tc.spec); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %v: err = %v, want it to contain %q", tc.spec.Kind, tc.spec.Regions, err, tc.want)
		}
	}
	traces, err := s.Faults()
	if err != nil || len(traces) != 0 {
		t.Fatalf("refused faults left traces: %v, %v", traces, err)
	}
}

// TestAttachWithoutLinksSaysWhatItWants: a Toxiproxy with no geolab links.
func TestAttachWithoutLinksSaysWhatItWants(t *testing.T) {
	url := toxitest.Start(t)
	if _, err := toxiproxy.NewClient(url).CreateProxy("postgres", "127.0.0.1:0", "127.0.0.1:5432"); err != nil {
		t.Fatal(err)
	}
	_, err := stack.Attach(url)
	if err == nil || !strings.Contains(err.Error(), "no geolab links (its proxies: postgres)") || !strings.Contains(err.Error(), "wan.FROM.TO") {
		t.Fatalf("err = %v", err)
	}
}
