// Package bench measures the gateway: a fan-out benchmark of N WebSocket
// clients over R rooms on K gateway nodes sharing one real redis-server (or
// one real Redis Cluster of redis-server processes), with publishers at a
// fixed total rate and fixed-size payloads.
//
//	publishers ─ws─► K gateway nodes ─► redis-server ─► nodes hosting each room ─ws─► N clients
//	                                    (or the primary of each room's slot: SPUBLISH)
//
// Latency is publish→receive: each payload carries its send time, and the
// receiving client subtracts it (one process, one clock).
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/geolab/geolab/gateway"
	"github.com/geolab/geolab/gateway/auth"
	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/internal/fielderr"
	"github.com/geolab/geolab/internal/redisproc"
	"github.com/geolab/geolab/lab/provider"
)

// FanoutConfig sets one run.
type FanoutConfig struct {
	Clients    int           // subscribing clients, spread over the nodes and rooms
	Rooms      int           // rooms; client i is in room i mod Rooms
	Nodes      int           // gateway nodes (in this process) on one Redis
	Publishers int           // publishing connections
	Rate       float64       // publishes per second, all publishers together
	Payload    int           // bytes of each publish's data
	Duration   time.Duration // measured time
	Warmup     time.Duration // publishing before measuring
	Drain      time.Duration // the most time waited after the window for the acks and deliveries it owes
	RedisDir   string        // where redis-server keeps its files (a temp dir if empty)
	// RedisShards is 0 for one plain redis-server, or the primaries (3..8)
	// of a Redis Cluster the run starts instead: the gateways are then its
	// cluster clients and every room is SPUBLISHed on its slot's primary.
	RedisShards int
	// RedisReplicas are the replicas (0..2) of each primary of the
	// cluster; only with RedisShards.
	RedisReplicas int
}

// RedisName says which Redis a run had: "single" (one redis-server) or
// "cluster SxR" (S primaries, R replicas each).
func (c FanoutConfig) RedisName() string {
	if c.RedisShards == 0 {
		return "single"
	}
	return fmt.Sprintf("cluster %dx%d", c.RedisShards, c.RedisReplicas)
}

// DefaultFanout is the yardstick docs/design.md compares peers on: 2,000 clients,
// 100 rooms, 240-byte payloads.
func DefaultFanout() FanoutConfig {
	return FanoutConfig{Clients: 2000, Rooms: 100, Nodes: 2, Publishers: 20, Rate: 2000, Payload: 240,
		Duration: 10 * time.Second, Warmup: 2 * time.Second, Drain: 10 * time.Second}
}

// Validate names the first bad field: a *fielderr.Error with the field,
// its value and its bounds.
func (c FanoutConfig) Validate() error {
	switch {
	case c.Clients < 1 || c.Clients > 20000:
		return fielderr.New("Clients", c.Clients, "must be in", "1..20000")
	case c.Rooms < 1 || c.Rooms > c.Clients:
		return fielderr.Than("Rooms", c.Rooms, "must be at least 1 and not above", "Clients", c.Clients)
	case c.Nodes < 1 || c.Nodes > 16:
		return fielderr.New("Nodes", c.Nodes, "must be in", "1..16")
	case c.Publishers < 1 || c.Publishers > 1000:
		return fielderr.New("Publishers", c.Publishers, "must be in", "1..1000")
	case c.Rate <= 0 || c.Rate > 200000:
		return fielderr.New("Rate", c.Rate, "must be in", "(0, 200000] publishes/s")
	case c.Payload < 64 || c.Payload > 16384:
		return fielderr.New("Payload", c.Payload, "must be in", "64..16384 bytes")
	case c.Duration < time.Second || c.Duration > 10*time.Minute:
		return fielderr.New("Duration", c.Duration, "must be in", "1s..10m")
	case c.Warmup < 0 || c.Warmup > time.Minute:
		return fielderr.New("Warmup", c.Warmup, "must be in", "0..1m")
	case c.Drain < 0 || c.Drain > 2*time.Minute:
		return fielderr.New("Drain", c.Drain, "must be in", "0..2m")
	case c.RedisShards != 0 && (c.RedisShards < 3 || c.RedisShards > 8):
		return fielderr.New("RedisShards", c.RedisShards, "must be", "0 (one redis-server) or 3..8 (a cluster's primaries: redis-cli --cluster create needs at least 3)")
	case c.RedisReplicas < 0 || c.RedisReplicas > 2:
		return fielderr.New("RedisReplicas", c.RedisReplicas, "must be in", "0..2")
	case c.RedisReplicas > 0 && c.RedisShards == 0:
		return fielderr.Than("RedisReplicas", c.RedisReplicas, "needs a cluster: give", "RedisShards", "3..8")
	}
	return nil
}

