package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/geolab/geolab/internal/backoff"
	"github.com/geolab/geolab/internal/faulty"
)

// ShardedSubscriber keeps the room channels of a gateway node subscribed
// on a Redis Cluster with sharded pub/sub (SSUBSCRIBE): each channel on
// the primary that owns its slot, which is where publish.lua SPUBLISHes it.
// It groups the channels by owner and keeps one pub/sub connection per
// owner (a shard), each with what Subscriber does for one Redis: pings, a
// dead link noticed after DeadAfter of silence, and a PING barrier after
// the subscriptions, so that a channel counts as up only once Redis has
// confirmed it.
//
// A channel leaves its shard when Redis drops it: a sunsubscribe pushed
// because its slot moved to another primary or the primary became a
// replica (a manual failover), an error answering its SSUBSCRIBE (MOVED:
// the slot is elsewhere), or the shard's connection lost (a killed
// primary). Each time, OnDown is called for the channels first, from the
// goroutine that saw it and before anything else can happen to them; then
// the owner is looked up again (the cluster client's slot map, reloaded)
// and the channel is subscribed on it, and OnUp is called once Redis has
// confirmed it there. The caller refills, on OnUp, what was published in
// between from the history (G12).
type ShardedSubscriber struct {
	cluster *redis.ClusterClient
	cfg     SubscriberConfig
	log     *slog.Logger

	// OnMessage receives every message (channel, payload), from the
	// receiving goroutine of the channel's shard; it must not block.
	OnMessage func(channel, payload string)
	// OnUp is called when channels are subscribed (again) on a live
	// connection to their owner: from then on every message SPUBLISHed on
	// them arrives. It is called from the shard's goroutine, after every
	// message that shard received before the confirmation.
	OnUp func(channels []string)
	// OnDown is called when channels lost their subscription; from then
	// until their OnUp, messages published on them may not arrive.
	OnDown func(channels []string, err error)

	mu       sync.Mutex
	ctx      context.Context // Run's; nil before Run
	chans    map[string]*shardChan
	shards   map[string]*shard    // by node address
	attempts map[string]int       // by node address: failed connections in a row
	retryAt  map[string]time.Time // by node address: no new connection before
	kick     chan struct{}        // wakes the resolver
}

// shardChan is one wanted channel.
type shardChan struct {
	shard *shard // the shard it is subscribed on, or being subscribed on; nil: to resolve
	// hold: it lost its shard and OnDown has not returned yet; the
	// resolver leaves it alone until then.
	hold    bool
	up      bool // confirmed on a live connection
	waiters []chan struct{}
	tries   int       // resolutions in a row that did not end up
	retryAt time.Time // not resolved again before
}

// shard is one pub/sub connection to one primary, and the channels
// assigned to it. It lives as long as its connection: a lost connection
// retires it, and its channels are resolved again.
type shard struct {
	addr    string
	client  *redis.Client
	ps      *redis.PubSub // nil until connected
	chans   map[string]bool
	pending []string       // SSUBSCRIBE sent and not confirmed, in order
	unsub   map[string]int // SUNSUBSCRIBE sent and not confirmed
	live    bool           // the barrier came back
	done    bool           // retired
}

// NewShardedSubscriber returns a sharded subscriber on cluster. Run starts it.
func NewShardedSubscriber(cluster *redis.ClusterClient, cfg SubscriberConfig, log *slog.Logger) *ShardedSubscriber {
	return &ShardedSubscriber{cluster: cluster, cfg: cfg, log: log, chans: map[string]*shardChan{},
		shards: map[string]*shard{}, attempts: map[string]int{}, retryAt: map[string]time.Time{}, kick: make(chan struct{}, 1)}
}

// Up reports whether every wanted channel is subscribed on a live
// connection to its owner.
func (s *ShardedSubscriber) Up() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx == nil {
		return false
	}
	for _, c := range s.chans {
		if !c.up {
			return false
		}
	}
	return true
}

// WaitUp waits until Up or ctx ends.
func (s *ShardedSubscriber) WaitUp(ctx context.Context) error {
	for attempt := 1; !s.Up(); attempt++ {
		if !backoff.Sleep(ctx, min(time.Duration(attempt)*10*time.Millisecond, 200*time.Millisecond)) {
			return fmt.Errorf("broker: redis sharded pub/sub not connected: %w", ErrUnavailable)
		}
	}
	return nil
}

// Channels returns how many channels are wanted.
func (s *ShardedSubscriber) Channels() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.chans)
}

// Shards returns, by node address, how many wanted channels are assigned
// to each shard now.
func (s *ShardedSubscriber) Shards() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for addr, sh := range s.shards {
		if !sh.done {
			out[addr] = len(sh.chans)
		}
	}
	return out
}

