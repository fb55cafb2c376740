package workload

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
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
	// Endpoints returns the gateway endpoints of region as a client living
	// in home reaches them (the fence probe's fixed regions).
	Endpoints(home, region string) []string
	// GatewayAddr is a gateway's own address, not through a client link
	// (the slow probe's connections).
	GatewayAddr(region, node string) (string, error)
}

// Progress counts what a running workload has done so far.
type Progress struct {
	Clients, Connected         int
	Scheduled, Sent            int64
	Acked, Failed, Delivered   int64
	Reconnects, NotRecovered   int64
	Late                       int64 // publishes sent more than 100 ms after their offset
	Probes                     int   // leak probes (not in Clients)
	Left, Rejoined, Dropped    int64 // churn done: leaves, rejoins, connections dropped
	LastError                  string
	PublishingDone, Quiescence bool
}

// Runner runs one Plan. Its methods are safe for concurrent use.
type Runner struct {
	spec    Spec
	plan    *Plan
	hist    *history.Writer
	clients []*client.Client
	live    []*live          // each client's connection, from its OnState events
	probes  []*client.Client // plan.Probes
	sweeps  []*sweep         // one per probe
	fence   *fence           // the fence probe (nil: none)
	env     Env
	payload map[string]string
	owned   []bool // owned[i]: plan client i runs here (Share)
	nOwned  int    // how many clients run here
	planned int64  // publishes of the clients that run here

	sent, acked, failed, delivered, reconnects, notRecovered, late atomic.Int64
	left, rejoined, dropped                                        atomic.Int64
	connected                                                      atomic.Int64
	inflight                                                       sync.WaitGroup
	churning                                                       sync.WaitGroup // the churn schedule and its calls
	pubDone, quiet                                                 atomic.Bool
	mu                                                             sync.Mutex
	lastErr                                                        string
	stopChurn                                                      context.CancelFunc
	churnNotes                                                     []string // churn acts skipped or failed (the first maxNotes)
	churnNoted                                                     int      // how many in all
}

// Share is the part of a plan one Runner plays: the plan's clients by
// index, and whether it runs the leak probes and the fence probe. A run
// split over workload agents (docs/agents.md) gives each agent a share of
// the clients and keeps the probes on the controller; every share plays its
// clients exactly as a Runner of the whole plan would (the same dial
// order, random streams, publishes and churn).
type Share struct {
	Clients []int // indexes into Plan.Clients
	Probes  bool  // the leak probes
	Fence   bool  // the fence probe
}

// Whole is the share of every client and probe of plan: what Start plays.
func Whole(plan *Plan) Share {
	s := Share{Probes: true, Fence: true}
	for i := range plan.Clients {
		s.Clients = append(s.Clients, i)
	}
	return s
}

// Start connects every client and leak probe of plan (at most 32 dials at
// once), each through env's resolver, and subscribes it to its rooms (live:
// no since). Every frame and state change goes to hist. On error the
// clients started are closed.
func Start(ctx context.Context, spec Spec, plan *Plan, env Env, hist *history.Writer, seed int64) (*Runner, error) {
	return StartShare(ctx, spec, plan, env, hist, seed, Whole(plan))
}

