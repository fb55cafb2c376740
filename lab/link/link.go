// Package link is the lab's network: every connection that crosses a region
// boundary, every gateway→Redis connection and every client→gateway
// connection runs through its own Toxiproxy proxy, created and changed here
// through Toxiproxy's HTTP API.
//
//	client (home H) ──client.H.R.gw-N──▶ gateway R/gw-N ──lan.R.gw-N──▶ Redis R
//	bridge X ──wan.X.Y──▶ Redis Y (X pulls Y's outbox)
//
// A link carries its topology latency as two toxics (half the RTT and half the
// jitter each way). Faults add toxics of their own names and disable links;
// disabling is counted per owner, so that healing one fault never re-opens a
// link another fault still holds closed.
package link

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2/client"

	"github.com/geolab/geolab/lab/topology"
)

// Kind says what a link carries.
type Kind string

// The kinds of links.
const (
	Client Kind = "client" // a client of region From to a gateway of region To
	LAN    Kind = "lan"    // gateway Node of region From to its Redis
	WAN    Kind = "wan"    // the bridge of region From to the Redis of region To
)

// Link is one proxied connection path. From is the region whose side dials,
// To the region whose side answers.
type Link struct {
	Name     string        `json:"name"`
	Kind     Kind          `json:"kind"`
	From     string        `json:"from"`
	To       string        `json:"to"`
	Node     string        `json:"node,omitempty"` // the gateway of a client or lan link
	Listen   string        `json:"listen"`         // the address to dial instead of Upstream
	Upstream string        `json:"upstream"`
	Base     topology.Link `json:"-"`
	Enabled  bool          `json:"enabled"`
	// Bind, when set, is where Toxiproxy binds the proxy instead of Listen:
	// every interface of its container ("0.0.0.0:0"), so that workload
	// agents in swarm tasks reach it on a network the lab is not on. Listen
	// keeps its host and takes the port Toxiproxy bound.
	Bind string `json:"bind,omitempty"`
}

// Name builds a link's proxy name: client.H.R.gw-N, lan.R.gw-N, wan.X.Y.
func Name(kind Kind, from, to, node string) string {
	switch kind {
	case Client:
		return fmt.Sprintf("client.%s.%s.%s", from, to, node)
	case LAN:
		return fmt.Sprintf("lan.%s.%s", from, node)
	}
	return fmt.Sprintf("wan.%s.%s", from, to)
}

// Crosses reports whether the link joins regions a and b (in either
// direction, a ≠ b).
func (l Link) Crosses(a, b string) bool {
	return a != b && ((l.From == a && l.To == b) || (l.From == b && l.To == a))
}

// Touches reports whether region r is at either end of the link.
func (l Link) Touches(r string) bool { return l.From == r || l.To == r }

// Net is the lab's set of links on one Toxiproxy server. Safe for
// concurrent use.
type Net struct {
	api *toxiproxy.Client
	url string

	// recordHolds keeps each hold on the server too, as a marker toxic
	// (Attach): the next geolab command that attaches must know them.
	recordHolds bool

	mu       sync.Mutex
	links    map[string]*entry
	disabled map[string]map[string]bool // link → owners holding it disabled
}

type entry struct {
	link  Link
	proxy *toxiproxy.Proxy
}

// New connects to the Toxiproxy API at url (http://host:port) and waits up
// to bound for it to answer.
func New(url string, bound time.Duration) (*Net, error) {
	if !strings.HasPrefix(url, "http") {
		url = "http://" + url
	}
	end := time.Now().Add(bound)
	c := &http.Client{Timeout: time.Second}
	for {
		resp, err := c.Get(url + "/version")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(end) {
			return nil, fmt.Errorf("link: Toxiproxy API %s not answering after %s: %v", url, bound, err)
		}
		time.Sleep(20 * time.Millisecond) // polling a starting server
	}
	return &Net{api: toxiproxy.NewClient(url), url: url, links: map[string]*entry{}, disabled: map[string]map[string]bool{}}, nil
}

// URL is the Toxiproxy API's address.
func (n *Net) URL() string { return n.url }

