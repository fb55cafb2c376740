// Package resolver is the lab's stand-in for GeoDNS: asked for a client's
// home region, it answers the gateway endpoints of the nearest healthy
// region (as that client reaches them: through its proxies), with a TTL the
// client honours. Health comes from polling every gateway's /readyz through
// the link its own region's clients use, so that a region that is down,
// isolated or blackholed stops being answered.
//
//	client ──GET /resolve?home=H──▶ resolver ──/readyz via client.R.R.gw-N──▶ gateways
package resolver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/geolab/geolab/internal/httpserve"
	"github.com/geolab/geolab/lab/topology"
)

// Gateway is one gateway as the resolver knows it.
type Gateway struct {
	Region, Node string
	// Health is the URL of its /readyz as seen from its own region.
	Health string
	// Endpoints maps a client's home region to the ws:// URL through which
	// such a client reaches this gateway.
	Endpoints map[string]string
}

// Answer is the reply to /resolve.
type Answer struct {
	Home string `json:"home"`
	// Region is the region answered: home if healthy, else the nearest
	// healthy one; home when none is healthy (Healthy is then false).
	Region  string `json:"region"`
	Healthy bool   `json:"healthy"`
	// Endpoints are ws:// URLs in order of preference: the answered
	// region's healthy gateways, then the other healthy regions' by
	// distance.
	Endpoints []string `json:"endpoints"`
	TTLMillis int64    `json:"ttl_ms"`
}

// Health is the resolver's view of one gateway.
type Health struct {
	Region    string    `json:"region"`
	Node      string    `json:"node"`
	Healthy   bool      `json:"healthy"`
	Since     time.Time `json:"since"`
	LastError string    `json:"last_error,omitempty"`
}

// Resolver answers /resolve and /health. Safe for concurrent use.
type Resolver struct {
	topo     *topology.Topology
	gateways []Gateway
	client   *http.Client
	// failures in a row before a gateway counts as unhealthy.
	failures int

	mu     sync.Mutex
	health map[string]*gwHealth // region/node
	srv    *http.Server
	addr   string
	done   chan struct{}
	cancel context.CancelFunc
}

type gwHealth struct {
	Health
	fails int
}

// New builds a resolver over gateways; all start healthy.
func New(topo *topology.Topology, gateways []Gateway) *Resolver {
	r := &Resolver{topo: topo, gateways: gateways, failures: 2, health: map[string]*gwHealth{},
		client: &http.Client{Timeout: max(4*topo.Resolver.HealthInterval, 500*time.Millisecond)}}
	now := time.Now()
	for _, g := range gateways {
		r.health[g.Region+"/"+g.Node] = &gwHealth{Health: Health{Region: g.Region, Node: g.Node, Healthy: true, Since: now}}
	}
	return r
}

// Start serves on addr ("127.0.0.1:0" for a free port) and starts the
// health checks; Close stops both.
func (r *Resolver) Start(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("resolver: listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/resolve", r.serveResolve)
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, r.Health()) })
	r.srv = httpserve.New(mux)
	r.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	go func() { _ = r.srv.Serve(ln) }()
	go r.check(ctx)
	return nil
}

// View is a handler of /resolve and /health that answers as the resolver
// does, with every endpoint mapped by endpoint: one resolver, one health,
// for clients that reach the gateways' links at other addresses than the
// lab does (workload agents in swarm tasks dial them on an overlay network,
// docs/swarm.md). Whoever serves it stops it.
func (r *Resolver) View(endpoint func(string) string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/resolve", func(w http.ResponseWriter, req *http.Request) {
		r.serveResolveAs(w, req, endpoint)
	})
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, r.Health()) })
	return mux
}

// URL is the resolver's base URL.
func (r *Resolver) URL() string { return "http://" + r.addr }

// Close stops serving and checking.
func (r *Resolver) Close() error {
	if r.srv == nil {
		return nil
	}
	r.cancel()
	<-r.done
	return r.srv.Close()
}

