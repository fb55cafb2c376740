package control

import (
	"bytes"
	"strings"
	"testing"

	"github.com/geolab/geolab/lab"
)

// TestPrintStatusOfAClusterRegion: a cluster region prints every node with
// the proxy it announces, and every shard with its slots, primary and
// replicas (and a shard whose primary is down as such), and where each
// gateway subscribes its rooms.
func TestPrintStatusOfAClusterRegion(t *testing.T) {
	node := func(id, addr, proxy string, pid int, running bool) lab.ClusterNodeStatus {
		return lab.ClusterNodeStatus{NodeStatus: lab.NodeStatus{Name: "redis us-east/" + id, Addr: addr, Pid: pid, Running: running}, ID: id, Announced: proxy}
	}
	st := lab.Status{Topology: "t", Provider: "process", Regions: []lab.RegionStatus{{Name: "us-east", Cluster: &lab.ClusterStatus{
		Nodes: []lab.ClusterNodeStatus{
			node("redis-1", "127.0.0.1:1001", "127.0.0.1:2001", 11, false),
			node("redis-2", "127.0.0.1:1002", "127.0.0.1:2002", 12, true),
		},
		Shards: []lab.ShardStatus{
			{Index: 1, Primary: "redis-2", Replicas: []string{}, Failed: []string{"redis-1"}, Slots: []string{"0-5460"}},
			{Index: 2, Primary: "", Replicas: []string{"redis-3"}, Slots: []string{"5461-10922", "16000-16383"}},
		},
		Subscribers: []lab.ShardSubscriber{
			{Gateway: "gw-1", Rooms: map[string]int{"redis-2": 3, "redis-1": 1}},
			{Gateway: "gw-2", Rooms: map[string]int{}},
			{Gateway: "gw-3", Rooms: map[string]int{}, Error: "connection refused"},
		},
	}}}}
	var b bytes.Buffer
	PrintStatus(&b, st)
	out := strings.Join(strings.Fields(b.String()), " ") // the columns' widths are not the point
	for _, want := range []string{
		"redis us-east/redis-1 127.0.0.1:1001 pid 11 down announces 127.0.0.1:2001",
		"redis us-east/redis-2 127.0.0.1:1002 pid 12 running announces 127.0.0.1:2002",
		"shard 1 slots 0-5460 primary redis-2 replicas none; failed redis-1",
		"shard 2 slots 5461-10922 16000-16383 primary none up replicas redis-3",
		"resolver none (redis only)",
		"gw-1 subscribes on redis-1 (1 room), redis-2 (3 rooms)",
		"gw-2 subscribes on no room",
		"gw-3 subscribes on unknown: connection refused",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "pid 0") {
		t.Errorf("a cluster region printed the standalone Redis line:\n%s", out)
	}
}
