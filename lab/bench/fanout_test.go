package bench

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// tinyFanout is a load the 2-core machine runs in a few seconds: 40
// clients in 4 rooms (10 subscribers each) on 2 nodes, 200 publishes/s for
// a 1 s window.
func tinyFanout(shards int) FanoutConfig {
	c := DefaultFanout()
	c.Clients, c.Rooms, c.Publishers, c.Rate = 40, 4, 4, 200
	c.Duration, c.Warmup = time.Second, 300*time.Millisecond
	c.RedisShards = shards
	return c
}

// The yardstick on a real 3-shard Redis Cluster: every acked publish of
// the window reaches its room's 10 subscribers, and the cluster was really
// used: the primaries themselves report the rooms' sharded subscriptions
// and SPUBLISH calls spread over more than one of them (a bench or a
// gateway that fell back to one node, or to plain PUBLISH, would show one
// primary or none). Every redis-server is gone when RunFanout returns.
func TestFanoutOnAThreeShardClusterDeliversEverythingOverSeveralPrimaries(t *testing.T) {
	c := tinyFanout(3)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var log strings.Builder
	res, err := RunFanout(ctx, c, &log)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if res.Published < 100 || res.Errors != 0 || res.Cut != 0 || res.Unacked != 0 || res.Expected != res.Published*10 || res.Delivered != res.Expected {
		t.Fatalf("want ≥100 acked publishes, each delivered to its room's 10 subscribers, 0 lost, no error, nobody cut: %+v", res)
	}
	if res.PublishRedisMean <= 0 || res.RedisCPU < 0 || res.SelfCPU <= 0 {
		t.Errorf("want the nodes' mean publish time and the CPU figures read: %+v", res)
	}
	if len(res.Shards) != 3 {
		t.Fatalf("want what 3 primaries did, got %+v", res.Shards)
	}
	used, rooms, spublish := 0, 0, int64(0)
	for _, sh := range res.Shards {
		rooms += sh.RoomsSubbed
		spublish += sh.SPublishCalls
		if sh.RoomsSubbed > 0 && sh.SPublishCalls > 0 {
			used++
		}
	}
	if used < 2 {
		t.Errorf("rooms subscribed and SPUBLISHed on %d primaries, want at least 2: %+v", used, res.Shards)
	}
	if rooms != c.Rooms {
		t.Errorf("the primaries report %d subscribed room channels, want each of the %d rooms on exactly one: %+v", rooms, c.Rooms, res.Shards)
	}
	if spublish < res.Published {
		t.Errorf("the primaries ran %d SPUBLISH, fewer than the %d publishes acked in the window alone", spublish, res.Published)
	}
	if table := res.String(); !strings.Contains(table, "cluster 3x0") || !strings.Contains(table, "SPUBLISH") {
		t.Errorf("the table does not say the run was on the cluster:\n%s", table)
	}
	assertGone(t, res.RedisPids, 3)
}

// The same tiny load on one redis-server: no shard report, everything
// delivered, its one process gone.
func TestFanoutOnOneRedisReportsNoShards(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := RunFanout(ctx, tinyFanout(0), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if res.Published < 100 || res.Delivered != res.Expected || res.Expected != res.Published*10 || res.Shards != nil {
		t.Fatalf("want ≥100 publishes each delivered 10 times and no shard report: %+v", res)
	}
	if !strings.Contains(res.String(), "single") {
		t.Errorf("the table does not say the run was on one redis-server:\n%s", res.String())
	}
	assertGone(t, res.RedisPids, 1)
}

// A run stopped halfway (Ctrl-C: its context ends once every client is
// subscribed) returns the context's error and still stops every node of
// its cluster by pid.
func TestFanoutStoppedHalfwayStopsTheCluster(t *testing.T) {
	c := tinyFanout(3)
	c.Duration = time.Minute // never reached
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	stopped, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	log := &lineHook{match: "clients subscribed", hit: cancelRun}
	res, err := RunFanout(stopped, c, log)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want the run to end with context.Canceled, got %v\n%s", err, log.String())
	}
	if ctx.Err() != nil {
		t.Fatalf("the run outlived its bound: %v", ctx.Err())
	}
	assertGone(t, res.RedisPids, 3)
}

func TestFanoutConfigNamesTheBadRedisField(t *testing.T) {
	for _, tc := range []struct {
		shards, replicas int
		want             string
	}{
		{-1, 0, "RedisShards -1 must be 0"},
		{2, 0, "RedisShards 2 must be 0 (one redis-server) or 3..8"},
		{9, 0, "RedisShards 9"},
		{0, 1, "RedisReplicas 1 needs a cluster: give RedisShards 3..8"},
		{3, -1, "RedisReplicas -1 must be in 0..2"},
		{3, 3, "RedisReplicas 3 must be in 0..2"},
	} {
		c := DefaultFanout()
		c.RedisShards, c.RedisReplicas = tc.shards, tc.replicas
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("shards %d replicas %d: got %v, want an error containing %q", tc.shards, tc.replicas, err, tc.want)
		}
	}
	c := DefaultFanout()
	c.RedisShards, c.RedisReplicas = 3, 1
	if err := c.Validate(); err != nil || c.RedisName() != "cluster 3x1" {
		t.Errorf("3 shards, 1 replica: %v, %q", err, c.RedisName())
	}
}

