package gateway

import (
	"context"
	"sync"

	"github.com/geolab/geolab/gateway/broker"
)

// roomFeed is how a hub subscribes the channels of the rooms it hosts:
// one pub/sub connection to the region's Redis (plainFeed), or, on a Redis
// Cluster, one sharded pub/sub connection per primary that owns a hosted
// room's slot (shardedFeed).
type roomFeed interface {
	Subscribe(ctx context.Context, channel string) error
	Unsubscribe(ctx context.Context, channel string)
	WaitUp(ctx context.Context) error
	Channels() int
	// bind routes the feed's deliveries, losses and returns to h.
	bind(h *hub)
}

// plainFeed is one Subscriber on one Redis: a loss or a return of its
// connection is one of every hosted room (G5).
type plainFeed struct{ *broker.Subscriber }

func (f plainFeed) bind(h *hub) {
	f.OnMessage = h.deliver
	f.OnUp = h.up
	f.OnDown = h.down
}

// shardedFeed is a ShardedSubscriber on a cluster: a loss or a return is
// one of the rooms of one shard, or of one room whose slot moved (G12).
type shardedFeed struct{ *broker.ShardedSubscriber }

func (f shardedFeed) bind(h *hub) {
	f.OnMessage = h.deliver
	f.OnUp = h.roomsUp
	f.OnDown = h.roomsDown
}

// roomsOf returns the hosted rooms of channels.
func (h *hub) roomsOf(channels []string) []*room {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]*room, 0, len(channels))
	for _, ch := range channels {
		if r := h.rooms[broker.RoomOfChannel(ch)]; r != nil {
			out = append(out, r)
		}
	}
	return out
}

// roomsDown is down for the rooms of channels alone: their deliveries wait
// from now on, until roomsUp fills their gap.
func (h *hub) roomsDown(channels []string, err error) {
	h.m.redisReconnects.Inc()
	rooms := h.roomsOf(channels)
	h.log.Warn("redis sharded subscription lost; its rooms will be refilled from history", "rooms", len(rooms), "err", err)
	for _, r := range rooms {
		r.mu.Lock()
		r.fillGen.Add(1)
		r.filling = true
		r.mu.Unlock()
	}
}

// roomsUp is up for the rooms of channels alone: subscribed again on their
// shard, each is filled from its history after the last event dispatched,
// then goes live with what waited. A room that was never down (a first
// subscription) is not filling, and its fill returns at once.
func (h *hub) roomsUp(channels []string) {
	h.refill(h.roomsOf(channels))
}

// bindSessions routes a cluster node's plain Subscriber, which carries
// SessionsChannel alone (a PUBLISH reaches every node of a cluster), to h:
// its losses and returns are no room's, but they are the node's Redis link
// (readiness, geolab_gateway_redis_up), and a return rechecks the sessions
// whose notice it may have missed.
func (h *hub) bindSessions(sub *broker.Subscriber) {
	sub.OnMessage = h.deliver
	sub.OnDown = func(error) { h.m.redisUp.Set(0) }
	sub.OnUp = func(gen uint64) {
		h.m.redisUp.Set(1)
		if gen > 1 && h.onResubscribed != nil {
			go h.onResubscribed()
		}
	}
}

// runFeeds runs the node's pub/sub until ctx ends: the Subscriber and, on
// a cluster, the sharded one beside it.
func (s *Server) runFeeds(ctx context.Context) {
	if s.shards == nil {
		s.sub.Run(ctx)
		return
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.sub.Run(ctx) }()
	go func() { defer wg.Done(); s.shards.Run(ctx) }()
	wg.Wait()
}

// Shards returns, on a cluster, how many hosted rooms this node subscribes
// on each primary (by address); nil on one Redis.
func (s *Server) Shards() map[string]int {
	if s.shards == nil {
		return nil
	}
	return s.shards.Shards()
}
