package agent

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/geolab/geolab/lab/history"
	"github.com/geolab/geolab/lab/workload"
)

// Config configures a Controller.
type Config struct {
	// Listen is the address agents dial (default 127.0.0.1:0: this machine
	// only; agents on other machines need an address they can reach).
	Listen string
	// Agents is how many agents the run waits for; client i of the plan
	// goes to the agent that joined (i mod Agents)-th.
	Agents int
	// Version is the geolab build; an agent of another build is refused.
	Version string
	// Assign fills the assignment of an agent: everything but Agent and
	// Clients, which the controller sets.
	Assign Assignment
	// Dir receives each agent's shipped history (agent-K.history.jsonl).
	Dir string
	// Resolver, when set, is served at /resolve and /health beside the
	// agents' protocol, and the assignment's Resolver is this controller's
	// URL: the agents ask the lab's resolver where they reach the
	// controller (swarm agents: lab.Lab.AgentsResolver), one address and
	// port for both.
	Resolver http.Handler
	// Logger receives the controller's logs (default: discarded).
	Logger *slog.Logger
}

// Controller serves the agents of one run.
type Controller struct {
	cfg  Config
	ln   net.Listener
	srv  *http.Server
	log  *slog.Logger
	fail chan struct{} // closed at the first failure
	once sync.Once
	err  error

	mu     sync.Mutex
	agents []*peer
	joined chan struct{} // closed when Agents have been assigned
	done   atomic.Bool   // every history is in: agents leaving is expected
}

// peer is one connected agent, as the controller sees it.
type peer struct {
	name, label, host string
	pid               int
	clients           []int
	ws                *websocket.Conn
	wmu               sync.Mutex
	phase             atomic.Value // string: what it is doing, for errors
	progress          atomic.Pointer[workload.Progress]
	ready, quiesced   chan *Message
	shipped           chan *Message
	histPath          string
	hist              *os.File
	histBytes         int64
	sum               hash.Hash
	clock             history.AgentClock
}

// Listen binds cfg.Listen and starts serving agents.
func Listen(cfg Config) (*Controller, error) {
	if cfg.Agents < 1 {
		return nil, fmt.Errorf("agents: want at least 1, got %d", cfg.Agents)
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("agent controller: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("agent controller: listen %s: %w", cfg.Listen, err)
	}
	c := &Controller{cfg: cfg, ln: ln, log: cfg.Logger, fail: make(chan struct{}), joined: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc(Path, c.serve)
	if cfg.Resolver != nil {
		mux.Handle("/resolve", cfg.Resolver)
		mux.Handle("/health", cfg.Resolver)
		c.cfg.Assign.Resolver = "http://" + ln.Addr().String()
	}
	c.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = c.srv.Serve(ln) }()
	return c, nil
}

// Addr is the address agents dial (host:port).
func (c *Controller) Addr() string { return c.ln.Addr().String() }

// Failed is closed when the run can no longer be judged whole: an agent
// was lost or gave up. Err says why.
func (c *Controller) Failed() <-chan struct{} { return c.fail }

// Err is the first failure (nil: none).
func (c *Controller) Err() error {
	select {
	case <-c.fail:
		return c.err
	default:
		return nil
	}
}

// Fail ends the run with err (the first failure wins), unless every
// history is already in.
func (c *Controller) Fail(err error) {
	if c.done.Load() {
		return
	}
	c.once.Do(func() { c.err = err; close(c.fail) })
}

var upgrader = websocket.Upgrader{ReadBufferSize: 64 << 10, WriteBufferSize: 64 << 10}

func (c *Controller) serve(w http.ResponseWriter, r *http.Request) {
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	ws.SetReadLimit(MaxMessage)
	p := &peer{ws: ws, ready: make(chan *Message, 1), quiesced: make(chan *Message, 1), shipped: make(chan *Message, 1)}
	p.phase.Store("joining")
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := ws.ReadMessage()
	if err != nil {
		ws.Close()
		return
	}
	_ = ws.SetReadDeadline(time.Time{})
	hello, err := Decode(b)
	if err == nil && hello.Type != TypeHello {
		err = fmt.Errorf("want a hello first, got %q", hello.Type)
	}
	if err == nil && hello.Protocol != Protocol {
		err = fmt.Errorf("protocol mismatch: the agent speaks v%d, this controller v%d: run the same geolab build on both", hello.Protocol, Protocol)
	}
	if err == nil && hello.Version != c.cfg.Version {
		err = fmt.Errorf("version mismatch: the agent is geolab %s, the controller geolab %s: run the same geolab build on both (the agent must play the plan as the controller draws it)", hello.Version, c.cfg.Version)
	}
	if err != nil {
		c.refuse(p, err)
		return
	}
	p.label, p.host, p.pid = hello.Label, hello.Host, hello.PID
	c.mu.Lock()
	k := len(c.agents)
	if k >= c.cfg.Agents {
		c.mu.Unlock()
		c.refuse(p, fmt.Errorf("this run already has its %d agents", c.cfg.Agents))
		return
	}
	p.name = fmt.Sprintf("agent-%d", k+1)
	p.histPath = filepath.Join(c.cfg.Dir, p.name+".history.jsonl")
	for i := k; i < len(c.cfg.Assign.Plan.Clients); i += c.cfg.Agents {
		p.clients = append(p.clients, i)
	}
	c.agents = append(c.agents, p)
	if len(c.agents) == c.cfg.Agents {
		close(c.joined)
	}
	c.mu.Unlock()
	a := c.cfg.Assign
	a.Agent, a.Clients = p.name, p.clients
	a.Tokens = map[string]string{}
	for _, i := range p.clients {
		name := a.Plan.Clients[i].Name
		a.Tokens[name] = c.cfg.Assign.Tokens[name]
	}
	c.log.Info("agent joined", "agent", p.name, "label", p.label, "host", p.host, "pid", p.pid, "clients", len(p.clients))
	p.phase.Store("while connecting its clients")
	if err := p.send(&Message{Type: TypeAssign, Assign: &a}); err != nil {
		c.Fail(c.lost(p, err))
		return
	}
	c.read(p)
}

// refuse answers an agent with an error and hangs up.
func (c *Controller) refuse(p *peer, err error) {
	c.log.Warn("agent refused", "err", err)
	_ = p.send(&Message{Type: TypeError, Error: err.Error()})
	_ = p.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, "refused"), time.Now().Add(time.Second))
	p.ws.Close()
}

