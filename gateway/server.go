// Package gateway is geolab's WebSocket gateway: one node of a region's
// fleet, speaking protocol v1 (gateway/protocol, docs/protocol.md) to clients
// and Redis (gateway/broker) to the other nodes of its region.
//
//	client ─ws─► gateway ─publish.lua─► Redis: history stream + PUBLISH room channel
//	                                       │
//	client ◄─ws─ gateway(s) ◄─SUBSCRIBE────┘  (only the nodes hosting the room: G9)
//
// A node subscribes to a room's channel when its first local subscriber
// arrives and unsubscribes when the last leaves. Delivery to each client goes
// through a bounded queue (G10). When the pub/sub link drops, the node
// resubscribes every room it hosts and fills each room's gap from the history
// stream before going live again, deduplicating by stream id (G5). A client
// resuming with since/epochs gets exactly what it missed or recovered:false
// with a reason (G6).
package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/geolab/geolab/gateway/auth"
	"github.com/geolab/geolab/gateway/broker"
	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/internal/backoff"
	"github.com/geolab/geolab/internal/faulty"
	"github.com/geolab/geolab/internal/httpserve"
	"github.com/geolab/geolab/internal/redisaddr"
)

// Server is one gateway node.
type Server struct {
	cfg Config
	log *slog.Logger
	m   *metrics
	reg *prometheus.Registry
	rdb redis.UniversalClient // a *redis.ClusterClient when --redis names a cluster
	// redisConn and redisOpts are how rdb reaches Redis (on a cluster, how
	// it reaches each node), for checkRedis.
	redisConn redisaddr.Conn
	redisOpts *redis.Options
	broker    *broker.Broker
	sub       *broker.Subscriber
	shards    *broker.ShardedSubscriber // on a cluster: the rooms' sharded pub/sub (sub then carries SessionsChannel only)
	hub       *hub

	upgrader websocket.Upgrader
	http     *http.Server
	ln       net.Listener

	mu       sync.Mutex
	conns    map[*conn]struct{}
	sessions map[string]map[*conn]struct{} // connections by the session id their client named
	draining bool
	connWG   sync.WaitGroup
	admitted int            // connections admitted (handshaking or open), for MaxConns
	perSub   map[string]int // the same by token subject, for MaxConnsPerSub

	oom      atomic.Bool // Redis refused a publish for memory (OOM) and has not taken one since
	oomWatch atomic.Bool // a watchOOM runs

	ctx    context.Context // ends with Close
	cancel context.CancelFunc
	done   chan struct{}
}

// New validates cfg and builds a node; Start runs it.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if faulty.On("psubscribe") {
		// MUTANT psubscribe breaks G9: PSUBSCRIBE of every room channel
		// whatever --subscribe-mode says, so every node receives every
		// publish of the region.
		cfg.SubscribeMode = SubscribePattern
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "gateway", "region", cfg.Region, "node", cfg.Node)
	reg := prometheus.NewRegistry()
	s := &Server{cfg: cfg, log: log, reg: reg, m: newMetrics(reg, cfg.Region, cfg.Node),
		conns: map[*conn]struct{}{}, sessions: map[string]map[*conn]struct{}{}, perSub: map[string]int{},
		done: make(chan struct{})}
	p := cfg.RedisLink
	s.redisConn = redisaddr.Conn{Addr: cfg.Redis, Password: cfg.RedisPassword, CAFile: cfg.RedisCAFile,
		PasswordFrom: RedisPasswordFrom, CAFrom: "--redis-ca-file"}
	target, err := s.redisConn.Target()
	if err != nil {
		return nil, fmt.Errorf("gateway: redis: %w", err)
	}
	ro := target.Node
	// The address gives where and who (and TLS); the profile gives the
	// timeouts, as for a plain host:port.
	ro.DialTimeout, ro.ReadTimeout, ro.WriteTimeout, ro.MaxRetries = p.DialTimeout, p.ReadTimeout, p.WriteTimeout, p.MaxRetries
	ro.ClientName, ro.DisableIdentity = "geolab-gw-"+cfg.Region+"-"+cfg.Node, true
	s.redisOpts = ro
	s.rdb = target.NewClient()
	s.broker = broker.New(s.rdb, cfg.Region, cfg.History)
	if cfg.Durability == broker.DurabilityReplicated {
		s.broker.RequireReplica(cfg.DurabilityTimeout)
	}
	subCfg := p.Subscriber
	subCfg.Pattern = cfg.SubscribeMode == SubscribePattern
	s.sub = broker.NewSubscriber(s.rdb, subCfg, log)
	var feed roomFeed = plainFeed{s.sub}
	if cluster, ok := s.rdb.(*redis.ClusterClient); ok {
		s.shards = broker.NewShardedSubscriber(cluster, subCfg, log)
		feed = shardedFeed{s.shards}
	}
	s.hub = newHub(&s.cfg, s.broker, feed, log, s.m)
	if s.shards != nil {
		s.hub.bindSessions(s.sub)
	}
	s.hub.onSessionTaken = s.sessionTaken
	s.hub.onResubscribed = s.recheckSessions
	s.upgrader = websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096, CheckOrigin: s.upgradeOrigin,
		HandshakeTimeout: 5 * time.Second}
	return s, nil
}