// FanoutResult is what one run measured.
type FanoutResult struct {
	Config              FanoutConfig
	Published           int64   // acked publishes in the measured window
	Expected, Delivered int64   // deliveries owed to clients for those publishes, and received
	DeliveredPerSec     float64 // deliveries per second in the window
	P50, P99, P999, Max time.Duration
	Errors              int64 // error frames to publishers
	Cut                 int64 // subscribers whose connection ended before the bench closed it
	// Unacked are the window's publishes still unanswered when Drain ran
	// out: what they owe is not in Expected, but whatever of it arrived is
	// in Delivered, so Expected-Delivered is not the loss then.
	Unacked int64
	// RedisCPU is the CPU time (user+system) every redis-server of the run
	// used from the window's start until everything it owes arrived (or
	// Drain ran out), and SelfCPU what this process (the gateway nodes, the
	// clients and the publishers) used then (from /proc; 0 elsewhere). A
	// run that fell behind in the warmup does some of the warmup's work in
	// it too.
	RedisCPU, SelfCPU time.Duration
	// PublishRedisMean is the gateways' mean time from a publish frame
	// read to Redis confirming it (geolab_gateway_publish_seconds) over
	// the same span: how long each publish held its connection.
	PublishRedisMean time.Duration
	// Shards are, on a cluster, what each primary serving slots did,
	// read from the primaries themselves once the drain ended, every client
	// still subscribed; nil on one redis-server.
	Shards []ShardUse
	// RedisPids are the redis-server processes of the run, stopped by the
	// time RunFanout returns.
	RedisPids []int
}

// ShardUse is what one primary of the cluster did in a run, as it reports
// it: rooms whose channel is subscribed on it (PUBSUB SHARDCHANNELS) and
// the SPUBLISH commands it ran (INFO commandstats), warmup included.
type ShardUse struct {
	Addr          string
	RoomsSubbed   int
	SPublishCalls int64
}

// String prints the result as one table row with a header.
func (r FanoutResult) String() string { return FanoutTable([]FanoutResult{r}) }

