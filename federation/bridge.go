// Package federation is geolab's cross-region bridge. Each region runs one
// bridge; it pulls every other region's outbox and applies the events to its
// own region's rooms.
//
//	origin region                           this region
//	publish.lua ─► outbox stream ─(WAN)─► bridge ─► publish.lua (apply) ─► room stream + channel ─► gateways
//	                                        └─► checkpoint (in this region's Redis)
//
// Contract:
//   - Transfer is at-least-once: the checkpoint (the last outbox id applied)
//     lives in this region's Redis and advances only after the apply, so a
//     crash or a partition re-reads, never skips.
//   - Apply is idempotent: an event whose (room, origin, epoch, oseq) this
//     region has already is a no-op in the atomic script itself, with no
//     dedup window that a long partition could outrun.
//   - Per origin, events are applied in the origin's publish order, so oseq
//     rises by one in every region (G2 across regions, G7).
//   - Loop prevention: only events published in a region enter its outbox
//     (applied events never do), and a bridge applies only events whose origin
//     is the outbox's region: full mesh, no echo, no storm.
//   - Only rooms matching Federate cross; every other room stays home.
//   - Trust between regions: every outbox entry is checked (validateEntry)
//     before it is applied; one that breaks a rule of the outbox is refused,
//     counted by reason and logged, and the feed moves past it.
//   - A gap (the outbox was trimmed past the checkpoint, or this region lost
//     its checkpoint and the outbox no longer reaches back) is never silent:
//     it is counted, logged, and recorded as a gap marker so that gateways
//     answer recovered:false to resumes that needed the lost events.
package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/geolab/geolab/gateway/broker"
	"github.com/geolab/geolab/internal/httpserve"
	"github.com/geolab/geolab/internal/netprofile"
	"github.com/geolab/geolab/internal/redisaddr"
)

// Bridge is one region's federation bridge.
type Bridge struct {
	cfg    *Config
	log    *slog.Logger
	reg    *prometheus.Registry
	m      *metrics
	local  redis.UniversalClient // a *redis.ClusterClient when this region runs a cluster
	broker *broker.Broker
	remote netprofile.Profile // the profile of the links to remote outboxes (cfg.Profile)
	feeds  []*feed
	// conns and opts are how each region's Redis is reached, by region,
	// for checkRedis.
	conns map[string]redisaddr.Conn
	opts  map[string]*redis.Options

	http *http.Server
	ln   net.Listener
	mu   sync.Mutex
}