// Registry is the node's Prometheus registry (served on /metrics).
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// Addr is the address the node listens on (after Start).
func (s *Server) Addr() string {
	if s.ln == nil {
		return s.cfg.Listen
	}
	return s.ln.Addr().String()
}

// Start checks that Redis takes this node's address, user, password and
// TLS, then listens and serves in the background. A Redis that refuses
// them (a wrong password, a certificate this node cannot verify, TLS on
// one side only) is an error naming what is wrong, and so, under
// --durability replicated, is a primary without a replica (checkReplicas);
// a Redis that does not answer yet is not: the node starts not ready and
// keeps trying.
func (s *Server) Start() error {
	if err := s.checkRedis(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("gateway: listen on %s: %w", s.cfg.Listen, err)
	}
	if s.cfg.SendBuffer > 0 {
		ln = sendBufferListener{ln, s.cfg.SendBuffer}
	}
	s.ln = ln
	ctx, cancel := context.WithCancel(context.Background())
	s.ctx, s.cancel = ctx, cancel
	go func() {
		s.runFeeds(ctx)
		close(s.done)
	}()
	// Every node hears when its region loses a session (G11).
	go func() { _ = s.sub.Subscribe(ctx, broker.SessionsChannel) }()
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", s.serveWS)
	mux.HandleFunc("/healthz", s.healthz)
	mux.HandleFunc("/readyz", s.readyz)
	mux.HandleFunc("/status", s.status)
	mux.Handle("/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))
	s.http = httpserve.New(mux)
	s.http.IdleTimeout = s.cfg.HTTPIdleTimeout
	go func() {
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server stopped", "err", err)
		}
	}()
	s.log.Info("gateway listening", "addr", s.Addr(), "redis", s.cfg.Redis, "subscribe_mode", s.cfg.SubscribeMode,
		"durability", s.cfg.Durability)
	return nil
}

// checkRedis sends Redis one PING, bounded by the link's dial and read
// timeouts, and fails when the answer shows a configuration Redis refuses
// (redisaddr.Diagnose); any other failure is logged and left to the
// reconnecting links.
func (s *Server) checkRedis() error {
	p := s.cfg.RedisLink
	ctx, cancel := context.WithTimeout(context.Background(), p.DialTimeout+p.ReadTimeout)
	defer cancel()
	err := s.rdb.Ping(ctx).Err()
	if bad := redisaddr.Diagnose(context.Background(), err, s.redisConn, s.redisOpts); bad != nil {
		return fmt.Errorf("gateway: %w", bad)
	}
	if err != nil {
		s.log.Warn("redis not reachable yet: starting not ready", "redis", s.cfg.Redis, "err", err)
		if s.cfg.Durability == broker.DurabilityReplicated {
			s.log.Warn("--durability replicated: replicas not checked (redis not reachable); publishes are refused until a replica confirms them")
		}
		return nil
	}
	return s.checkReplicas()
}

