package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/geolab/geolab/federation"
	"github.com/geolab/geolab/lab/fault"
	"github.com/geolab/geolab/lab/link"
	"github.com/geolab/geolab/lab/resolver"
)

// Status is a snapshot of a running lab, as `geolab status --json` prints it.
type Status struct {
	Topology  string            `json:"topology"`
	Provider  string            `json:"provider"`
	WorkDir   string            `json:"work_dir"`
	Toxiproxy string            `json:"toxiproxy"`
	Resolver  string            `json:"resolver"`
	Uptime    string            `json:"uptime"`
	Regions   []RegionStatus    `json:"regions"`
	Links     []link.Link       `json:"links"`
	Faults    []fault.Active    `json:"faults"`
	Health    []resolver.Health `json:"health"`
}

// RegionStatus is one region's part of Status.
type RegionStatus struct {
	Name     string          `json:"name"`
	Redis    NodeStatus      `json:"redis"`
	Gateways []NodeStatus    `json:"gateways"`
	Bridge   *NodeStatus     `json:"bridge,omitempty"`
	Lag      []FeedLagStatus `json:"lag,omitempty"`
	// Endpoints maps a client's home region to the ws:// URLs of this
	// region's gateways as such a client reaches them.
	Endpoints map[string][]string `json:"endpoints"`
}

// NodeStatus is one process's state.
type NodeStatus struct {
	Name    string `json:"name"`
	Addr    string `json:"addr"`
	Pid     int    `json:"pid"`
	Running bool   `json:"running"`
	Paused  bool   `json:"paused"`
}

// FeedLagStatus is the replication lag of one of the bridge's feeds (its
// pull of one origin's outbox).
type FeedLagStatus = federation.FeedStatus

// Status gathers the lab's state now (bridge lag is asked over HTTP, with a
// short timeout; a bridge that does not answer shows no lag).
func (l *Lab) Status(ctx context.Context) Status {
	s := Status{Topology: l.topo.Name, Provider: l.opts.Provider, WorkDir: l.opts.WorkDir, Toxiproxy: l.net.URL(),
		Resolver: l.res.URL(), Uptime: time.Since(l.started).Round(time.Second).String(),
		Links: l.net.Select(nil), Faults: l.faults.List(), Health: l.res.Health()}
	for _, r := range l.topo.Regions {
		reg := l.regions[r.Name]
		rs := RegionStatus{Name: r.Name, Redis: nodeStatus(reg.redis, reg.redis.Addr()), Endpoints: map[string][]string{}}
		for _, g := range reg.gateways {
			rs.Gateways = append(rs.Gateways, nodeStatus(g, g.Listen))
		}
		for _, home := range l.topo.RegionNames() {
			rs.Endpoints[home] = l.Endpoints(home, r.Name)
		}
		if reg.bridge != nil {
			ns := nodeStatus(reg.bridge, reg.bridge.Listen)
			rs.Bridge = &ns
			if bs, err := l.BridgeStatus(ctx, r.Name); err == nil {
				rs.Lag = bs.Feeds
			}
		}
		s.Regions = append(s.Regions, rs)
	}
	return s
}

type named interface {
	Name() string
	Pid() int
	Running() bool
	Paused() bool
}

func nodeStatus(n named, addr string) NodeStatus {
	return NodeStatus{Name: n.Name(), Addr: addr, Pid: n.Pid(), Running: n.Running(), Paused: n.Paused()}
}

// BridgeStatus asks a region's bridge for its feeds' state (/status).
func (l *Lab) BridgeStatus(ctx context.Context, region string) (federation.Status, error) {
	var st federation.Status
	b := l.Region(region).bridge
	if b == nil {
		return st, fmt.Errorf("lab: region %s runs no bridge", region)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+b.Listen+"/status", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, fmt.Errorf("lab: bridge %s status: %w", region, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("lab: bridge %s status: %w", region, err)
	}
	return st, nil
}
