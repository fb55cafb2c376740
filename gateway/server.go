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
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/geolab/geolab/gateway/auth"
	"github.com/geolab/geolab/gateway/broker"
	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/internal/faulty"
)

// Server is one gateway node.
type Server struct {
	cfg    Config
	log    *slog.Logger
	m      *metrics
	reg    *prometheus.Registry
	rdb    *redis.Client
	broker *broker.Broker
	sub    *broker.Subscriber
	hub    *hub

	upgrader websocket.Upgrader
	http     *http.Server
	ln       net.Listener

	mu       sync.Mutex
	conns    map[*conn]struct{}
	sessions map[string]map[*conn]struct{} // connections by the session id their client named
	draining bool
	connWG   sync.WaitGroup

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
		conns: map[*conn]struct{}{}, sessions: map[string]map[*conn]struct{}{}, done: make(chan struct{})}
	p := cfg.RedisLink
	s.rdb = redis.NewClient(&redis.Options{Addr: cfg.Redis, DialTimeout: p.DialTimeout,
		ReadTimeout: p.ReadTimeout, WriteTimeout: p.WriteTimeout, MaxRetries: p.MaxRetries,
		ClientName: "geolab-gw-" + cfg.Region + "-" + cfg.Node, DisableIdentity: true})
	s.broker = broker.New(s.rdb, cfg.Region, cfg.History)
	subCfg := p.Subscriber
	subCfg.Pattern = cfg.SubscribeMode == SubscribePattern
	s.sub = broker.NewSubscriber(s.rdb, subCfg, log)
	s.hub = newHub(&s.cfg, s.broker, s.sub, log, s.m)
	s.hub.onSessionTaken = s.sessionTaken
	s.upgrader = websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096, CheckOrigin: s.checkOrigin,
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

// Start listens and serves in the background.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("gateway: listen on %s: %w", s.cfg.Listen, err)
	}
	if s.cfg.SendBuffer > 0 {
		ln = sendBufferListener{ln, s.cfg.SendBuffer}
	}
	s.ln = ln
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() {
		s.sub.Run(ctx)
		close(s.done)
	}()
	// Every node hears when its region loses a session (G11).
	go func() { _ = s.sub.Subscribe(ctx, broker.SessionsChannel) }()
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", s.serveWS)
	mux.HandleFunc("/healthz", s.healthz)
	mux.HandleFunc("/readyz", s.readyz)
	mux.Handle("/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server stopped", "err", err)
		}
	}()
	s.log.Info("gateway listening", "addr", s.Addr(), "redis", s.cfg.Redis, "subscribe_mode", s.cfg.SubscribeMode)
	return nil
}

// Drain stops taking connections, says bye (reconnect:true) to every client,
// closes them with going_away and waits for them to go, up to DrainTimeout.
func (s *Server) Drain() {
	s.mu.Lock()
	s.draining = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	s.log.Info("draining", "connections", len(conns))
	for _, c := range conns {
		go c.drain()
	}
	done := make(chan struct{})
	go func() { s.connWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(s.cfg.DrainTimeout):
		s.log.Warn("drain timeout: closing the rest", "timeout", s.cfg.DrainTimeout)
	}
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
	return s.rdb.Close()
}

func (s *Server) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if len(s.cfg.AllowedOrigins) == 0 {
		host := strings.TrimPrefix(strings.TrimPrefix(origin, "http://"), "https://")
		return host == r.Host
	}
	for _, p := range s.cfg.AllowedOrigins {
		if auth.MatchPattern(p, origin) {
			return true
		}
	}
	return false
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	draining := s.draining
	s.mu.Unlock()
	if draining {
		httpError(w, http.StatusServiceUnavailable, protocol.CodeDraining, "node is draining: connect to another node")
		return
	}
	tok := ""
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		tok = strings.TrimSpace(strings.TrimPrefix(h, "Bearer "))
	} else if q := r.URL.Query().Get("token"); q != "" {
		tok = q
	}
	claims, err := s.cfg.Authority.Verify(tok, time.Now())
	if err != nil {
		code := protocol.CodeUnauthorized
		if errors.Is(err, auth.ErrExpired) {
			code = protocol.CodeTokenExpired
		}
		s.m.errors.WithLabelValues(code).Inc()
		httpError(w, http.StatusUnauthorized, code, err.Error())
		return
	}
	session := r.URL.Query().Get("session")
	if h := r.Header.Get("X-Geolab-Session"); h != "" {
		session = h
	}
	if session != "" {
		if err := protocol.ValidID(session); err != nil {
			httpError(w, http.StatusBadRequest, protocol.CodeBadSession, "session: "+err.Error())
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.SubscribeTimeout)
		own, err := s.broker.ClaimSession(ctx, session)
		cancel()
		if err != nil {
			httpError(w, http.StatusServiceUnavailable, protocol.CodeUnavailable, "redis unavailable: cannot claim the session, retry")
			return
		}
		if own.Status == "taken" {
			s.log.Info("session owned by this region now", "session", session, "epoch", own.Epoch)
		}
	}
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader answered the HTTP error itself
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

// httpError refuses a handshake: status, and a JSON body whose code is a
// protocol handshake code (protocol.CodeUnauthorized …).
func httpError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"code": code, "message": msg})
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"status": "ok", "region": s.cfg.Region, "node": s.cfg.Node})
}

// Ready reports whether the node serves: its Redis pub/sub link is up and it
// is not draining.
func (s *Server) Ready() (bool, string) {
	s.mu.Lock()
	draining := s.draining
	s.mu.Unlock()
	switch {
	case draining:
		return false, "draining"
	case !s.sub.Up():
		return false, "redis pub/sub not connected"
	}
	return true, "ok"
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	ok, why := s.Ready()
	w.Header().Set("Content-Type", "application/json")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"ready": ok, "reason": why, "region": s.cfg.Region, "node": s.cfg.Node})
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