func (r *Resolver) check(ctx context.Context) {
	defer close(r.done)
	t := time.NewTicker(r.topo.Resolver.HealthInterval)
	defer t.Stop()
	for {
		var wg sync.WaitGroup
		for _, g := range r.gateways {
			wg.Add(1)
			go func() { defer wg.Done(); r.probe(ctx, g) }()
		}
		wg.Wait()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *Resolver) probe(ctx context.Context, g Gateway) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.Health, nil)
	resp, err := r.client.Do(req)
	if ctx.Err() != nil {
		return
	}
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("readyz answered %d", resp.StatusCode)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.health[g.Region+"/"+g.Node]
	if err == nil {
		h.fails, h.LastError = 0, ""
		if !h.Healthy {
			h.Healthy, h.Since = true, time.Now()
		}
		return
	}
	h.fails++
	h.LastError = err.Error()
	if h.Healthy && h.fails >= r.failures {
		h.Healthy, h.Since = false, time.Now()
	}
}

// Health lists every gateway's health, in topology order.
func (r *Resolver) Health() []Health {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Health, 0, len(r.gateways))
	for _, g := range r.gateways {
		out = append(out, r.health[g.Region+"/"+g.Node].Health)
	}
	return out
}

// Resolve answers for a client whose home is home.
func (r *Resolver) Resolve(home string) (Answer, error) {
	if _, ok := r.topo.Region(home); !ok {
		return Answer{}, fmt.Errorf("resolver: unknown home region %q", home)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	a := Answer{Home: home, Region: home, TTLMillis: r.topo.Resolver.TTL.Milliseconds()}
	for _, region := range append([]string{home}, r.topo.Nearest(home)...) {
		var eps []string
		for _, g := range r.gateways {
			if g.Region == region && r.health[g.Region+"/"+g.Node].Healthy {
				eps = append(eps, g.Endpoints[home])
			}
		}
		if len(eps) == 0 {
			continue
		}
		if !a.Healthy {
			a.Region, a.Healthy = region, true
		}
		a.Endpoints = append(a.Endpoints, eps...)
	}
	if !a.Healthy { // nothing answers: offer home's gateways, so clients keep trying
		for _, g := range r.gateways {
			if g.Region == home {
				a.Endpoints = append(a.Endpoints, g.Endpoints[home])
			}
		}
	}
	return a, nil
}

func (r *Resolver) serveResolve(w http.ResponseWriter, req *http.Request) {
	r.serveResolveAs(w, req, nil)
}

// serveResolveAs answers /resolve with every endpoint mapped by endpoint
// (nil: as they are).
func (r *Resolver) serveResolveAs(w http.ResponseWriter, req *http.Request, endpoint func(string) string) {
	home := req.URL.Query().Get("home")
	if home == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "missing ?home=REGION"})
		return
	}
	a, err := r.Resolve(home)
	if err != nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
		return
	}
	if endpoint != nil {
		for i, e := range a.Endpoints {
			a.Endpoints[i] = endpoint(e)
		}
	}
	writeJSON(w, http.StatusOK, a)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Lookup is a client's view of the resolver: it asks url for home's
// endpoints and keeps the answer for its TTL, as a DNS stub cache does. Its
// Resolve method fits the Go client's Options.Resolve.
type Lookup struct {
	URL  string
	Home string

	mu      sync.Mutex
	last    Answer
	expires time.Time
	client  http.Client
}

// Resolve returns the cached answer while its TTL lasts, else asks again;
// when the resolver cannot be reached it falls back on the last answer.
func (l *Lookup) Resolve(ctx context.Context) ([]string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if time.Now().Before(l.expires) {
		return l.last.Endpoints, nil
	}
	a, err := l.fetch(ctx)
	if err != nil {
		if len(l.last.Endpoints) > 0 {
			return l.last.Endpoints, nil
		}
		return nil, err
	}
	l.last, l.expires = a, time.Now().Add(time.Duration(a.TTLMillis)*time.Millisecond)
	return a.Endpoints, nil
}

// Last is the answer now cached.
func (l *Lookup) Last() Answer {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

func (l *Lookup) fetch(ctx context.Context) (Answer, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.URL+"/resolve?home="+l.Home, nil)
	if err != nil {
		return Answer{}, fmt.Errorf("resolver: %w", err)
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return Answer{}, fmt.Errorf("resolver: %w", err)
	}
	defer resp.Body.Close()
	var a Answer
	if resp.StatusCode != http.StatusOK {
		return Answer{}, fmt.Errorf("resolver: /resolve?home=%s answered %d", l.Home, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		return Answer{}, fmt.Errorf("resolver: bad answer: %w", err)
	}
	if len(a.Endpoints) == 0 {
		return Answer{}, errors.New("resolver: answer has no endpoints")
	}
	return a, nil
}
