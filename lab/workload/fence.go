package workload

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/lab/topology"
)

// The fence probe judges G11, a session owned by one region at a time,
// which no workload client can see: a client that fails over drops its old
// connection itself, so a region that kept serving a session it lost
// serves nobody the lab watches. The probe keeps a connection that would
// be served: a holder connects to the first federating region with session
// FenceSession and never reconnects; halfway through publishing a taker
// connects to the second with the same session (and the same token
// subject, to which the session is bound) and leaves once welcomed. The
// holder's region must close it with 4003 once it learns of the takeover,
// after any partition between the two has healed.

// FenceSession is the session id the fence probe holds and takes over;
// FenceSubject the token subject of both its connections.
const (
	FenceSession = "fence-probe"
	FenceSubject = "fence-probe"
)

// FencePlan is where the fence probe holds its session and where it takes
// it over, and when.
type FencePlan struct {
	Holder string        `json:"holder"` // region of the holder
	Taker  string        `json:"taker"`  // region of the takeover
	At     time.Duration `json:"at"`     // offset of the takeover from the start
}

// FenceProbeOn reports whether the plan of s over topo has a fence probe:
// FenceProbe when set, else whether topo has two federating regions.
func (s *Spec) FenceProbeOn(topo *topology.Topology) bool {
	if len(federating(topo)) < 2 {
		return false
	}
	return s.FenceProbe == nil || *s.FenceProbe
}

// federating lists the regions that federate rooms (they run a bridge, and
// session records travel between them), in the topology's order.
func federating(topo *topology.Topology) []string {
	var out []string
	for _, r := range topo.Regions {
		if len(r.Federate) > 0 {
			out = append(out, r.Name)
		}
	}
	return out
}

func planFence(s Spec, topo *topology.Topology) *FencePlan {
	regions := federating(topo)
	return &FencePlan{Holder: regions[0], Taker: regions[1], At: s.Duration / 2}
}

// FenceOutcome is how the fence probe ended.
type FenceOutcome string

// The fence probe's outcomes.
const (
	// FenceNotPlanned: the run has no fence probe.
	FenceNotPlanned FenceOutcome = "not_planned"
	// FenceFenced: the holder was closed with 4003 after the takeover.
	FenceFenced FenceOutcome = "fenced"
	// FenceNotFenced: the takeover happened and the holder's region kept
	// serving the session to the end: a G11 violation.
	FenceNotFenced FenceOutcome = "not_fenced"
	// FenceUnjudged: the holder's connection ended for another reason (a
	// fault took it), or the takeover never got a welcome in its region.
	FenceUnjudged FenceOutcome = "unjudged"
)

// FenceResult is what the fence probe saw.
type FenceResult struct {
	Plan    *FencePlan
	Outcome FenceOutcome
	// TakenAt is when the taker was welcomed in its region (zero: never);
	// ClosedAt when the holder's connection ended (zero: open at the end).
	TakenAt, ClosedAt time.Time
	// Code is the close code the holder got (0 when its connection ended
	// without a close frame or is still open).
	Code int
	// Detail says why, in words.
	Detail string
}

// fence runs the fence probe.
type fence struct {
	plan *FencePlan
	env  Env
	tok  string

	mu       sync.Mutex
	holder   *websocket.Conn
	closed   chan struct{} // closed when the holder's connection ended
	code     int
	closedAt time.Time
	endErr   string
	takenAt  time.Time
	tries    int    // takeover attempts
	lastErr  string // of the last failed takeover attempt
	taking   sync.WaitGroup
	stop     context.CancelFunc
}

// dialSession connects to the first of endpoints that welcomes it with
// region's name, with the fence session, and returns the connection.
func (f *fence) dialSession(ctx context.Context, region string) (*websocket.Conn, error) {
	var errs []error
	for _, ep := range f.env.Endpoints(region, region) {
		dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		ws, _, err := websocket.DefaultDialer.DialContext(dctx, ep+"?session="+FenceSession,
			http.Header{"Authorization": {"Bearer " + f.tok}})
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ep, err))
			continue
		}
		_ = ws.SetReadDeadline(time.Now().Add(3 * time.Second))
		var w protocol.Welcome
		if err := ws.ReadJSON(&w); err != nil || w.Type != protocol.TypeWelcome || w.Region != region {
			_ = ws.Close()
			errs = append(errs, fmt.Errorf("%s: no welcome of %s (got %+v, %v)", ep, region, w, err))
			continue
		}
		_ = ws.SetReadDeadline(time.Time{})
		return ws, nil
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("no endpoint of %s", region)
	}
	return nil, errors.Join(errs...)
}