func (p *peer) send(m *Message) error { return writeMessage(p.ws, &p.wmu, m) }

// who names an agent in errors: its name, label, host and pid.
func (p *peer) who() string {
	s := p.name
	var more []string
	if p.label != "" && p.label != p.name {
		more = append(more, p.label)
	}
	if p.host != "" {
		more = append(more, "host "+p.host)
	}
	if p.pid != 0 {
		more = append(more, fmt.Sprintf("pid %d", p.pid))
	}
	if len(more) > 0 {
		s += " (" + strings.Join(more, ", ") + ")"
	}
	return s
}

// lost is the error of an agent gone before its history was in.
func (c *Controller) lost(p *peer, err error) error {
	names := make([]string, 0, 3)
	for _, i := range p.clients[:min(3, len(p.clients))] {
		names = append(names, c.cfg.Assign.Plan.Clients[i].Name)
	}
	if len(p.clients) > 3 {
		names = append(names, "…")
	}
	return fmt.Errorf("agent %s lost %s: %v: the history of its %d clients (%s) is lost, so the run is not judged",
		p.who(), p.phase.Load(), err, len(p.clients), strings.Join(names, ", "))
}

// read handles one agent's messages until it leaves.
func (c *Controller) read(p *peer) {
	defer p.ws.Close()
	for {
		kind, b, err := p.ws.ReadMessage()
		t1 := time.Now().UnixNano()
		if err != nil {
			if p.phase.Load() != "done" {
				c.Fail(c.lost(p, err))
			}
			return
		}
		if kind == websocket.BinaryMessage {
			if err := p.writeHistory(b); err != nil {
				c.Fail(fmt.Errorf("agent %s: history: %w", p.who(), err))
				return
			}
			continue
		}
		m, err := Decode(b)
		if err != nil {
			c.Fail(fmt.Errorf("agent %s: %w", p.who(), err))
			return
		}
		switch m.Type {
		case TypeClock:
			if err := p.send(&Message{Type: TypeClock, T0: m.T0, T1: t1, T2: time.Now().UnixNano()}); err != nil {
				c.Fail(c.lost(p, err))
				return
			}
		case TypeReady:
			p.clock = *m.Clock
			p.phase.Store("during the run")
			p.ready <- m
		case TypeProgress:
			p.progress.Store(m.Progress)
		case TypeQuiesced:
			p.phase.Store("after quiescing")
			p.quiesced <- m
		case TypeShipped:
			if err := p.closeHistory(m); err != nil {
				c.Fail(fmt.Errorf("agent %s: history: %w", p.who(), err))
				return
			}
			p.clock = *m.Clock
			p.phase.Store("done")
			p.shipped <- m
		case TypeError:
			c.Fail(fmt.Errorf("agent %s gave up %s: %s", p.who(), p.phase.Load(), m.Error))
			return
		default:
			c.Fail(fmt.Errorf("agent %s sent %q %s, which an agent does not send then", p.who(), m.Type, p.phase.Load()))
			return
		}
	}
}

