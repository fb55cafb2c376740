// Package stack drives a fan-out stack that geolab did not start — the
// docker-compose.yml stack, or any other whose Toxiproxy proxies are named
// as the lab names its links (client.H.R.gw-N, lan.R.gw-N, wan.X.Y) —
// through the Toxiproxy API alone: the network faults, their heals, and
// what each link carries now.
//
// Nothing is kept outside the Toxiproxy server: a fault's toxics are named
// after its id (f3_upstream) and the links it holds disabled carry a marker
// toxic (hold_f3), so that one geolab command heals what another injected.
package stack

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/geolab/geolab/lab/fault"
	"github.com/geolab/geolab/lab/link"
	"github.com/geolab/geolab/lab/provider"
	"github.com/geolab/geolab/lab/topology"
)

// attachBound is how long Attach waits for the Toxiproxy API to answer.
const attachBound = 5 * time.Second

// Stack is a stack reached through its Toxiproxy API. It implements
// fault.World for the network kinds; the process methods fail, naming what
// to use instead.
type Stack struct {
	url  string
	net  *link.Net
	topo *topology.Topology
	book *fault.Book
	// Ignored lists the server's proxies whose names are not link names.
	Ignored []string
}

// Attach reads the links on the Toxiproxy API at url (host:port or
// http://host:port) and the faults already on them.
func Attach(url string) (*Stack, error) {
	n, ignored, err := link.Attach(url, attachBound)
	if err != nil {
		return nil, err
	}
	links := n.Select(nil)
	if len(links) == 0 {
		others := "none"
		if len(ignored) > 0 {
			others = strings.Join(ignored, ", ")
		}
		return nil, fmt.Errorf("toxiproxy %s has no geolab links (its proxies: %s); geolab drives proxies named client.HOME.REGION.gw-N, lan.REGION.gw-N and wan.FROM.TO (docs/docker.md)", n.URL(), others)
	}
	s := &Stack{url: n.URL(), net: n, topo: deriveTopology(n.URL(), links), Ignored: ignored}
	s.book = fault.NewBook(s)
	traces, err := s.Faults()
	if err != nil {
		return nil, err
	}
	last := 0
	for _, t := range traces {
		num, _ := strconv.Atoi(strings.TrimPrefix(t.ID, "f"))
		last = max(last, num)
	}
	s.book.NumberAfter(last)
	return s, nil
}

// deriveTopology builds the topology the links imply: a region for every
// region a link names, with as many gateways as the highest gw-N seen.
func deriveTopology(url string, links []link.Link) *topology.Topology {
	gateways := map[string]int{}
	for _, l := range links {
		for _, r := range []string{l.From, l.To} {
			if _, ok := gateways[r]; !ok {
				gateways[r] = 0
			}
		}
		// A client or lan link's node is a gateway of region To (a lan
		// link's From and To are its region).
		if n, ok := strings.CutPrefix(l.Node, "gw-"); ok {
			if i, err := strconv.Atoi(n); err == nil && i > 0 {
				gateways[l.To] = max(gateways[l.To], i)
			}
		}
	}
	t := &topology.Topology{Name: "stack at " + url, RTT: map[topology.Pair]topology.Link{}}
	names := make([]string, 0, len(gateways))
	for r := range gateways {
		names = append(names, r)
	}
	sort.Strings(names)
	for _, r := range names {
		t.Regions = append(t.Regions, topology.Region{Name: r, Gateways: gateways[r]})
	}
	return t
}

// URL is the Toxiproxy API's address.
func (s *Stack) URL() string { return s.url }

// Topology is the topology the links imply (regions and gateway counts
// only).
func (s *Stack) Topology() *topology.Topology { return s.topo }

// Net is the stack's links.
func (s *Stack) Net() *link.Net { return s.net }

var errProcess = errors.New("this fault acts on a process, and geolab reaches only the network of a stack it did not start")

// RedisOf fails: a stack's processes are not geolab's.
func (s *Stack) RedisOf(string) (provider.Redis, error) { return nil, errProcess }

// ClusterOf fails: a stack's processes are not geolab's.
func (s *Stack) ClusterOf(string) (provider.RedisCluster, error) { return nil, errProcess }

// GatewayOf fails: a stack's processes are not geolab's.
func (s *Stack) GatewayOf(string, string) (provider.Node, error) { return nil, errProcess }

// BridgeOf fails: a stack's processes are not geolab's.
func (s *Stack) BridgeOf(string) (provider.Node, error) { return nil, errProcess }

// GatewayAddr fails: a stack's processes are not geolab's.
func (s *Stack) GatewayAddr(string, string) (string, error) { return "", errProcess }

// Token fails: geolab does not know a stack's secret.
func (s *Stack) Token(string, []string, []string, time.Duration) (string, error) {
	return "", errProcess
}

// Inject validates spec and applies it; only the network kinds
// (fault.NetworkKinds) can act on a stack.
func (s *Stack) Inject(ctx context.Context, spec fault.Spec) (fault.Active, error) {
	if err := fault.Validate(spec, s.topo); err != nil {
		return fault.Active{}, err
	}
	if !fault.OnNetworkOnly(spec.Kind) {
		return fault.Active{}, fmt.Errorf("fault %s acts on a process: through a stack's Toxiproxy API geolab reaches only the network (%s); "+
			"on a compose stack, kill, pause or stop a container with 'docker compose kill|pause|stop SERVICE' and bring it back with 'docker compose start|unpause SERVICE'",
			spec.Kind, strings.Join(fault.NetworkKinds(), ", "))
	}
	return s.book.Inject(ctx, spec)
}