// startFence connects the holder and reads it until its connection ends.
func startFence(ctx context.Context, plan *FencePlan, env Env) (*fence, error) {
	tok, err := env.Token(FenceSubject, []string{"*"}, nil, 24*time.Hour)
	if err != nil {
		return nil, err
	}
	f := &fence{plan: plan, env: env, tok: tok, closed: make(chan struct{})}
	ws, err := f.dialSession(ctx, plan.Holder)
	if err != nil {
		return nil, fmt.Errorf("fence probe: holder in %s: %w", plan.Holder, err)
	}
	f.holder = ws
	go func() {
		defer close(f.closed)
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				f.mu.Lock()
				f.closedAt = time.Now()
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					f.code = ce.Code
				}
				f.endErr = err.Error()
				f.mu.Unlock()
				return
			}
		}
	}()
	return f, nil
}

// takeOver, from start+At until start+until, tries every half second to get
// a welcome in the taker's region with the session, then leaves.
func (f *fence) takeOver(ctx context.Context, start time.Time, until time.Duration) {
	ctx, f.stop = context.WithDeadline(ctx, start.Add(until))
	f.taking.Add(1)
	go func() {
		defer f.taking.Done()
		select {
		case <-time.After(time.Until(start.Add(f.plan.At))):
		case <-ctx.Done():
			return
		}
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			ws, err := f.dialSession(ctx, f.plan.Taker)
			f.mu.Lock()
			f.tries++
			if err == nil {
				f.takenAt = time.Now()
			} else {
				f.lastErr = err.Error()
			}
			f.mu.Unlock()
			if err == nil {
				_ = ws.Close()
				return
			}
			select {
			case <-tick.C:
			case <-ctx.Done():
				return
			}
		}
	}()
}

// result waits, up to bound, for the holder's connection to end if the
// takeover happened, and judges.
func (f *fence) result(ctx context.Context, bound time.Duration) FenceResult {
	if f.stop != nil {
		f.stop()
	}
	f.taking.Wait()
	f.mu.Lock()
	taken := !f.takenAt.IsZero()
	f.mu.Unlock()
	if taken {
		select {
		case <-f.closed:
		case <-time.After(bound):
		case <-ctx.Done():
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	r := FenceResult{Plan: f.plan, TakenAt: f.takenAt, ClosedAt: f.closedAt, Code: f.code}
	ended := !f.closedAt.IsZero()
	switch {
	case ended && f.code == protocol.CloseSessionTakenOver && taken:
		r.Outcome = FenceFenced
		r.Detail = fmt.Sprintf("the holder in %s was closed with 4003 %s after the takeover in %s",
			f.plan.Holder, f.closedAt.Sub(f.takenAt).Round(time.Millisecond), f.plan.Taker)
	case ended && (!taken || f.closedAt.Before(f.takenAt)):
		r.Outcome = FenceUnjudged
		r.Detail = fmt.Sprintf("the holder's connection to %s ended before any takeover (%s)", f.plan.Holder, f.endErr)
	case ended:
		r.Outcome = FenceUnjudged
		r.Detail = fmt.Sprintf("the holder's connection to %s ended %s after the takeover without 4003 (%s): a fault took it",
			f.plan.Holder, f.closedAt.Sub(f.takenAt).Round(time.Millisecond), f.endErr)
	case !taken:
		r.Outcome = FenceUnjudged
		r.Detail = fmt.Sprintf("the takeover in %s never got a welcome there (%d tries, last: %s)", f.plan.Taker, f.tries, f.lastErr)
	default:
		r.Outcome = FenceNotFenced
		r.Detail = fmt.Sprintf("session %s was taken over in %s at %s, and %s still served it %s later, after every fault had healed (no close 4003)",
			FenceSession, f.plan.Taker, f.takenAt.Format("15:04:05.000"), f.plan.Holder, time.Since(f.takenAt).Round(time.Millisecond))
	}
	return r
}

func (f *fence) close() {
	if f.stop != nil {
		f.stop()
	}
	f.taking.Wait()
	_ = f.holder.Close()
	<-f.closed
}