// Subscribe wants channel and waits until its owner confirmed the
// subscription on a live connection, or ctx ends (ErrUnavailable).
func (s *ShardedSubscriber) Subscribe(ctx context.Context, channel string) error {
	s.mu.Lock()
	c := s.chans[channel]
	if c == nil {
		c = &shardChan{}
		s.chans[channel] = c
		s.wake()
	}
	if c.up {
		s.mu.Unlock()
		return nil
	}
	done := make(chan struct{})
	c.waiters = append(c.waiters, done)
	s.mu.Unlock()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("broker: ssubscribe %s: %w: %w", channel, ErrUnavailable, ctx.Err())
	}
}

// Unsubscribe stops wanting channel.
func (s *ShardedSubscriber) Unsubscribe(ctx context.Context, channel string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.chans[channel]
	if c == nil {
		return
	}
	delete(s.chans, channel)
	for _, w := range c.waiters {
		close(w)
	}
	if sh := c.shard; sh != nil && !sh.done {
		delete(sh.chans, channel)
		if sh.ps != nil {
			sh.unsub[channel]++
			if err := sh.ps.SUnsubscribe(ctx, channel); err != nil {
				s.log.Debug("sunsubscribe failed", "channel", channel, "shard", sh.addr, "err", err)
			}
		}
	}
}

// wake kicks the resolver; s.mu is held.
func (s *ShardedSubscriber) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Run resolves channels to shards and runs the shards until ctx ends.
func (s *ShardedSubscriber) Run(ctx context.Context) {
	s.mu.Lock()
	s.ctx = ctx
	s.mu.Unlock()
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		case <-t.C:
		}
		next := s.resolve(ctx, &wg)
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(next)
	}
}

// resolve assigns every channel without a shard to its owner's shard,
// starting the shard if it is not there, and says when to look again:
// soon while a channel could not be assigned, else in a second (a
// safety net: every change kicks it).
func (s *ShardedSubscriber) resolve(ctx context.Context, wg *sync.WaitGroup) time.Duration {
	next := time.Second
	now := time.Now()
	s.mu.Lock()
	var todo []string
	for name, c := range s.chans {
		switch {
		case c.shard != nil || c.hold:
		case now.Before(c.retryAt):
			next = min(next, c.retryAt.Sub(now))
		default:
			todo = append(todo, name)
		}
	}
	s.mu.Unlock()
	for _, name := range todo {
		rctx, cancel := context.WithTimeout(ctx, s.cfg.DeadAfter)
		node, err := s.cluster.MasterForKey(rctx, name)
		cancel()
		s.mu.Lock()
		c := s.chans[name]
		if c == nil || c.shard != nil || c.hold {
			s.mu.Unlock()
			continue
		}
		if err != nil {
			c.tries++
			d := backoff.FullJitter(s.cfg.MinBackoff, s.cfg.MaxBackoff, c.tries, nil)
			c.retryAt = time.Now().Add(d)
			next = min(next, d)
			s.mu.Unlock()
			s.log.Debug("sharded pub/sub: owner unknown; retrying", "channel", name, "err", err)
			continue
		}
		addr := node.Options().Addr
		sh := s.shards[addr]
		if sh == nil || sh.done {
			if at := s.retryAt[addr]; time.Now().Before(at) {
				// The last connection to this node failed: wait before
				// the next, as a Subscriber's reconnect does.
				next = min(next, time.Until(at))
				s.mu.Unlock()
				continue
			}
			sh = &shard{addr: addr, client: node, chans: map[string]bool{}, unsub: map[string]int{}}
			s.shards[addr] = sh
			wg.Add(1)
			go func() { defer wg.Done(); s.runShard(ctx, sh) }()
		}
		c.shard = sh
		sh.chans[name] = true
		if sh.ps != nil {
			sh.pending = append(sh.pending, name)
			if err := sh.ps.SSubscribe(ctx, name); err != nil {
				s.log.Debug("ssubscribe failed; the shard's end will resolve it again", "channel", name, "err", err)
			}
		}
		s.mu.Unlock()
	}
	return next
}