// FanoutTable prints results as one table: a line of what the runs share
// (the first result's config), then a header and one row per run, with the
// Redis it had and its rate; then, for a run with error frames,
// publishes unanswered or subscribers cut, how many, and for a run on a
// cluster, what each primary did.
func FanoutTable(rs []FanoutResult) string {
	if len(rs) == 0 {
		return ""
	}
	c := rs[0].Config
	var b strings.Builder
	fmt.Fprintf(&b, "clients=%d rooms=%d nodes=%d payload=%dB duration=%s\n",
		c.Clients, c.Rooms, c.Nodes, c.Payload, c.Duration)
	fmt.Fprintf(&b, "%-13s %-8s %-12s %-12s %-14s %-10s %-10s %-10s %-10s %-8s %-10s %-10s %s\n",
		"redis", "rate", "published", "delivered", "delivered/s", "p50", "p99", "p99.9", "max", "lost", "redis-cpu", "self-cpu", "publish")
	for _, r := range rs {
		fmt.Fprintf(&b, "%-13s %-8.0f %-12d %-12d %-14.0f %-10s %-10s %-10s %-10s %-8d %-10s %-10s %s\n",
			r.Config.RedisName(), r.Config.Rate, r.Published, r.Delivered, r.DeliveredPerSec,
			round(r.P50), round(r.P99), round(r.P999), round(r.Max), r.Expected-r.Delivered,
			r.RedisCPU.Round(10*time.Millisecond), r.SelfCPU.Round(10*time.Millisecond), round(r.PublishRedisMean))
	}
	for _, r := range rs {
		if r.Errors > 0 {
			fmt.Fprintf(&b, "%s at %.0f/s: %d publishes answered with an error frame\n", r.Config.RedisName(), r.Config.Rate, r.Errors)
		}
		if r.Unacked > 0 {
			fmt.Fprintf(&b, "%s at %.0f/s: %d publishes unanswered when the drain ran out: lost is not exact (give --drain more)\n", r.Config.RedisName(), r.Config.Rate, r.Unacked)
		}
		if r.Cut > 0 {
			fmt.Fprintf(&b, "%s at %.0f/s: %d subscribers disconnected before the end (what they missed counts as lost)\n", r.Config.RedisName(), r.Config.Rate, r.Cut)
		}
		for _, sh := range r.Shards {
			fmt.Fprintf(&b, "%s at %.0f/s: primary %s: %d rooms subscribed, %d SPUBLISH\n",
				r.Config.RedisName(), r.Config.Rate, sh.Addr, sh.RoomsSubbed, sh.SPublishCalls)
		}
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func round(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	default:
		return d.Round(10 * time.Microsecond).String()
	}
}

const benchSecret = "geolab-bench-secret-0123456789abcdef0123456789"

// RunFanout runs one fan-out benchmark; progress lines go to log. The
// Redis it starts (one redis-server, or the cluster of c.RedisShards) is
// stopped by pid before it returns, also on an error or when ctx ends; a
// Redis that would not stop is an error.
func RunFanout(ctx context.Context, c FanoutConfig, log io.Writer) (FanoutResult, error) {
	if err := c.Validate(); err != nil {
		return FanoutResult{}, err
	}
	raiseFileLimit()
	dir := c.RedisDir
	if dir == "" {
		d, err := os.MkdirTemp("", "geolab-bench-")
		if err != nil {
			return FanoutResult{Config: c}, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	fmt.Fprintf(log, "bench: %s at %.0f/s: load average %s before the run\n", c.RedisName(), c.Rate, loadAvg())
	rd, err := startFanoutRedis(ctx, c, dir)
	if err != nil {
		return FanoutResult{Config: c}, err
	}
	fmt.Fprintf(log, "bench: redis %s up: %s (pids %v)\n", c.RedisName(), rd.addr, rd.pids)
	res, err := fanout(ctx, c, rd, log)
	res.RedisPids = rd.pids
	if serr := rd.stop(); serr != nil {
		err = errors.Join(err, fmt.Errorf("bench: stop redis %s: %w", c.RedisName(), serr))
	}
	return res, err
}

// fanoutRedis is the Redis of one run, and how to stop it.
type fanoutRedis struct {
	addr    string                // the gateways' Redis: one address, or the cluster's seeds, comma-separated
	cluster provider.RedisCluster // nil for one redis-server
	pids    []int
	stop    func() error // kills every process by pid and waits for it to exit
}

// nodesCounters sums the gateway counters of every node's /metrics.
func nodesCounters(nodes []*gateway.Server) gatewayCounters {
	var sum gatewayCounters
	for _, n := range nodes {
		g := readGatewayCounters("http://" + n.Addr() + "/metrics")
		sum.publishSum += g.publishSum
		sum.publishCount += g.publishCount
		sum.framesOut += g.framesOut
		sum.writes += g.writes
	}
	return sum
}

// cpu is the CPU seconds every redis-server of rd used so far.
func (rd *fanoutRedis) cpu() float64 {
	var sum float64
	for _, pid := range rd.pids {
		sum += procCPU(pid)
	}
	return sum
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// startFanoutRedis starts one redis-server in dir, or, with c.RedisShards,
// a Redis Cluster of real redis-server processes the way the lab starts a
// cluster region (provider.Process.StartRedisCluster: cluster mode on,
// redis-cli --cluster create, then a bounded wait until every node serves
// every slot and every replica is linked), each node announcing its own
// address (no proxy in front). On an error, what it started is stopped.
func startFanoutRedis(ctx context.Context, c FanoutConfig, dir string) (*fanoutRedis, error) {
	if c.RedisShards == 0 {
		rs, err := redisproc.Start(ctx, redisproc.Options{Dir: dir})
		if err != nil {
			return nil, err
		}
		return &fanoutRedis{addr: rs.Addr(), pids: []int{rs.Pid()}, stop: rs.Close}, nil
	}
	// Only StartRedisCluster of the provider is used: it runs redis-server
	// from PATH and no geolab child, so Bin stays empty.
	prov := &provider.Process{Dir: dir}
	cl, err := prov.StartRedisCluster(ctx, provider.RedisClusterSpec{Region: "bench",
		Shards: c.RedisShards, Replicas: c.RedisReplicas,
		Announce: func(_, addr string) (string, error) { return addr, nil }})
	if err != nil {
		return nil, errors.Join(err, prov.Close())
	}
	rd := &fanoutRedis{addr: strings.Join(cl.Seeds(), ","), cluster: cl, stop: prov.Close}
	for _, n := range cl.Nodes() {
		rd.pids = append(rd.pids, n.Pid())
	}
	return rd, nil
}

// fanout runs the gateways, clients and publishers of one run on rd.
func fanout(ctx context.Context, c FanoutConfig, rd *fanoutRedis, log io.Writer) (FanoutResult, error) {
	res := FanoutResult{Config: c}
	a, _ := auth.NewAuthority([]byte(benchSecret))
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var nodes []*gateway.Server
	defer func() {
		for _, n := range nodes {
			n.Close()
		}
	}()
	for i := 0; i < c.Nodes; i++ {
		cfg := gateway.DefaultConfig()
		cfg.Region, cfg.Node, cfg.Listen, cfg.Redis = "bench", fmt.Sprintf("gw-%d", i+1), "127.0.0.1:0", rd.addr
		cfg.Authority, cfg.Logger = a, quiet
		cfg.PublishRate, cfg.PublishBurst = c.Rate, int(c.Rate)+1
		cfg.FrameRate, cfg.FrameBurst = c.Rate*2+100, int(c.Rate*2)+200
		cfg.SendQueue = 4096
		cfg.MaxConns, cfg.MaxConnsPerSub = 0, 0 // up to 20000 clients of one token subject
		srv, err := gateway.New(cfg)
		if err != nil {
			return res, err
		}
		if err := srv.Start(); err != nil {
			return res, err
		}
		nodes = append(nodes, srv)
	}
	for _, n := range nodes {
		if err := waitReady(ctx, n); err != nil {
			return res, err
		}
	}
	tok, _ := a.Issue("bench", []string{"*"}, []string{"*"}, time.Hour, time.Now())
	fmt.Fprintf(log, "bench: %d nodes up on redis %s; connecting %d clients\n", c.Nodes, c.RedisName(), c.Clients)

	// Subscribers.
	// A delivery counts when its payload carries a send time: only the
	// window's publishes do. (A flag set by this goroutine when the window
	// opens would miss the first deliveries whenever it woke later than the
	// publishers on a loaded machine.)
	var delivered, cut atomic.Int64
	var closing atomic.Bool // set before the bench closes the clients: a read error after it is no cut
	lat := newLatencies(int(c.Rate * float64(c.Clients) / float64(c.Rooms) * c.Duration.Seconds() * 1.2))
	subsPerRoom := make([]int64, c.Rooms)
	var conns []*websocket.Conn
	defer func() {
		closing.Store(true)
		for _, ws := range conns {
			ws.Close()
		}
	}()
	var wg sync.WaitGroup
	for i := 0; i < c.Clients; i++ {
		node := nodes[i%c.Nodes]
		room := i % c.Rooms
		ws, err := dialWS(node.Addr(), tok)
		if err != nil {
			return res, fmt.Errorf("bench: client %d: %w", i, err)
		}
		conns = append(conns, ws)
		if err := ws.WriteJSON(protocol.ClientFrame{Type: protocol.TypeSubscribe, Room: roomName(room)}); err != nil {
			return res, err
		}
		if err := readUntil(ws, protocol.TypeSubscribed); err != nil {
			return res, fmt.Errorf("bench: client %d subscribe: %w", i, err)
		}
		subsPerRoom[room]++
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				_, b, err := ws.ReadMessage()
				if err != nil {
					if !closing.Load() {
						cut.Add(1)
					}
					return
				}
				now := time.Now().UnixNano()
				sent, ok := sentAt(b)
				if !ok || sent == 0 {
					continue
				}
				delivered.Add(1)
				lat.add(time.Duration(now - sent))
			}
		}()
	}
	fmt.Fprintf(log, "bench: %d clients subscribed; publishing %.0f/s for %s warmup + %s\n", c.Clients, c.Rate, c.Warmup, c.Duration)

	// Publishers: each at Rate/Publishers, on its own connection.
	var published, expected, errorsN, inFlight atomic.Int64
	pad := strings.Repeat("x", max(0, c.Payload-len(`{"t":0000000000000000000,"p":""}`)))
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	var pwg sync.WaitGroup
	measureStart := time.Now().Add(c.Warmup)
	measureEnd := measureStart.Add(c.Duration)
	for p := 0; p < c.Publishers; p++ {
		ws, err := dialWS(nodes[p%c.Nodes].Addr(), tok)
		if err != nil {
			return res, err
		}
		conns = append(conns, ws)
		var pending sync.Map // client id → room index, for acks in the window
		pwg.Add(2)
		go func() { // acks
			defer pwg.Done()
			for {
				_, b, err := ws.ReadMessage()
				if err != nil {
					return
				}
				var f struct{ Type, ID string }
				_ = json.Unmarshal(b, &f)
				switch f.Type {
				case protocol.TypeAck:
					if v, ok := pending.LoadAndDelete(f.ID); ok {
						inFlight.Add(-1)
						published.Add(1)
						expected.Add(subsPerRoom[v.(int)])
					}
				case protocol.TypeError:
					var e struct{ Ref string }
					_ = json.Unmarshal(b, &e)
					if _, ok := pending.LoadAndDelete(e.Ref); ok {
						inFlight.Add(-1)
					}
					errorsN.Add(1)
				}
			}
		}()
		go func() {
			defer pwg.Done()
			interval := time.Duration(float64(time.Second) * float64(c.Publishers) / c.Rate)
			next := time.Now()
			for i := 0; ; i++ {
				if pctx.Err() != nil || time.Now().After(measureEnd) {
					return
				}
				next = next.Add(interval)
				if d := time.Until(next); d > 0 {
					time.Sleep(d) // pacing the offered load, not synchronisation
				}
				room := (p + i*c.Publishers) % c.Rooms
				now := time.Now()
				inWindow := now.After(measureStart) && now.Before(measureEnd)
				id := strconv.Itoa(p) + "-" + strconv.Itoa(i)
				if inWindow {
					inFlight.Add(1)
					pending.Store(id, room)
				}
				ts := now.UnixNano()
				if !inWindow {
					ts = 0
				}
				frame := `{"type":"` + protocol.TypePublish + `","room":"` + roomName(room) + `","id":"` + id + `","data":{"t":` +
					strconv.FormatInt(ts, 10) + `,"p":"` + pad + `"}}`
				if err := ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
					return
				}
			}
		}()
	}
	// Measure: the window opens after the warmup.
	if !sleepUntil(ctx, measureStart) {
		return res, ctx.Err()
	}
	redisCPU0, selfCPU0, pub0 := rd.cpu(), procCPU(os.Getpid()), nodesCounters(nodes)
	if !sleepUntil(ctx, measureEnd) {
		return res, ctx.Err()
	}
	// Let the last acks and deliveries arrive (bounded).
	drainEnd := time.Now().Add(c.Drain)
	for time.Now().Before(drainEnd) && (inFlight.Load() > 0 || delivered.Load() < expected.Load()) {
		time.Sleep(20 * time.Millisecond)
	}
	res.RedisCPU = seconds(rd.cpu() - redisCPU0)
	res.SelfCPU = seconds(procCPU(os.Getpid()) - selfCPU0)
	if pub1 := nodesCounters(nodes); pub1.publishCount > pub0.publishCount {
		res.PublishRedisMean = seconds((pub1.publishSum - pub0.publishSum) / (pub1.publishCount - pub0.publishCount))
	}
	stop()
	if rd.cluster != nil {
		// Read while every client is still subscribed.
		var err error
		if res.Shards, err = shardUse(ctx, rd.cluster); err != nil {
			return res, err
		}
	}
	res.Published, res.Expected, res.Delivered, res.Errors = published.Load(), expected.Load(), delivered.Load(), errorsN.Load()
	res.Cut, res.Unacked = cut.Load(), inFlight.Load()
	res.DeliveredPerSec = float64(res.Delivered) / c.Duration.Seconds()
	res.P50, res.P99, res.P999, res.Max = lat.quantiles()
	closing.Store(true)
	for _, ws := range conns {
		ws.Close()
	}
	conns = nil
	wg.Wait()
	pwg.Wait()
	return res, nil
}

// shardUse asks each primary serving slots what it did: the rooms whose
// channel is subscribed on it and its SPUBLISH calls.
func shardUse(ctx context.Context, cl provider.RedisCluster) ([]ShardUse, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	shards, err := cl.Shards(ctx)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	var out []ShardUse
	for _, sh := range shards {
		if sh.Primary == nil {
			return nil, fmt.Errorf("bench: shard %d (slots %v) has no primary up", sh.Index, sh.Slots)
		}
		u, err := primaryUse(ctx, sh.Primary.Addr())
		if err != nil {
			return nil, fmt.Errorf("bench: primary %s of shard %d: %w", sh.Primary.Addr(), sh.Index, err)
		}
		out = append(out, u)
	}
	return out, nil
}

func primaryUse(ctx context.Context, addr string) (ShardUse, error) {
	rc := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DisableIdentity: true, PoolSize: 1,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}})
	defer rc.Close()
	chans, err := rc.PubSubShardChannels(ctx, "geolab:ch:*").Result()
	if err != nil {
		return ShardUse{}, fmt.Errorf("PUBSUB SHARDCHANNELS: %w", err)
	}
	stats, err := rc.Info(ctx, "commandstats").Result()
	if err != nil {
		return ShardUse{}, fmt.Errorf("INFO commandstats: %w", err)
	}
	return ShardUse{Addr: addr, RoomsSubbed: len(chans), SPublishCalls: commandCalls(stats, "spublish")}, nil
}