// Create makes the proxy for l (listening on l.Listen, or when empty on a
// free loopback port outside the ephemeral range, FreeListen; bound at
// l.Bind when set) with its base latency, and returns l with Listen set.
func (n *Net) Create(l Link) (Link, error) {
	pick := l.Listen == "" && l.Bind == ""
	var p *toxiproxy.Proxy
	for try := 1; ; try++ {
		if pick {
			addr, err := FreeListen()
			if err != nil {
				return l, err
			}
			l.Listen = addr
		}
		bind := l.Listen
		if l.Bind != "" {
			bind = l.Bind
		}
		var err error
		p, err = n.api.CreateProxy(l.Name, bind, l.Upstream)
		if err == nil {
			break
		}
		// A port picked free can be bound by another process before
		// Toxiproxy binds it: pick another.
		if !pick || try == 5 || !strings.Contains(err.Error(), "address already in use") {
			return l, fmt.Errorf("link: create %s → %s: %w", l.Name, l.Upstream, err)
		}
	}
	listen := p.Listen
	if l.Bind != "" {
		var err error
		if listen, err = boundAt(l.Listen, p.Listen); err != nil {
			return l, fmt.Errorf("link: create %s: %w", l.Name, err)
		}
	}
	l.Listen, l.Enabled = listen, true
	lat, jit := split(l.Base.RTT), split(l.Base.Jitter)
	for _, t := range []struct {
		name, stream string
		lat, jit     int
	}{{BaseToxics[0], "upstream", lat[0], jit[0]}, {BaseToxics[1], "downstream", lat[1], jit[1]}} {
		if t.lat == 0 && t.jit == 0 {
			continue
		}
		if _, err := p.AddToxic(t.name, "latency", t.stream, 1, toxiproxy.Attributes{"latency": t.lat, "jitter": t.jit}); err != nil {
			return l, fmt.Errorf("link: %s: base latency: %w", l.Name, err)
		}
	}
	n.mu.Lock()
	n.links[l.Name] = &entry{link: l, proxy: p}
	n.mu.Unlock()
	return l, nil
}

// boundAt is the host of listen with the port of bound, the address
// Toxiproxy reports a proxy bound at ("[::]:40123").
func boundAt(listen, bound string) (string, error) {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("listen %q: %w", listen, err)
	}
	_, port, err := net.SplitHostPort(bound)
	if err != nil {
		return "", fmt.Errorf("toxiproxy reports the proxy bound at %q: %w", bound, err)
	}
	return net.JoinHostPort(host, port), nil
}

// again runs one Toxiproxy API call, and once more when the first attempt
// went out on a kept-alive connection the API server had just closed.
// Toxiproxy's API server drops a connection idle for 10 s (its read
// timeout); its Go client posts through http.DefaultClient, which keeps idle
// connections for 90 s and never resends a POST. A heal exactly 10 s after
// its fault (a redis-blip held 10 s) failed that way, with EOF or a reset,
// before the server read the request. Every call here may be repeated:
// enabling, disabling, removing (404 when gone) and adding a toxic (409 when
// there, taken as done on the second attempt).
func again(call func() error) error {
	err := call()
	if err != nil && staleConn(err) {
		err = call()
	}
	return err
}

// staleConn reports whether err is a request lost on a connection the
// server closed under it.
func staleConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

// split halves a duration into whole milliseconds, upstream first, that add
// up to the rounded whole (Toxiproxy's latency toxic counts in ms).
func split(d time.Duration) [2]int {
	ms := int((d + time.Millisecond/2) / time.Millisecond)
	return [2]int{ms / 2, ms - ms/2}
}

// Get returns the link named name.
func (n *Net) Get(name string) (Link, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	e, ok := n.links[name]
	if !ok {
		return Link{}, false
	}
	l := e.link
	l.Enabled = len(n.disabled[name]) == 0
	return l, true
}

