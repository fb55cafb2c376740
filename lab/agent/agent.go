package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/geolab/geolab/lab/history"
	"github.com/geolab/geolab/lab/resolver"
	"github.com/geolab/geolab/lab/workload"
)

// Options configure an agent (geolab agent).
type Options struct {
	// Controller is the controller's host:port (geolab run prints it).
	Controller string
	// Label is what the agent calls itself in the controller's messages
	// (default HOST:PID).
	Label string
	// Version is this geolab build: the controller refuses another.
	Version string
	// ConnectTimeout bounds the wait for the controller to answer
	// (default 10s).
	ConnectTimeout time.Duration
	// WorkDir holds the agent's history while it runs (default: a
	// temporary directory, removed at the end).
	WorkDir string
	// ClockSamples is how many round trips are taken before the run and
	// again after it (default 8).
	ClockSamples int
	// Logger receives the agent's logs (default: discarded).
	Logger *slog.Logger
}

// Defaults of Options.
const (
	DefaultConnectTimeout = 10 * time.Second
	DefaultClockSamples   = 8
)

// agentRun is one agent's life.
type agentRun struct {
	opts  Options
	ws    *websocket.Conn
	wmu   sync.Mutex
	in    chan *Message // the controller's messages but clock answers
	clock chan *Message // clock answers
	gone  chan struct{} // closed when the controller's connection ends
	err   error         // why (set before gone is closed)
	said  string        // the controller's error message, if it sent one
	log   *slog.Logger
}