// checkReplicas fails, under --durability replicated, when a primary a
// publish can land on has no replica: every publish would wait
// --durability-timeout and be refused. A Redis that does not answer is
// logged and left to the publishes (each refused until a replica confirms).
func (s *Server) checkReplicas() error {
	if s.cfg.Durability != broker.DurabilityReplicated {
		return nil
	}
	p := s.cfg.RedisLink
	ctx, cancel := context.WithTimeout(context.Background(), p.DialTimeout+p.ReadTimeout)
	defer cancel()
	err := s.broker.CheckReplicas(ctx)
	if errors.Is(err, broker.ErrUnavailable) {
		s.log.Warn("--durability replicated: replicas not checked", "redis", s.cfg.Redis, "err", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("gateway: --durability replicated: %w: every publish would be refused; give every primary a replica, or run with --durability async", err)
	}
	return nil
}

// Drain stops taking connections and says bye (reconnect:true) to every
// client, then serves them on while they leave, for up to DrainTimeout;
// whoever is still connected then is closed with going_away. The listener
// stays open all along, answering /readyz and every new /ws with 503
// draining, so that a load balancer's health check sees the node not ready
// before its port closes (Close closes it).
func (s *Server) Drain() {
	s.mu.Lock()
	s.draining = true
	conns := s.connList()
	s.mu.Unlock()
	s.log.Info("draining", "connections", len(conns), "timeout", s.cfg.DrainTimeout, "delay", s.cfg.DrainDelay)
	// Whatever the clients do, the port answers 503 draining for DrainDelay:
	// a load balancer's health check must see the node not ready before the
	// port closes, also when no client was there to wait for.
	notBefore := time.Now().Add(s.cfg.DrainDelay)
	defer func() {
		if d := time.Until(notBefore); d > 0 {
			t := time.NewTimer(d)
			<-t.C
		}
	}()
	for _, c := range conns {
		go c.drain()
	}
	done := make(chan struct{})
	go func() { s.connWG.Wait(); close(done) }()
	timeout := time.NewTimer(s.cfg.DrainTimeout)
	defer timeout.Stop()
	select {
	case <-done:
		s.log.Info("drained: every client left")
		return
	case <-timeout.C:
	}
	s.mu.Lock()
	rest := s.connList()
	s.mu.Unlock()
	s.log.Warn("drain timeout: closing the clients still connected", "timeout", s.cfg.DrainTimeout, "connections", len(rest))
	for _, c := range rest {
		c.closeWith(protocol.CloseGoingAway, "server draining: reconnect elsewhere and resume")
	}
	// Their close frames are written in the background: let them go out.
	written := time.NewTimer(s.cfg.WriteTimeout)
	defer written.Stop()
	select {
	case <-done:
	case <-written.C:
	}
}

// connList returns the open connections; s.mu is held.
func (s *Server) connList() []*conn {
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	return conns
}

// Close stops the node at once (no drain), releasing Redis and listeners.
func (s *Server) Close() error {
	if s.http != nil {
		_ = s.http.Close()
	}
	s.mu.Lock()
	for c := range s.conns {
		c.closeWith(protocol.CloseGoingAway, "server stopping")
	}
	s.mu.Unlock()
	if s.cancel != nil {
		s.cancel()
		<-s.done
	}
	return errors.Join(s.broker.Close(), s.rdb.Close())
}

// errForbiddenOrigin is the code label of geolab_gateway_errors_total that
// counts handshakes refused for their Origin (403, gorilla's plain answer).
const errForbiddenOrigin = "forbidden_origin"

// checkOrigin reports whether a request's Origin may open a WebSocket: no
// Origin (not a browser); else, without --allowed-origin, the same host:
// an http:// or https:// Origin whose host and port are the request's Host
// (letter case aside); else an Origin an --allowed-origin pattern matches.
// A page opened from a file sends "Origin: null": only a pattern that
// matches "null" allows it.
func (s *Server) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if len(s.cfg.AllowedOrigins) == 0 {
		for _, scheme := range []string{"http://", "https://"} {
			if host, ok := strings.CutPrefix(origin, scheme); ok {
				return strings.EqualFold(host, r.Host)
			}
		}
		return false
	}
	for _, p := range s.cfg.AllowedOrigins {
		if auth.MatchPattern(p, origin) {
			return true
		}
	}
	return false
}