// Select returns the links for which match is true, sorted by name.
func (n *Net) Select(match func(Link) bool) []Link {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []Link
	for name, e := range n.links {
		l := e.link
		l.Enabled = len(n.disabled[name]) == 0
		if match == nil || match(l) {
			out = append(out, l)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Disable closes the link for owner: its connections are closed and new
// ones refused until every owner that disabled it has enabled it again.
func (n *Net) Disable(name, owner string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	e, ok := n.links[name]
	if !ok {
		return fmt.Errorf("link: no link %q", name)
	}
	if n.disabled[name] == nil {
		n.disabled[name] = map[string]bool{}
	}
	if n.disabled[name][owner] {
		return nil
	}
	first := len(n.disabled[name]) == 0
	if n.recordHolds {
		// A link disabled by hand gets its marker too, before ours: the
		// next Attach must not take our hold for the only one.
		holds := []string{owner}
		if n.disabled[name][ByHand] {
			holds = []string{ByHand, owner}
		}
		for _, h := range holds {
			if err := again(func() error { return recordHold(e.proxy, h) }); err != nil {
				return fmt.Errorf("link: %s: record hold %s: %w", name, h, err)
			}
		}
	}
	n.disabled[name][owner] = true
	if first || e.proxy.Enabled {
		if err := again(e.proxy.Disable); err != nil {
			return fmt.Errorf("link: disable %s: %w", name, err)
		}
	}
	return nil
}

// Enable drops owner's hold on the link; the last hold released opens it.
func (n *Net) Enable(name, owner string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	e, ok := n.links[name]
	if !ok {
		return fmt.Errorf("link: no link %q", name)
	}
	if !n.disabled[name][owner] {
		return nil
	}
	delete(n.disabled[name], owner)
	if n.recordHolds {
		if err := again(func() error { return e.proxy.RemoveToxic(HoldPrefix + owner) }); err != nil && !apiStatus(err, http.StatusNotFound) {
			return fmt.Errorf("link: %s: remove hold %s: %w", name, owner, err)
		}
	}
	if len(n.disabled[name]) == 0 {
		if err := again(e.proxy.Enable); err != nil {
			return fmt.Errorf("link: enable %s: %w", name, err)
		}
	}
	return nil
}

// AddToxic adds a toxic named toxic of kind typ on stream ("upstream": from
// the dialling side, "downstream": towards it).
func (n *Net) AddToxic(name, toxic, typ, stream string, attrs map[string]any) error {
	e, err := n.entry(name)
	if err != nil {
		return err
	}
	tries := 0
	err = again(func() error {
		tries++
		_, err := e.proxy.AddToxic(toxic, typ, stream, 1, toxiproxy.Attributes(attrs))
		if err != nil && tries > 1 && apiStatus(err, http.StatusConflict) {
			return nil // the first attempt got there after all
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("link: %s: add %s toxic %s on %s: %w", name, typ, toxic, stream, err)
	}
	return nil
}

// RemoveToxic removes a toxic added by AddToxic; a toxic that is not there
// is not an error (healing twice is harmless).
func (n *Net) RemoveToxic(name, toxic string) error {
	e, err := n.entry(name)
	if err != nil {
		return err
	}
	if err := again(func() error { return e.proxy.RemoveToxic(toxic) }); err != nil && !apiStatus(err, http.StatusNotFound) {
		return fmt.Errorf("link: %s: remove toxic %s: %w", name, toxic, err)
	}
	return nil
}

// Toxic is one toxic on a link, as Toxiproxy reports it.
type Toxic struct {
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Stream     string         `json:"stream"`
	Attributes map[string]any `json:"attributes,omitempty"`
}

// ToxicsOn lists the toxics now on a link with their settings, by name.
func (n *Net) ToxicsOn(name string) ([]Toxic, error) {
	e, err := n.entry(name)
	if err != nil {
		return nil, err
	}
	var ts toxiproxy.Toxics
	err = again(func() (err error) { ts, err = e.proxy.Toxics(); return err })
	if err != nil {
		return nil, fmt.Errorf("link: %s: list toxics: %w", name, err)
	}
	out := make([]Toxic, 0, len(ts))
	for _, t := range ts {
		out = append(out, Toxic{Name: t.Name, Type: t.Type, Stream: t.Stream, Attributes: t.Attributes})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Toxics lists the names of the toxics now on a link, sorted.
func (n *Net) Toxics(name string) ([]string, error) {
	ts, err := n.ToxicsOn(name)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(ts))
	for _, t := range ts {
		out = append(out, t.Name)
	}
	return out, nil
}

func (n *Net) entry(name string) (*entry, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	e, ok := n.links[name]
	if !ok {
		return nil, fmt.Errorf("link: no link %q", name)
	}
	return e, nil
}
