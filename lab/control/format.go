package control

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/geolab/geolab/lab"
)

// PrintStatus writes st for people: every process, every endpoint, the
// links that are not plain, the active faults and the resolver's view.
func PrintStatus(w io.Writer, st lab.Status) {
	fmt.Fprintf(w, "topology %s (provider %s), up %s\n", st.Topology, st.Provider, st.Uptime)
	resolver := st.Resolver + "/resolve?home=REGION"
	if st.Resolver == "" {
		resolver = "none (redis only)"
	}
	fmt.Fprintf(w, "  toxiproxy API  %s\n  resolver       %s\n  work dir       %s\n", st.Toxiproxy, resolver, st.WorkDir)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, r := range st.Regions {
		fmt.Fprintf(tw, "\nregion %s\n", r.Name)
		if r.Cluster != nil {
			printCluster(tw, *r.Cluster)
		} else {
			fmt.Fprintf(tw, "  %s\t%s\tpid %d\t%s\n", r.Redis.Name, r.Redis.Addr, r.Redis.Pid, state(r.Redis))
		}
		for _, g := range r.Gateways {
			fmt.Fprintf(tw, "  %s\t%s\tpid %d\t%s\n", g.Name, g.Addr, g.Pid, state(g))
		}
		if r.Bridge != nil {
			fmt.Fprintf(tw, "  %s\t%s\tpid %d\t%s\n", r.Bridge.Name, r.Bridge.Addr, r.Bridge.Pid, state(*r.Bridge))
		}
		for _, lag := range r.Lag {
			fmt.Fprintf(tw, "  lag from %s\t%.3fs, %d events\t%s\t\n", lag.Origin, lag.LagSeconds, lag.LagEvents, lag.State)
		}
		for _, home := range slices.Sorted(maps.Keys(r.Endpoints)) {
			if len(r.Endpoints[home]) == 0 {
				continue // no gateways (Options.RedisOnly)
			}
			fmt.Fprintf(tw, "  clients of %s reach it at\t%s\t\t\n", home, strings.Join(r.Endpoints[home], " "))
		}
	}
	tw.Flush()
	var odd []string
	for _, l := range st.Links {
		if !l.Enabled {
			odd = append(odd, l.Name+" (disabled)")
		}
	}
	fmt.Fprintf(w, "\nlinks: %d through Toxiproxy", len(st.Links))
	if len(odd) > 0 {
		fmt.Fprintf(w, "; %s", strings.Join(odd, ", "))
	}
	fmt.Fprintln(w)
	if len(st.Faults) == 0 {
		fmt.Fprintln(w, "faults: none active")
	}
	for _, f := range st.Faults {
		until := "until healed"
		if !f.Until.IsZero() {
			until = "heals in " + time.Until(f.Until).Round(time.Second).String()
		}
		fmt.Fprintf(w, "fault %s: %s %s (%s)\n", f.ID, f.Spec.Kind, f.Target, until)
	}
	var down []string
	for _, h := range st.Health {
		if !h.Healthy {
			down = append(down, h.Region+"/"+h.Node)
		}
	}
	switch {
	case st.Resolver == "":
	case len(down) > 0:
		fmt.Fprintf(w, "resolver: unhealthy %s\n", strings.Join(down, ", "))
	default:
		fmt.Fprintln(w, "resolver: every gateway healthy")
	}
}

// printCluster writes a cluster region's nodes (own address, the proxy
// each announces), its shards (primary, replicas, slot ranges) and where
// each gateway subscribes its rooms.
func printCluster(tw io.Writer, c lab.ClusterStatus) {
	for _, n := range c.Nodes {
		fmt.Fprintf(tw, "  %s\t%s\tpid %d\t%s\tannounces %s\n", n.Name, n.Addr, n.Pid, state(n.NodeStatus), n.Announced)
	}
	for _, sh := range c.Shards {
		primary := sh.Primary
		if primary == "" {
			primary = "none up"
		}
		replicas := "none"
		if len(sh.Replicas) > 0 {
			replicas = strings.Join(sh.Replicas, ", ")
		}
		failed := ""
		if len(sh.Failed) > 0 {
			failed = "; failed " + strings.Join(sh.Failed, ", ")
		}
		fmt.Fprintf(tw, "  shard %d\tslots %s\tprimary %s\treplicas %s%s\n", sh.Index, strings.Join(sh.Slots, " "), primary, replicas, failed)
	}
	if c.Error != "" {
		fmt.Fprintf(tw, "  shards unknown\t%s\t\t\n", c.Error)
	}
	for _, s := range c.Subscribers {
		where := "no room"
		if s.Error != "" {
			where = "unknown: " + s.Error
		} else if len(s.Rooms) > 0 {
			var on []string
			for _, id := range slices.Sorted(maps.Keys(s.Rooms)) {
				unit := "rooms"
				if s.Rooms[id] == 1 {
					unit = "room"
				}
				on = append(on, fmt.Sprintf("%s (%d %s)", id, s.Rooms[id], unit))
			}
			where = strings.Join(on, ", ")
		}
		fmt.Fprintf(tw, "  %s subscribes on\t%s\t\t\n", s.Gateway, where)
	}
}

// PrintRTT writes the RTT self-check: configured beside measured.
func PrintRTT(w io.Writer, checks []lab.RTTCheck) {
	if len(checks) == 0 {
		return
	}
	fmt.Fprintln(w, "\nRTT self-check (client link, median of samples; target within max(2ms, 5%)):")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  pair\tconfigured\tmeasured\t")
	for _, c := range checks {
		ok := "ok"
		if !c.OK {
			ok = "OFF TARGET"
		}
		fmt.Fprintf(tw, "  %s↔%s\t%s\t%s\t%s\n", c.A, c.B, c.Configured, c.Measured.Round(100*time.Microsecond), ok)
	}
	tw.Flush()
}

func state(n lab.NodeStatus) string {
	switch {
	case n.Paused:
		return "paused"
	case n.Running:
		return "running"
	}
	return "down"
}