// upgradeOrigin is the upgrader's origin check: checkOrigin, with each
// refusal counted (errors_total{code="forbidden_origin"}) and logged at
// debug level. A browser sees the refusal only as a close 1006.
func (s *Server) upgradeOrigin(r *http.Request) bool {
	if s.checkOrigin(r) {
		return true
	}
	s.m.errors.WithLabelValues(errForbiddenOrigin).Inc()
	s.log.Debug("handshake refused: Origin not allowed", "origin", r.Header.Get("Origin"), "host", r.Host)
	return false
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	draining := s.draining
	s.mu.Unlock()
	if draining {
		s.refuse(w, http.StatusServiceUnavailable, protocol.CodeDraining, "node is draining: connect to another node")
		return
	}
	tok := ""
	if t, ok := auth.BearerToken(r.Header.Get("Authorization")); ok {
		tok = t
	} else if q := r.URL.Query().Get("token"); q != "" {
		tok = q
	}
	claims, err := s.cfg.Authority.VerifyWithLeeway(tok, time.Now(), s.cfg.JWTLeeway)
	if err != nil {
		code := protocol.CodeUnauthorized
		if errors.Is(err, auth.ErrExpired) {
			code = protocol.CodeTokenExpired
		}
		s.refuse(w, http.StatusUnauthorized, code, err.Error())
		return
	}
	release, status, code, msg := s.admit(claims.Subject)
	if code != "" {
		s.refuse(w, status, code, msg)
		return
	}
	defer release() // when the connection is over, or refused after all
	session := r.URL.Query().Get("session")
	if h := r.Header.Get("X-Geolab-Session"); h != "" {
		session = h
	}
	if session != "" {
		if err := protocol.ValidID(session); err != nil {
			s.refuse(w, http.StatusBadRequest, protocol.CodeBadSession, "session: "+err.Error())
			return
		}
		// Only a request the upgrade will take (its Origin allowed) may
		// learn whose the session is; nothing is claimed before the upgrade.
		if websocket.IsWebSocketUpgrade(r) && s.checkOrigin(r) {
			if status, code, msg := s.sessionAllowed(r.Context(), session, claims.Subject); code != "" {
				s.refuse(w, status, code, msg)
				return
			}
		}
	}
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader answered the HTTP error itself
	}
	if session != "" && !s.claimSession(r.Context(), ws, session, claims.Subject) {
		return
	}
	c := newConn(s, ws, claims)
	if session != "" {
		c.session = session
		c.log = c.log.With("session", session)
	}
	s.mu.Lock()
	if s.draining { // the drain started during the handshake
		s.mu.Unlock()
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(protocol.CloseGoingAway, "draining"), time.Now().Add(time.Second))
		_ = ws.Close()
		return
	}
	s.conns[c] = struct{}{}
	if session != "" {
		if s.sessions[session] == nil {
			s.sessions[session] = map[*conn]struct{}{}
		}
		s.sessions[session][c] = struct{}{}
	}
	s.connWG.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		if session != "" {
			delete(s.sessions[session], c)
			if len(s.sessions[session]) == 0 {
				delete(s.sessions, session)
			}
		}
		s.mu.Unlock()
		s.connWG.Done()
	}()
	c.run()
}

// admit takes a connection slot for a client of token subject sub before
// its upgrade, within MaxConns and MaxConnsPerSub: a release that gives it
// back, or the HTTP status, handshake code and message refusing it.
func (s *Server) admit(sub string) (release func(), status int, code, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if max := s.cfg.MaxConns; max > 0 && s.admitted >= max {
		return nil, http.StatusServiceUnavailable, protocol.CodeTooManyConnections,
			fmt.Sprintf("node holds its most connections (%d): connect to another node", max)
	}
	if max := s.cfg.MaxConnsPerSub; max > 0 && s.perSub[sub] >= max {
		return nil, http.StatusTooManyRequests, protocol.CodeTooManySubConnections,
			fmt.Sprintf("token subject %q holds its most connections on this node (%d): close one first", sub, max)
	}
	s.admitted++
	s.perSub[sub]++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.admitted--
			if s.perSub[sub]--; s.perSub[sub] <= 0 {
				delete(s.perSub, sub)
			}
		})
	}, 0, "", ""
}