// StartShare is Start for the share's clients and probes only: the other
// clients of plan are not dialled, and their publishes and churn are not
// played here. A share index outside the plan is an error.
func StartShare(ctx context.Context, spec Spec, plan *Plan, env Env, hist *history.Writer, seed int64, share Share) (*Runner, error) {
	spec.Defaults()
	if !share.Probes {
		plan = planWithoutProbes(plan, share.Fence)
	} else if !share.Fence && plan.Fence != nil {
		p := *plan
		p.Fence = nil
		plan = &p
	}
	r := &Runner{spec: spec, plan: plan, hist: hist, env: env, clients: make([]*client.Client, len(plan.Clients)),
		live: make([]*live, len(plan.Clients)), probes: make([]*client.Client, len(plan.Probes)), sweeps: make([]*sweep, len(plan.Probes)),
		payload: map[string]string{"pad": strings.Repeat("x", max(spec.PayloadBytes-10, 0))},
		owned:   make([]bool, len(plan.Clients))}
	for _, i := range share.Clients {
		if i < 0 || i >= len(plan.Clients) {
			return nil, fmt.Errorf("workload: share: client index %d outside the plan's %d clients", i, len(plan.Clients))
		}
		if r.owned[i] {
			return nil, fmt.Errorf("workload: share: client index %d given twice", i)
		}
		r.owned[i] = true
		r.nOwned++
	}
	for _, p := range plan.Publishes {
		if r.owned[p.Client] {
			r.planned++
		}
	}
	sem := make(chan struct{}, 32)
	n := len(plan.Clients)
	errs := make([]error, n+len(plan.Probes))
	var wg sync.WaitGroup
	for i := range plan.Clients {
		r.live[i] = newLive()
		if !r.owned[i] {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			r.clients[i], errs[i] = r.dial(ctx, plan.Clients[i], i, r.live[i], nil, env, seed)
		}()
	}
	for j := range plan.Probes {
		r.sweeps[j] = &sweep{}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			r.probes[j], errs[n+j] = r.dial(ctx, plan.Probes[j], n+j, nil, r.sweeps[j], env, seed)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		r.Close()
		return nil, fmt.Errorf("workload: start clients: %w", err)
	}
	if plan.Fence != nil {
		f, err := startFence(ctx, plan.Fence, env)
		if err != nil {
			r.Close()
			return nil, fmt.Errorf("workload: %w", err)
		}
		r.fence = f
	}
	return r, nil
}

// StartFence schedules the fence probe's takeover at its offset from start;
// it tries until publishing ends. Without a fence probe it does nothing.
func (r *Runner) StartFence(ctx context.Context, start time.Time) {
	if r.fence != nil {
		r.fence.takeOver(ctx, start, r.spec.Duration)
	}
}

// Fence judges the fence probe: if the takeover happened, it waits up to the
// spec's Quiesce for the holder's connection to end. Call it after Quiesce
// and before Close; its Outcome is FenceNotPlanned without a probe.
func (r *Runner) Fence(ctx context.Context) FenceResult {
	if r.fence == nil {
		return FenceResult{Outcome: FenceNotPlanned}
	}
	return r.fence.result(ctx, r.spec.Quiesce)
}

// SlowProbe runs the slow probe (before the timeline starts: no fault can
// touch it) against gateways with limits and judges it; its Outcome is
// SlowNotPlanned without a probe. It returns within about 20 seconds, in
// well under one when the gateway cuts the slow connection.
func (r *Runner) SlowProbe(ctx context.Context, limits GatewayLimits) SlowResult {
	if r.plan.Slow == nil {
		return SlowResult{Outcome: SlowNotPlanned}
	}
	return runSlow(ctx, r.plan.Slow, r.env, limits)
}