// Run is one agent: it joins the controller, runs the clients it is
// given until the controller says finish, ships their history and
// returns. An error says what went wrong and with whom.
func Run(ctx context.Context, opts Options) error {
	if opts.ConnectTimeout == 0 {
		opts.ConnectTimeout = DefaultConnectTimeout
	}
	if opts.ClockSamples == 0 {
		opts.ClockSamples = DefaultClockSamples
	}
	if opts.ClockSamples < 1 || opts.ClockSamples > 1000 {
		return fmt.Errorf("--clock-samples %d: want 1..1000", opts.ClockSamples)
	}
	if opts.ConnectTimeout < 0 {
		return fmt.Errorf("--connect-timeout %s: want a positive duration", opts.ConnectTimeout)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	host, _ := os.Hostname()
	if opts.Label == "" {
		opts.Label = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	if _, _, err := net.SplitHostPort(opts.Controller); err != nil {
		return fmt.Errorf("--controller %q: want host:port: %v", opts.Controller, err)
	}
	ws, err := dial(ctx, opts.Controller, opts.ConnectTimeout)
	if err != nil {
		return err
	}
	defer ws.Close()
	ws.SetReadLimit(MaxMessage)
	a := &agentRun{opts: opts, ws: ws, in: make(chan *Message, 16), clock: make(chan *Message, 1), gone: make(chan struct{}), log: opts.Logger}
	if err := a.send(&Message{Type: TypeHello, Protocol: Protocol, Version: opts.Version, Label: opts.Label, Host: host, PID: os.Getpid()}); err != nil {
		return fmt.Errorf("controller %s: hello: %w", opts.Controller, err)
	}
	go a.read()
	var assign *Assignment
	select {
	case m := <-a.in:
		if m.Type == TypeError {
			return fmt.Errorf("controller %s refused this agent: %s", opts.Controller, m.Error)
		}
		if m.Type != TypeAssign {
			return fmt.Errorf("controller %s: want an assignment, got %q", opts.Controller, m.Type)
		}
		assign = m.Assign
	case <-a.gone:
		if a.said != "" {
			return fmt.Errorf("controller %s refused this agent: %s", opts.Controller, a.said)
		}
		return a.err
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(opts.ConnectTimeout):
		return fmt.Errorf("controller %s: no assignment within %s", opts.Controller, opts.ConnectTimeout)
	}
	err = a.play(ctx, assign)
	if err != nil {
		_ = a.send(&Message{Type: TypeError, Error: err.Error()})
	}
	return err
}

// dial connects to the controller, trying again until timeout.
func dial(ctx context.Context, addr string, timeout time.Duration) (*websocket.Conn, error) {
	u := url.URL{Scheme: "ws", Host: addr, Path: Path}
	end := time.Now().Add(timeout)
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		ws, _, err := d.DialContext(ctx, u.String(), nil)
		if err == nil {
			return ws, nil
		}
		if ctx.Err() != nil || time.Now().Add(wait).After(end) {
			return nil, fmt.Errorf("controller %s unreachable after %s: %w", addr, timeout, err)
		}
		select {
		case <-time.After(wait): // backoff between dials
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (a *agentRun) send(m *Message) error { return writeMessage(a.ws, &a.wmu, m) }

// read hands the controller's messages on until its connection ends.
func (a *agentRun) read() {
	defer close(a.gone)
	for {
		_, b, err := a.ws.ReadMessage()
		if err != nil {
			a.err = fmt.Errorf("controller %s lost: %w", a.opts.Controller, err)
			return
		}
		m, err := Decode(b)
		if err != nil {
			a.err = fmt.Errorf("controller %s: %w", a.opts.Controller, err)
			return
		}
		if m.Type == TypeClock {
			select {
			case a.clock <- m:
			default: // an answer nobody waits for any more
			}
			continue
		}
		if m.Type == TypeError {
			a.said = m.Error
			a.err = fmt.Errorf("controller %s gave up: %s", a.opts.Controller, m.Error)
			return
		}
		a.in <- m
	}
}

// next waits for the controller's next message, which must be of type want.
func (a *agentRun) next(ctx context.Context, want string) (*Message, error) {
	select {
	case m := <-a.in:
		if m.Type != want {
			return nil, fmt.Errorf("controller %s: want %q, got %q", a.opts.Controller, want, m.Type)
		}
		return m, nil
	case <-a.gone:
		return nil, a.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// sample takes n clock round trips.
func (a *agentRun) sample(ctx context.Context, n int) (Estimate, error) {
	var ss []Sample
	for range n {
		t0 := time.Now().UnixNano()
		if err := a.send(&Message{Type: TypeClock, T0: t0}); err != nil {
			return Estimate{}, fmt.Errorf("clock sample: %w", err)
		}
		select {
		case m := <-a.clock:
			t3 := time.Now().UnixNano()
			if m.T0 == t0 {
				ss = append(ss, Sample{T0: t0, T1: m.T1, T2: m.T2, T3: t3})
			}
		case <-a.gone:
			return Estimate{}, a.err
		case <-ctx.Done():
			return Estimate{}, ctx.Err()
		case <-time.After(5 * time.Second):
			return Estimate{}, errors.New("clock sample: no answer within 5s")
		}
	}
	return Best(ss)
}

// env is what the agent's clients need of the lab: the resolver and the
// tokens the controller minted.
type env struct {
	resolver string
	tokens   map[string]string
}

func (e env) ResolveFunc(home string) func(ctx context.Context) ([]string, error) {
	return (&resolver.Lookup{URL: e.resolver, Home: home}).Resolve
}

func (e env) Token(sub string, _, _ []string, _ time.Duration) (string, error) {
	t, ok := e.tokens[sub]
	if !ok {
		return "", fmt.Errorf("no token for %s in the assignment", sub)
	}
	return t, nil
}

func (e env) Endpoints(home, region string) []string { return nil } // the fence probe runs on the controller

// GatewayAddr is never asked of an agent: the slow probe runs on the
// controller, as the fence probe does.
func (e env) GatewayAddr(region, node string) (string, error) {
	return "", fmt.Errorf("agent: the slow probe runs on the controller, not in an agent")
}

// play runs the assignment: clock, clients, the run, the history.
func (a *agentRun) play(ctx context.Context, as *Assignment) error {
	before, err := a.sample(ctx, a.opts.ClockSamples)
	if err != nil {
		return err
	}
	dir := a.opts.WorkDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "geolab-agent-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	body := filepath.Join(dir, as.Agent+".records.jsonl")
	hf, err := os.Create(body)
	if err != nil {
		return err
	}
	defer hf.Close()
	start := time.Now()
	meta := as.Meta
	meta.Start = start.UTC()
	meta.Agents = []history.AgentClock{clockOf(as.Agent, len(as.Clients), before)}
	hist, err := history.NewWriter(hf, start, meta)
	if err != nil {
		return err
	}
	wl, err := workload.StartShare(ctx, as.Spec, as.Plan, env{as.Resolver, as.Tokens}, hist, as.Seed, workload.Share{Clients: as.Clients})
	if err != nil {
		return err
	}
	closed := false
	defer func() {
		if !closed {
			wl.Close()
		}
	}()
	a.log.Info("clients connected", "agent", as.Agent, "clients", len(as.Clients), "offset", before.Offset, "bound", before.Bound)
	if err := a.send(&Message{Type: TypeReady, Clock: &meta.Agents[0]}); err != nil {
		return err
	}
	m, err := a.next(ctx, TypeStart)
	if err != nil {
		return err
	}
	// The controller's start, on this clock.
	runStart := time.Now().Add(time.Duration(m.At - int64(before.Offset) - time.Now().UnixNano()))
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	wl.StartChurn(rctx, runStart)
	published := make(chan struct{})
	go func() { defer close(published); wl.Publish(rctx, runStart) }()
	go a.reportProgress(rctx, wl)
	if _, err := a.next(ctx, TypeQuiesce); err != nil {
		return err
	}
	select {
	case <-published:
	case <-a.gone:
		return a.err
	}
	q := &Message{Type: TypeQuiesced}
	if err := wl.Quiesce(ctx, time.Second); err != nil {
		q.Error = err.Error()
	}
	q.Notes = wl.ChurnNotes()
	if err := a.send(q); err != nil {
		return err
	}
	if _, err := a.next(ctx, TypeFinish); err != nil {
		return err
	}
	stop()
	wl.Close()
	closed = true
	after, err := a.sample(ctx, a.opts.ClockSamples)
	if err != nil {
		return err
	}
	if err := hist.Close(); err != nil {
		return err
	}
	if err := hf.Close(); err != nil {
		return err
	}
	final := clockOf(as.Agent, len(as.Clients), Span(before, after))
	meta.Agents = []history.AgentClock{final}
	return a.ship(ctx, body, meta, final)
}

// reportProgress sends the workload's progress every second.
func (a *agentRun) reportProgress(ctx context.Context, wl *workload.Runner) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p := wl.Progress()
		if a.send(&Message{Type: TypeProgress, Progress: &p}) != nil {
			return
		}
	}
}

// ship writes the history (its meta now with the final clock estimate)
// and sends it in binary frames of 1 MiB, then its size and sha256.
func (a *agentRun) ship(ctx context.Context, body string, meta history.Meta, clock history.AgentClock) error {
	out := body + ".final"
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := os.Open(body)
	if err != nil {
		return err
	}
	defer r.Close()
	if err := history.Merge(f, meta, []history.Part{{Name: "agent " + clock.Name, R: r}}); err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	sum := sha256.New()
	var n int64
	buf := make([]byte, 1<<20)
	for {
		k, rerr := f.Read(buf)
		if k > 0 {
			sum.Write(buf[:k])
			n += int64(k)
			a.wmu.Lock()
			_ = a.ws.SetWriteDeadline(time.Now().Add(30 * time.Second))
			err := a.ws.WriteMessage(websocket.BinaryMessage, buf[:k])
			a.wmu.Unlock()
			if err != nil {
				return fmt.Errorf("ship history: %w", err)
			}
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	if err := a.send(&Message{Type: TypeShipped, Bytes: n, SHA256: hex.EncodeToString(sum.Sum(nil)), Clock: &clock}); err != nil {
		return err
	}
	_, err = a.next(ctx, TypeBye)
	return err
}