// sessionAllowed checks, before the upgrade, that session is not bound to
// another token subject than sub: the HTTP status, handshake code and
// message refusing the connection, or code "".
func (s *Server) sessionAllowed(ctx context.Context, session, sub string) (status int, code, msg string) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.SubscribeTimeout)
	defer cancel()
	owner, err := s.broker.SessionSubject(ctx, session)
	switch {
	case err != nil:
		return http.StatusServiceUnavailable, protocol.CodeUnavailable, "redis unavailable: cannot check the session, retry"
	case owner != "" && owner != sub:
		return http.StatusForbidden, protocol.CodeSessionForbidden, "session " + session + " belongs to another token subject"
	}
	return 0, "", ""
}

// claimSession claims session for sub once the upgrade succeeded (G11).
// When it cannot (Redis did not answer, or another subject bound the
// session since sessionAllowed looked) it closes ws with a close code and
// reports false.
func (s *Server) claimSession(ctx context.Context, ws *websocket.Conn, session, sub string) bool {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.SubscribeTimeout)
	own, err := s.broker.ClaimSession(ctx, broker.SessionClaim{ID: session, Sub: sub, Federated: s.cfg.federates()})
	cancel()
	code, reason := 0, ""
	switch {
	case err != nil:
		code, reason = protocol.CloseInternalError, "redis unavailable: cannot claim the session, reconnect"
	case own.Status == broker.SessionForbidden:
		code, reason = protocol.CloseSessionForbidden, "session belongs to another token subject"
	case own.Status == broker.SessionTaken:
		s.log.Info("session owned by this region now", "session", session, "epoch", own.Epoch)
	}
	if code == 0 {
		return true
	}
	s.m.errors.WithLabelValues(protocol.CloseReason(code)).Inc()
	_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(s.cfg.WriteTimeout))
	_ = ws.Close()
	return false
}

// sessionTaken closes this node's connections of a session another region
// now owns (G11): close code 4003, reconnect through the resolver.
func (s *Server) sessionTaken(session, region string) {
	if faulty.On("nofence") {
		// MUTANT nofence breaks G11: the region learns it lost the session
		// and keeps serving it: two regions own one session.
		return
	}
	s.mu.Lock()
	var conns []*conn
	for c := range s.sessions[session] {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.log.Warn("session taken over by another region: closing", "owner", region)
		c.closeWith(protocol.CloseSessionTakenOver, "session owned by region "+region+" now")
	}
}

// recheckSessions closes this node's connections of every session another
// region owns by this region's records: a notice on broker.SessionsChannel
// published while the pub/sub connection was down (a bridge that applied a
// takeover the moment Redis was back) never arrived, and the record is all
// that is left of it (G11).
func (s *Server) recheckSessions() {
	s.mu.Lock()
	ids := make([]string, 0, len(s.sessions))
	for id := range s.sessions {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	for _, id := range ids {
		s.recheckSession(id)
	}
}

// recheckTries bounds how often recheckSession asks Redis about one
// session: the first command after a reconnection may meet a pooled
// connection that died with the link (and a bridge may apply the takeover a
// moment later, which its notice then carries).
const recheckTries = 8

// recheckSession asks this region's record who owns session id, again with
// backoff while Redis does not answer, and closes this node's connections
// of it when another region does.
func (s *Server) recheckSession(id string) {
	for attempt := 0; attempt < recheckTries; attempt++ {
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.RedisLink.ReadTimeout+s.cfg.RedisLink.WriteTimeout)
		owner, err := s.broker.SessionOwner(ctx, id)
		cancel()
		if err == nil {
			if owner != "" && owner != s.cfg.Region {
				s.sessionTaken(id, owner)
			}
			return
		}
		s.log.Warn("session recheck after a pub/sub loss failed; trying again", "session", id, "attempt", attempt+1, "err", err)
		if !backoff.Sleep(s.ctx, backoff.FullJitter(100*time.Millisecond, 2*time.Second, attempt, nil)) {
			return
		}
	}
	s.log.Error("session recheck after a pub/sub loss gave up: a takeover applied meanwhile is not enforced until the next notice", "session", id, "tries", recheckTries)
}