// dial connects cp, the i-th client of the run (plan clients, then probes:
// i also picks its jitter's random stream); lv, when set, follows its
// connection. A probe (sw set) may not publish, counts in no connection
// figure, and its frames feed sw.
func (r *Runner) dial(ctx context.Context, cp ClientPlan, i int, lv *live, sw *sweep, env Env, seed int64) (*client.Client, error) {
	probe := sw != nil
	publish := []string{"*"}
	if probe {
		publish = nil
	}
	tok, err := env.Token(cp.Name, []string{"*"}, publish, 24*time.Hour)
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
		OnFrame: func(f client.RawFrame) {
			r.hist.Frame(cp.Name, cp.Home, f)
			if lv != nil {
				lv.frame(f)
			}
			if probe {
				sw.frame(f)
			}
		},
		OnState: func(e client.StateEvent) {
			r.hist.State(cp.Name, e.Conn, e.State.String(), e.Endpoint, e.Err, e.Time)
			if lv != nil {
				lv.set(e)
			}
			if probe {
				return
			}
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
			if e.Resumed && !e.Recovered && e.Err == nil && !probe {
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
		if !r.owned[p.Client] {
			continue
		}
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
// been answered, the churn schedule is done (every rejoin answered) and
// deliveries have stopped changing for settle (default 1s), so that the
// history's end holds everything the system will deliver.
func (r *Runner) Quiesce(ctx context.Context, settle time.Duration) error {
	if settle == 0 {
		settle = time.Second
	}
	end := time.Now().Add(r.spec.Quiesce)
	done := make(chan struct{})
	go func() { r.inflight.Wait(); r.churning.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Until(end)):
		return fmt.Errorf("workload: %d publishes still unanswered (or churn still under way: %d of %d leaves, %d rejoins) after quiesce %s",
			r.sent.Load()-r.acked.Load()-r.failed.Load(), r.left.Load(), r.churnCount(ChurnLeave), r.rejoined.Load(), r.spec.Quiesce)
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

// Clients are the running clients, in plan order (nil for a client of
// another share).
func (r *Runner) Clients() []*client.Client { return r.clients }

// Probes are the running leak probes, in plan order.
func (r *Runner) Probes() []*client.Client { return r.probes }

// maxNotes bounds the churn notes kept.
const maxNotes = 20

// noteChurn records a churn act that was skipped or failed.
func (r *Runner) noteChurn(msg string) {
	r.mu.Lock()
	r.lastErr = msg
	r.churnNoted++
	if len(r.churnNotes) < maxNotes {
		r.churnNotes = append(r.churnNotes, msg)
	}
	r.mu.Unlock()
}

// ChurnNotes lists the churn acts that were skipped or failed (a leave
// whose client was not connected, a rejoin refused…), the first 20 and a
// count of the rest: the schedule the plan drew, less these, is what was
// played.
func (r *Runner) ChurnNotes() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Clone(r.churnNotes)
	if more := r.churnNoted - len(out); more > 0 {
		out = append(out, fmt.Sprintf("… and %d more churn acts skipped or failed", more))
	}
	return out
}

// churnCount is how many churn events of kind the plan has for the clients
// that run here.
func (r *Runner) churnCount(kind ChurnKind) int {
	n := 0
	for _, e := range r.plan.Churn {
		if e.Kind == kind && r.owned[e.Client] {
			n++
		}
	}
	return n
}

// Progress reports the counts so far.
func (r *Runner) Progress() Progress {
	r.mu.Lock()
	last := r.lastErr
	r.mu.Unlock()
	return Progress{Clients: r.nOwned, Connected: int(r.connected.Load()), Scheduled: r.planned,
		Sent: r.sent.Load(), Acked: r.acked.Load(), Failed: r.failed.Load(), Delivered: r.delivered.Load(),
		Reconnects: r.reconnects.Load(), NotRecovered: r.notRecovered.Load(), Late: r.late.Load(), LastError: last,
		PublishingDone: r.pubDone.Load(), Quiescence: r.quiet.Load(), Probes: len(r.probes),
		Left: r.left.Load(), Rejoined: r.rejoined.Load(), Dropped: r.dropped.Load()}
}

// Close stops the churn schedule and closes every client and probe (their
// closed states go to the history).
func (r *Runner) Close() {
	r.mu.Lock()
	stop := r.stopChurn
	r.mu.Unlock()
	if stop != nil {
		stop()
	}
	r.churning.Wait()
	if r.fence != nil {
		r.fence.close()
	}
	var wg sync.WaitGroup
	for _, c := range append(slices.Clone(r.clients), r.probes...) {
		if c != nil {
			wg.Add(1)
			go func() { defer wg.Done(); _ = c.Close() }()
		}
	}
	wg.Wait()
}

// planWithoutProbes is plan with no leak probes (and no fence probe unless
// fence): a share that leaves the probes to another Runner.
func planWithoutProbes(plan *Plan, fence bool) *Plan {
	p := *plan
	p.Probes = nil
	if !fence {
		p.Fence = nil
	}
	return &p
}
