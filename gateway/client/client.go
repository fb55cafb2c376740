package client

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/geolab/geolab/gateway/protocol"
	"github.com/geolab/geolab/internal/backoff"
)

// Client is one user's connection to geolab gateways, replaced when lost.
// Its methods are safe for concurrent use.
type Client struct {
	o   Options
	log *slog.Logger

	ctx    context.Context // the client's life: Dial's context, cancelled by Close
	cancel context.CancelFunc

	ready        chan struct{} // closed at the first connection
	done         chan struct{} // closed when the client has ended; err is set
	netDone      chan struct{} // closed when the supervisor, reader and writer have ended
	dispatchDone chan struct{} // closed when the dispatcher has ended
	dispatchG    atomic.Uint64 // the dispatcher's goroutine id
	closeOnce    sync.Once
	userClosed   atomic.Bool
	events       *eventQueue

	mu       sync.Mutex
	err      error // why the client ended
	cur      *conn // the live connection; nil while (re)connecting
	connNo   int64
	session  string
	region   string
	node     string
	endpoint string
	rooms    map[string]*room
	pending  map[string]*pendingPublish
	pubSeq   uint64
	rnd      *rand.Rand // guarded by mu

	st counters
}

// Stats are the client's counters since Dial.
type Stats struct {
	FramesIn, FramesOut int64
	Messages            int64 // delivered to OnMessage (after the backstop)
	Duplicates          int64 // dropped by the backstop: oseq at or below the tracked one, same epoch
	Gaps                int64 // delivered with oseq past tracked+1 within an epoch
	EpochChanges        int64 // an origin's messages came under a new epoch
	GapsAnnounced       int64 // unasked subscribed frames with recovered false
	Reconnects          int64 // connections established after the first
	ResumesRecovered    int64 // subscribes with since answered recovered:true
	ResumesNotRecovered int64 // subscribes with since answered recovered:false
	PublishRetries      int64 // publishes resent after an error frame or a reconnect
	ServerErrors        int64 // error frames received
	DialFailures        int64 // connection attempts that failed
}

type counters struct {
	framesIn, framesOut, messages, duplicates, gaps, epochChanges, gapsAnnounced,
	reconnects, resumesRecovered, resumesNotRecovered, publishRetries, serverErrors,
	dialFailures atomic.Int64
}

// Dial validates o, connects (retrying with backoff until ctx ends or
// MaxReconnects attempts in a row failed) and returns once the gateway's
// welcome has arrived; the client then reconnects in the background.
//
// ctx bounds the client's whole life, not only the dial: when it ends the
// client closes as if Close had been called.
func Dial(ctx context.Context, o Options) (*Client, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	cctx, cancel := context.WithCancel(ctx)
	c := &Client{
		o:            o,
		log:          o.Logger.With("component", "client"),
		ctx:          cctx,
		cancel:       cancel,
		ready:        make(chan struct{}),
		done:         make(chan struct{}),
		netDone:      make(chan struct{}),
		dispatchDone: make(chan struct{}),
		events:       newEventQueue(),
		rooms:        map[string]*room{},
		pending:      map[string]*pendingPublish{},
		rnd:          o.Rand,
	}
	go c.dispatch()
	go c.run()
	select {
	case <-c.ready:
		return c, nil
	case <-c.done:
		select {
		case <-c.ready: // it connected, then ended at once: Err says why
			return c, nil
		default:
		}
		err := c.endErr()
		_ = c.Close()
		return nil, fmt.Errorf("client: dial: %w", err)
	}
}

// Close sends a normal close (1000) to the gateway, fails every pending call
// with ErrClosed and stops every goroutine of the client before it returns
// (called from a callback, it does not wait for that callback's goroutine,
// which ends when the callback returns). It is idempotent and returns nil.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.userClosed.Store(true)
		c.cancel()
	})
	<-c.netDone
	if goroutineID() != c.dispatchG.Load() {
		<-c.dispatchDone
	}
	return nil
}

// Done is closed when the client has ended: Close, its context, a close code
// that forbids reconnecting, or MaxReconnects. Err then says why.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err is nil while the client lives, then why it ended: ErrClosed (also
// wrapping the context's error when that ended it) or a *CloseError.
func (c *Client) Err() error {
	select {
	case <-c.done:
		return c.endErr()
	default:
		return nil
	}
}

func (c *Client) endErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Positions returns copies of the tracked positions (origin → last oseq
// delivered) and epochs of room; nil when the client has none. They reflect
// the frames the reader has handled, which may be ahead of OnMessage.
func (c *Client) Positions(room string) (protocol.Positions, protocol.Epochs) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.rooms[room]
	if r == nil || (!r.tracked && len(r.pos) == 0) {
		return nil, nil
	}
	return copyPositions(r.pos), copyEpochs(r.ep)
}

// Stats returns the client's counters.
func (c *Client) Stats() Stats {
	s := &c.st
	return Stats{
		FramesIn: s.framesIn.Load(), FramesOut: s.framesOut.Load(), Messages: s.messages.Load(),
		Duplicates: s.duplicates.Load(), Gaps: s.gaps.Load(), EpochChanges: s.epochChanges.Load(),
		GapsAnnounced: s.gapsAnnounced.Load(), Reconnects: s.reconnects.Load(),
		ResumesRecovered: s.resumesRecovered.Load(), ResumesNotRecovered: s.resumesNotRecovered.Load(),
		PublishRetries: s.publishRetries.Load(), ServerErrors: s.serverErrors.Load(),
		DialFailures: s.dialFailures.Load(),
	}
}

// Session is the session id of the current (or last) connection's welcome.
func (c *Client) Session() string { c.mu.Lock(); defer c.mu.Unlock(); return c.session }

// Region is the region of the current (or last) gateway.
func (c *Client) Region() string { c.mu.Lock(); defer c.mu.Unlock(); return c.region }

// Node is the node name of the current (or last) gateway.
func (c *Client) Node() string { c.mu.Lock(); defer c.mu.Unlock(); return c.node }

// Endpoint is the URL of the current (or last) connection.
func (c *Client) Endpoint() string { c.mu.Lock(); defer c.mu.Unlock(); return c.endpoint }

// emitState queues a state event for OnState.
func (c *Client) emitState(e StateEvent) {
	if c.o.OnState == nil {
		return
	}
	e.Time = time.Now()
	c.events.push(e)
}

func (c *Client) emitSubscribed(e SubscribedEvent) {
	if c.o.OnSubscribed != nil {
		c.events.push(e)
	}
}

func (c *Client) emitMessage(m Message) {
	if c.o.OnMessage != nil {
		c.events.push(m)
	}
}

// sleep waits d, or less if the client ends; it reports whether d passed.
func (c *Client) sleep(ctx context.Context, d time.Duration) bool {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(c.ctx, cancel)()
	return backoff.Sleep(ctx, d)
}

// backoff draws the sleep before attempt n.
func (c *Client) backoff(attempt int) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return backoffDraw(attempt, c.o.MinBackoff, c.o.MaxBackoff, c.rnd)
}

func copyPositions(p protocol.Positions) protocol.Positions {
	out := make(protocol.Positions, len(p))
	for k, v := range p {
		out[k] = v
	}
	return out
}

func copyEpochs(e protocol.Epochs) protocol.Epochs {
	out := make(protocol.Epochs, len(e))
	for k, v := range e {
		out[k] = v
	}
	return out
}
