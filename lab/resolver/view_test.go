package resolver_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/geolab/geolab/internal/harness"
	"github.com/geolab/geolab/lab/resolver"
)

// A view answers what the resolver answers, health and order included,
// with every endpoint mapped (swarm agents dial the client links at
// Toxiproxy's overlay address); the resolver's own answers are unchanged.
func TestAViewAnswersTheResolversEndpointsMapped(t *testing.T) {
	topo := harness.Topology(t, "two-region.yaml")
	ready := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer ready.Close()
	var gws []resolver.Gateway
	for _, r := range topo.RegionNames() {
		eps := map[string]string{}
		for _, home := range topo.RegionNames() {
			eps[home] = "ws://172.18.0.3:4" + r[3:4] + home[3:4] + "/ws"
		}
		gws = append(gws, resolver.Gateway{Region: r, Node: "gw-1", Health: ready.URL, Endpoints: eps})
	}
	res := resolver.New(topo, gws)
	if err := res.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	srv := httptest.NewServer(res.View(func(ep string) string { return strings.Replace(ep, "172.18.0.3", "10.0.9.2", 1) }))
	defer srv.Close()
	view := srv.URL
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	home := topo.RegionNames()[0]
	own, err := (&resolver.Lookup{URL: res.URL(), Home: home}).Resolve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mapped, err := (&resolver.Lookup{URL: view, Home: home}).Resolve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(own) != 2 || len(mapped) != len(own) {
		t.Fatalf("resolver %v, view %v: want both regions' gateways", own, mapped)
	}
	for i := range own {
		if !strings.Contains(own[i], "172.18.0.3") || mapped[i] != strings.Replace(own[i], "172.18.0.3", "10.0.9.2", 1) {
			t.Errorf("endpoint %d: resolver %s, view %s: want the same endpoint, mapped", i, own[i], mapped[i])
		}
	}
}