// New builds a bridge; Run runs it.
func New(cfg *Config, log *slog.Logger) (*Bridge, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("federation: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "federation", "region", cfg.Region)
	reg := prometheus.NewRegistry()
	b := &Bridge{cfg: cfg, log: log, reg: reg, m: newMetrics(reg, cfg.Region)}
	// This region's Redis is next to the bridge (LocalProfile: fail fast);
	// remote outboxes are across the WAN (cfg.Profile, by default wan:
	// every round trip pays the RTT).
	lan, err := netprofile.ByName(LocalProfile)
	if err != nil {
		return nil, fmt.Errorf("federation: %w", err)
	}
	if b.remote, err = netprofile.ByName(cfg.Profile); err != nil {
		return nil, fmt.Errorf("federation: %w", err)
	}
	// Each region's address gives where and who (and TLS); the profile
	// gives the timeouts.
	lt, err := b.redisTarget(cfg.Region)
	if err != nil {
		return nil, err
	}
	lo := lt.Node
	lo.DialTimeout, lo.ReadTimeout, lo.WriteTimeout, lo.MaxRetries = lan.DialTimeout, lan.ReadTimeout, lan.WriteTimeout, lan.MaxRetries
	lo.DisableIdentity, lo.ClientName = true, "geolab-bridge-"+cfg.Region
	b.local = lt.NewClient()
	hist := broker.DefaultHistory()
	b.broker = broker.New(b.local, cfg.Region, hist)
	if cfg.Durability == broker.DurabilityReplicated {
		timeout := cfg.DurabilityTimeout
		if timeout == 0 {
			timeout = broker.DefaultDurabilityTimeout
		}
		b.broker.RequireReplica(timeout)
	}
	wan := b.remote
	for _, origin := range cfg.Remotes() {
		rt, err := b.redisTarget(origin)
		if err != nil {
			return nil, err
		}
		ro := rt.Node
		ro.DialTimeout, ro.ReadTimeout, ro.WriteTimeout = wan.DialTimeout, wan.ReadTimeout+cfg.Block, wan.WriteTimeout
		// MaxRetries -1: no retries inside go-redis (0 would mean its
		// default of 3), so that a read that timed out on a blackholed
		// WAN surfaces at once and the feed is marked down.
		ro.MaxRetries, ro.DisableIdentity = -1, true
		ro.ClientName, ro.PoolSize = "geolab-bridge-"+cfg.Region+"-from-"+origin, 2
		remote := rt.NewClient()
		b.feeds = append(b.feeds, newFeed(b, origin, remote))
	}
	return b, nil
}

// redisTarget reads region's password and CA and returns how to reach its
// Redis (one Redis, or a cluster's seeds and how to reach each node),
// keeping the way in for the first-contact check (checkRedis).
func (b *Bridge) redisTarget(region string) (redisaddr.Target, error) {
	c, err := b.cfg.conn(region)
	if err != nil {
		return redisaddr.Target{}, fmt.Errorf("federation: %w", err)
	}
	t, err := c.Target()
	if err != nil {
		return redisaddr.Target{}, fmt.Errorf("federation: regions.%s: %w", region, err)
	}
	o := t.Node
	if b.conns == nil {
		b.conns = map[string]redisaddr.Conn{}
		b.opts = map[string]*redis.Options{}
	}
	b.conns[region], b.opts[region] = c, o
	return t, nil
}

// checkRedis sends region's Redis one PING on client, bounded by bound,
// and returns an error when the answer shows a configuration that Redis
// refuses (redisaddr.Diagnose: a wrong password, a certificate that does
// not verify, TLS on one side only); anything else is left to the links'
// retries.
func (b *Bridge) checkRedis(ctx context.Context, region string, client redis.UniversalClient, bound time.Duration) error {
	pingCtx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	err := client.Ping(pingCtx).Err()
	if bad := redisaddr.Diagnose(ctx, err, b.conns[region], b.opts[region]); bad != nil {
		return fmt.Errorf("federation: regions.%s: %w", region, bad)
	}
	return nil
}

// Registry is the bridge's Prometheus registry.
func (b *Bridge) Registry() *prometheus.Registry { return b.reg }

// Addr is the status listener's address, once Run has started it.
func (b *Bridge) Addr() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ln == nil {
		return ""
	}
	return b.ln.Addr().String()
}

// Run pulls every remote outbox until ctx ends.
//
// First it checks that this region's Redis takes the bridge's address,
// user, password and TLS, and fails naming what is wrong when it does not
// (a Redis that does not answer yet is no error); each remote Redis is
// checked the same way as its feed starts, and one that refuses the bridge
// stops the whole bridge with that error.
func (b *Bridge) Run(ctx context.Context) error {
	lan, _ := netprofile.ByName(LocalProfile)
	err := b.checkRedis(ctx, b.cfg.Region, b.local, lan.DialTimeout+lan.ReadTimeout)
	if err == nil {
		err = b.checkReplicas(ctx, lan.DialTimeout+lan.ReadTimeout)
	}
	if err != nil {
		for _, f := range b.feeds {
			_ = f.remote.Close()
		}
		_ = b.local.Close()
		return err
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var (
		fatalMu sync.Mutex
		fatal   []error
	)
	if b.cfg.Listen != "" {
		ln, err := net.Listen("tcp", b.cfg.Listen)
		if err != nil {
			return fmt.Errorf("federation: listen on %s: %w", b.cfg.Listen, err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "region": b.cfg.Region})
		})
		mux.HandleFunc("/readyz", b.readyz)
		mux.HandleFunc("/status", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, b.Status()) })
		mux.Handle("/metrics", promhttp.HandlerFor(b.reg, promhttp.HandlerOpts{Registry: b.reg}))
		b.mu.Lock()
		b.ln = ln
		b.http = httpserve.New(mux)
		b.mu.Unlock()
		go func() { _ = b.http.Serve(ln) }()
		defer b.http.Close()
	}
	b.log.Info("bridge running", "remotes", b.cfg.Remotes(), "federate", b.cfg.Federate, "listen", b.Addr(), "durability", b.cfg.Durability)
	var wg sync.WaitGroup
	for _, f := range b.feeds {
		wg.Add(2)
		go func() { defer wg.Done(); f.run(ctx) }()
		go func() {
			defer wg.Done()
			if err := b.checkRedis(ctx, f.origin, f.remote, b.remote.DialTimeout+b.remote.ReadTimeout); err != nil {
				b.log.Error("bridge stopped: a remote Redis refuses it", "origin", f.origin, "err", err)
				fatalMu.Lock()
				fatal = append(fatal, err)
				fatalMu.Unlock()
				stop()
			}
		}()
	}
	wg.Add(1)
	go func() { defer wg.Done(); b.watchLag(ctx) }()
	wg.Wait()
	for _, f := range b.feeds {
		_ = f.remote.Close()
	}
	return errors.Join(append(fatal, b.local.Close())...)
}

