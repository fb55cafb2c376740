package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/geolab/geolab/internal/backoff"
)

// SubscriberConfig tunes the pub/sub connection.
type SubscriberConfig struct {
	// Pattern subscribes once to ChannelPattern instead of one channel per
	// hosted room: every node then receives every room's traffic (G9's
	// counter-example). Targeted (false) is the default.
	Pattern bool
	// PingInterval is how often the connection is pinged; DeadAfter is how
	// long without any reply (message, confirmation or pong) makes the link
	// count as dead, so that a blackholed link is noticed, not waited on.
	PingInterval time.Duration
	DeadAfter    time.Duration
	// MinBackoff and MaxBackoff bound the reconnect backoff (full jitter).
	MinBackoff, MaxBackoff time.Duration
}

// DefaultSubscriberConfig suits a LAN link to the region's Redis.
func DefaultSubscriberConfig() SubscriberConfig {
	return SubscriberConfig{PingInterval: 500 * time.Millisecond, DeadAfter: 2 * time.Second,
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 2 * time.Second}
}

// Subscriber keeps one pub/sub connection to a region's Redis and the set of
// channels it should be subscribed to. When the connection drops (an error,
// or silence past DeadAfter) it reconnects with backoff, subscribes every
// wanted channel again in one command and, once Redis has confirmed them all,
// calls OnUp: from then on every message published on those channels arrives
// here. Messages are handed to OnMessage in the order Redis sent them, from
// one goroutine.
type Subscriber struct {
	rdb Subscribable
	cfg SubscriberConfig
	log *slog.Logger

	// OnMessage receives every message (channel, payload). Called from the
	// receive goroutine; it must not block.
	OnMessage func(channel, payload string)
	// OnUp is called, from the receive goroutine, when a (re)connection has
	// every wanted channel subscribed. gen counts connections from 1.
	OnUp func(gen uint64)
	// OnDown is called when the connection is lost.
	OnDown func(err error)

	mu    sync.Mutex
	ps    *redis.PubSub
	gen   uint64
	up    bool
	upCh  chan struct{} // closed while up
	chans map[string]*chanState
}

type chanState struct {
	wanted  bool
	expect  int // SUBSCRIBE commands sent on this connection and not yet confirmed
	waiters []chan struct{}
}

// Subscribable is what a Subscriber subscribes through: a *redis.Client (one
// Redis), or a *redis.ClusterClient, whose Subscribe connects to a node of
// the cluster (a Redis Cluster carries a PUBLISH to every node, so any node
// hears SessionsChannel).
type Subscribable interface {
	Subscribe(ctx context.Context, channels ...string) *redis.PubSub
}

// NewSubscriber returns a subscriber on rdb's address. Run starts it.
func NewSubscriber(rdb Subscribable, cfg SubscriberConfig, log *slog.Logger) *Subscriber {
	return &Subscriber{rdb: rdb, cfg: cfg, log: log, chans: map[string]*chanState{}, upCh: make(chan struct{})}
}

// Up reports whether every wanted channel is subscribed on a live connection.
func (s *Subscriber) Up() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.up
}

// WaitUp waits until the subscriber is up or ctx ends.
func (s *Subscriber) WaitUp(ctx context.Context) error {
	s.mu.Lock()
	ch := s.upCh
	s.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("broker: redis pub/sub not connected: %w", ErrUnavailable)
	}
}

// Channels returns how many channels are wanted.
func (s *Subscriber) Channels() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.chans {
		if c.wanted {
			n++
		}
	}
	return n
}

// Subscribe wants channel and waits until Redis confirmed the subscription
// on the live connection, or ctx ends (ErrUnavailable). Calling it for a
// channel already wanted just waits for (or returns) its confirmation.
func (s *Subscriber) Subscribe(ctx context.Context, channel string) error {
	s.mu.Lock()
	cs := s.chans[channel]
	if cs == nil {
		cs = &chanState{}
		s.chans[channel] = cs
	}
	if cs.wanted && cs.expect == 0 && s.up {
		s.mu.Unlock()
		return nil
	}
	done := make(chan struct{})
	cs.waiters = append(cs.waiters, done)
	if !cs.wanted {
		cs.wanted = true
		if s.ps != nil {
			cs.expect++
			// Sent under s.mu so that SUBSCRIBE and UNSUBSCRIBE of one
			// channel reach Redis in the order they were decided.
			if err := s.ps.Subscribe(ctx, channel); err != nil {
				s.log.Debug("subscribe failed; the reconnect will retry", "channel", channel, "err", err)
			}
		}
	}
	s.mu.Unlock()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("broker: subscribe %s: %w: %w", channel, ErrUnavailable, ctx.Err())
	}
}

