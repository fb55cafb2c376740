package stack

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/geolab/geolab/lab/link"
)

// Status is a stack as it is now: its links, what they carry and the
// faults on them, as 'geolab status --toxiproxy URL --json' prints it.
type Status struct {
	Toxiproxy string      `json:"toxiproxy"`
	Regions   []string    `json:"regions"`
	Links     []LinkState `json:"links"`
	Faults    []Trace     `json:"faults"`
	// Ignored lists the server's proxies that are not geolab links.
	Ignored []string `json:"ignored_proxies,omitempty"`
}

// Status reads the stack's links and faults now.
func (s *Stack) Status() (Status, error) {
	links, err := s.Links()
	if err != nil {
		return Status{}, err
	}
	faults, err := s.Faults()
	if err != nil {
		return Status{}, err
	}
	return Status{Toxiproxy: s.URL(), Regions: s.Topology().RegionNames(), Links: links, Faults: faults, Ignored: s.Ignored}, nil
}

// PrintStatus writes v for people: one line per link (its state and the
// toxics a fault added, hold markers left out), then one per fault, then
// the proxies left alone.
func PrintStatus(w io.Writer, v Status) {
	fmt.Fprintf(w, "stack behind toxiproxy %s: regions %s\n\n", v.Toxiproxy, strings.Join(v.Regions, ", "))
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LINK\tLISTEN\tUPSTREAM\tSTATE\tTOXICS")
	for _, l := range v.Links {
		state := "enabled"
		if len(l.Holders) > 0 {
			state = "disabled by " + strings.Join(l.Holders, ", ")
		}
		var ts []string
		for _, t := range l.Toxics {
			if strings.HasPrefix(t.Name, link.HoldPrefix) {
				continue
			}
			ts = append(ts, fmt.Sprintf("%s(%s %s%s)", t.Name, t.Type, t.Stream, attrs(t.Attributes)))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", l.Name, l.Listen, l.Upstream, state, strings.Join(ts, " "))
	}
	tw.Flush()
	fmt.Fprintln(w)
	if len(v.Faults) == 0 {
		fmt.Fprintln(w, "faults: none active")
	}
	for _, f := range v.Faults {
		var on []string
		for l, ts := range f.Toxics {
			on = append(on, fmt.Sprintf("%s %s", ts[0].Type, l))
		}
		for _, l := range f.Holds {
			on = append(on, "disables "+l)
		}
		sort.Strings(on)
		fmt.Fprintf(w, "fault %s: %s\n", f.ID, strings.Join(on, "; "))
	}
	if len(v.Ignored) > 0 {
		fmt.Fprintf(w, "other proxies (not geolab links, left alone): %s\n", strings.Join(v.Ignored, ", "))
	}
}

// attrs formats a toxic's attributes as " k=v k=v", sorted.
func attrs(a map[string]any) string {
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%v", k, a[k])
	}
	return b.String()
}