// httpError refuses a handshake: status, and a JSON body whose code is a
// protocol handshake code (protocol.CodeUnauthorized …).
// refuse answers a handshake with an HTTP error and counts it in
// geolab_gateway_errors_total under its code: every refused connection is
// counted, in one place.
func (s *Server) refuse(w http.ResponseWriter, status int, code, msg string) {
	s.m.errors.WithLabelValues(code).Inc()
	httpError(w, status, code, msg)
}

func httpError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"code": code, "message": msg})
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"status": "ok", "region": s.cfg.Region, "node": s.cfg.Node})
}

// Ready reports whether the node serves: it is not draining, its Redis
// pub/sub link is up, and Redis takes writes (the last publish was not
// refused for memory, or Redis has been under its maxmemory since).
func (s *Server) Ready() (bool, string) {
	s.mu.Lock()
	draining := s.draining
	s.mu.Unlock()
	switch {
	case draining:
		return false, "draining"
	case !s.sub.Up():
		return false, "redis pub/sub not connected"
	case s.oom.Load():
		return false, protocol.CodeRedisOOM
	}
	return true, "ok"
}

// oomCheckInterval is how often a node whose publish Redis refused for
// memory reads Redis's INFO memory to see whether it is under its
// maxmemory again.
const oomCheckInterval = time.Second

// redisOOM records that Redis refused a publish for memory: the node is not
// ready until a publish succeeds or Redis is seen under its maxmemory.
func (s *Server) redisOOM() {
	if !s.oom.Swap(true) {
		s.log.Warn("redis refused a publish: out of memory (maxmemory); not ready until it takes writes again")
	}
	if s.oomWatch.CompareAndSwap(false, true) {
		go s.watchOOM()
	}
}

// redisWrote records that Redis took a publish.
func (s *Server) redisWrote() {
	if s.oom.Load() && s.oom.Swap(false) {
		s.log.Info("redis takes writes again")
	}
}

// watchOOM reads Redis's memory every oomCheckInterval while the node
// counts it out of memory, and clears that once it is under its maxmemory.
func (s *Server) watchOOM() {
	for {
		t := time.NewTicker(oomCheckInterval)
		for s.oom.Load() {
			select {
			case <-s.ctx.Done():
				t.Stop()
				s.oomWatch.Store(false)
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(s.ctx, s.cfg.RedisLink.ReadTimeout)
			m, err := s.broker.Memory(ctx)
			cancel()
			if err == nil && m.BelowLimit() && s.oom.Swap(false) {
				s.log.Info("redis is under its maxmemory again", "used_memory", m.Used, "maxmemory", m.MaxMemory)
			}
		}
		t.Stop()
		s.oomWatch.Store(false)
		// A refusal between the last check and the Store above found
		// oomWatch set and started no watcher: this one goes on.
		if !s.oom.Load() || !s.oomWatch.CompareAndSwap(false, true) {
			return
		}
	}
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	ok, why := s.Ready()
	w.Header().Set("Content-Type", "application/json")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"ready": ok, "reason": why, "region": s.cfg.Region, "node": s.cfg.Node})
}

// NodeStatus is what a node's /status answers: which node it is and, on a
// Redis Cluster, how many hosted rooms it subscribes on each primary.
type NodeStatus struct {
	Region string `json:"region"`
	Node   string `json:"node"`
	// Shards maps each primary (by the address the cluster names it by)
	// that this node holds a sharded pub/sub connection to, to the hosted
	// rooms subscribed there (Server.Shards); absent on one Redis.
	Shards map[string]int `json:"shards,omitempty"`
}

func (s *Server) status(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(NodeStatus{Region: s.cfg.Region, Node: s.cfg.Node, Shards: s.Shards()})
}

// sendBufferListener caps each accepted socket's kernel send buffer, so that
// what a slow client has not read piles up in the connection's bounded send
// queue (and trips the slow-consumer close, G10) instead of in megabytes of
// kernel memory that autotuning would grant it.
type sendBufferListener struct {
	net.Listener
	bytes int
}

func (l sendBufferListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(l.bytes)
	}
	return c, err
}