// Unsubscribe stops wanting channel.
func (s *Subscriber) Unsubscribe(ctx context.Context, channel string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.chans[channel]
	if cs == nil || !cs.wanted {
		return
	}
	cs.wanted = false
	for _, w := range cs.waiters {
		close(w)
	}
	cs.waiters = nil
	if cs.expect == 0 {
		delete(s.chans, channel)
	}
	if s.ps != nil {
		if err := s.ps.Unsubscribe(ctx, channel); err != nil {
			s.log.Debug("unsubscribe failed", "channel", channel, "err", err)
		}
	}
}

// Run keeps the connection until ctx ends.
func (s *Subscriber) Run(ctx context.Context) {
	attempt := 0
	for ctx.Err() == nil {
		err := s.session(ctx)
		if ctx.Err() != nil {
			return
		}
		s.setDown(err)
		attempt++
		if !backoff.Sleep(ctx, backoff.FullJitter(s.cfg.MinBackoff, s.cfg.MaxBackoff, attempt, nil)) {
			return
		}
		if s.Up() {
			attempt = 0
		}
	}
}

// session runs one connection: subscribe everything wanted, barrier-ping,
// then receive until the link fails.
func (s *Subscriber) session(ctx context.Context) error {
	ps := s.rdb.Subscribe(ctx)
	defer ps.Close()
	// ReceiveTimeout below does not watch ctx: closing the connection is
	// what ends the session at once when the node stops (not DeadAfter later).
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()
	if err := ps.Ping(ctx); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	s.mu.Lock()
	s.gen++
	gen := s.gen
	s.ps = ps
	var wanted []string
	for ch, cs := range s.chans {
		cs.expect = 0
		if cs.wanted {
			wanted = append(wanted, ch)
			cs.expect = 1
		} else {
			delete(s.chans, ch)
		}
	}
	var err error
	if s.cfg.Pattern {
		err = ps.PSubscribe(ctx, ChannelPattern)
	}
	if err == nil && len(wanted) > 0 {
		err = ps.Subscribe(ctx, wanted...)
	}
	barrier := "geolab-barrier-" + strconv.FormatUint(gen, 10)
	if err == nil {
		// Redis answers in order: the pong of this ping comes after the
		// confirmation of every SUBSCRIBE sent before it.
		err = ps.Ping(ctx, barrier)
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("resubscribe %d channels: %w", len(wanted), err)
	}

	defer pingEvery(ctx, ps, s.cfg.PingInterval)()

	for {
		msg, err := ps.ReceiveTimeout(ctx, s.cfg.DeadAfter)
		if err != nil {
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				return fmt.Errorf("no reply from redis for %s: link dead", s.cfg.DeadAfter)
			}
			return err
		}
		switch m := msg.(type) {
		case *redis.Message:
			if s.OnMessage != nil {
				s.OnMessage(m.Channel, m.Payload)
			}
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				s.confirm(m.Channel)
			}
		case *redis.Pong:
			if m.Payload == barrier {
				s.setUp(gen)
			}
		}
	}
}

// pingEvery pings ps every interval until the returned stop is called or
// ctx ends: a link that answers nothing for DeadAfter is dead, and a quiet
// channel must not look dead.
func pingEvery(ctx context.Context, ps *redis.PubSub, interval time.Duration) (stop func()) {
	ctx, stop = context.WithCancel(ctx)
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				_ = ps.Ping(ctx)
			}
		}
	}()
	return stop
}

func (s *Subscriber) confirm(channel string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.chans[channel]
	if cs == nil {
		return
	}
	if cs.expect > 0 {
		cs.expect--
	}
	if cs.expect > 0 {
		return
	}
	if !cs.wanted {
		delete(s.chans, channel)
		return
	}
	if s.up {
		for _, w := range cs.waiters {
			close(w)
		}
		cs.waiters = nil
	}
}

func (s *Subscriber) setUp(gen uint64) {
	s.mu.Lock()
	s.up = true
	close(s.upCh)
	for _, cs := range s.chans {
		if cs.wanted && cs.expect == 0 {
			for _, w := range cs.waiters {
				close(w)
			}
			cs.waiters = nil
		}
	}
	s.mu.Unlock()
	if s.OnUp != nil {
		s.OnUp(gen)
	}
}

func (s *Subscriber) setDown(err error) {
	s.mu.Lock()
	wasUp := s.up
	s.up = false
	s.ps = nil
	if wasUp {
		s.upCh = make(chan struct{})
	}
	s.mu.Unlock()
	if s.OnDown != nil {
		s.OnDown(err)
	}
}