// commandCalls reads the calls of cmd from an INFO commandstats reply
// (cmdstat_spublish:calls=12,usec=…); 0 when the command never ran.
func commandCalls(info, cmd string) int64 {
	for _, line := range strings.Split(info, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_"+cmd+":calls=")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.SplitN(rest, ",", 2)[0], 10, 64)
		return n
	}
	return 0
}

func roomName(i int) string { return "bench:" + strconv.Itoa(i) }

func waitReady(ctx context.Context, n *gateway.Server) error {
	end := time.Now().Add(10 * time.Second)
	for {
		if ok, _ := n.Ready(); ok {
			return nil
		}
		if time.Now().After(end) || ctx.Err() != nil {
			return fmt.Errorf("bench: gateway %s not ready within 10s", n.Addr())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	select {
	case <-time.After(time.Until(t)):
		return true
	case <-ctx.Done():
		return false
	}
}

func dialWS(addr, tok string) (*websocket.Conn, error) {
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	ws, _, err := d.Dial("ws://"+addr+"/ws", http.Header{"Authorization": {"Bearer " + tok}})
	if err != nil {
		return nil, err
	}
	return ws, readUntil(ws, protocol.TypeWelcome)
}

func readUntil(ws *websocket.Conn, typ string) error {
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer ws.SetReadDeadline(time.Time{})
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			return err
		}
		var f struct{ Type string }
		if json.Unmarshal(b, &f) == nil && f.Type == typ {
			return nil
		}
		if f.Type == protocol.TypeError {
			return fmt.Errorf("error frame: %s", b)
		}
	}
}

// sentAt finds the send time in a message frame without decoding all of it.
func sentAt(b []byte) (int64, bool) {
	const key = `"data":{"t":`
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return 0, false
	}
	rest := b[i+len(key):]
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	n, err := strconv.ParseInt(string(rest[:j]), 10, 64)
	return n, err == nil
}

// latencies keeps every sample of the window (bounded) for exact quantiles.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func newLatencies(hint int) *latencies {
	return &latencies{d: make([]time.Duration, 0, min(max(hint, 1024), 20_000_000))}
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	if len(l.d) < 20_000_000 {
		l.d = append(l.d, d)
	}
	l.mu.Unlock()
}

func (l *latencies) quantiles() (p50, p99, p999, mx time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return
	}
	slices.Sort(l.d)
	q := func(f float64) time.Duration {
		return l.d[min(len(l.d)-1, int(math.Ceil(f*float64(len(l.d))))-1)]
	}
	return q(0.50), q(0.99), q(0.999), l.d[len(l.d)-1]
}

// raiseFileLimit lifts the soft open-file limit to the hard one: thousands of
// sockets on each side.
func raiseFileLimit() {
	var r syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r) == nil && r.Cur < r.Max {
		r.Cur = r.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r)
	}
}