// FeedStatus is one feed's state (the pull of one origin's outbox), as
// /status shows it in "links".
type FeedStatus struct {
	Origin     string  `json:"origin"`
	Up         bool    `json:"up"`
	LagSeconds float64 `json:"lag_seconds"`
	LagEvents  int64   `json:"lag_events"`
	State      string  `json:"state"` // ok, warn or alert
	Applied    int64   `json:"applied"`
	Duplicates int64   `json:"duplicates"`
	Gaps       int64   `json:"gaps"`
	Rejected   int64   `json:"rejected"` // entries refused: they broke a rule of the outbox
	// OriginRestarts counts the times the origin's outbox was found started
	// over (its Redis lost data): each time its sequences were ended in
	// every room here, and their subscribers told.
	OriginRestarts int64 `json:"origin_restarts"`
	// LocalDataLost counts the times this region's Redis was found to have
	// lost its data: each time the origin's outbox was applied again from
	// its start.
	LocalDataLost int64  `json:"local_data_lost"`
	Checkpoint    string `json:"checkpoint"`
	LastError     string `json:"last_error,omitempty"`
}

// Status is the bridge's state, as /status serves it.
type Status struct {
	Region string `json:"region"`
	// Feeds: one per remote origin. The JSON key stays "links", which
	// readers of /status (lab.Status, docs/federation.md) rely on.
	Feeds []FeedStatus `json:"links"`
}

// Status returns every feed's state now.
func (b *Bridge) Status() Status {
	s := Status{Region: b.cfg.Region}
	now := time.Now()
	for _, f := range b.feeds {
		s.Feeds = append(s.Feeds, f.status(now))
	}
	return s
}

func (b *Bridge) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	if err := b.local.Ping(ctx).Err(); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"ready": false, "reason": "local redis: " + err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ready": true})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// watchLag refreshes the lag gauges and logs each change of lag state once.
func (b *Bridge) watchLag(ctx context.Context) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			for _, f := range b.feeds {
				f.observeLag(now)
			}
		}
	}
}

// checkReplicas fails, under durability replicated, when a primary of this
// region has no replica: every apply would wait durability_timeout and be
// retried, and the bridge would apply nothing. A Redis that does not
// answer is logged and left to the applies.
func (b *Bridge) checkReplicas(ctx context.Context, bound time.Duration) error {
	if b.cfg.Durability != broker.DurabilityReplicated {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	err := b.broker.CheckReplicas(ctx)
	if errors.Is(err, broker.ErrUnavailable) {
		b.log.Warn("durability replicated: replicas not checked", "err", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("federation: durability replicated: regions.%s: %w: no apply would ever be confirmed; give every primary a replica, or use durability async", b.cfg.Region, err)
	}
	return nil
}