// runShard runs one shard's connection until it fails or ctx ends, then
// retires it: its channels are down and resolved again.
func (s *ShardedSubscriber) runShard(ctx context.Context, sh *shard) {
	err := s.shardSession(ctx, sh)
	if ctx.Err() != nil {
		return
	}
	s.mu.Lock()
	sh.done = true
	if !sh.live {
		s.attempts[sh.addr]++
		s.retryAt[sh.addr] = time.Now().Add(backoff.FullJitter(s.cfg.MinBackoff, s.cfg.MaxBackoff, s.attempts[sh.addr], nil))
	}
	var lost []string
	for name := range sh.chans {
		if c := s.chans[name]; c != nil && c.shard == sh {
			c.shard, c.up, c.hold = nil, false, true
			lost = append(lost, name)
		}
	}
	sh.chans = map[string]bool{}
	s.mu.Unlock()
	s.log.Warn("redis sharded pub/sub connection lost; its rooms will be resubscribed on their owners and refilled from history",
		"shard", sh.addr, "channels", len(lost), "err", err)
	s.dropped(lost, fmt.Errorf("shard %s: %w", sh.addr, err))
}

// dropped tells the caller that channels lost their shard (OnDown), then
// lets the resolver find their owner again.
func (s *ShardedSubscriber) dropped(channels []string, err error) {
	if len(channels) > 0 && s.OnDown != nil {
		s.OnDown(channels, err)
	}
	s.cluster.ReloadState(context.Background())
	s.mu.Lock()
	for _, name := range channels {
		if c := s.chans[name]; c != nil && c.shard == nil {
			c.hold = false
			c.tries++
			// The slot map is being reloaded: the first look may still
			// name the old owner, so the retries back off.
			if c.tries > 1 {
				c.retryAt = time.Now().Add(backoff.FullJitter(s.cfg.MinBackoff, s.cfg.MaxBackoff, c.tries-1, nil))
			}
		}
	}
	s.wake()
	s.mu.Unlock()
}

// shardSession connects to the shard's node, subscribes every channel
// assigned to it, barrier-pings, and receives until the link fails.
func (s *ShardedSubscriber) shardSession(ctx context.Context, sh *shard) error {
	ps := sh.client.SSubscribe(ctx)
	defer ps.Close()
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()
	if err := ps.Ping(ctx); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	s.mu.Lock()
	sh.ps = ps
	var err error
	for name := range sh.chans {
		sh.pending = append(sh.pending, name)
		if err = ps.SSubscribe(ctx, name); err != nil {
			break
		}
	}
	barrier := "geolab-shard-barrier"
	if err == nil {
		err = ps.Ping(ctx, barrier)
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("ssubscribe: %w", err)
	}

	defer pingEvery(ctx, ps, s.cfg.PingInterval)()

	for {
		msg, err := ps.ReceiveTimeout(ctx, s.cfg.DeadAfter)
		var rerr redis.Error
		switch {
		case errors.As(err, &rerr):
			// An error answering an SSUBSCRIBE: the slot of the oldest
			// unconfirmed one is not here (MOVED), or not served now.
			name, ok := s.popPending(sh)
			if !ok {
				return fmt.Errorf("unexpected error reply: %w", err)
			}
			s.log.Info("sharded pub/sub: a room's slot is not on this shard; looking its owner up again", "channel", name, "shard", sh.addr, "err", err)
			s.lose(sh, name, err)
			continue
		case err != nil:
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
			switch m.Kind {
			case "ssubscribe":
				s.popPending(sh)
				s.confirmed(sh, m.Channel)
			case "sunsubscribe":
				s.mu.Lock()
				ours := sh.unsub[m.Channel] > 0
				if ours {
					if sh.unsub[m.Channel]--; sh.unsub[m.Channel] == 0 {
						delete(sh.unsub, m.Channel)
					}
				}
				s.mu.Unlock()
				if !ours {
					// Redis dropped it: the slot moved, or this node is
					// no longer a primary.
					s.log.Info("sharded pub/sub: redis dropped a room's subscription (slot moved or primary changed); resubscribing on the new owner",
						"channel", m.Channel, "shard", sh.addr)
					s.lose(sh, m.Channel, fmt.Errorf("shard %s dropped %s (sunsubscribe)", sh.addr, m.Channel))
				}
			}
		case *redis.Pong:
			if m.Payload == barrier {
				s.barrier(sh)
			}
		}
	}
}

// popPending takes the oldest unconfirmed SSUBSCRIBE of sh.
func (s *ShardedSubscriber) popPending(sh *shard) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(sh.pending) == 0 {
		return "", false
	}
	name := sh.pending[0]
	sh.pending = sh.pending[1:]
	return name, true
}

// barrier: every SSUBSCRIBE of the session's start is answered; the
// channels confirmed so far settle.
func (s *ShardedSubscriber) barrier(sh *shard) {
	s.mu.Lock()
	sh.live = true
	delete(s.attempts, sh.addr)
	delete(s.retryAt, sh.addr)
	var names []string
	for name := range sh.chans {
		if c := s.chans[name]; c != nil && c.shard == sh && !c.up {
			names = append(names, name)
		}
	}
	s.mu.Unlock()
	s.settle(sh, names)
}