// Observe sets f to receive the injections and heals of this Stack value
// (those of --for faults included).
func (s *Stack) Observe(f func(fault.Event)) { s.book.Observe(f) }

// Trace is what one fault left on the network.
type Trace struct {
	ID string `json:"id"`
	// Toxics maps a link to the fault's toxics on it.
	Toxics map[string][]link.Toxic `json:"toxics,omitempty"`
	// Holds lists the links the fault holds disabled.
	Holds []string `json:"holds,omitempty"`
}

// faultToxic matches the names of the toxics a fault adds: ID_STREAM.
var faultToxic = regexp.MustCompile(`^(f[0-9]+)_(upstream|downstream)$`)

// Faults lists what every fault left on the network, by id.
func (s *Stack) Faults() ([]Trace, error) {
	byID := map[string]*Trace{}
	get := func(id string) *Trace {
		if byID[id] == nil {
			byID[id] = &Trace{ID: id, Toxics: map[string][]link.Toxic{}}
		}
		return byID[id]
	}
	for _, l := range s.net.Select(nil) {
		ts, err := s.net.ToxicsOn(l.Name)
		if err != nil {
			return nil, err
		}
		for _, t := range ts {
			if m := faultToxic.FindStringSubmatch(t.Name); m != nil {
				tr := get(m[1])
				tr.Toxics[l.Name] = append(tr.Toxics[l.Name], t)
			}
		}
		for _, h := range s.net.Holders(l.Name) {
			if h != link.ByHand {
				tr := get(h)
				tr.Holds = append(tr.Holds, l.Name)
			}
		}
	}
	out := make([]Trace, 0, len(byID))
	for _, t := range byID {
		if len(t.Toxics) == 0 {
			t.Toxics = nil
		}
		out = append(out, *t)
	}
	sort.Slice(out, func(i, j int) bool { return idLess(out[i].ID, out[j].ID) })
	return out, nil
}

// idLess orders f2 before f10.
func idLess(a, b string) bool {
	x, _ := strconv.Atoi(strings.TrimPrefix(a, "f"))
	y, _ := strconv.Atoi(strings.TrimPrefix(b, "f"))
	if x != y {
		return x < y
	}
	return a < b
}

// Heal removes what fault id left on the network — its toxics, and its
// holds (a link opens once no fault holds it) — or, with id "", what every
// fault left. It returns the ids it healed. Links disabled by hand
// (link.ByHand) are left as they are.
func (s *Stack) Heal(ctx context.Context, id string) ([]string, error) {
	traces, err := s.Faults()
	if err != nil {
		return nil, err
	}
	var todo []Trace
	for _, t := range traces {
		if id == "" || t.ID == id {
			todo = append(todo, t)
		}
	}
	if id != "" && len(todo) == 0 && !s.activeInBook(id) {
		active := make([]string, 0, len(traces))
		for _, t := range traces {
			active = append(active, t.ID)
		}
		if len(active) == 0 {
			return nil, fmt.Errorf("no fault %s on toxiproxy %s: no fault is active", id, s.url)
		}
		return nil, fmt.Errorf("no fault %s on toxiproxy %s (active: %s)", id, s.url, strings.Join(active, ", "))
	}
	var healed []string
	var errs []error
	for _, t := range todo {
		if s.activeInBook(t.ID) {
			if err := s.book.Heal(ctx, t.ID); err != nil {
				errs = append(errs, err)
				continue
			}
			healed = append(healed, t.ID)
			continue
		}
		var terrs []error
		for l, ts := range t.Toxics {
			for _, x := range ts {
				terrs = append(terrs, s.net.RemoveToxic(l, x.Name))
			}
		}
		for _, l := range t.Holds {
			terrs = append(terrs, s.net.Enable(l, t.ID))
		}
		if err := errors.Join(terrs...); err != nil {
			errs = append(errs, fmt.Errorf("heal %s: %w", t.ID, err))
			continue
		}
		healed = append(healed, t.ID)
	}
	if id != "" && len(todo) == 0 {
		// Active in this process's book but with nothing on the network.
		if err := s.book.Heal(ctx, id); err != nil {
			errs = append(errs, err)
		} else {
			healed = append(healed, id)
		}
	}
	return healed, errors.Join(errs...)
}

func (s *Stack) activeInBook(id string) bool {
	for _, a := range s.book.List() {
		if a.ID == id {
			return true
		}
	}
	return false
}

// LinkState is one link as it is now.
type LinkState struct {
	link.Link
	// Toxics on it, base latency and hold markers included.
	Toxics []link.Toxic `json:"toxics,omitempty"`
	// Holders of a disabled link: fault ids, or link.ByHand.
	Holders []string `json:"holders,omitempty"`
}

// Links lists every link and what it carries now, by name.
func (s *Stack) Links() ([]LinkState, error) {
	var out []LinkState
	for _, l := range s.net.Select(nil) {
		ts, err := s.net.ToxicsOn(l.Name)
		if err != nil {
			return nil, err
		}
		out = append(out, LinkState{Link: l, Toxics: ts, Holders: s.net.Holders(l.Name)})
	}
	return out, nil
}
