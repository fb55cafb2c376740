package workload

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/geolab/geolab/gateway/client"
	"github.com/geolab/geolab/lab/history"
)

// Env is what a workload needs of the lab: where a client of a home region
// resolves gateways, and tokens.
type Env interface {
	// Resolve returns the endpoints a client living in home should try, in
	// order (the lab's resolver, cached for its TTL per client).
	ResolveFunc(home string) func(ctx context.Context) ([]string, error)
	Token(sub string, read, publish []string, ttl time.Duration) (string, error)
}

// Progress counts what a running workload has done so far.
type Progress struct {
	Clients, Connected         int
	Scheduled, Sent            int64
	Acked, Failed, Delivered   int64
	Reconnects, NotRecovered   int64
	Late                       int64 // publishes sent more than 100 ms after their offset
	LastError                  string
	PublishingDone, Quiescence bool
}

// Runner runs one Plan. Its methods are safe for concurrent use.
type Runner struct {
	spec    Spec
	plan    *Plan
	hist    *history.Writer
	clients []*client.Client
	payload map[string]string

	sent, acked, failed, delivered, reconnects, notRecovered, late atomic.Int64
	connected                                                      atomic.Int64
	inflight                                                       sync.WaitGroup
	pubDone, quiet                                                 atomic.Bool
	mu                                                             sync.Mutex
	lastErr                                                        string
}

// Start connects every client of plan (at most 32 dials at once), each
// through env's resolver, and subscribes it to its rooms. Every frame and
// state change goes to hist. On error the clients started are closed.
func Start(ctx context.Context, spec Spec, plan *Plan, env Env, hist *history.Writer, seed int64) (*Runner, error) {
	spec.Defaults()
	r := &Runner{spec: spec, plan: plan, hist: hist, clients: make([]*client.Client, len(plan.Clients)),
		payload: map[string]string{"pad": strings.Repeat("x", max(spec.PayloadBytes-10, 0))}}
	sem := make(chan struct{}, 32)
	errs := make([]error, len(plan.Clients))
	var wg sync.WaitGroup
	for i := range plan.Clients {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			r.clients[i], errs[i] = r.dial(ctx, i, env, seed)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		r.Close()
		return nil, fmt.Errorf("workload: start clients: %w", err)
	}
	return r, nil
}

func (r *Runner) dial(ctx context.Context, i int, env Env, seed int64) (*client.Client, error) {
	cp := r.plan.Clients[i]
	tok, err := env.Token(cp.Name, []string{"*"}, []string{"*"}, 24*time.Hour)
	if err != nil {
		return nil, err
	}
	c, err := client.Dial(context.Background(), client.Options{
		Resolve:      env.ResolveFunc(cp.Home),
		Token:        func(context.Context) (string, error) { return tok, nil },
		MinBackoff:   50 * time.Millisecond,
		MaxBackoff:   time.Second,
		PingInterval: r.spec.Heartbeat,
		DialTimeout:  3 * time.Second,
		Rand:         rand.New(rand.NewPCG(uint64(seed), uint64(i))),
		OnFrame:      func(f client.RawFrame) { r.hist.Frame(cp.Name, cp.Home, f) },
		OnState: func(e client.StateEvent) {
			r.hist.State(cp.Name, e.Conn, e.State.String(), e.Endpoint, e.Err, e.Time)
			switch e.State {
			case client.StateConnected:
				if e.Conn > 1 {
					r.reconnects.Add(1)
				}
				r.connected.Add(1)
			case client.StateDisconnected, client.StateClosed:
				if e.Conn > 0 && e.State == client.StateDisconnected {
					r.connected.Add(-1)
				}
			}
		},
		OnMessage: func(client.Message) { r.delivered.Add(1) },
		OnSubscribed: func(e client.SubscribedEvent) {
			if e.Resumed && !e.Recovered && e.Err == nil {
				r.notRecovered.Add(1)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cp.Name, err)
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, room := range cp.Rooms {
		if _, err := c.Subscribe(sctx, room); err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("%s: subscribe %s: %w", cp.Name, room, err)
		}
	}
	return c, nil
}

// Publish runs the schedule from start: each publish at its offset, in its
// own goroutine (at most 4096 in flight: past that the schedule slips and
// Late counts it), retried by the client until acked or until the
// schedule's end plus Quiesce. It returns when every publish was sent.
func (r *Runner) Publish(ctx context.Context, start time.Time) {
	deadline := start.Add(r.spec.Duration + r.spec.Quiesce)
	pctx, cancel := context.WithDeadline(ctx, deadline)
	sem := make(chan struct{}, 4096)
	defer func() {
		r.pubDone.Store(true)
		go func() { r.inflight.Wait(); cancel() }()
	}()
	for _, p := range r.plan.Publishes {
		if d := time.Until(start.Add(p.At)); d > 0 {
			select {
			case <-time.After(d): // the schedule's clock, not a synchronisation
			case <-ctx.Done():
				return
			}
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		if time.Since(start.Add(p.At)) > 100*time.Millisecond {
			r.late.Add(1)
		}
		r.sent.Add(1)
		r.inflight.Add(1)
		go func() {
			defer func() { <-sem; r.inflight.Done() }()
			_, err := r.clients[p.Client].Publish(pctx, p.Room, p.ID, r.payload)
			if err != nil {
				r.failed.Add(1)
				r.mu.Lock()
				r.lastErr = fmt.Sprintf("%s %s: %v", p.ID, p.Room, err)
				r.mu.Unlock()
				return
			}
			r.acked.Add(1)
		}()
	}
}

// Quiesce waits, for at most the spec's Quiesce, until every publish has
// been answered and deliveries have stopped changing for settle (default
// 1s), so that the history's end holds everything the system will deliver.
func (r *Runner) Quiesce(ctx context.Context, settle time.Duration) error {
	if settle == 0 {
		settle = time.Second
	}
	end := time.Now().Add(r.spec.Quiesce)
	done := make(chan struct{})
	go func() { r.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Until(end)):
		return fmt.Errorf("workload: %d publishes still unanswered after quiesce %s", r.sent.Load()-r.acked.Load()-r.failed.Load(), r.spec.Quiesce)
	}
	last, since := r.delivered.Load(), time.Now()
	for time.Since(since) < settle {
		if time.Now().After(end) {
			return fmt.Errorf("workload: deliveries still arriving after quiesce %s", r.spec.Quiesce)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond): // sampling the delivery count
		}
		if n := r.delivered.Load(); n != last {
			last, since = n, time.Now()
		}
	}
	r.quiet.Store(true)
	return nil
}

// Clients are the running clients, in plan order.
func (r *Runner) Clients() []*client.Client { return r.clients }

// Progress reports the counts so far.
func (r *Runner) Progress() Progress {
	r.mu.Lock()
	last := r.lastErr
	r.mu.Unlock()
	return Progress{Clients: len(r.clients), Connected: int(r.connected.Load()), Scheduled: int64(len(r.plan.Publishes)),
		Sent: r.sent.Load(), Acked: r.acked.Load(), Failed: r.failed.Load(), Delivered: r.delivered.Load(),
		Reconnects: r.reconnects.Load(), NotRecovered: r.notRecovered.Load(), Late: r.late.Load(), LastError: last,
		PublishingDone: r.pubDone.Load(), Quiescence: r.quiet.Load()}
}

// Close closes every client (their closed states go to the history).
func (r *Runner) Close() {
	var wg sync.WaitGroup
	for _, c := range r.clients {
		if c != nil {
			wg.Add(1)
			go func() { defer wg.Done(); _ = c.Close() }()
		}
	}
	wg.Wait()
}