func (p *peer) writeHistory(b []byte) error {
	if p.hist == nil {
		if p.phase.Load() != "while shipping its history" {
			return fmt.Errorf("history bytes %s, before it was asked for them", p.phase.Load())
		}
		f, err := os.Create(p.histPath)
		if err != nil {
			return err
		}
		p.hist = f
		p.sum = sha256.New()
	}
	p.histBytes += int64(len(b))
	p.sum.Write(b)
	_, err := p.hist.Write(b)
	return err
}

func (p *peer) closeHistory(m *Message) error {
	if p.hist == nil {
		if m.Bytes != 0 {
			return fmt.Errorf("announced %d bytes, sent none", m.Bytes)
		}
		return errors.New("an empty history (not even its meta record)")
	}
	if err := p.hist.Close(); err != nil {
		return err
	}
	if got := hex.EncodeToString(p.sum.Sum(nil)); p.histBytes != m.Bytes || got != m.SHA256 {
		return fmt.Errorf("received %d bytes with sha256 %s, the agent sent %d bytes with sha256 %s: the history was damaged on the way",
			p.histBytes, got, m.Bytes, m.SHA256)
	}
	return nil
}

// all returns the agents, in join order.
func (c *Controller) all() []*peer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.agents)
}

// wait waits for each agent's message on the channel pick gives, within
// timeout; what: the step, for the error.
func (c *Controller) wait(ctx context.Context, timeout time.Duration, what string, pick func(*peer) chan *Message) ([]*Message, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	var out []*Message
	for _, p := range c.all() {
		select {
		case m := <-pick(p):
			out = append(out, m)
		case <-c.fail:
			return nil, c.err
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
			return nil, fmt.Errorf("agent %s: not %s within %s (it is %s)", p.who(), what, timeout, p.phase.Load())
		}
	}
	return out, nil
}

// Join waits, within timeout, until every agent has joined, connected its
// clients and sent its first clock estimate. ready, when set, is called
// for each ready agent.
func (c *Controller) Join(ctx context.Context, timeout time.Duration, ready func(name, who string, clients int, clock history.AgentClock)) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-c.joined:
	case <-c.fail:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("agents: %d of %d joined the controller at %s within %s", len(c.all()), c.cfg.Agents, c.Addr(), timeout)
	}
	for _, p := range c.all() {
		select {
		case m := <-p.ready:
			if ready != nil {
				ready(p.name, p.who(), len(p.clients), *m.Clock)
			}
		case <-c.fail:
			return c.err
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return fmt.Errorf("agent %s: its clients not connected within %s", p.who(), timeout)
		}
	}
	return nil
}

// Start tells every agent the run starts at at (the controller's clock).
func (c *Controller) Start(at time.Time) error {
	for _, p := range c.all() {
		if err := p.send(&Message{Type: TypeStart, At: at.UnixNano()}); err != nil {
			err = c.lost(p, err)
			c.Fail(err)
			return err
		}
	}
	return nil
}

// Progress sums the agents' latest progress.
func (c *Controller) Progress() workload.Progress {
	var s workload.Progress
	all := true
	for _, p := range c.all() {
		s.Clients += len(p.clients)
		x := p.progress.Load()
		if x == nil {
			all = false
			continue
		}
		s.Connected += x.Connected
		s.Scheduled += x.Scheduled
		s.Sent += x.Sent
		s.Acked += x.Acked
		s.Failed += x.Failed
		s.Delivered += x.Delivered
		s.Reconnects += x.Reconnects
		s.NotRecovered += x.NotRecovered
		s.Late += x.Late
		s.Left += x.Left
		s.Rejoined += x.Rejoined
		s.Dropped += x.Dropped
		if x.LastError != "" {
			s.LastError = p.name + ": " + x.LastError
		}
		all = all && x.PublishingDone
	}
	s.PublishingDone = all
	return s
}

