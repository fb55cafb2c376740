package link

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2/client"
)

// HoldPrefix starts the name of the marker toxic with which an attached Net
// records, on the Toxiproxy server, that owner holds a link disabled:
// hold_OWNER, a latency toxic of 0 ms with toxicity 0 (it never acts).
const HoldPrefix = "hold_"

// ByHand is the owner of a hold Attach found without a marker: a proxy
// someone disabled through the Toxiproxy API.
const ByHand = "by-hand"

// BaseToxics are the toxics Create adds to carry a link's topology latency;
// they are part of the link, not of any fault.
var BaseToxics = []string{"base_latency_up", "base_latency_down"}

// ParseName reads a link name built by Name: client.H.R.gw-N, lan.R.gw-N or
// wan.X.Y. ok is false for any other name.
func ParseName(name string) (l Link, ok bool) {
	parts := strings.Split(name, ".")
	for _, p := range parts {
		if p == "" {
			return Link{}, false
		}
	}
	switch {
	case len(parts) == 4 && parts[0] == string(Client):
		return Link{Name: name, Kind: Client, From: parts[1], To: parts[2], Node: parts[3]}, true
	case len(parts) == 3 && parts[0] == string(LAN):
		return Link{Name: name, Kind: LAN, From: parts[1], To: parts[1], Node: parts[2]}, true
	case len(parts) == 3 && parts[0] == string(WAN) && parts[1] != parts[2]:
		return Link{Name: name, Kind: WAN, From: parts[1], To: parts[2]}, true
	}
	return Link{}, false
}

// Attach returns the Net of the proxies already on the Toxiproxy server at
// url whose names are link names (Name), e.g. those of the compose stack,
// which geolab did not create. Other proxies are listed in ignored and left
// alone. Holds (Disable) are read from and recorded on the server as
// HoldPrefix marker toxics, so that one geolab command can heal what
// another injected. A proxy found disabled with no hold was disabled through
// the API by hand: it is held by ByHand, so that healing a fault never
// re-opens it.
func Attach(url string, bound time.Duration) (n *Net, ignored []string, err error) {
	n, err = New(url, bound)
	if err != nil {
		return nil, nil, err
	}
	n.recordHolds = true
	proxies, err := n.api.Proxies()
	if err != nil {
		return nil, nil, fmt.Errorf("link: list the proxies of %s: %w", n.url, err)
	}
	for name, p := range proxies {
		l, ok := ParseName(name)
		if !ok {
			ignored = append(ignored, name)
			continue
		}
		l.Listen, l.Upstream, l.Enabled = p.Listen, p.Upstream, p.Enabled
		n.links[name] = &entry{link: l, proxy: p}
		for _, t := range p.ActiveToxics {
			owner, ok := strings.CutPrefix(t.Name, HoldPrefix)
			if !ok {
				continue
			}
			if owner == ByHand && p.Enabled {
				// Enabled by hand since: that hold is gone.
				if err := p.RemoveToxic(t.Name); err != nil && !apiStatus(err, http.StatusNotFound) {
					return nil, nil, fmt.Errorf("link: %s: remove stale hold %s: %w", name, owner, err)
				}
				continue
			}
			if n.disabled[name] == nil {
				n.disabled[name] = map[string]bool{}
			}
			n.disabled[name][owner] = true
		}
		if !p.Enabled && len(n.disabled[name]) == 0 {
			n.disabled[name] = map[string]bool{ByHand: true}
		}
	}
	sort.Strings(ignored)
	return n, ignored, nil
}

// recordHold adds the marker toxic of owner's hold to p; one already there
// is kept.
func recordHold(p *toxiproxy.Proxy, owner string) error {
	_, err := p.AddToxic(HoldPrefix+owner, "latency", "upstream", 0, toxiproxy.Attributes{"latency": 0})
	if err != nil && apiStatus(err, http.StatusConflict) {
		return nil
	}
	return err
}

// apiStatus reports whether err is the Toxiproxy API's answer with HTTP
// status code. The client formats that answer into its error ("Caller:
// HTTP 404: …") instead of wrapping it, so the text is all there is.
func apiStatus(err error, code int) bool {
	return strings.Contains(err.Error(), fmt.Sprintf("HTTP %d:", code))
}

// Holders lists the owners holding the link disabled, sorted.
func (n *Net) Holders(name string) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for o := range n.disabled[name] {
		out = append(out, o)
	}
	sort.Strings(out)
	return out
}