func TestCommandCallsReadsInfoCommandstats(t *testing.T) {
	info := "# Commandstats\r\ncmdstat_publish:calls=3,usec=9,usec_per_call=3.00\r\n" +
		"cmdstat_spublish:calls=1234,usec=5000,usec_per_call=4.05,rejected_calls=0,failed_calls=0\r\n"
	if got := commandCalls(info, "spublish"); got != 1234 {
		t.Errorf("spublish: got %d, want 1234", got)
	}
	if got := commandCalls(info, "publish"); got != 3 {
		t.Errorf("publish: got %d, want 3 (not spublish's)", got)
	}
	if got := commandCalls(info, "ssubscribe"); got != 0 {
		t.Errorf("a command that never ran: got %d, want 0", got)
	}
}

// assertGone checks that want redis-server pids were recorded and that no
// process has any of them any more.
func assertGone(t *testing.T, pids []int, want int) {
	t.Helper()
	if len(pids) != want {
		t.Fatalf("want %d redis-server pids, got %v", want, pids)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("redis-server pid %d still exists after RunFanout returned (kill -0: %v)", pid, err)
		}
	}
}

// lineHook is a log that calls hit once, when a write contains match.
type lineHook struct {
	mu    sync.Mutex
	b     strings.Builder
	match string
	hit   func()
	done  bool
}

func (h *lineHook) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.b.Write(p)
	if !h.done && strings.Contains(string(p), h.match) {
		h.done = true
		h.hit()
	}
	return len(p), nil
}

func (h *lineHook) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.b.String()
}

// The table says which Redis each row ran on, and what the test of a run
// cannot see in the rows: error frames and each primary's share.
func TestFanoutTableNamesTheRedisOfEachRow(t *testing.T) {
	single, cluster := tinyFanout(0), tinyFanout(3)
	cluster.RedisReplicas = 1
	table := FanoutTable([]FanoutResult{
		{Config: single, Published: 10, Expected: 100, Delivered: 100},
		{Config: cluster, Published: 10, Expected: 100, Delivered: 98, Errors: 7, Cut: 1, Unacked: 4,
			Shards: []ShardUse{{Addr: "127.0.0.1:7001", RoomsSubbed: 3, SPublishCalls: 42}}},
	})
	lines := strings.Split(table, "\n")
	if len(lines) != 8 {
		t.Fatalf("want a config line, a header, 2 rows, an error line, an unanswered line, a cut line and a shard line:\n%s", table)
	}
	for i, want := range []string{"clients=40 rooms=4", "redis", "single", "cluster 3x1", "cluster 3x1 at 200/s: 7 publishes answered with an error frame",
		"cluster 3x1 at 200/s: 4 publishes unanswered when the drain ran out",
		"cluster 3x1 at 200/s: 1 subscribers disconnected before the end",
		"cluster 3x1 at 200/s: primary 127.0.0.1:7001: 3 rooms subscribed, 42 SPUBLISH"} {
		if !strings.HasPrefix(lines[i], want) {
			t.Errorf("line %d: %q, want it to start with %q", i, lines[i], want)
		}
	}
	if f := strings.Fields(lines[3]); len(f) != 14 || f[10] != "2" {
		t.Errorf("the cluster row's lost column: %q, want 2", lines[3])
	}
}

// commandCalls reads any INFO reply without panicking, and finds a
// command's calls wherever its line is.
func FuzzCommandCalls(f *testing.F) {
	f.Add("# Commandstats\r\ncmdstat_spublish:calls=12,usec=40,usec_per_call=3.33\r\n", uint32(7))
	f.Add("cmdstat_zzfuzz:calls=", uint32(0))
	f.Add("", uint32(1<<31))
	f.Fuzz(func(t *testing.T, info string, n uint32) {
		_ = commandCalls(info, "spublish")
		if strings.Contains(info, "cmdstat_zzfuzz") {
			return
		}
		got := commandCalls(info+"\r\ncmdstat_zzfuzz:calls="+strconv.FormatUint(uint64(n), 10)+",usec=1\r\n", "zzfuzz")
		if got != int64(n) {
			t.Fatalf("calls=%d after %q: got %d", n, info, got)
		}
	})
}

// A cluster that cannot be made (redis-cli missing from PATH) fails the
// run with redis-cli named, after its nodes had started: every one of them
// is stopped, none is left running in the run's Redis directory.
func TestFanoutStopsTheNodesOfAClusterItCouldNotMake(t *testing.T) {
	server, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server: %v", err)
	}
	bin := t.TempDir()
	if err := os.Symlink(server, filepath.Join(bin, "redis-server")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin)
	c := tinyFanout(3)
	c.RedisDir = t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err = RunFanout(ctx, c, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "redis-cli not found") {
		t.Fatalf("want an error naming the missing redis-cli, got %v", err)
	}
	logs, _ := filepath.Glob(filepath.Join(c.RedisDir, "redis-bench", "redis-*", "redis.log"))
	if len(logs) != 3 {
		t.Fatalf("want the 3 nodes started before the create failed, found logs %v", logs)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cwd")
	for _, cwd := range procs {
		if dir, err := os.Readlink(cwd); err == nil && strings.HasPrefix(dir, c.RedisDir+"/") {
			t.Errorf("%s is still running in %s", filepath.Dir(cwd), dir)
		}
	}
}