// Quiesce asks every agent to quiesce and waits (within timeout) for
// their answers: the notes are their churn notes and quiesce errors,
// each naming its agent.
func (c *Controller) Quiesce(ctx context.Context, timeout time.Duration) ([]string, error) {
	for _, p := range c.all() {
		p.phase.Store("while quiescing")
		if err := p.send(&Message{Type: TypeQuiesce}); err != nil {
			err = c.lost(p, err)
			c.Fail(err)
			return nil, err
		}
	}
	ms, err := c.wait(ctx, timeout, "quiesced", func(p *peer) chan *Message { return p.quiesced })
	if err != nil {
		return nil, err
	}
	var notes []string
	for i, p := range c.all() {
		if ms[i].Error != "" {
			notes = append(notes, p.name+": "+ms[i].Error)
		}
		for _, n := range ms[i].Notes {
			notes = append(notes, p.name+": churn: "+n)
		}
	}
	return notes, nil
}

// Shipped is one agent's history as it arrived.
type Shipped struct {
	Agent string
	Path  string
	Clock history.AgentClock
	Start time.Time // the wall clock of its t 0, on the agent's clock
}

// Finish asks every agent to close its clients and ship its history, and
// waits (within timeout) until every history is in and whole.
func (c *Controller) Finish(ctx context.Context, timeout time.Duration) ([]Shipped, error) {
	for _, p := range c.all() {
		p.phase.Store("while shipping its history")
		if err := p.send(&Message{Type: TypeFinish}); err != nil {
			err = c.lost(p, err)
			c.Fail(err)
			return nil, err
		}
	}
	if _, err := c.wait(ctx, timeout, "done shipping its history", func(p *peer) chan *Message { return p.shipped }); err != nil {
		return nil, err
	}
	c.done.Store(true)
	var out []Shipped
	for _, p := range c.all() {
		_ = p.send(&Message{Type: TypeBye})
		meta, err := readMeta(p.histPath)
		if err != nil {
			return nil, fmt.Errorf("agent %s: its history: %w", p.who(), err)
		}
		out = append(out, Shipped{Agent: p.name, Path: p.histPath, Clock: p.clock, Start: meta.Start})
	}
	return out, nil
}

// Close stops serving and hangs up on every agent.
func (c *Controller) Close() {
	_ = c.srv.Close()
	for _, p := range c.all() {
		p.ws.Close()
		if p.hist != nil {
			p.hist.Close()
		}
	}
}

// readMeta reads the meta record, the first line of a history.
func readMeta(path string) (history.Meta, error) {
	f, err := os.Open(path)
	if err != nil {
		return history.Meta{}, err
	}
	defer f.Close()
	line, err := bufio.NewReaderSize(f, 64<<10).ReadBytes('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return history.Meta{}, err
	}
	var m struct {
		K string `json:"k"`
		history.Meta
	}
	if err := json.Unmarshal(line, &m); err != nil || m.K != "meta" {
		return history.Meta{}, fmt.Errorf("%s: the first line is not a meta record", path)
	}
	if m.Start.IsZero() {
		return history.Meta{}, fmt.Errorf("%s: its meta record has no start", path)
	}
	return m.Meta, nil
}

// Merge writes the run's one history to w: the controller's own (its
// probes, faults, lag and end record, t on its clock since start) and
// every agent's, each record moved to the controller's clock by the
// agent's offset; meta is the controller's, with every agent's clock.
func Merge(w io.Writer, meta history.Meta, own io.Reader, start time.Time, shipped []Shipped) error {
	parts := []history.Part{{Name: "controller", R: own}}
	meta.Agents = nil
	for _, s := range shipped {
		f, err := os.Open(s.Path)
		if err != nil {
			return err
		}
		defer f.Close()
		// An agent's t 0 is s.Start on its clock, s.Start + offset on the
		// controller's.
		shift := s.Start.Add(time.Duration(s.Clock.Offset)).UnixNano() - start.UnixNano()
		parts = append(parts, history.Part{Name: s.Agent, R: f, Shift: shift})
		meta.Agents = append(meta.Agents, s.Clock)
	}
	return history.Merge(w, meta, parts)
}