// confirmed: Redis confirmed channel on sh. Past the barrier it settles now.
func (s *ShardedSubscriber) confirmed(sh *shard, name string) {
	s.mu.Lock()
	ok := sh.live && sh.chans[name] && !s.pendingOn(sh, name)
	s.mu.Unlock()
	if ok {
		s.settle(sh, []string{name})
	}
}

// settle decides channels Redis confirmed on sh: up if sh's node owns
// their slot now, else off it and resolved again. A replica takes an
// SSUBSCRIBE of its primary's slots too, but hears their messages only
// once the cluster counts it in the shard: a subscription made on a
// primary that has just become a replica (the slot map the owner was read
// from was stale) would go quiet without a word. Checked after Redis
// confirmed the subscription, ownership cannot change unseen: from then on
// the node pushes sunsubscribe when it stops owning the slot.
func (s *ShardedSubscriber) settle(sh *shard, names []string) {
	if len(names) == 0 {
		return
	}
	bad := s.notOwned(sh, names)
	var up []string
	s.mu.Lock()
	for _, name := range names {
		if bad[name] == nil && s.markUp(sh, name) {
			up = append(up, name)
		}
	}
	s.mu.Unlock()
	if len(up) > 0 && s.OnUp != nil {
		s.OnUp(up)
	}
	for name, err := range bad {
		s.mu.Lock()
		if sh.ps != nil && sh.chans[name] {
			sh.unsub[name]++
			ctx, cancel := context.WithTimeout(context.Background(), s.cfg.DeadAfter)
			_ = sh.ps.SUnsubscribe(ctx, name)
			cancel()
		}
		s.mu.Unlock()
		s.log.Info("sharded pub/sub: a room was subscribed on a node that no longer owns its slot; looking its owner up again",
			"channel", name, "shard", sh.addr, "err", err)
		s.lose(sh, name, err)
	}
}

// notOwned asks sh's node about a key of each channel's slot (EXISTS of
// the channel's name) and returns the channels it answers MOVED for: its
// node does not own their slot. ASK (the slot is migrating away, but still
// the node's) and failures to ask count as owned: the subscription then
// ends by a sunsubscribe or a dead link, as any other.
func (s *ShardedSubscriber) notOwned(sh *shard, names []string) map[string]error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.DeadAfter)
	defer cancel()
	pipe := sh.client.Pipeline()
	cmds := make([]*redis.IntCmd, len(names))
	for i, name := range names {
		cmds[i] = pipe.Exists(ctx, name)
	}
	_, _ = pipe.Exec(ctx)
	out := map[string]error{}
	for i, name := range names {
		if err := cmds[i].Err(); err != nil && strings.HasPrefix(err.Error(), "MOVED") {
			out[name] = fmt.Errorf("shard %s does not own the slot of %s: %w", sh.addr, name, err)
		}
	}
	return out
}

// pendingOn reports whether another SSUBSCRIBE of name on sh is unanswered.
func (s *ShardedSubscriber) pendingOn(sh *shard, name string) bool {
	for _, p := range sh.pending {
		if p == name {
			return true
		}
	}
	return false
}

// markUp marks channel name up on sh and releases its waiters; s.mu is
// held. It reports whether the channel went up now.
func (s *ShardedSubscriber) markUp(sh *shard, name string) bool {
	c := s.chans[name]
	if c == nil || c.shard != sh || c.up {
		return false
	}
	if faulty.On("noshardresubscribe") && c.tries > 0 {
		// MUTANT noshardresubscribe breaks G12: a room whose subscription
		// Redis dropped (its slot moved, its primary changed) is
		// subscribed again, but never reported up, so its gateway never
		// refills what was published in between and holds every
		// delivery of it back.
		return false
	}
	c.up, c.tries = true, 0
	for _, w := range c.waiters {
		close(w)
	}
	c.waiters = nil
	return true
}

// lose takes channel name off sh after Redis dropped it there, tells the
// caller, and resolves its owner again.
func (s *ShardedSubscriber) lose(sh *shard, name string, err error) {
	s.mu.Lock()
	c := s.chans[name]
	if c == nil || c.shard != sh {
		s.mu.Unlock()
		return
	}
	delete(sh.chans, name)
	c.shard, c.up, c.hold = nil, false, true
	s.mu.Unlock()
	s.dropped([]string{name}, err)
}

// String describes the subscriber's shards, for logs.
func (s *ShardedSubscriber) String() string {
	sh := s.Shards()
	out := "sharded pub/sub:"
	for addr, n := range sh {
		out += " " + addr + "=" + strconv.Itoa(n)
	}
	return out
}
